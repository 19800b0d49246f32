"""Careless and hostile command lines: each is one line on stderr and exit status 2 (130 for Ctrl-C), never a
traceback, and nothing written; `svae sample --out` is atomic; `reconstruct` checks its input as `score` does."""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from svae.checkpoint import load_checkpoint
from svae.cli import main

from test_faults import MNIST, FullDisk, one_line_error, write_mnist
from test_resume import ROOT, train


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "r"
    assert train(run, 2) == 0
    return run


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    write_mnist(root / "data")
    run = root / "r"
    mp = pytest.MonkeyPatch()
    mp.setenv("SVAE_CACHE", str(root / "cache"))
    try:
        assert main(["train", *MNIST, "--set", "train.batch_size=4", "--data-dir", str(root / "data"),
                     "--out", str(run), "--steps", "1"]) == 0
    finally:
        mp.undo()
    return run


# ---- configuration values refused at the edge --------------------------------------------------------------


@pytest.mark.parametrize("extra,message", [
    (["--steps", "0"], "--steps must be > 0, got 0"),
    (["--steps", "-5"], "--steps must be > 0, got -5"),
    (["--epochs", "0"], "--epochs must be > 0, got 0"),
    (["--set", "train.lr=inf"], "train.lr: must be a finite number, got inf"),
    (["--set", "train.lr=nan"], "train.lr: must be a finite number, got nan"),
    (["--lam", "inf"], "objective.lam: must be a finite number, got inf"),
    (["--set", "objective.z_weight=inf"], "objective.z_weight: must be a finite number"),
    (["--set", "objective.vae_sigma=inf"], "objective.vae_sigma: must be a finite number"),
    (["--seed", "99999999999999999999999"], "train.seed: must lie in [0, 4294967295]"),
    (["--seed", "-1"], "train.seed: must lie in [0, 4294967295]"),
    (["--set", "model.critic_input=pair"], "model.critic_input: removed"),
    (["--device", "mps"], "no MPS (Apple GPU) device"),
    (["--device", "tpu"], "train.device: 'tpu' is not one of cpu, cuda, cuda:N, mps"),
])
def test_bad_training_values_are_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    if "mps" in extra and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    out = tmp_path / "never"
    argv = ["train", "--preset", "toy-svae-r", "--out", str(out), "--no-eval", *extra]
    if "--steps" not in extra and "--epochs" not in extra:
        argv += ["--steps", "2"]
    assert main(argv) == 2
    one_line_error(capsys, message)
    assert not out.exists()


def test_the_removed_pair_critic_is_refused_for_image_presets_before_step_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["train", *MNIST, "--set", "train.batch_size=4", "--set", "model.critic_input=pair",
                 "--data-dir", str(tmp_path / "data"), "--out", str(out), "--steps", "1"]) == 2
    one_line_error(capsys, "model.critic_input", "drop the key")
    assert not out.exists()


# ---- devices: a device problem, found before anything is read or written -----------------------------------


@pytest.mark.parametrize("device,message", [("mps", "no MPS"), ("cuda:7", "CUDA device"), ("tpu", "not a device"),
                                            ("cpu:x", "not a device")])
@pytest.mark.parametrize("command", ["sample", "reconstruct", "eval", "score"])
def test_a_bad_device_is_reported_as_such_before_anything_is_loaded(tmp_path, capsys, device, message, command):
    if (device == "mps" and torch.backends.mps.is_available()) or (device.startswith("cuda")
                                                                    and torch.cuda.device_count() > 7):
        pytest.skip("this machine has that device")
    missing = str(tmp_path / "missing")  # nothing to load: the device must be what is reported
    argv = {"sample": ["sample", missing, "--n", "4", "--out", str(tmp_path / "s.npy")],
            "reconstruct": ["reconstruct", missing, "--input", missing, "--out", str(tmp_path / "s.npy")],
            "eval": ["eval", missing], "score": ["score", missing, "--domain", "mnist"]}[command]
    assert main(argv + ["--device", device]) == 2
    err = one_line_error(capsys, message)
    assert "checkpoint" not in err and "classifier" not in err and not list(tmp_path.iterdir())


# ---- sample ------------------------------------------------------------------------------------------------


def test_sample_out_is_written_atomically(toy_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "s.npy"
    assert main(["sample", str(toy_run), "--n", "50", "--out", str(out)]) == 0
    good = out.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    capsys.readouterr()
    assert main(["sample", str(toy_run), "--n", "5000", "--out", str(out)]) == 2
    one_line_error(capsys, f"could not write array {out}: {os.strerror(errno.ENOSPC)}")
    assert out.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["s.npy"]


def test_sample_n_is_checked_against_a_maximum_and_the_memory(toy_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "s.npy"
    for n in ("1000000000000", "0", "-3"):
        assert main(["sample", str(toy_run), "--n", n, "--out", str(out)]) == 2
        one_line_error(capsys, f"--n must lie in [1, 100000000], got {n}")
    import svae.cli

    monkeypatch.setattr(svae.cli, "available_memory", lambda: 10_000)
    assert main(["sample", str(toy_run), "--n", "100000", "--out", str(out)]) == 2
    one_line_error(capsys, "--n 100000: the samples take", "available memory")
    assert not out.exists()
    for seed in ("99999999999999999999999", "-1"):
        assert main(["sample", str(toy_run), "--n", "4", "--seed", seed, "--out", str(out)]) == 2
        one_line_error(capsys, "--seed must lie in [0, 4294967295]")


# ---- reconstruct and score: one set of checks for input arrays ---------------------------------------------


def _write_bad(path, kind, shape):
    if kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "npz":
        np.savez(path, x=np.zeros(shape, np.float32))
        os.replace(str(path) + ".npz", path)
    elif kind == "no_rows":
        np.save(path, np.zeros((0, *shape[1:]), np.float32))
    elif kind == "0_255":
        np.save(path, np.full(shape, 200.0, np.float32))
    elif kind == "negative":
        np.save(path, np.full(shape, -0.5, np.float32))
    elif kind in ("nan", "inf"):
        x = np.full(shape, 0.5, np.float32)
        x[0, 0] = float(kind)
        np.save(path, x)


BAD = [("empty_file", "empty file (0 bytes)"), ("npz", "an .npz archive"), ("no_rows", "holds no examples"),
       ("0_255", "expected [0, 1]"), ("negative", "expected [0, 1]"), ("nan", "NaN or infinite"),
       ("inf", "NaN or infinite")]


@pytest.mark.parametrize("kind,message", BAD)
@pytest.mark.slow
def test_reconstruct_checks_images_as_score_does(mnist_run, tmp_path, capsys, kind, message):
    bad, out = tmp_path / "x.npy", tmp_path / "r.npy"
    _write_bad(bad, kind, (4, 1, 28, 28))
    assert main(["reconstruct", str(mnist_run), "--input", str(bad), "--out", str(out)]) == 2
    one_line_error(capsys, f"--input {bad}", message)
    assert main(["score", str(bad), "--domain", "mnist"]) == 2  # the same checks, the same words
    one_line_error(capsys, str(bad), message)
    assert not out.exists()


@pytest.mark.parametrize("kind,message", [b for b in BAD if b[0] not in ("0_255", "negative")])
def test_reconstruct_checks_toy_points(toy_run, tmp_path, capsys, kind, message):
    bad, out = tmp_path / "x.npy", tmp_path / "r.npy"
    _write_bad(bad, kind, (4, 2))
    assert main(["reconstruct", str(toy_run), "--input", str(bad), "--out", str(out)]) == 2
    one_line_error(capsys, f"--input {bad}", message)
    assert not out.exists()


def test_score_splits_must_be_positive(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((20, 1, 28, 28), np.float32))
    assert main(["score", str(tmp_path / "x.npy"), "--domain", "mnist", "--splits", "0"]) == 2
    one_line_error(capsys, "--splits must be >= 1, got 0")


# ---- checkpoints that disagree with themselves -------------------------------------------------------------


@pytest.mark.parametrize("damage,message", [("config_not_a_mapping", "config is a str, expected a mapping"),
                                            ("config_other_size", "the encoder weights do not fit"),
                                            ("config_invalid", "its configuration is not valid (train.lr")])
@pytest.mark.slow
def test_a_checkpoint_whose_config_disagrees_with_its_weights(tmp_path, capsys, damage, message):
    run = tmp_path / "r"
    assert train(run, 2, "--set", "train.keep_ckpts=0") == 0
    path = run / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    if damage == "config_not_a_mapping":
        state["config"] = "hello"
    elif damage == "config_other_size":
        state["config"]["model"]["hidden"] = 32  # the weights are of width 16
    else:
        state["config"]["train"]["lr"] = -1.0
    torch.save(state, path)
    capsys.readouterr()
    for argv in (["eval", str(run)], ["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy")]):
        assert main(argv) == 2
        one_line_error(capsys, str(path), message)
    if damage == "config_other_size":  # resumed with the configuration it claims: the weights still do not fit
        assert train(run, 4, "--resume", "auto", "--set", "model.hidden=32") == 2
        one_line_error(capsys, "the encoder weights do not fit")
    assert not (tmp_path / "s.npy").exists() and not (run / "eval.json").exists()


# ---- Ctrl-C while torch is still loading -------------------------------------------------------------------


CTRL_C_IN_IMPORT = """
import builtins, sys
real = builtins.__import__
def interrupted(name, *args, **kwargs):  # as a Ctrl-C that lands while torch is being imported
    if name == "torch" or name.startswith("torch."):
        raise KeyboardInterrupt
    return real(name, *args, **kwargs)
builtins.__import__ = interrupted
from svae.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("argv", [["presets"], ["train", "--preset", "toy-svae-r", "--out", "never"]])
def test_ctrl_c_while_importing_is_one_line_and_exit_130(tmp_path, argv):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", CTRL_C_IN_IMPORT.format(argv=argv)], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 130 and r.stderr == "svae: interrupted\n", r.stderr[-2000:]
    assert not (tmp_path / "never").exists()
