"""Run directories under careless and hostile use: --force keeps other files, unusable --out values, one writer
per directory, failed and unfinished runs, absolute data paths, a full disk while evaluating."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from svae.checkpoint import load_checkpoint
from svae.cli import main
from svae.rundir import LOCK, MARKER

from test_faults import MNIST, FullDisk, one_line_error, poison_batch, write_mnist
from test_resume import ROOT, metric_steps, train


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---- --force removes only what svae wrote ------------------------------------------------------------------


def test_force_removes_only_what_svae_wrote(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "holiday.png").write_bytes(b"a user's picture")  # a folder of the user's: svae may write beside it
    assert train(run, 4) == 0
    (run / "checkpoints" / "other.bin").write_bytes(b"a user's file")
    assert train(run, 2, "--force") == 0
    assert (run / "holiday.png").read_bytes() == b"a user's picture"
    assert (run / "checkpoints" / "other.bin").read_bytes() == b"a user's file"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2 and metric_steps(run) == [2]
    assert (run / MARKER).is_file() and not (run / LOCK).exists()


@pytest.mark.parametrize("flags", [[], ["--force"], ["--resume", "auto"]])
def test_a_folder_that_is_not_an_svae_run_is_never_written_into(tmp_path, capsys, flags):
    folder = tmp_path / "mine"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "holiday.png").write_bytes(b"picture")
    (folder / "checkpoints" / "other.bin").write_bytes(b"weights of mine")
    (folder / "config.yaml").write_text("my: own settings\n")
    before = files(folder)
    assert train(folder, 2, *flags) == 2
    one_line_error(capsys, "config.yaml", "svae did not write there", MARKER)
    assert files(folder) == before


def test_an_older_unmarked_run_still_resumes(tmp_path, capsys):
    run = tmp_path / "r"
    assert train(run, 4) == 0
    (run / MARKER).unlink()  # as a run directory of an svae before the marker looks
    assert train(run, 2, "--force") == 2
    one_line_error(capsys, "older svae run continues with --resume auto")
    assert train(run, 6, "--resume", "auto") == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 6 and (run / MARKER).is_file()


# ---- --out values that name no folder of the run's own ----------------------------------------------------


@pytest.mark.parametrize("out", ["", "/", "~", "~/", ".", "./"])
def test_out_refuses_root_empty_home_and_the_current_folder(tmp_path, monkeypatch, capsys, out):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    for flags in ([], ["--force"]):
        assert train(out, 2, *flags) == 2
        one_line_error(capsys, "--out")
    assert not list(home.iterdir()) and not list(cwd.iterdir())
    assert main(["sweep", "--preset", "toy-svae-r", "--lam", "1", "--out", out, "--steps", "2"]) == 2
    one_line_error(capsys, "--out")


# ---- one writer per run directory --------------------------------------------------------------------------


HOLD_LOCK = """
import sys, time
from pathlib import Path
from svae.rundir import Lock
Lock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_second_process_on_the_same_run_is_refused_naming_its_pid(tmp_path, capsys):
    run = tmp_path / "r"
    assert train(run, 2) == 0
    before = files(run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for argv in (["--resume", "auto"], ["--force"]):
            assert train(run, 4, *argv) == 2
            one_line_error(capsys, f"in use by svae process {holder.pid}", str(run / LOCK))
        assert main(["eval", str(run)]) == 2
        one_line_error(capsys, f"in use by svae process {holder.pid}")
        assert files(run) == {**before, LOCK: f"{holder.pid}\n".encode()}
    finally:
        holder.kill()
        holder.wait()
    # the lock file of the dead process is stale: taken over, and removed at the end
    assert (run / LOCK).read_text().strip() == str(holder.pid)
    assert train(run, 4, "--resume", "auto") == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4 and not (run / LOCK).exists()


# ---- runs that fail early, runs that never reached a checkpoint --------------------------------------------


def test_a_run_that_fails_at_step_1_leaves_nothing_a_rerun_refuses(tmp_path, monkeypatch, capsys):
    run = tmp_path / "new" / "r"
    poison_batch(monkeypatch, at=0)
    assert train(run, 4) == 1
    assert "training diverged at step 1" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # what svae created, it removed again (there was no checkpoint)
    monkeypatch.undo()
    assert train(run, 4) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4


def test_an_unfinished_run_without_a_checkpoint_is_replaced(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / MARKER).write_text("{}\n")  # what a run killed (SIGKILL) before its first checkpoint leaves
    (run / "config.yaml").write_text("data: {}\n")
    (run / "metrics.jsonl").write_text('{"step": 2}\n')
    assert train(run, 4) == 0
    assert "replacing an unfinished run (it has no checkpoint)" in capsys.readouterr().err
    assert metric_steps(run) == [2, 4]


# ---- data paths --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_relative_data_dir_is_stored_absolute_and_eval_takes_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "work" / "data", n_test=20)
    monkeypatch.chdir(tmp_path / "work")
    small = ["--set", "train.batch_size=4", "--set", "train.eval_samples=20", "--set", "train.eval_splits=2"]
    assert main(["train", *MNIST, *small, "--data-dir", "data", "--out", "run", "--steps", "1"]) == 0
    saved = (tmp_path / "work" / "run" / "config.yaml").read_text()
    assert f"data_dir: {tmp_path / 'work' / 'data'}\n" in saved
    monkeypatch.chdir(tmp_path)  # elsewhere: the stored path still finds the data
    assert main(["eval", "work/run"]) == 0
    capsys.readouterr()
    (tmp_path / "work" / "data").rename(tmp_path / "moved")
    assert main(["eval", "work/run"]) == 2
    one_line_error(capsys, str(tmp_path / "work" / "data"))
    assert main(["eval", "work/run", "--data-dir", "moved"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 1


# ---- a full disk while evaluating --------------------------------------------------------------------------


@pytest.mark.parametrize("fails", ["picture", "evaluation"])
def test_eval_on_a_full_disk_names_the_file_and_leaves_no_temporary_file(tmp_path, monkeypatch, capsys, fails):
    import svae.run

    run = tmp_path / "r"
    assert train(run, 2) == 0
    assert main(["eval", str(run)]) == 0
    capsys.readouterr()
    before = files(run)
    real_fdopen, limit = os.fdopen, 4096 if fails == "picture" else 0
    if fails == "evaluation":  # pictures drawn fine, then eval.json meets the full disk
        monkeypatch.setattr(svae.run, "draw", lambda *a, **k: [])

    def fdopen(fd, mode):
        f = FullDisk(real_fdopen(fd, mode))
        f.n = -limit + 4096
        return f
    monkeypatch.setattr(os, "fdopen", fdopen)
    assert main(["eval", str(run)]) == 2
    name = "toy.png" if fails == "picture" else "eval.json"
    one_line_error(capsys, f"could not write {fails} {run / name}: {os.strerror(errno.ENOSPC)}")
    monkeypatch.undo()
    assert files(run) == before  # the old eval.json and pictures intact; no .tmp file, no lock left
    assert np.isfinite(json.loads((run / "eval.json").read_text())["mse"])


def test_a_sweep_run_with_an_older_relative_data_dir_still_counts_as_done(tmp_path, monkeypatch):
    from svae.presets import get_preset
    from svae.run import absolute_paths
    from svae.experiments.sweep import _finished

    monkeypatch.chdir(tmp_path)
    cfg = get_preset("mnist-svae-r")
    cfg.data.data_dir = "data"  # as svae before this change stored it
    run = tmp_path / "lam_1"
    run.mkdir()
    cfg.save(run / "config.yaml")
    (run / "eval.json").write_text("{}\n")
    assert _finished(run, absolute_paths(cfg))  # the sweep's own configuration is absolute now
