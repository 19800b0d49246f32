"""The one prepared command for a lent GPU: bench, then the CIFAR-10 pair and CelebA sVAE-r, packed into one folder.

    python scripts/gpu_run.py --data-dir DATA --out OUT [--minutes 8]   # on a GPU (docs/gpu.md)
    python scripts/gpu_run.py --tiny --out OUT                         # the same route on CPU in seconds (CI)
    python scripts/gpu_run.py --subset .gpu-data --data-dir ../shared/data   # data small enough to travel

Stages, each writing into OUT: (1) `svae bench` figures of the CIFAR-10 and CelebA sVAE-r presets in fp32 and bf16,
eager and torch.compile (bench.md, bench.json); (2) studies/gpu.yaml, the CIFAR-10 pair (sVAE-r and ALICE at
lambda 1) and CelebA sVAE-r at lambda 1 and 0.1, two runs at a time, each given the most steps that fit the time
left at the step time the bench measured; (3) the study's summary, curves and side-by-side grids, and
gpu-results.tar.gz holding every run's eval.json, config, metrics and pictures (no checkpoints), small enough to
bring back.
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

from svae.training.bench import bench
from svae.presets import get_preset
from svae.experiments.study import Study, run_study, summarise

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "gpu.yaml"
BENCH_PRESETS = ("cifar10-svae-r", "celeba-svae-r")
PRECISIONS = ("fp32", "bf16")
# the training groups, in order; each gets an equal share of the time the bench leaves
GROUPS = {"cifar10": ["cifar10-svae-r", "cifar10-alice"], "celeba": ["celeba-svae-r"]}
CONCURRENT = 2  # runs on the GPU at once: these networks are too small to fill it alone
SLOWDOWN = 1.6  # assumed step time of one run when two share the GPU, relative to alone (a guess, stated)
OVERHEAD_S = 45.0  # per run: process start, data load, the final evaluation and checkpoint
PACKED = ("eval.json", "config.yaml", "metrics.jsonl", "curves.png", "samples.png", "reconstructions.png")


# ---------------------------------------------------------------- data small enough to travel


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A deflate-compressed .npz in the shared files' layout. (The shared files use LZMA, about 15% smaller, but
    Python's LZMA writer had not finished the default subsets after ten minutes on a busy 2-core machine.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def subset(data_dir: Path, out: Path, n_cifar: int, n_celeba: int) -> list[Path]:
    """The first n_cifar CIFAR-10 training images (and a tenth as many test images) and the first n_celeba faces,
    in the shared files' format, for a machine that cannot reach the shared folder."""
    written = []
    with np.load(data_dir / "cifar10.npz") as d:
        n_test = max(n_cifar // 10, 100)
        write_npz(out / "cifar10.npz", {"x_train": d["x_train"][:n_cifar], "y_train": d["y_train"][:n_cifar],
                                            "x_test": d["x_test"][:n_test], "y_test": d["y_test"][:n_test]})
        written.append(out / "cifar10.npz")
    with np.load(data_dir / "celeba64.npz") as d:
        keep = {"x": d["x"][:n_celeba], "attr": d["attr"][:n_celeba], "attr_names": d["attr_names"]}
        write_npz(out / "celeba64.npz", keep)
        written.append(out / "celeba64.npz")
    return written


def random_data(out: Path, n_cifar: int = 64, n_celeba: int = 80, seed: int = 0) -> Path:
    """Random images in the shared files' format: the --tiny route needs no dataset."""
    g = np.random.default_rng(seed)
    write_npz(out / "cifar10.npz", {
        "x_train": g.integers(0, 256, (n_cifar, 32, 32, 3), dtype=np.uint8), "y_train": np.arange(n_cifar) % 10,
        "x_test": g.integers(0, 256, (n_cifar // 2, 32, 32, 3), dtype=np.uint8),
        "y_test": np.arange(n_cifar // 2) % 10})
    write_npz(out / "celeba64.npz", {
        "x": g.integers(0, 256, (n_celeba, 64, 64, 3), dtype=np.uint8),
        "attr": np.where(g.random((n_celeba, 40)) < 0.5, -1, 1).astype(np.int8),
        "attr_names": np.array([f"attr_{i}" for i in range(40)])})
    return out


# ---------------------------------------------------------------- stages


def run_bench(device: str, tiny: bool, log) -> list[dict]:
    """Step time of each bench preset in each precision, eager and compiled; a setting that fails is a row too."""
    rows = []
    compiles = (False,) if tiny else (False, True)  # --tiny runs where no C++ compiler may exist
    for preset in BENCH_PRESETS:
        for precision in PRECISIONS:
            for compiled in compiles:
                cfg = get_preset(preset)
                cfg.train.device, cfg.train.precision, cfg.train.compile = device, precision, compiled
                if tiny:
                    cfg.train.batch_size = 4
                row = {"preset": preset, "precision": precision, "compile": compiled}
                try:
                    r = bench(cfg, steps=2 if tiny else 30, warmup=1 if tiny else 10,
                              reference=precision == "fp32" and not compiled, eval_n=0)
                    row.update({k: r[k] for k in ("step_s", "imgs_per_s", "ratio", "peak_mem_mb", "batch")})
                except Exception as e:  # noqa: BLE001 - a setting that fails here is a finding, not the end
                    row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                log(f"bench {preset} {precision} compile={compiled}: "
                    f"{row.get('step_s', row.get('error'))}")
                rows.append(row)
    return rows


def bench_table(rows: list[dict], device_name: str) -> str:
    lines = [f"# `svae bench` on {device_name}", "", "| preset | precision | compile | batch | step (ms) | "
             "images/s | vs reference | peak memory (MB) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['precision']} | {r['compile']} | | failed: {r['error']} | | | |")
            continue
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else ""
        lines.append(f"| {r['preset']} | {r['precision']} | {r['compile']} | {r['batch']} | {r['step_s'] * 1e3:.1f} "
                     f"| {r['imgs_per_s']:.0f} | {ratio} | {r['peak_mem_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def fastest_eager(rows: list[dict], preset: str) -> dict:
    """The training setting: the faster precision without compile (compiling costs more than a short run gains)."""
    ok = [r for r in rows if r["preset"] == preset and not r["compile"] and "error" not in r]
    if not ok:
        raise SystemExit(f"gpu_run: every bench setting of {preset} failed; see bench.md")
    return min(ok, key=lambda r: r["step_s"])


def plan_steps(seconds: float, step_s: float, runs: int) -> int:
    """Steps per run so that `runs` runs, CONCURRENT at a time, end within `seconds`."""
    waves = -(-runs // CONCURRENT)
    per_run = seconds / waves - OVERHEAD_S
    return max(1, int(per_run / (step_s * (SLOWDOWN if runs > 1 else 1.0))))


def average_for(steps: int) -> float:
    """train.ema for a run of `steps`: 0.999 (the MNIST recipe) where the run is long enough to forget the initial
    weights (d^steps <= e^-6), else the slowest decay that forgets them; no average under 300 steps."""
    if steps < 300:
        return 0.0
    return min(0.999, round(1.0 - 6.0 / steps, 4))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="folder for every result (made if missing)")
    p.add_argument("--data-dir", help="folder with cifar10.npz and celeba64.npz (--tiny: random images)")
    p.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of all stages (default 8)")
    p.add_argument("--device", default=None, help="default: cuda if there is one, else cpu")
    p.add_argument("--tiny", action="store_true", help="a few steps on small batches: the route, not results")
    p.add_argument("--subset", metavar="DIR", help="only write data subsets to DIR (from --data-dir) and stop")
    p.add_argument("--n-cifar", type=int, default=9000, help="--subset: CIFAR-10 training images (default 9000)")
    p.add_argument("--n-celeba", type=int, default=2000, help="--subset: CelebA faces (default 2000)")
    a = p.parse_args()
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    if a.subset:
        if not a.data_dir:
            p.error("--subset needs --data-dir, the folder with the full cifar10.npz and celeba64.npz")
        for f in subset(Path(a.data_dir), Path(a.subset), a.n_cifar, a.n_celeba):
            log(f"wrote {f} ({f.stat().st_size / 2**20:.1f} MiB)")
        return 0
    if not a.out:
        p.error("--out is required")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device_name = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    data_dir = Path(a.data_dir) if a.data_dir else None
    if data_dir is None:
        if not a.tiny:
            p.error("--data-dir is required (only --tiny makes its own random images)")
        data_dir = random_data(out / "random-data")
    log(f"device: {device_name}; torch {torch.__version__}; budget {a.minutes:g} min")

    rows = run_bench(device, a.tiny, log)
    (out / "bench.json").write_text(json.dumps({"device": device_name, "torch": torch.__version__, "rows": rows},
                                               indent=1))
    (out / "bench.md").write_text(bench_table(rows, device_name))

    study = Study.load(STUDY)
    base_sets = dict(study.sets)
    study_out = out / "study"
    for gi, (dataset, presets) in enumerate(GROUPS.items()):
        setting = fastest_eager(rows, f"{dataset}-svae-r")
        runs = [r for r in study.runs(study_out) if r.preset in presets]
        left = a.minutes * 60 - (time.perf_counter() - start) - 20  # 20 s to summarise and pack
        steps = 2 if a.tiny else plan_steps(left / (len(GROUPS) - gi), setting["step_s"], len(runs))
        study.sets = {**base_sets, "train.device": device, "train.precision": setting["precision"],
                      "train.steps": steps, "train.ema": average_for(steps)}
        if a.tiny:
            study.sets.update({"train.batch_size": 4, "train.eval_samples": 32, "train.eval_splits": 2,
                               "train.probe_every": 1, "train.probe_samples": 16, "train.probe_test": 8})
        log(f"{dataset}: {len(runs)} runs of {steps} steps ({setting['precision']}), {CONCURRENT} at a time")
        for row in run_study(study, study_out, jobs=CONCURRENT, data_dir=str(data_dir), presets=presets, log=log):
            log(f"  {row['run_dir']}: {row['status']}")
    study.sets = base_sets
    (out / "summary.md").write_text(summarise(study, study_out).replace("\n\n|", f"\n\nDevice: {device_name}.\n\n|", 1))
    pack(out, study_out)
    log(f"done: {out}")
    return 0


def pack(out: Path, study_out: Path) -> Path:
    """One archive of what a person reads: each run's eval, config, metrics and pictures, and the study's summary
    pictures (checkpoints stay behind)."""
    path = out / "gpu-results.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(study_out.rglob("*")):
            if f.is_file() and (f.name in PACKED or f.parent == study_out or f.parent.name == "logs"):
                tar.add(f, arcname=str(f.relative_to(out)))
        for name in ("bench.md", "bench.json", "summary.md"):
            if (out / name).is_file():
                tar.add(out / name, arcname=name)
    return path


if __name__ == "__main__":
    sys.exit(main())
