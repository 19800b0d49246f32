"""Regenerate docs/mnist.md: train a preset on the shared MNIST with the preset's budget, time it, copy its pictures.

    python scripts/mnist_demo.py [--preset mnist-svae-r] [--data-dir ../shared/data] [--runs runs]

It runs exactly `svae train --preset NAME --data-dir DIR --out RUNS/NAME --resume auto` (skipped when the run
has its eval.json already), then writes the page: the prose of scripts/templates/mnist.md, filled in from the run
directory's eval.json and pictures.
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
from string import Template

from svae.config import Config
from svae.experiments.report import write_report

ROOT = Path(__file__).resolve().parents[1]
# the page's prose, with $name placeholders that main() fills in (string.Template)
TEMPLATE = Template((ROOT / "scripts" / "templates" / "mnist.md").read_text())
# Short runs that differ from the preset in one key each: (run-name suffix, --set KEY=VALUE or "" for the preset).
# All of them score their live weights (train.ema=0): a few hundred steps leave a slow weight average mostly at the
# initial weights.
VARIANTS = [("preset", ""), ("rec-mean", "objective.rec_reduction=mean"), ("z-weight-0.1", "objective.z_weight=0.1"),
            ("z-weight-1", "objective.z_weight=1")]


# eval.json's "bn_stats" (absent: the running averages, as every eval.json before the key), as the page says it
BN_TEXT = {"running": "the running averages as trained",
           "pathway": "per pathway: the decoder's from prior draws for the samples, the encoder's from training "
                      "images and the decoder's from their codes for the reconstructions (docs/evaluation.md 5c)"}


def train_with_load(cmd: list[str], run: Path) -> None:
    """Run the training command, sampling the machine's 1-minute load average every 30 s into run/load.json,
    so that the page can say whether the timing was taken on an idle machine."""
    proc = subprocess.Popen([sys.executable, "-m", *cmd])
    loads = []
    while True:
        try:
            proc.wait(timeout=30)
            break
        except subprocess.TimeoutExpired:
            loads.append(os.getloadavg()[0])
    if proc.returncode:
        sys.exit(f"training failed with exit status {proc.returncode}")
    run.mkdir(parents=True, exist_ok=True)
    (run / "load.json").write_text(json.dumps({"cpus": os.cpu_count(), "load_1min": loads}))


def load_text(run: Path) -> str:
    path = run / "load.json"
    if not path.is_file():
        return "the machine's load during training was not recorded (the run was trained outside this script)"
    info = json.loads(path.read_text())
    loads = sorted(info["load_1min"]) or [0.0]
    return (f"1-minute load average during training: median {loads[len(loads) // 2]:.2f}, max {loads[-1]:.2f} "
            f"on {info['cpus']} CPUs (a load above the thread count means other jobs shared the cores)")


def _num(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _class_range(ev: dict) -> str:
    fractions = ev.get("is_class_fractions")
    return f"{min(fractions):.3f}-{max(fractions):.3f}" if fractions else "n/a"


def _weights_text(ev: dict, ema: float) -> str:
    """Which weights the table scores, and the other weights' scores beside them."""
    live = ev.get("live")
    if not ema or not live:
        return "The table scores the live weights (the run kept no weight average)."
    live_is = f"IS {live['is_mean']:.3f}" if live.get("is_mean") is not None else "no IS"
    return (f"The table scores the weight average of the encoder and decoder (`train.ema {ema:g}`); the live weights "
            f"of the last step score {live_is} at MSE {live['mse']:.4f}.")


def _score(ev: dict) -> str:
    return f"IS {ev['is_mean']:.2f} at MSE {ev['mse']:.4f}" if ev.get("is_mean") is not None \
        else f"MSE {ev['mse']:.4f}"


def _rec_mean_text(scores: dict) -> str:
    mean, preset = scores["rec-mean"], scores["preset"]
    collapsed = mean.get("is_mean") is not None and mean["is_mean"] < 1.5
    return (f"the per-pixel mean scores {_score(mean)} against the preset's {_score(preset)}"
            + (" (a collapse: every sample the same class)." if collapsed else "."))


def _z_weight_text(scores: dict) -> str:
    """The z_weight runs' scores, and the trend only when the numbers show one."""
    runs = [("1", scores["z-weight-1"]), ("0.1", scores["z-weight-0.1"]), ("0.01 (the preset)", scores["preset"])]
    text = "z_weight " + ", ".join(f"{w} scores {_score(ev)}" for w, ev in runs) + "."
    iss = [ev.get("is_mean") for _, ev in runs]
    if None not in iss and iss[0] < iss[1] < iss[2]:
        text += " The inception score rises as the weight falls."
    elif None not in iss and iss[0] > iss[1] > iss[2]:
        text += " The inception score falls as the weight falls."
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mnist-svae-r")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--runs", default="runs", help="relative to the repository root")
    ap.add_argument("--docs", default="docs", help="relative to the repository root")
    ap.add_argument("--compare-steps", type=int, default=600,
                    help="steps of the short runs that each change one key of the preset (VARIANTS)")
    a = ap.parse_args()
    os.chdir(ROOT)  # run paths in the page stay relative to the repository
    run, docs = Path(a.runs) / a.preset, Path(a.docs)
    cmd = ["svae", "train", "--preset", a.preset, "--data-dir", a.data_dir, "--out", str(run), "--resume", "auto"]
    if not (run / "eval.json").is_file():
        train_with_load(cmd, run)
    (docs / "img").mkdir(parents=True, exist_ok=True)
    compare = []
    for name, setting in VARIANTS:
        out = Path(a.runs) / f"{a.preset}-{name}"
        compare.append(out)
        if not (out / "eval.json").is_file():
            extra = ["--set", setting] if setting else []
            subprocess.run([sys.executable, "-m", "svae", "train", "--preset", a.preset, "--data-dir", a.data_dir,
                            "--out", str(out), "--resume", "auto", "--steps", str(a.compare_steps),
                            "--set", "train.threads=1", "--set", "train.ema=0", *extra], check=True)
        shutil.copy(out / "samples.png", docs / "img" / f"{a.preset}-{name}-samples.png")
    compare_table = write_report(compare)
    ev = json.loads((run / "eval.json").read_text())
    cfg = Config.load(run / "config.yaml")
    batch = cfg.train.batch_size
    scores = {name: json.loads((out / "eval.json").read_text()) for (name, _), out in zip(VARIANTS, compare)}
    for name in ("samples", "reconstructions", "curves"):
        shutil.copy(run / f"{name}.png", docs / "img" / f"{a.preset}-{name}.png")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss_gen" in r]
    first, last = rows[0], rows[-1]
    m = ev["machine"]
    is_text = (f"{ev['is_mean']:.3f} +- {ev['is_std']:.3f} (real test set: {ev.get('real_test_is_mean', 0):.3f})"
               if ev.get("is_mean") is not None
               else "not computed (no MNIST classifier in the cache; see docs/evaluation.md)")
    page = TEMPLATE.substitute(
        preset=a.preset, date=date.today().isoformat(), cpu=m["cpu"], threads=m["threads"], torch=m["torch"],
        load=load_text(run), steps=ev["steps"], batch=batch, minutes=f"{ev['seconds'] / 60:.1f}",
        rec_x_first=f"{first['rec_x']:.4f}", step_first=first["step"], rec_x_last=f"{last['rec_x']:.4f}",
        step_last=last["step"], mse=f"{ev['mse']:.4f}", mse_random=f"{ev['mse_random']:.4f}",
        mse_01=f"{ev['mse_01']:.4f}", mse_random_01=f"{ev['mse_random_01']:.4f}", inception_score=is_text,
        rec_accuracy=ev.get("rec_accuracy", "n/a"), rec_accuracy_percent=f"{ev.get('rec_accuracy', 0):.1%}",
        logit_q=f"{last['logit_q']:+.1f}", logit_p=f"{last['logit_p']:+.1f}", compare_steps=a.compare_steps,
        coverage=_num(ev.get("is_marginal_entropy"), 3), ambiguity=_num(ev.get("is_conditional_entropy"), 3),
        class_range=_class_range(ev), weights_text=_weights_text(ev, cfg.train.ema),
        probe_every=f"every {cfg.train.probe_every} steps" if cfg.train.probe_every > 0 else "once an epoch",
        ema=f"{cfg.train.ema:g}", bn_stats=BN_TEXT[ev.get("bn_stats", "running")],
        ema_init_percent=f"{cfg.train.ema ** a.compare_steps:.0%}", compare_table=compare_table,
        rec_mean_text=_rec_mean_text(scores), z_weight_text=_z_weight_text(scores),
        variant_samples=" ".join(f"![{name}](img/{a.preset}-{name}-samples.png)" for name, _ in VARIANTS))
    (docs / "mnist.md").write_text(page)
    print((docs / "mnist.md").read_text())


if __name__ == "__main__":
    main()
