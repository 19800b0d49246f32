"""Regenerate docs/mnist.md: train a preset on the shared MNIST with the preset's budget, time it, copy its pictures.

    python scripts/mnist_demo.py [--preset mnist-svae-r] [--data-dir ../shared/data] [--runs runs]

It runs exactly `svae train --preset NAME --data-dir DIR --out RUNS/NAME --resume auto` (skipped when the run
has its eval.json already), then writes the page from the run directory's eval.json and pictures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from svae.config import Config
from svae.report import write_report

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mnist-svae-r")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--runs", default="runs", help="relative to the repository root")
    ap.add_argument("--docs", default="docs", help="relative to the repository root")
    ap.add_argument("--compare-steps", type=int, default=600,
                    help="steps of the two runs that compare the per-pixel mean and the sum of the rec terms")
    a = ap.parse_args()
    os.chdir(ROOT)  # run paths in the page stay relative to the repository
    run, docs = Path(a.runs) / a.preset, Path(a.docs)
    cmd = ["svae", "train", "--preset", a.preset, "--data-dir", a.data_dir, "--out", str(run), "--resume", "auto"]
    if not (run / "eval.json").is_file():
        subprocess.run([sys.executable, "-m", *cmd], check=True)
    (docs / "img").mkdir(parents=True, exist_ok=True)
    compare = []
    for reduction in ("mean", "sum"):
        out = Path(a.runs) / f"{a.preset}-rec-{reduction}"
        compare.append(out)
        if not (out / "eval.json").is_file():
            subprocess.run([sys.executable, "-m", "svae", "train", "--preset", a.preset, "--data-dir", a.data_dir,
                            "--out", str(out), "--resume", "auto", "--steps", str(a.compare_steps),
                            "--set", f"objective.rec_reduction={reduction}", "--set", "train.threads=1"], check=True)
        shutil.copy(out / "samples.png", docs / "img" / f"{a.preset}-rec-{reduction}-samples.png")
    compare_table = write_report(compare)
    ev = json.loads((run / "eval.json").read_text())
    batch = Config.load(run / "config.yaml").train.batch_size
    for name in ("samples", "reconstructions"):
        shutil.copy(run / f"{name}.png", docs / "img" / f"{a.preset}-{name}.png")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss_gen" in r]
    first, last = rows[0], rows[-1]
    m = ev["machine"]
    is_text = (f"{ev['is_mean']:.3f} +- {ev['is_std']:.3f} (real test set: {ev.get('real_test_is_mean', 0):.3f})"
               if ev.get("is_mean") is not None
               else "not computed (no MNIST classifier in the cache; see docs/evaluation.md)")
    (docs / "mnist.md").write_text(f"""# MNIST: {a.preset} on a laptop-class CPU

Regenerate this page (training included, unless `runs/{a.preset}/eval.json` exists) with:

    python scripts/mnist_demo.py --preset {a.preset}

which runs

    svae train --preset {a.preset} --data-dir ../shared/data --out runs/{a.preset}

Measured on {date.today().isoformat()}: {m['cpu']}, {m['threads']} torch threads, torch {m['torch']}; the machine was
shared with other jobs during the run, so the time is an upper bound.

| what | value |
|---|---|
| training | {ev['steps']} steps (batch {batch}), {ev['seconds'] / 60:.1f} minutes |
| rec_x (training batch, per pixel on [0, 1]) | {first['rec_x']:.4f} at step {first['step']} -> {last['rec_x']:.4f} at step {last['step']} |
| test reconstruction MSE per pixel on [-1, 1] | {ev['mse']:.4f} (random pairing {ev['mse_random']:.4f}) |
| the same on [0, 1] | {ev['mse_01']:.4f} (random pairing {ev['mse_random_01']:.4f}) |
| inception score (MNIST classifier) | {is_text} |
| MNIST classifier's accuracy on the test reconstructions | {ev.get('rec_accuracy', 'n/a')} |

Samples G(z), z ~ N(0, I) (first 100):

![samples](img/{a.preset}-samples.png)

Reconstructions laid out as the paper's figures: two rows of test images, then their two rows of reconstructions
G(E(x)), twice:

![reconstructions](img/{a.preset}-reconstructions.png)

## Status

The reconstructions are faithful (the classifier reads the digit back from nearly every one), but at this
budget the samples are digit-like strokes more than digits: the inception score above is far from the real
test set's. The critic wins the game through its image branch (training logits around +9 on encoder pairs
and -12 on decoder pairs in `metrics.jsonl`). Options to study it: `model.critic_head=mlp` (the tables'
linear head makes the critic additive in x and z, docs/architectures.md), `model.critic_style=dcgan`,
`train.gen_steps`, and the learning rates.

## Why the MNIST presets sum the likelihood terms over the pixels

`objective.rec_reduction` decides the scale of rec_x = d(x, G(E(x))) and rec_z = d(z, E(G(z))): `mean` averages
over every element, `sum` sums over each example's elements (the scale of -log p(x|z), as in the VAE) and
averages over the batch. With the per-pixel mean, lambda = 1 weighs the likelihood 784 times less than the
log-likelihood would; the adversarial gradient on the decoder is then 30 to 80 times the reconstruction gradient,
the critic's verdict "too bright" darkens every pixel until the sigmoid flattens, and the decoder ends up with one
dark image for every z (rec_x stuck near 0.11, the error of an all-black image). The image presets therefore use
`sum` (the toy keeps `mean`). The two runs below differ only in that key ({a.compare_steps} steps each, one
thread, the same seed):

{compare_table}

Samples, per-pixel mean (left) and sum (right):

![mean](img/{a.preset}-rec-mean-samples.png) ![sum](img/{a.preset}-rec-sum-samples.png)
""")
    print((docs / "mnist.md").read_text())


if __name__ == "__main__":
    main()
