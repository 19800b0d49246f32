"""The command-line contract: subcommands, files of a run directory, arrays, and exit status 2 on bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from svae.cli import main

TINY = ["--steps", "6", "--set", "data.n_train=64", "--set", "data.n_test=32", "--set", "model.hidden=16",
        "--set", "train.batch_size=16", "--set", "train.log_every=2", "--set", "train.eval_samples=200"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--preset", "toy-svae-r", "--out", str(out), "--lam", "0.5", "--seed", "3"] + TINY) == 0
    return out


def test_presets_lists_every_preset_with_a_description(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 20 and lines[0].split()[0] == "toy-ali" and "ALI" in lines[0]


@pytest.mark.slow
def test_train_writes_the_run_directory(run):
    assert {"config.yaml", "metrics.jsonl", "eval.json", "toy.png"} <= {p.name for p in run.iterdir()}
    assert (run / "checkpoints" / "last.pt").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6] and all("loss_critic" in r and "rec_x" in r for r in rows)
    ev = json.loads((run / "eval.json").read_text())
    assert {"is_mean", "is_std", "mse", "mse_random", "steps", "seconds"} <= set(ev)
    assert ev["steps"] == 6 and ev["lam"] == 0.5 and ev["seed"] == 3
    cfg = (run / "config.yaml").read_text()
    assert "lam: 0.5" in cfg and "steps: 6" in cfg and "seed: 3" in cfg


def test_eval_rescores_with_pathway_batchnorm_statistics_when_asked(run, capsys):
    assert main(["eval", str(run), "--bn-stats", "pathway"]) == 0
    assert json.loads((run / "eval.json").read_text())["bn_stats"] == "pathway"
    assert main(["eval", str(run)]) == 0  # the run's own train.eval_bn_stats again: the running averages
    assert "bn_stats" not in json.loads((run / "eval.json").read_text())
    with pytest.raises(SystemExit) as exit_:
        main(["eval", str(run), "--bn-stats", "batch"])
    assert exit_.value.code == 2 and "invalid choice: 'batch'" in capsys.readouterr().err


def test_eval_is_repeatable(run, capsys):
    assert main(["eval", str(run)]) == 0
    printed = json.loads(capsys.readouterr().out)
    again = json.loads((run / "eval.json").read_text())
    assert printed["is_mean"] == again["is_mean"] and printed["mse"] == again["mse"]
    main(["eval", str(run)])
    assert json.loads((run / "eval.json").read_text())["mse"] == printed["mse"]


def test_sample_same_seed_same_samples(run, tmp_path):
    a, b, c = (tmp_path / f"{n}.npy" for n in "abc")
    assert main(["sample", str(run), "--n", "50", "--out", str(a), "--seed", "1"]) == 0
    main(["sample", str(run), "--n", "50", "--out", str(b), "--seed", "1"])
    main(["sample", str(run), "--n", "50", "--out", str(c), "--seed", "2"])
    xa, xb, xc = np.load(a), np.load(b), np.load(c)
    assert xa.shape == (50, 2) and xa.dtype == np.float32
    assert np.array_equal(xa, xb) and not np.array_equal(xa, xc)


def test_reconstruct_round_trips_the_array_contract(run, tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["reconstruct", str(run), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r.npy")]) == 0
    r = np.load(tmp_path / "r.npy")
    assert r.shape == x.shape and r.dtype == np.float32 and np.isfinite(r).all()


def test_sample_and_reconstruct_use_the_batchnorm_statistics_that_eval_scored(tmp_path, monkeypatch, capsys):
    from test_faults import MNIST, write_mnist

    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "data", n_train=40)
    run = tmp_path / "run"
    assert main(["train", *MNIST, "--set", "train.batch_size=8", "--set", "train.eval_samples=200",
                 "--data-dir", str(tmp_path / "data"), "--out", str(run), "--steps", "2"]) == 0
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(size=(8, 1, 28, 28)).astype(np.float32))
    arrays = {}
    for how in ("", "pathway", "running"):  # "": the run's own train.eval_bn_stats, pathway in the image presets
        extra = ["--bn-stats", how] if how else []
        assert main(["sample", str(run), "--n", "8", "--out", str(tmp_path / f"s{how}.npy"), *extra]) == 0
        assert main(["reconstruct", str(run), "--input", str(tmp_path / "x.npy"),
                     "--out", str(tmp_path / f"r{how}.npy"), *extra]) == 0
        arrays[how] = np.load(tmp_path / f"s{how}.npy"), np.load(tmp_path / f"r{how}.npy")
    for i in range(2):
        assert np.array_equal(arrays[""][i], arrays["pathway"][i])
        assert not np.allclose(arrays["pathway"][i], arrays["running"][i], atol=1e-4)
    # per pathway the encoder's statistics come from training images: without them, one line naming the folder
    (tmp_path / "data").rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["reconstruct", str(run), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r2.npy")]) == 2
    assert str(tmp_path / "data") in capsys.readouterr().err
    assert main(["reconstruct", str(run), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r2.npy"),
                 "--data-dir", str(tmp_path / "moved")]) == 0
    assert np.array_equal(np.load(tmp_path / "r2.npy"), arrays[""][1])
    assert main(["sample", str(run), "--n", "8", "--out", str(tmp_path / "s2.npy")]) == 0  # needs no data
    assert np.array_equal(np.load(tmp_path / "s2.npy"), arrays[""][0])


@pytest.mark.parametrize("argv,message", [
    (["train", "--preset", "toy-gan"], "unknown preset 'toy-gan'; allowed: toy-ali"),
    (["train", "--preset", "toy-ali", "--set", "train.nope=1"], "unknown key 'train.nope'"),
    (["train", "--preset", "toy-ali", "--set", "train.lr=fast"], "train.lr: expected float, got 'fast'"),
    (["train", "--preset", "toy-ali", "--set", "train.lr"], "expected KEY=VALUE"),
    (["train", "--preset", "toy-ali", "--lam", "-1"], "objective.lam: must be >= 0"),
    (["train", "--preset", "toy-ali", "--device", "cuda:7"], "no CUDA device"),
    (["train", "--preset", "mnist-svae-r"], "(the default data folder; $SVAE_DATA sets another): no such folder; "
                                            "put mnist.npz or train-images-idx3-ubyte"),
    (["train", "--preset", "mnist-svae-r"], "with --data-dir DIR, or add --download to fetch the official files"),
])
def test_bad_train_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    if "cuda" in " ".join(argv):
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("svae: error:")
    assert not out.exists()


def test_eval_without_checkpoint_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "last.pt" in err
    assert not (tmp_path / "empty" / "eval.json").exists()
    assert main(["sample", str(tmp_path / "missing"), "--n", "3", "--out", str(tmp_path / "s.npy")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_existing_run_is_not_overwritten_without_force_or_resume(run, capsys):
    before = (run / "metrics.jsonl").read_text()
    assert main(["train", "--preset", "toy-svae-r", "--out", str(run)] + TINY) == 2
    assert "--resume auto" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_text() == before


def test_resume_refuses_a_different_configuration(run, capsys):
    assert main(["train", "--preset", "toy-ali", "--out", str(run), "--resume", "auto"] + TINY) == 2
    err = capsys.readouterr().err
    assert "different configuration (" in err and "objective.kind" in err and "train.seed" in err


def test_resume_extends_a_finished_run(tmp_path):
    out = str(tmp_path / "r")
    base = ["train", "--preset", "toy-svae-r", "--out", out, "--no-eval"] + TINY
    assert main(base) == 0
    more = [a if a != "6" else "10" for a in base]
    assert main(more + ["--resume", "auto"]) == 0
    rows = [json.loads(line) for line in open(f"{out}/metrics.jsonl")]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10]


def test_bad_reconstruct_input(run, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((4, 3), np.float32))
    assert main(["reconstruct", str(run), "--input", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "o.npy")]) == 2
    assert "expected (N, 2)" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_is_installed():
    res = subprocess.run([sys.executable, "-m", "svae", "presets"], capture_output=True, text=True)
    assert res.returncode == 0 and "toy-svae-r" in res.stdout
    res = subprocess.run([sys.executable, "-m", "svae", "train", "--preset", "nope", "--out", "x"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "unknown preset" in res.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGPIPE exit status is POSIX")
def test_a_reader_that_leaves_early_is_not_an_error():
    # `svae presets | head -1`: the pipe is closed before svae writes; a closed read end makes that deterministic.
    read_end, write_end = os.pipe()
    os.close(read_end)
    res = subprocess.run([sys.executable, "-m", "svae", "presets"], stdout=write_end, stderr=subprocess.PIPE,
                         text=True)
    os.close(write_end)
    assert res.returncode == 141 and res.stderr == ""
