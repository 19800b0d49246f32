"""torchrun with 2 CPU processes (gloo): ranks stay identical and match one process on the combined batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from svae.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dist_worker  # noqa: E402

HERE = Path(__file__).resolve().parent


def torchrun(*args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_two_ranks_stay_identical_and_match_one_process_on_the_combined_batch(tmp_path):
    steps, batch = 6, 8
    r = torchrun(str(HERE / "dist_worker.py"), str(tmp_path), str(steps), str(batch))
    assert r.returncode == 0, r.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{i}_of2.pt") for i in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # DDP: the same update on every rank

    # one process, batch 16 = the two ranks' batches of 8 together, the same codes
    saved = dist_worker.Model.sample_prior
    try:
        dist_worker.train(tmp_path, steps, 2 * batch, dist_worker.distributed.World())
    finally:
        dist_worker.Model.sample_prior = saved
    single = torch.load(tmp_path / "rank0_of1.pt")
    for k in single:  # averaged gradients of equal halves = the gradient of the whole; rounding differs
        torch.testing.assert_close(rank0[k], single[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")


TRAIN = ["train", "--preset", "toy-svae-r", "--steps", "4", "--no-eval", "--set", "data.n_train=64",
         "--set", "model.hidden=16", "--set", "train.batch_size=8", "--set", "train.log_every=2",
         "--set", "train.threads=1"]


@pytest.mark.slow
def test_svae_train_under_torchrun_writes_the_run_on_rank_zero_only(tmp_path):
    out = tmp_path / "run"
    r = torchrun("-m", "svae", *TRAIN, "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4]  # logged once, by rank 0
    assert r.stdout.count('"rank": 0') == 1 and r.stdout.count('"rank": 1') == 1  # each rank's summary


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="lists threads through /proc (Linux)")
@pytest.mark.slow
def test_gloo_threads_are_joined_before_the_process_exits(tmp_path):
    """The cause of the flaky abort above: gloo's threads outlived destroy_process_group (torch._dynamo, imported
    by DDP after the group existed, kept a reference to it) and raced the interpreter's exit. Deterministic."""
    r = torchrun(str(HERE / "dist_teardown.py"), *TRAIN, "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr[-3000:]
    ends = [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{"rank_of_teardown"')]
    assert sorted(e["rank_of_teardown"] for e in ends) == [0, 1] and all(e["code"] == 0 for e in ends)
    for e in ends:
        assert not [t for t in e["threads"] if "gloo" in t], e
