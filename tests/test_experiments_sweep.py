"""`svae sweep`: one run per (preset, lambda), resumable, with the side-by-side grids and the IS-MSE front."""
import json

import pytest
import torch

from svae.cli import main
from svae.experiments.sweep import lam_dir

TINY = ["--steps", "4", "--set", "data.n_train=64", "--set", "data.n_test=32", "--set", "model.hidden=16",
        "--set", "train.batch_size=16", "--set", "train.log_every=2", "--set", "train.eval_samples=200"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert main(["sweep", "--preset", "toy-alice,toy-svae-r", "--lam", "0,1e-2", "--out", str(out)] + TINY) == 0
    return out


@pytest.mark.slow
def test_sweep_trains_one_run_per_preset_and_lambda_and_draws_three_pictures(sweep):
    for preset in ("toy-alice", "toy-svae-r"):
        for lam, name in ((0.0, "lam_0"), (0.01, "lam_0.01")):
            ev = json.loads((sweep / preset / name / "eval.json").read_text())
            assert ev["lam"] == lam and ev["steps"] == 4 and ev["preset"] == preset
    names = {p.name for p in sweep.glob("*.png")}
    assert names == {"samples_toy-alice.png", "reconstructions_toy-alice.png", "samples_toy-svae-r.png",
                     "reconstructions_toy-svae-r.png", "front.png"}


@pytest.mark.slow
def test_a_second_call_trains_nothing_and_a_longer_one_resumes(sweep, capsys):
    run = sweep / "toy-svae-r" / "lam_0.01"
    before = (run / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(["sweep", "--preset", "toy-alice,toy-svae-r", "--lam", "0,0.01", "--out", str(sweep)] + TINY) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert [r["status"] for r in rows] == ["done before"] * 4 and (run / "metrics.jsonl").read_text() == before
    longer = [a if a != "4" else "6" for a in TINY]
    assert main(["sweep", "--preset", "toy-svae-r", "--lam", "0.01", "--out", str(sweep)] + longer) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert rows[0]["status"] == "trained" and rows[0]["steps"] == 6
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]  # continued from step 4, not restarted


def test_lambda_folder_names_are_exact():
    assert [lam_dir(v) for v in (0.0, 1e-2, 1e-6, 10.0, 0.123456789)] == \
        ["lam_0", "lam_0.01", "lam_1e-06", "lam_10", "lam_0.123456789"]


@pytest.mark.parametrize("argv,message", [
    (["--preset", "toy-gan", "--lam", "0"], "unknown preset 'toy-gan'"),
    (["--preset", "toy-alice", "--lam", "0,x"], "--lam '0,x': expected comma-separated numbers"),
    (["--preset", "toy-alice", "--lam", "-1"], "objective.lam: must be >= 0"),
])
def test_bad_sweep_input_exits_2(tmp_path, capsys, argv, message):
    assert main(["sweep", "--out", str(tmp_path / "s")] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("svae: error:") and not (tmp_path / "s").exists()


@pytest.mark.slow
def test_image_sweep_draws_grids_from_synthetic_data(tmp_path):
    from svae.presets import get_preset
    from svae.experiments.sweep import run_sweep
    from tests.test_presets import synthetic

    cfgs = []
    for lam in (0.0, 1.0):
        cfg = get_preset("mnist-svae-r")
        cfg.objective.lam = lam
        cfg.train.batch_size, cfg.train.steps, cfg.train.eval_samples, cfg.train.eval_splits = 4, 1, 20, 2
        cfgs.append(cfg)
    torch.manual_seed(0)
    result = run_sweep({"mnist-svae-r": cfgs}, tmp_path, progress=False,
                       data={"mnist-svae-r": synthetic(cfgs[0], n_train=8, n_test=40)})
    assert {r["status"] for r in result["runs"]} == {"trained"}
    assert {p.name for p in tmp_path.glob("*.png")} >= {"samples_mnist-svae-r.png", "reconstructions_mnist-svae-r.png"}
