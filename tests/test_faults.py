"""Faults and hostile input: divergence (stop, rollback), malicious and damaged checkpoints, a full disk,
bad configuration values, bad dataset files, configuration files that try to run code."""
import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from svae.checkpoint import CheckpointError, load_checkpoint
from svae.cli import main
from svae.config import Config, ConfigError
from svae.data import load_dataset
from svae.model import Model
from svae.training.trainer import DivergenceError, Trainer

from helpers import tiny_toy
from test_resume import metric_steps, train


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("svae: error:"), err
    for n in needles:
        assert n in err, err
    return err


def Trainer_of(cfg, run_dir=None):
    torch.manual_seed(cfg.train.seed)
    return Trainer(Model(cfg), load_dataset(cfg.data), cfg, run_dir)


def poison_batch(monkeypatch, at: int, times: int = 1):
    """The batch of step `at` + 1 becomes NaN (`times` times: a rollback replays it), as bad data would."""
    real, left = Trainer.batch, [times]

    def batch(self, step):
        x = real(self, step)
        if step == at and left[0] > 0:
            left[0] -= 1
            return x * float("nan")
        return x

    monkeypatch.setattr(Trainer, "batch", batch)


# ---- divergence --------------------------------------------------------------------------------------------


def test_nan_loss_stops_the_run_at_that_step_naming_the_loss(tmp_path, monkeypatch, capsys):
    poison_batch(monkeypatch, at=5)
    assert train(tmp_path / "r", 10, "--set", "train.ckpt_every=4") == 1
    one_line_error(capsys, "training diverged at step 6: non-finite loss_critic=nan", "train.on_divergence")
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4 and all(torch.isfinite(t).all() for n in ckpt["nets"].values() for t in n.values())
    assert metric_steps(tmp_path / "r") == [2, 4]  # nothing logged from the diverged steps


def test_nonfinite_parameter_is_caught_at_the_step_it_appears(monkeypatch):
    tr = Trainer_of(tiny_toy("toy-vae", steps=10))
    real = Trainer.train_step

    def step(self, log=False):
        out = real(self, log)
        if self.step == 3:
            with torch.no_grad():
                next(self.model.decoder.parameters())[0].fill_(float("inf"))
        return out

    monkeypatch.setattr(Trainer, "train_step", step)
    with pytest.raises(DivergenceError, match=r"diverged at step 3: non-finite parameters \(decoder\.") as e:
        tr.fit(progress=False)
    assert e.value.step == 3 and tr.step == 3


def test_deferred_check_as_on_gpu_still_names_the_first_bad_step(monkeypatch):
    tr = Trainer_of(tiny_toy("toy-svae", steps=12, log_every=4))
    tr._check_every_step = False  # what a CUDA device does: flags stay on the device until a log step
    poison_batch(monkeypatch, at=4)
    with pytest.raises(DivergenceError, match=r"diverged at step 5: non-finite loss_critic=nan") as e:
        tr.fit(progress=False)
    assert e.value.step == 5 and tr.step == 8


@pytest.mark.parametrize("ckpt_every,to_step", [(4, 4), (0, 0)])
def test_rollback_reloads_the_last_checkpoint_and_lowers_the_learning_rate(tmp_path, monkeypatch, capsys,
                                                                            ckpt_every, to_step):
    poison_batch(monkeypatch, at=5)
    run = tmp_path / "r"
    assert train(run, 10, "--set", "train.on_divergence=rollback", "--set", f"train.ckpt_every={ckpt_every}") == 0
    assert f"rolled back to step {to_step}" in capsys.readouterr().err
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["step"] == 10 and ckpt["rollbacks"] == 1
    lr = Config.from_dict(ckpt["config"]).train.lr
    assert [g["lr"] for o in ("opt_gen", "opt_critic") for g in ckpt[o]["param_groups"]] == [lr * 0.5] * 2
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    event = [r for r in rows if r.get("event") == "rollback"]
    assert len(event) == 1 and event[0]["step"] == 6 and event[0]["to_step"] == to_step
    assert event[0]["lr"] == lr * 0.5 and "loss_critic=nan" in event[0]["reason"]
    assert [r["step"] for r in rows if "event" not in r] == [2, 4, 6, 8, 10]
    assert all(np.isfinite(r["loss_gen"]) for r in rows if "event" not in r)


def test_each_rollback_lowers_the_rate_again_even_to_the_same_checkpoint(tmp_path, monkeypatch, capsys):
    poison_batch(monkeypatch, at=5, times=2)  # step 6 diverges twice: both rollbacks reload step 4's checkpoint
    run = tmp_path / "r"
    assert train(run, 10, "--set", "train.on_divergence=rollback", "--set", "train.ckpt_every=4") == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    lr = Config.from_dict(ckpt["config"]).train.lr
    # the second rollback's reload drops the first one's row (logged at step 6, after the checkpoint)
    assert [(r["to_step"], r["rollback"], r["lr"]) for r in rows if r.get("event") == "rollback"] == [(4, 2, lr / 4)]
    assert [g["lr"] for o in ("opt_gen", "opt_critic") for g in ckpt[o]["param_groups"]] == [lr * 0.25] * 2


def test_rollback_under_a_decay_keeps_the_schedule(tmp_path, monkeypatch, capsys):
    poison_batch(monkeypatch, at=5)
    run = tmp_path / "r"  # 64 points, batch 16: 4 steps an epoch, so batches 6-9 of 10 decay
    assert train(run, 10, "--set", "train.on_divergence=rollback", "--set", "train.ckpt_every=4",
                 "--set", "train.lr_decay_epochs=1") == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    lr = Config.from_dict(ckpt["config"]).train.lr
    assert [r["lr"] for r in rows if r.get("event") == "rollback"] == [lr * 0.5]  # back at step 4: not yet decaying
    # the last batch trains at a quarter of the halved rate; a row logs the rate of the batch before its step
    assert [g["lr"] for o in ("opt_gen", "opt_critic") for g in ckpt[o]["param_groups"]] == [lr * 0.5 * 0.25] * 2
    assert [(r["step"], r["lr"] / (lr * 0.5)) for r in rows if "loss_gen" in r][-2:] == [(8, 0.75), (10, 0.25)]


def test_rollback_gives_up_after_max_rollbacks(tmp_path, monkeypatch, capsys):
    poison_batch(monkeypatch, at=5, times=100)
    assert train(tmp_path / "r", 10, "--set", "train.on_divergence=rollback", "--set", "train.ckpt_every=4",
                 "--set", "train.max_rollbacks=2") == 1
    err = capsys.readouterr().err
    assert err.count("svae: warning:") == 2 and "giving up after 2 rollback(s)" in err.splitlines()[-1]


# ---- hostile and damaged checkpoints -----------------------------------------------------------------------


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):  # unpickling this would create a directory: code run by loading a file
        return os.mkdir, (self.marker,)


def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path, capsys):
    run = tmp_path / "r"
    assert train(run, 2) == 0
    live, marker = tmp_path / "proof", tmp_path / "pwned"
    torch.save({"step": 1, "nets": {}, "config": {}, "x": Payload(live)}, tmp_path / "live.pt")
    torch.load(tmp_path / "live.pt", weights_only=False)  # the payload works when a loader trusts it
    assert live.is_dir()
    path = run / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    state["nets"]["encoder"] = Payload(marker)
    for p in [path, *path.parent.glob("step_*.pt")]:
        p.unlink()
        torch.save(state, p)
    with pytest.raises(CheckpointError, match="refused to load") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert main(["eval", str(run)]) == 2
    one_line_error(capsys, str(path), "refused to load")
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy")]) == 2
    one_line_error(capsys, "refused to load")
    assert train(run, 4, "--resume", "auto") == 2
    one_line_error(capsys, "no readable checkpoint", "refused to load")
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_checkpoint"])
def test_damaged_checkpoint_is_one_line_exit_2(tmp_path, capsys, damage):
    run = tmp_path / "r"
    assert train(run, 2, "--set", "train.keep_ckpts=0") == 0
    path = run / "checkpoints" / "last.pt"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    capsys.readouterr()
    assert main(["eval", str(run)]) == 2
    one_line_error(capsys, str(path))
    assert not (run / "eval.json").exists()


# ---- a full disk -------------------------------------------------------------------------------------------


class FullDisk:
    """A file that takes the first few KB, then fails as a full disk does."""

    def __init__(self, f):
        self.f, self.n = f, 0

    def write(self, b):
        self.n += len(b)
        if self.n > 4096:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_during_a_checkpoint_leaves_the_previous_one_intact(tmp_path, monkeypatch, capsys, where):
    import svae.checkpoint as ck

    run = tmp_path / "r"
    assert train(run, 4) == 0
    folder = run / "checkpoints"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    if where == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(ck.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    else:
        real_fsync = os.fsync

        def fsync(fd):  # as FullDisk: the small files (config.yaml, also fsynced) still fit
            if os.fstat(fd).st_size > 4096:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)
        monkeypatch.setattr(ck.os, "fsync", fsync)
    assert train(run, 8, "--resume", "auto") == 2
    one_line_error(capsys, f"could not write checkpoint {folder / 'last.pt'}: No space left on device")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # intact, and no temporary file left
    assert load_checkpoint(folder / "last.pt")["step"] == 4


# ---- bad configuration, bad run directories, bad dataset files ---------------------------------------------


@pytest.mark.parametrize("extra,message", [
    (["--set", "train.lr=-1e-3"], "train.lr: must be > 0, got -0.001"),
    (["--lam", "-0.5"], "objective.lam: must be >= 0, got -0.5"),
    (["--set", "train.batch_size=65"], "train.batch_size 65 is larger than the dataset (64 points)"),
    (["--preset", "toy-gan"], "unknown preset 'toy-gan'"),
    (["--set", "train.learning_rate=1"], "unknown key 'train.learning_rate'"),
    (["--set", "train.keep_ckpts=-1"], "train.keep_ckpts: must be >= 0"),
    (["--set", "train.on_divergence=ignore"], "train.on_divergence: 'ignore' is not one of stop, rollback"),
    (["--set", "train.rollback_lr_factor=1.5"], "train.rollback_lr_factor: must lie in (0, 1)"),
    (["--set", "train.lr_decay_epochs=-2"], "train.lr_decay_epochs: must be >= 0"),
])
def test_bad_configuration_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    assert train(out, 4, *extra) == 2
    one_line_error(capsys, message)
    assert not out.exists()


def test_existing_run_directory_needs_resume_or_force(tmp_path, capsys):
    run = tmp_path / "r"
    assert train(run, 4) == 0
    before = (run / "checkpoints" / "last.pt").read_bytes()
    assert train(run, 2) == 2
    one_line_error(capsys, "already holds a run", "--resume auto", "--force")
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert train(run, 2, "--force") == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2 and metric_steps(run) == [2]


def test_config_files_are_data_never_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"train: !!python/object/apply:os.mkdir [{str(marker)!r}]\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.load(path)
    assert not marker.exists()
    path.write_text("train:\n  lr: 0.001\n  learning_rate: 5\n")
    with pytest.raises(ConfigError, match="unknown key 'train.learning_rate'"):
        Config.load(path)


def write_mnist(folder: Path, n_train=20, n_test=10, **override):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8), **override}
    np.savez(folder / "mnist.npz", **arrays)
    return folder / "mnist.npz"


MNIST = ["--preset", "mnist-svae-r", "--set", "train.threads=1", "--no-eval"]


@pytest.mark.parametrize("damage,message", [
    ("corrupt", "not a readable .npz archive"),
    ("truncated", "not a readable .npz archive"),
    ("wrong_shape", "x_train has shape (20, 32, 32)"),
])
def test_bad_dataset_file_exits_2_with_one_line(tmp_path, monkeypatch, capsys, damage, message):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    path = write_mnist(tmp_path / "data")
    if damage == "corrupt":
        path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    else:
        write_mnist(tmp_path / "data", x_train=np.zeros((20, 32, 32), np.uint8))
    out = tmp_path / "run"
    assert main(["train", *MNIST, "--data-dir", str(tmp_path / "data"), "--out", str(out), "--steps", "1"]) == 2
    one_line_error(capsys, str(path), message)
    assert not out.exists()


@pytest.mark.slow
def test_batch_larger_than_an_image_dataset_and_a_changed_dataset_on_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "data")
    out = tmp_path / "run"
    base = ["train", *MNIST, "--data-dir", str(tmp_path / "data"), "--out", str(out), "--steps", "1"]
    assert main(base) == 2  # the preset's batch is 100, the file holds 20 images
    one_line_error(capsys, "train.batch_size 100 is larger than the dataset (20 training examples)")
    assert not out.exists()
    assert main(base + ["--set", "train.batch_size=4"]) == 0
    capsys.readouterr()  # that run's own output (a warning that its weight average is too slow for 5 steps)
    write_mnist(tmp_path / "other", n_train=24)
    resume = base + ["--set", "train.batch_size=4", "--data-dir", str(tmp_path / "other"), "--resume", "auto"]
    assert main(resume) == 2
    one_line_error(capsys, "--resume with a different training set (24 examples", "trained on 20")
