"""Regenerate docs/results.md: the MNIST lambda sweep of sVAE-r against ALICE (and ALI, sVAE at lambda 0).

    python scripts/results_mnist.py [--steps 600] [--lam 1,0.1,0.01,10,0] [--jobs 2] [--data-dir ../shared/data]

It runs, one process per preset (--jobs of them at a time, one torch thread each),

    svae sweep --preset mnist-svae-r --lam LAMS --steps STEPS --out runs/sweep-mnist --set train.threads=1
    svae sweep --preset mnist-alice  --lam LAMS --steps STEPS --out runs/sweep-mnist --set train.threads=1

(finished runs are skipped, unfinished ones resumed), re-evaluates with `svae eval` any run evaluated before the
MNIST classifier existed, draws the sweep's pictures for both presets, and writes the page from the runs' eval.json.
The published numbers beside ours are ALICE's (METHOD.md section 7), typed from its authors' repository.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from svae.config import Config
from svae.report import write_report
from svae.sweep import draw_sweep, lam_dir

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("mnist-svae-r", "mnist-alice")
# Published MNIST numbers (ALICE authors' repository; MSE per pixel on [-1, 1], METHOD.md section 7).
PUBLISHED = [("ALI", "0", "8.749 ± 0.09", "0.4803 ± 0.100"), ("ALICE", "1", "9.279 ± 0.07", "0.0803 ± 0.007")]
TARGET_IS, TARGET_MSE = 9.279, 0.0803  # ALICE's published best, both at once (issue: sVAE-r must meet both)


def sweep_cmd(preset: str, a: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "svae", "sweep", "--preset", preset, "--lam", a.lam, "--steps", str(a.steps),
            "--out", a.out, "--data-dir", a.data_dir, "--seed", str(a.seed), "--set", "train.threads=1"]


def evals(out: Path, preset: str, lams: list[float]) -> list[tuple[float, Path, dict]]:
    found = []
    for lam in lams:
        d = out / preset / lam_dir(lam)
        if (d / "eval.json").is_file():
            found.append((lam, d, json.loads((d / "eval.json").read_text())))
    return found


def verdict(svae_r: list[tuple[float, Path, dict]], alice: list[tuple[float, Path, dict]]) -> str:
    """The issue's two targets, computed from the runs: sVAE-r's best lambda against ALICE's published best,
    and sVAE-r against our ALICE at every lambda (better IS and lower MSE at the same lambda)."""
    lines = []
    scored = [(lam, ev) for lam, _, ev in svae_r if ev.get("is_mean") is not None and lam > 0]
    if scored:
        # best lambda: the highest IS among the runs whose MSE meets the target, else the lowest MSE
        meets = [(lam, ev) for lam, ev in scored if ev["mse"] <= TARGET_MSE]
        lam, ev = max(meets, key=lambda t: t[1]["is_mean"]) if meets else min(scored, key=lambda t: t[1]["mse"])
        ok = ev["is_mean"] >= TARGET_IS and ev["mse"] <= TARGET_MSE
        lines.append(f"- Target 1 (sVAE-r at its best λ with IS >= {TARGET_IS} and MSE <= {TARGET_MSE}): "
                     f"{'met' if ok else 'not met'}; best λ = {lam:g}: IS {ev['is_mean']:.3f} "
                     f"({ev['is_mean'] - TARGET_IS:+.3f} against the target), MSE {ev['mse']:.4f} "
                     f"({ev['mse'] - TARGET_MSE:+.4f}).")
    ours = {lam: ev for lam, _, ev in alice if ev.get("is_mean") is not None}
    pairs = [(lam, ev, ours[lam]) for lam, _, ev in svae_r if lam in ours and ev.get("is_mean") is not None]
    if pairs:
        ahead = [lam for lam, s, c in pairs if s["is_mean"] > c["is_mean"] and s["mse"] < c["mse"]]
        detail = "; ".join(f"λ {lam:g}: IS {s['is_mean']:.2f} vs {c['is_mean']:.2f}, MSE {s['mse']:.4f} vs "
                           f"{c['mse']:.4f}" for lam, s, c in pairs)
        positive = [(s, c) for lam, s, c in pairs if lam > 0]  # lambda 0 pairs sVAE with ALI: other models
        if positive:
            gap_is = max(abs(s["is_mean"] - c["is_mean"]) for s, c in positive)
            gap_mse = max(abs(s["mse"] - c["mse"]) for s, c in positive)
            spread = max(max(s.get("is_std") or 0, c.get("is_std") or 0) for s, c in positive)
            lines.append(f"- Largest gap between sVAE-r and ALICE at one λ > 0: {gap_is:.3f} in IS, {gap_mse:.4f} "
                         f"in MSE; the IS std over 10 splits is up to {spread:.3f} (one seed per run).")
        lines.append(f"- Target 2 (sVAE-r ahead of our ALICE, higher IS and lower MSE, at every λ): "
                     f"{'met' if len(ahead) == len(pairs) else 'not met'}, ahead at {len(ahead)} of {len(pairs)} "
                     f"λ (sVAE-r vs ALICE: {detail}; λ 0 compares sVAE with ALI).")
    return "\n".join(lines)


def other_data_text(docs: Path) -> str:
    """Why the CIFAR-10 and CelebA comparisons are missing, from the benchmark's measured step times."""
    bench = docs / "speed-bench.json"
    rows = {r["preset"]: r for r in json.loads(bench.read_text())} if bench.is_file() else {}
    parts = []
    for preset, n in (("cifar10-svae-r", 50000), ("celeba-svae-r", 162770)):
        if preset in rows:
            r = rows[preset]
            parts.append(f"`svae bench` measured {preset} at {r['imgs_per_s']:.1f} images/s on "
                         f"{r['machine']['threads']} thread(s) of {r['machine']['cpu']} ({r['machine']['date']}), "
                         f"so one epoch ({n:,} images) takes about {n / r['imgs_per_s'] / 3600:.1f} hours there")
    text = "; ".join(parts) + ". " if parts else ""
    return text + ("The CelebA files are not in the shared data folder yet. These comparisons wait for a longer "
                   "budget or a GPU (docs/speed.md).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps of every run (batch 100)")
    ap.add_argument("--lam", default="1,0.1,0.01,10,0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="presets trained at the same time (one thread each)")
    ap.add_argument("--data-dir", default="../shared/data", help="relative to the repository root")
    ap.add_argument("--out", default="runs/sweep-mnist", help="relative to the repository root")
    ap.add_argument("--docs", default="docs")
    a = ap.parse_args()
    out, docs = ROOT / a.out, ROOT / a.docs
    lams = sorted(float(v) for v in a.lam.split(","))

    procs: list[subprocess.Popen] = []
    failed = 0
    for preset in PRESETS:
        if len(procs) >= a.jobs:
            failed += procs.pop(0).wait() != 0
        procs.append(subprocess.Popen(sweep_cmd(preset, a), cwd=ROOT))
    failed += sum(p.wait() != 0 for p in procs)
    if failed:
        sys.exit(f"{failed} sweep(s) failed; see the output above")
    for preset in PRESETS:
        for _, d, ev in evals(out, preset, lams):
            if ev.get("is_mean") is None:  # evaluated before the classifier was trained
                subprocess.run([sys.executable, "-m", "svae", "eval", str(d)], check=True, cwd=ROOT)
    pictures = draw_sweep(out, list(PRESETS))
    img = docs / "img" / "results-mnist"
    img.mkdir(parents=True, exist_ok=True)
    for p in pictures:
        shutil.copy(p, img / p.name)

    svae_r, alice = evals(out, "mnist-svae-r", lams), evals(out, "mnist-alice", lams)
    runs = [d for _, d, _ in svae_r] + [d for _, d, _ in alice]
    table = write_report([d.relative_to(ROOT) for d in runs])
    first = (svae_r or alice)[0]
    ev0, z_weight = first[2], Config.load(first[1] / "config.yaml").objective.z_weight
    m = ev0["machine"]
    published = "\n".join(f"| {name} (published) | {lam} | {is_} | {mse} |" for name, lam, is_, mse in PUBLISHED)
    pics = "\n\n".join(f"![{p.stem}](img/results-mnist/{p.name})" for p in pictures)
    (docs / "results.md").write_text(f"""# Results: sVAE-r against ALICE on MNIST

Regenerate this page (training included; finished runs are reused) with:

    python scripts/results_mnist.py --steps {a.steps} --lam {a.lam} --seed {a.seed}

Budget: every run trains {a.steps} steps of batch 100 ({a.steps / 600:g} epoch(s) of MNIST's 60,000 images) from seed
{a.seed}, one torch thread, on {m['cpu']} (torch {m['torch']}), measured on {date.today().isoformat()}; the runs
shared the 2 cores with other jobs, so their wall times are upper bounds. The paper's models trained for far longer; this is the budget of a 2-core CPU in an
hour. Presets `mnist-svae-r` and `mnist-alice` (Table 1 networks, rec terms summed over pixels, rec_z weighted
{z_weight:g}; docs/mnist.md says why); λ = 0 is plain sVAE and ALI. IS: the MNIST
classifier over 10,000 samples, 10 splits; MSE: per pixel on [-1, 1] over the test set.

## Measured

{table}
## Published (ALICE's MNIST numbers, the reference of the paper)

| model | λ | IS | MSE |
|---|---|---|---|
{published}

## Against the targets

{verdict(svae_r, alice)}

## CIFAR-10 and CelebA

Not measured yet. {other_data_text(docs)}

## Pictures

Samples and reconstructions per λ (the paper's figures 4 to 7 layout), and the IS-versus-MSE front:

{pics}
""")
    print((docs / "results.md").read_text())


if __name__ == "__main__":
    main()
