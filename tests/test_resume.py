"""Checkpoints and exact resume: contents, keep-k, fallback to an older copy, SIGINT/SIGTERM and SIGKILL."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from svae.checkpoint import find_checkpoint, load_checkpoint, step_checkpoints
from svae.cli import main

TINY = ["--set", "data.n_train=64", "--set", "data.n_test=32", "--set", "model.hidden=16",
        "--set", "train.batch_size=16", "--set", "train.log_every=2", "--set", "train.eval_samples=200",
        "--set", "train.threads=1"]
ROOT = Path(__file__).resolve().parents[1]


def train(out, steps, *extra, preset="toy-svae-r"):
    return main(["train", "--preset", preset, "--out", str(out), "--steps", str(steps), "--no-eval", *TINY, *extra])


def nets(run_dir, name="last.pt"):
    return load_checkpoint(Path(run_dir) / "checkpoints" / name)["nets"]


def same_nets(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def metric_steps(run_dir):
    return [json.loads(line)["step"] for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_checkpoint_holds_everything_needed_to_continue(tmp_path):
    assert train(tmp_path / "r", 6, "--set", "train.ckpt_every=4") == 0
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")  # weights_only=True
    assert {"version", "config", "step", "epoch", "data", "elapsed", "nets", "opt_gen", "opt_critic",
            "rng_torch", "rng_cuda", "rng_numpy", "rng_python"} <= set(ckpt)
    assert ckpt["step"] == 6 and ckpt["epoch"] == 1 and ckpt["data"] == {"n_train": 64, "epoch": 1, "batch": 2,
                                                                            "seed": 0}
    assert set(ckpt["nets"]) == {"encoder", "decoder", "critic"} and ckpt["opt_critic"]["state"]
    assert ckpt["config"]["train"]["steps"] == 6 and ckpt["version"]


def test_rng_states_of_python_numpy_and_torch_are_restored(tmp_path):
    from svae.checkpoint import rng_state, set_rng_state, save_checkpoint

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    save_checkpoint({"step": 0, "nets": {}, "config": {}, **rng_state()}, tmp_path / "c.pt")
    expect = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "c.pt"))
    got = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    assert got[:3] == expect[:3] and torch.equal(got[3], expect[3])


def test_resume_may_change_a_speed_field_but_never_a_training_one(tmp_path, capsys):
    """Resumability is declared per field (config.resumable, docs/design.md): train.channels_last changes how a step
    is computed, train.lr what it computes."""
    assert train(tmp_path, 4) == 0
    assert train(tmp_path, 6, "--resume", "auto", "--set", "train.channels_last=true") == 0
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 6
    capsys.readouterr()
    assert train(tmp_path, 8, "--resume", "auto", "--set", "train.lr=0.0005") == 2
    err = capsys.readouterr().err
    assert "different configuration (train.lr)" in err and "channels_last" not in err
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 6


@pytest.mark.parametrize("preset", ["toy-svae-r", "toy-ali"])
@pytest.mark.slow
def test_stop_and_resume_gives_bitwise_identical_parameters_and_samples(tmp_path, preset):
    one, two = tmp_path / "one", tmp_path / "two"
    assert train(one, 10, preset=preset) == 0
    assert train(two, 5, preset=preset) == 0  # half the steps, stop
    torch.manual_seed(1234)  # disturb this process's RNG: the checkpoint must restore it
    assert train(two, 10, "--resume", "auto", preset=preset) == 0  # resume, the other half
    a, b = load_checkpoint(one / "checkpoints" / "last.pt"), load_checkpoint(two / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 10 and same_nets(a["nets"], b["nets"])
    assert torch.equal(a["opt_gen"]["state"][0]["exp_avg_sq"], b["opt_gen"]["state"][0]["exp_avg_sq"])
    for run in (one, two):
        assert main(["sample", str(run), "--n", "64", "--seed", "7", "--out", str(run / "s.npy")]) == 0
    assert np.array_equal(np.load(one / "s.npy"), np.load(two / "s.npy"))


@pytest.mark.slow
def test_keeps_the_last_k_checkpoints_as_hard_links(tmp_path):
    assert train(tmp_path / "r", 7, "--set", "train.ckpt_every=1", "--set", "train.keep_ckpts=3") == 0
    folder = tmp_path / "r" / "checkpoints"
    assert [p.name for p in step_checkpoints(folder)] == ["step_00000005.pt", "step_00000006.pt",
                                                          "step_00000007.pt"]
    assert [load_checkpoint(p)["step"] for p in step_checkpoints(folder)] == [5, 6, 7]
    # the newest copy is the same file as last.pt: one write per checkpoint, no extra disk
    assert os.path.samefile(folder / "last.pt", folder / "step_00000007.pt")
    assert not list(folder.glob(".*"))  # no temporary files left
    assert train(tmp_path / "k0", 3, "--set", "train.ckpt_every=1", "--set", "train.keep_ckpts=0") == 0
    assert [p.name for p in (tmp_path / "k0" / "checkpoints").iterdir()] == ["last.pt"]


@pytest.mark.slow
def test_resume_falls_back_to_the_newest_readable_copy(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert train(one, 8) == 0
    assert train(two, 6, "--set", "train.ckpt_every=1") == 0
    folder = two / "checkpoints"
    # damage the file in place: step_6 is a hard link to it, so both are gone and step_5 is the newest good one
    (folder / "last.pt").write_bytes((folder / "last.pt").read_bytes()[:1000])
    path, state, skipped = find_checkpoint(two)
    assert path.name == "step_00000005.pt" and state["step"] == 5 and len(skipped) == 2
    capsys.readouterr()
    assert train(two, 8, "--resume", "auto", "--set", "train.ckpt_every=1") == 0
    assert "unreadable checkpoint" in capsys.readouterr().err
    assert same_nets(nets(one), nets(two)) and metric_steps(two) == metric_steps(one) == [2, 4, 6, 8]
    for f in folder.glob("step_*.pt"):  # nothing readable left: refuse, do not start over silently
        f.write_bytes(b"junk")
    (folder / "last.pt").write_bytes(b"junk")
    assert train(two, 9, "--resume", "auto") == 2
    assert "no readable checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_drops_metric_rows_logged_after_the_checkpoint(tmp_path):
    run = tmp_path / "r"
    assert train(run, 4) == 0
    with open(run / "metrics.jsonl", "a") as f:  # what a run killed after logging step 6 leaves behind
        f.write(json.dumps({"step": 6, "loss_gen": 1.0}) + "\n" + '{"step": 8, "loss_ge')
    assert train(run, 8, "--resume", "auto") == 0
    assert metric_steps(run) == [2, 4, 6, 8]


# ---- interruption: real processes, real signals ---------------------------------------------------------


def start(out, *extra, steps=100_000, code=None):
    """`svae train` in a child process (code: Python run before the command line, to inject faults)."""
    argv = ["train", "--preset", "toy-svae-r", "--out", str(out), "--steps", str(steps), "--no-eval", *TINY, *extra]
    prog = f"{code or ''}\nimport sys; from svae.cli import main; sys.exit(main({argv!r}))"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", prog], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_for(cond, proc, timeout=60.0):
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"the child exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.02)


def has_metrics(run, n=1):
    p = run / "metrics.jsonl"
    return p.is_file() and p.read_text().count("\n") >= n


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_finishes_the_step_checkpoints_and_says_how_to_resume(tmp_path, sig):
    run = tmp_path / "r"
    proc = start(run, "--force")
    wait_for(lambda: has_metrics(run, 2), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    last = err.strip().splitlines()[-1]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    step = ckpt["step"]
    assert f"interrupted by {signal.Signals(sig).name} at step {step}" in last and "resume with: svae train" in last
    assert last.endswith("--resume auto") and "--force" not in last.split("resume with:")[1]
    assert step >= 4 and metric_steps(run)[-1] <= step
    end = step + 4
    assert train(run, end, "--resume", "auto") == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == end
    assert metric_steps(run) == sorted({*range(2, end + 1, 2), end})
    if sig == signal.SIGTERM:  # interrupted and resumed equals one go
        assert train(tmp_path / "one", end) == 0
        assert same_nets(nets(tmp_path / "one"), nets(run))


HANG_MID_WRITE = """
import time, svae.atomic as a
_write, _files = a._Sink.write, []
def write(self, b):
    if self not in _files:
        _files.append(self)
    # files written: config.yaml, then checkpoints; part of the third checkpoint is in its temporary file
    if len(_files) == 4 and self.f.tell() > 100_000:
        open({marker!r}, "w").close()
        time.sleep(600)
    return _write(self, b)
a._Sink.write = write
"""


@pytest.mark.slow
def test_sigkill_at_random_moments_and_mid_write_always_leaves_a_readable_checkpoint(tmp_path):
    run = tmp_path / "r"
    big = ["--set", "model.hidden=256", "--set", "train.ckpt_every=1", "--set", "train.log_every=1"]
    # 1. killed for certain in the middle of writing a checkpoint (the write is held there)
    marker = tmp_path / "in-write"
    proc = start(run, *big, code=HANG_MID_WRITE.format(marker=str(marker)))
    wait_for(marker.exists, proc)
    proc.kill()
    proc.wait()
    folder = run / "checkpoints"
    assert list(folder.glob(".last.pt.*.tmp")), "the kill should have left a partial temporary file"
    path, state, skipped = find_checkpoint(run)
    assert path.name == "last.pt" and not skipped and state["step"] >= 1
    steps = [state["step"]]
    # 2. killed at random moments (seeded): training steps, metric writes, checkpoint writes, links
    rng = random.Random(20240611)
    for _ in range(4):
        proc = start(run, *big, "--resume", "auto")
        wait_for(lambda: has_metrics(run, steps[-1] + 2), proc)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait()
        found = find_checkpoint(run)
        assert found is not None, "no readable checkpoint after SIGKILL"
        assert found[1]["step"] >= steps[-1]
        steps.append(found[1]["step"])
    # 3. the run resumes and ends exactly where an uninterrupted run ends
    end = steps[-1] + 3
    assert train(run, end, *big, "--resume", "auto") == 0
    assert not list(folder.glob(".*.tmp"))
    assert train(tmp_path / "one", end, *big) == 0
    assert same_nets(nets(tmp_path / "one"), nets(run))
    assert metric_steps(run) == list(range(1, end + 1))
