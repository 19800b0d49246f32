"""Where a study's samples lose their inception score: the decoder on the encoder's codes against on the prior.

    python scripts/code_gap.py PAGE.md --study NAME [--data-dir ../shared/data] [--force]

For every finished run of studies/NAME.yaml in runs/NAME/ that has its checkpoint, svae.metrics.codes.code_gap
(the classifier's IS and ambiguity of real images, of reconstructions G(E(x)), of prior samples G(z), of samples
from a Gaussian fitted to the codes, and along the path from codes to prior samples) is written to the run's
codes.json and copied to its record in studies/records/NAME/ (which git keeps: the block then regenerates on a
machine without the checkpoints). The table (mean ± std over seeds) and the ambiguity-along-the-path picture
replace the block between `<!-- code-gap:NAME:start -->` and `<!-- code-gap:NAME:end -->` of PAGE.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from svae.experiments.study import Run, Study, _cell, restore_records  # noqa: E402  (_cell: mean ± std)


def eval_id(run_dir: Path) -> str:
    """The evaluation an analysis belongs to: a retrained run's old codes.json must not describe the new run."""
    return hashlib.sha256((run_dir / "eval.json").read_bytes()).hexdigest()[:16]


def current(run: Run, name: str = "codes.json") -> dict | None:
    """The run's analysis file `name` if it belongs to the run's present evaluation."""
    path = run.dir / name
    if not (run.finished and path.is_file()):
        return None
    result = json.loads(path.read_text())
    return result if result.get("eval_id") == eval_id(run.dir) else None


def measure_codes(model, data) -> dict:
    """codes.json: svae.metrics.codes.code_gap of a run's model (loaded from its checkpoint) on its dataset."""
    from svae.metrics.codes import code_gap

    return code_gap(model, data)


def analyse(study: Study, out: Path, records: Path, data_dir: str | None, force: bool = False,
            name: str = "codes.json", measure=measure_codes) -> list[Path]:
    """measure(model, data) for every finished run with a checkpoint and no current file `name` (all with force);
    each result goes to the run's folder and to its record (name must be one of the study's ANALYSIS_FILES).
    Returns the runs analysed."""
    import torch

    from svae.checkpoint import CheckpointError, run_checkpoint
    from svae.data import load_dataset
    from svae.model import Model

    done = []
    for run, record in zip(study.runs(out), study.runs(records)):
        if not run.finished or (current(run, name) and not force):
            continue
        try:
            run_checkpoint(run.dir)
        except CheckpointError:
            print(f"{name}: {run.dir}: no checkpoint here (a record of another machine), not analysed",
                  file=sys.stderr)
            continue
        cfg = run.cfg
        if data_dir:
            cfg.data.data_dir = data_dir
        torch.manual_seed(0)
        result = {"eval_id": eval_id(run.dir), **measure(Model.from_run(run.dir), load_dataset(cfg.data))}
        text = json.dumps(result, indent=1) + "\n"
        (run.dir / name).write_text(text)
        if record.finished:
            (record.dir / name).write_text(text)
        print(f"{name}: {run.dir}: written", file=sys.stderr)
        done.append(run.dir)
    return done


def block(study: Study, out: Path, records: Path, img: Path, link: str) -> str:
    """The table (one row per variant, preset and lambda; seeds as mean ± std) and the picture of the ambiguity
    along the path from codes to prior samples, as markdown; the picture goes to img."""
    groups: dict[tuple, list[dict]] = {}
    for run, record in zip(study.runs(out), study.runs(records)):
        result = current(run) or current(record)
        if result is not None:
            groups.setdefault((run.variant, run.preset, run.lam), []).append(result)
    if not groups:
        return "No run of the study has been analysed yet (its checkpoints are needed once).\n"
    real = next(iter(groups.values()))[0]["real"]
    ts = [p["t"] for p in next(iter(groups.values()))[0]["path"]]
    header = ["variant", "preset", "λ", "runs", "IS: reconstructions G(E(x))", "IS: samples G(z)",
              "IS: Gaussian fit to codes", *[f"ambiguity at t = {t:g}" for t in ts],
              "codes' KL from the prior (Gaussian fit, nats)", "nearest code: from a sample / from a code"]
    stochastic = any("posterior_std_median" in r["codes"] for results in groups.values() for r in results)
    if stochastic:  # a Gaussian encoder's codes are draws of q(z|x): how wide it is
        header.append("q(z|x): median std")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (variant, preset, lam), results in groups.items():
        std = [r["codes"]["posterior_std_median"] for r in results if "posterior_std_median" in r["codes"]]
        lines.append("| " + " | ".join([
            variant, preset, f"{lam:g}", str(len(results)),
            _cell([r["reconstructions"]["is"] for r in results], 3), _cell([r["prior"]["is"] for r in results], 3),
            _cell([r["fitted"]["is"] for r in results], 3),
            *[_cell([r["path"][i]["ambiguity"] for r in results], 3) for i in range(len(ts))],
            _cell([r["codes"]["kl_fit"] for r in results], 1),
            _cell([r["codes"]["nearest_code_median"]["prior_samples"] for r in results], 2) + " / " +
            _cell([r["codes"]["nearest_code_median"]["codes"] for r in results], 2),
            *([_cell(std, 4) if std else "0 (deterministic)"] if stochastic else [])]) + " |")
    n = next(iter(groups.values()))[0]["n"]
    note = (f"The classifier on {n:,} test images, their reconstructions, and as many samples: real test images "
            f"score IS {real['is']:.3f} at ambiguity {real['ambiguity']:.3f}. t is the position on the straight "
            "path z = (1 - t) E(x) + t z_p from a test image's code to a prior sample (t = 0: the reconstructions; "
            "t = 1: the samples). Nearest code: the median distance from a prior sample to the nearest of the test "
            "images' codes, beside the median distance from a code to its nearest other code")
    # what both medians would be, were the codes as many draws of the prior (per code size the study has)
    from svae.metrics.codes import prior_spacing

    kinds = dict.fromkeys((r["prior_kind"], r["codes"]["dims"]) for results in groups.values() for r in results)
    scales = [f"{prior_spacing(kind, dims, n):.2f} in {dims} dimensions" for kind, dims in kinds]
    listed = ", ".join(scales[:-1]) + " and " + scales[-1] if len(scales) > 1 else scales[0]
    note += f"; were the codes {n:,} draws of the prior itself, both would be about {listed}."
    img.mkdir(parents=True, exist_ok=True)
    picture = _draw(groups, ts, img / f"code-gap-{study.name}.png", real["ambiguity"])
    return "\n".join([f"Command: `python scripts/code_gap.py PAGE --study {study.name}` (the runs' checkpoints are "
                      "needed once; their codes.json records keep the numbers).", "", *lines, "", note, "",
                      f"![ambiguity along the path from codes to samples]({link}/{picture.name})"]) + "\n"


def _draw(groups: dict[tuple, list[dict]], ts: list[float], path: Path, real: float) -> Path:
    from svae import viz

    plt = viz._plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for i, ((variant, preset, lam), results) in enumerate(groups.items()):
        mean = [statistics.mean(r["path"][k]["ambiguity"] for r in results) for k in range(len(ts))]
        ax.plot(ts, mean, "o-", color=f"C{i % 10}", ms=4,
                label=f"{preset.split('-', 1)[1]} λ={lam:g}" + (f" ({variant})" if variant != "baseline" else ""))
    ax.axhline(real, color="k", ls=":", lw=1, label="real test images")
    ax.set_xlabel("t: from the codes of test images (0) to prior samples (1)")
    ax.set_ylabel("ambiguity E H(p(y|x)) (nats; lower is clearer)")
    ax.set_title("Where samples turn ambiguous: the decoder between codes and prior")
    ax.legend(fontsize=7, ncol=2)
    return viz.save_figure(fig, path)


def rewrite(page: Path, name: str, data_dir: str | None, force: bool = False, analyse_runs: bool = True,
            marker: str = "code-gap", file: str = "codes.json", measure=measure_codes, render=block) -> str:
    """Analyse the study's runs (measure -> file, unless analyse_runs is false), then replace the page's block
    `<!-- MARKER:NAME:start -->` ... `<!-- MARKER:NAME:end -->` by render(study, out, records, img, link)."""
    study = Study.load(ROOT / "studies" / f"{name}.yaml")
    out, records = ROOT / "runs" / name, ROOT / "studies" / "records" / name
    restore_records(study, out, records)
    if analyse_runs:
        analyse(study, out, records, data_dir, force, file, measure)
    start, end = f"<!-- {marker}:{name}:start -->", f"<!-- {marker}:{name}:end -->"
    text = page.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{marker}: {page} has no block {start} ... {end}")
    # not docs/img/NAME: scripts/study_page.py empties that folder whenever it redraws the study's block
    link = Path("img") / marker if page.parent.name == "docs" else Path("docs") / "img" / marker
    head, rest = text.split(start, 1)
    text = head + start + "\n" + render(study, out, records, ROOT / "docs" / "img" / marker,
                                        link.as_posix()) + end + rest.split(end, 1)[1]
    page.write_text(text)
    return text


def main(description: str = __doc__.splitlines()[0], **block_kind) -> None:
    """The command line of an analysis block: this script's, or another's with rewrite's marker, file, measure
    and render (scripts/bn_stats.py)."""
    file = block_kind.get("file", "codes.json")
    p = argparse.ArgumentParser(description=description)
    p.add_argument("page", type=Path)
    p.add_argument("--study", required=True)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--force", action="store_true", help=f"analyse again the runs that have a {file}")
    p.add_argument("--no-analyse", action="store_true", help=f"only rewrite the block from the {file} there are")
    a = p.parse_args()
    rewrite(a.page, a.study, a.data_dir, a.force, not a.no_analyse, **block_kind)
    print(f"wrote {a.page}")


if __name__ == "__main__":
    main()
