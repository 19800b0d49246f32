"""`svae report`: a markdown table of evaluated run directories (model, lambda, IS, MSE, baseline, cost)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..atomic import write_text
from ..kinds import KINDS
from ..result import EvalResult
from ..run import RunError

MODEL_NAMES = {name: k.title for name, k in KINDS.items()}


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Each path is a run directory (holds eval.json) or a folder searched for them, e.g. a sweep."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if (p / "eval.json").is_file():
            runs.append(p)
        elif p.is_dir():
            found = sorted(d.parent for d in p.rglob("eval.json"))
            if not found:
                raise RunError(f"{p}: no evaluated run (no eval.json here or below); run `svae eval RUN_DIR` first")
            runs += found
        else:
            raise RunError(f"{p}: no such run directory")
    return runs


def _pm(mean: Any, std: Any, digits: int = 3) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _shares(ev: EvalResult) -> str:
    """The smallest and largest share of samples per predicted class, and the two parts of log IS (nats)."""
    fr = ev.get("is_class_fractions") or ev.get("is_class_fractions_indomain")
    if not fr:
        return "n/a"
    suffix = "" if ev.get("is_class_fractions") else "_indomain"
    return (f"{min(fr):.3f}-{max(fr):.3f} (H {ev['is_marginal_entropy' + suffix]:.2f}, "
            f"E H {ev['is_conditional_entropy' + suffix]:.2f})")


def row(run_dir: Path) -> tuple[dict[str, str], list[str]]:
    """One table row and the footnotes it needs (which classifier gave the IS, the MSE scale)."""
    ev = EvalResult.load(run_dir / "eval.json")
    notes = []
    score = ev.sample_score()
    if score.kind == "is":
        is_cell = _pm(score.mean, score.std)
        if ev.get("real_test_is_mean") is not None:
            sha = f"sha256 {ev['classifier_sha256'][:8]}, " if ev.get("classifier_sha256") else ""  # which file
            notes.append(f"IS by {ev.get('is_classifier')} ({sha}test accuracy {ev['classifier_test_accuracy']:.4f}, "
                         f"real test set IS {ev['real_test_is_mean']:.3f} ± {ev['real_test_is_std']:.3f})")
        elif ev.is_classifier:
            notes.append(f"IS by {ev.is_classifier}")
    elif score.kind == "indomain":
        is_cell = _pm(score.mean, score.std) + " (in-domain)"
        notes.append(f"in-domain IS by {ev.get('classifier_indomain')} (test accuracy "
                     f"{ev['classifier_indomain_test_accuracy']:.4f}, real test set "
                     f"{ev['real_test_is_indomain_mean']:.3f}): not an Inception score")
    else:
        is_cell = "n/a"
        if ev.is_note:
            notes.append(f"no IS: {ev.is_note}")
    if ev.is_toy:
        notes.append("toy MSE: squared distance per point (sum over the 2 coordinates)")
    elif ev.mse_range:
        notes.append(f"MSE per pixel with pixels in {ev.mse_range} (on [0, 1] divide by 4)")
    if _shares(ev) != "n/a":
        notes.append("class shares: the smallest and largest share of samples per predicted class; H: entropy of the "
                     "class marginal, E H: mean entropy of one sample's prediction (nats; log IS = H - E H)")
    m = ev.machine
    machine = m.get("gpu") or f"{m.get('cpu', '?')} CPU, {m.get('threads', '?')} thread(s)"
    cells = {
        "run": run_dir.as_posix(), "model": MODEL_NAMES.get(ev.get("model"), str(ev.get("model"))),
        "λ": f"{ev.get('lam', 0):g}", "IS": is_cell, "MSE": _num(ev.mse),
        "random-pairing MSE": _num(ev.mse_random),
        "rec. accuracy": "n/a" if ev.rec_accuracy is None else f"{ev.rec_accuracy:.4f}",
        "class shares": _shares(ev),
        "steps": str(ev.get("steps", "?")), "wall time (s)": f"{ev.get('seconds', 0):.0f}", "machine": machine,
    }
    return cells, notes


def table(run_dirs: list[Path]) -> str:
    rows, notes = [], []
    for d in run_dirs:
        cells, n = row(d)
        rows.append(cells)
        notes += [x for x in n if x not in notes]
    cols = list(rows[0])
    for optional in ("rec. accuracy", "class shares"):
        if all(r[optional] == "n/a" for r in rows):
            cols.remove(optional)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes]) + "\n"


def write_report(paths: list[str | Path], out: str | Path | None = None) -> str:
    """The table of the runs found under paths; written to out (a .md file) as well when given."""
    text = table(find_runs(paths))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_text(out, text, "report")
    return text
