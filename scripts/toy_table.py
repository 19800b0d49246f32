"""Regenerate docs/toy.md (the prose of scripts/templates/toy.md): the ALICE toy table with svae's own code,
mean +- std over seeds.

    python scripts/toy_table.py [--seeds 5] [--runs runs/toy-table] [--jobs 2]

Each run is a normal run directory (resumable: runs with an eval.json are reused). The table has every
preset at its own step ratio, and ALI and sVAE also at the ALICE protocol's 1 critic : 5 generator steps.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path
from string import Template

from svae.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
# the page's prose, with $name placeholders that main() fills in (string.Template)
TEMPLATE = Template((ROOT / "scripts" / "templates" / "toy.md").read_text())
MODELS = ["ali", "alice", "svae", "svae-r", "vae"]
# (label, preset, extra --set arguments)
VARIANTS = [(m, f"toy-{m}", []) for m in MODELS] + [
    ("ali, 1:5 steps", "toy-ali", ["train.gen_steps=5"]),
    ("svae, 1:5 steps", "toy-svae", ["train.gen_steps=5"]),
    # sVAE-r's options (METHOD.md sections 3-4): the two-critic estimator, the uniform prior, no noise
    ("svae-r, two critics", "toy-svae-r", ["objective.estimator=marginal"]),
    ("svae-r, uniform prior", "toy-svae-r", ["model.prior=uniform"]),
    ("svae-r, deterministic", "toy-svae-r", ["model.enc_noise=0", "model.dec_noise=0"]),
]
PUBLISHED = {"ali": ("2.750 +- 1.498", "4.715 +- 1.819"), "alice": ("4.598 +- 0.576", "0.0218 +- 0.0273")}


def run_dir(runs: Path, label: str, seed: int) -> Path:
    return runs / f"{label.replace(', ', '_').replace(':', 'to').replace(' ', '-')}-s{seed}"


def command(preset: str, sets: list[str], out: Path, seed: int) -> list[str]:
    cmd = [sys.executable, "-m", "svae", "train", "--preset", preset, "--out", str(out), "--seed", str(seed),
           "--resume", "auto", "--set", "train.threads=1"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def run_all(runs: Path, seeds: int, jobs: int) -> None:
    todo = [(label, preset, sets, seed) for label, preset, sets in VARIANTS for seed in range(seeds)
            if not (run_dir(runs, label, seed) / "eval.json").exists()]
    running: list[subprocess.Popen] = []
    env = dict(os.environ, OMP_NUM_THREADS="1")  # small MLPs: one thread per run, runs side by side
    for label, preset, sets, seed in todo:
        while len(running) >= jobs:
            running[0].wait()
            running = [p for p in running if p.poll() is None]
        out = run_dir(runs, label, seed)
        out.mkdir(parents=True, exist_ok=True)
        print(f"training {label} seed {seed}", flush=True)
        log = open(out / "train.log", "w")
        running.append(subprocess.Popen(command(preset, sets, out, seed), stdout=log, stderr=log, env=env))
    for p in running:
        p.wait()


def mean_std(values: list[float], fmt: str) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.mean(values), fmt)} +- {format(sd, fmt)}"


def table(runs: Path, seeds: int) -> tuple[str, dict]:
    rows = ["| model | steps critic:generator | IS | MSE (sum) | MSE per coord | random-pairing MSE | modes | "
            "minutes per run | published IS | published MSE |", "|" + "---|" * 10]
    evals = {}
    for label, preset, sets in VARIANTS:
        es = [json.loads((run_dir(runs, label, s) / "eval.json").read_text()) for s in range(seeds)]
        evals[label] = es
        cfg_ratio = next((s.split("=")[1] for s in sets if s.startswith("train.gen_steps")), None)
        c = get_preset(preset).train
        ratio = "-" if label == "vae" else f"{c.critic_steps}:{cfg_ratio or c.gen_steps}"
        name = label if label != "vae" else "vae"
        pub = PUBLISHED.get(label, ("", ""))
        rows.append(
            f"| {name} | {ratio} | {mean_std([e['is_mean'] for e in es], '.3f')} | "
            f"{mean_std([e['mse'] for e in es], '.4f')} | {mean_std([e['mse_per_coord'] for e in es], '.4f')} | "
            f"{mean_std([e['mse_random'] for e in es], '.2f')} | "
            f"{mean_std([e['mode_coverage']['modes'] for e in es], '.1f')} | "
            f"{statistics.mean(e['seconds'] for e in es) / 60:.1f} | {pub[0]} | {pub[1]} |")
    return "\n".join(rows), evals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--runs", default=str(ROOT / "runs" / "toy-table"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    a = ap.parse_args()
    runs, docs = Path(a.runs), Path(a.docs)
    run_all(runs, a.seeds, a.jobs)
    text, evals = table(runs, a.seeds)
    img = docs / "img"
    img.mkdir(parents=True, exist_ok=True)
    for label, _, _ in VARIANTS[:len(MODELS)]:
        shutil.copy(run_dir(runs, label, 0) / "toy.png", img / f"toy-{label}.png")
    m = evals["alice"][0]["machine"]
    pictures = "\n".join(f"![{label}](img/toy-{label}.png)" for label in MODELS)
    (docs / "toy.md").write_text(TEMPLATE.substitute(
        seeds=a.seeds, last_seed=a.seeds - 1, date=date.today().isoformat(), python=m["python"], torch=m["torch"],
        cpu=m["cpu"], table=text, pictures=pictures))
    readme = ROOT / "README.md"
    start, end = "<!-- toy-table:start -->", "<!-- toy-table:end -->"
    body = readme.read_text()
    if start in body and end in body:
        head, rest = body.split(start, 1)
        readme.write_text(f"{head}{start}\n{text}\n{end}{rest.split(end, 1)[1]}")
    print(text)


if __name__ == "__main__":
    main()
