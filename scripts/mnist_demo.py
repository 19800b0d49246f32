"""Regenerate docs/mnist.md: train a preset on the shared MNIST with the preset's budget, time it, copy its pictures.

    python scripts/mnist_demo.py [--preset mnist-svae-r] [--data-dir ../shared/data] [--runs runs]

It runs exactly `svae train --preset NAME --data-dir DIR --out RUNS/NAME --resume auto` (skipped when the run
has its eval.json already), then writes the page from the run directory's eval.json and pictures.
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

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mnist-svae-r")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--runs", default=str(ROOT / "runs"))
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    a = ap.parse_args()
    run, docs = Path(a.runs) / a.preset, Path(a.docs)
    cmd = ["svae", "train", "--preset", a.preset, "--data-dir", a.data_dir, "--out", str(run), "--resume", "auto"]
    if not (run / "eval.json").is_file():
        subprocess.run([sys.executable, "-m", *cmd], check=True)
    ev = json.loads((run / "eval.json").read_text())
    batch = Config.load(run / "config.yaml").train.batch_size
    (docs / "img").mkdir(parents=True, exist_ok=True)
    for name in ("samples", "reconstructions"):
        shutil.copy(run / f"{name}.png", docs / "img" / f"{a.preset}-{name}.png")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss_gen" in r]
    first, last = rows[0], rows[-1]
    m = ev["machine"]
    is_text = (f"{ev['is_mean']:.3f} +- {ev['is_std']:.3f}" if ev.get("is_mean") is not None
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

Samples G(z), z ~ N(0, I) (first 100):

![samples](img/{a.preset}-samples.png)

Reconstructions laid out as the paper's figures: two rows of test images, then their two rows of reconstructions
G(E(x)), twice:

![reconstructions](img/{a.preset}-reconstructions.png)
""")
    print((docs / "mnist.md").read_text())


if __name__ == "__main__":
    main()
