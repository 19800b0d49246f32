"""scripts/gpu_run.py, the prepared GPU command: its data subsets load, its budget arithmetic, and the whole route
on CPU with --tiny (bench table, four trained and evaluated runs, panels, one archive to bring back)."""
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from svae.data.images import load_images

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_run():
    spec = importlib.util.spec_from_file_location("gpu_run", ROOT / "scripts" / "gpu_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_data_and_subsets_load_as_the_shared_files(gpu_run, tmp_path):
    full = gpu_run.random_data(tmp_path / "full", n_cifar=40, n_celeba=30)
    cifar = load_images("cifar10", full, cache=False)
    assert cifar.x_train.shape == (40, 3, 32, 32) and cifar.x_test.shape == (20, 3, 32, 32)
    faces = load_images("celeba", full, cache=False)
    assert faces.x_train.shape[1:] == (3, 64, 64) and len(faces.x_train) + len(faces.x_test) == 30
    gpu_run.subset(full, tmp_path / "small", n_cifar=10, n_celeba=20)
    small = load_images("cifar10", tmp_path / "small", cache=False)
    assert len(small.x_train) == 10 and len(small.x_test) == 20  # at least 100 test images, or all there are
    with np.load(full / "cifar10.npz") as d:
        assert np.array_equal(small.x_train.permute(0, 2, 3, 1).numpy(), d["x_train"][:10])
    assert len(load_images("celeba", tmp_path / "small", cache=False).x_train) == 18


def test_the_steps_fill_the_time_left(gpu_run):
    # two runs at once share the GPU (SLOWDOWN); each run pays OVERHEAD_S; four runs are two waves
    s = gpu_run.plan_steps(300, 0.01, 2)
    assert s == int((300 - gpu_run.OVERHEAD_S) / (0.01 * gpu_run.SLOWDOWN))
    assert gpu_run.plan_steps(300, 0.01, 4) == int((150 - gpu_run.OVERHEAD_S) / (0.01 * gpu_run.SLOWDOWN))
    assert gpu_run.plan_steps(300, 0.01, 1) == int((300 - gpu_run.OVERHEAD_S) / 0.01)
    assert gpu_run.plan_steps(10, 1.0, 2) == 1  # never below one step


def test_training_takes_the_faster_eager_precision_and_refuses_when_all_failed(gpu_run):
    timed = {"batch": 64, "imgs_per_s": 1.0, "peak_mem_mb": 1.0, "ratio": None}
    rows = [{"preset": "p", "precision": "fp32", "compile": False, "step_s": 0.02, **timed, "ratio": 2.0},
            {"preset": "p", "precision": "bf16", "compile": False, "step_s": 0.01, **timed},
            {"preset": "p", "precision": "bf16", "compile": True, "step_s": 0.001, **timed}]
    assert gpu_run.fastest_eager(rows, "p")["precision"] == "bf16"
    with pytest.raises(SystemExit, match="every bench setting of q failed"):
        gpu_run.fastest_eager(rows + [{"preset": "q", "precision": "fp32", "compile": False, "error": "x"}], "q")
    table = gpu_run.bench_table(rows + [{"preset": "q", "precision": "fp32", "compile": False, "error": "OOM"}], "D")
    assert "| q | fp32 | False | | failed: OOM |" in table and "| p | fp32 | False | 64 | 20.0 | 1 | 2.00x | 1 |" in table


@pytest.mark.slow
def test_the_tiny_route_runs_end_to_end_on_cpu(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_run.py"), "--tiny", "--out", str(out),
                        "--device", "cpu"], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    bench = json.loads((out / "bench.json").read_text())
    assert len(bench["rows"]) == 4 and all("step_s" in r for r in bench["rows"])
    summary = (out / "summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith(("| baseline | cifar10-", "| baseline | celeba-"))]
    assert "Device: CPU" in summary and len(rows) == 4
    # the study's compare: sVAE-r against ALICE on CIFAR-10, seed by seed (a row per sample score)
    assert "| variant | λ | seeds | quality, cifar10-svae-r − cifar10-alice |" in summary
    with tarfile.open(out / "gpu-results.tar.gz") as tar:
        names = tar.getnames()
    evals = [n for n in names if n.endswith("eval.json")]
    assert len(evals) == 4 and not any("checkpoints" in n for n in names)
    assert {"bench.md", "summary.md", "study/panels-samples-celeba.png", "study/panels-reconstructions-cifar10.png"} \
        <= set(names)


def test_the_weight_average_fits_the_steps_a_run_is_given(gpu_run):
    assert gpu_run.average_for(2) == 0.0 and gpu_run.average_for(299) == 0.0
    assert gpu_run.average_for(600) == 0.99 and gpu_run.average_for(100_000) == 0.999
    for steps in (300, 1234, 6000):
        assert gpu_run.average_for(steps) ** steps <= 0.0026  # the initial weights forgotten (e^-6)
