"""`svae bench` and the speed options: figures and JSON keys, bad input, bf16 and fp16 autocast on CPU."""
import json
import math

import pytest
import torch

from svae.cli import main
from svae.data import load_dataset
from svae.model import Model
from svae.training.trainer import Trainer

from helpers import tiny_toy
from test_training_speed import image_cfg, image_data

KEYS = {"imgs_per_s", "reference_imgs_per_s", "ratio", "gflops_per_s", "peak_mem_mb", "critic_s", "gen_s",
        "gflop_per_step", "eval_seconds_per_10k", "machine"}


def bench_json(capsys, *argv):
    assert main(["bench", "--json", "--threads", "1", *argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_bench_reports_every_figure_for_the_toy(capsys):
    r = bench_json(capsys, "--preset", "toy-svae-r", "--steps", "2", "--warmup", "1", "--eval-n", "100")
    assert KEYS <= set(r)
    assert r["imgs_per_s"] > 0 and r["reference_imgs_per_s"] > 0 and r["ratio"] > 0 and r["gflops_per_s"] > 0
    assert r["critic_s"] > 0 and r["gen_s"] > 0 and r["peak_mem_mb"] > 0
    # the fast step does less work than the reference: no second E/G forward, no critic weight gradients
    assert r["gflop_per_step"] < r["reference_gflop_per_step"]
    assert r["machine"]["threads"] == 1 and r["machine"]["torch"] == torch.__version__


def test_bench_on_a_paper_network_and_the_readable_output(capsys):
    r = bench_json(capsys, "--preset", "mnist-svae-r", "--batch", "4", "--steps", "1", "--warmup", "0",
                   "--eval-n", "0")
    assert r["batch"] == 4 and r["gflop_per_step"] > 0.1 and "eval_seconds" not in r
    assert main(["bench", "--preset", "toy-vae", "--steps", "1", "--eval-n", "50", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and "ours / reference" in out and "machine:" in out


@pytest.mark.parametrize("argv, message", [
    (["--preset", "nope"], "unknown preset"),
    (["--preset", "toy-ali", "--steps", "0"], "--steps must be > 0"),
    (["--preset", "toy-ali", "--set", "train.precision=fp8"], "train.precision"),
    (["--preset", "toy-ali", "--set", "train.compile=maybe"], "train.compile"),
])
def test_bench_bad_input_exits_2_with_one_line(capsys, argv, message):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_on_cpu(precision):
    cfg = tiny_toy("toy-svae-r", precision=precision, steps=6)
    torch.manual_seed(0)
    tr = Trainer(Model(cfg), load_dataset(cfg.data), cfg)
    hist = tr.fit(progress=False)
    assert all(math.isfinite(v) for row in hist for k, v in row.items() if k != "step")
    assert bool(tr.speed.scalers) == (precision == "fp16")  # fp16 scales the loss; bf16 has fp32's range
    if tr.speed.scalers:
        assert set(tr.state_dict()["scalers"]) == {"critic", "gen"}


def test_bf16_step_of_a_paper_network_on_cpu():
    cfg = image_cfg("mnist-svae-r", batch=4, precision="bf16")
    torch.manual_seed(0)
    tr = Trainer(Model(cfg), image_data(cfg), cfg)
    out = tr.train_step()
    assert all(torch.isfinite(v).all() for v in out.values())
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())  # autocast: fp32 weights, bf16 compute


def test_bench_machine_is_eval_jsons_and_older_bench_files_still_read():
    from svae.training.bench import cpu_name

    assert cpu_name({"cpu": "x86_64", "cpu_model": "AMD EPYC"}) == "AMD EPYC"
    assert cpu_name({"cpu": "AMD EPYC", "threads": 1}) == "AMD EPYC"  # docs/speed-bench.json, before result.machine
