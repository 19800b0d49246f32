"""Every preset builds and trains a few steps on tiny synthetic data of its shape (no dataset files)."""
import json

import pytest
import torch

import svae
from svae.data import Dataset
from svae.models import x_shape
from svae.presets import PRESETS, get_preset
from svae.run import train


def synthetic(cfg, n_train=8, n_test=20):
    g = torch.Generator().manual_seed(0)
    if cfg.data.name == "toy":
        return Dataset("toy", torch.randn(n_train, 2, generator=g), torch.randn(n_test, 2, generator=g),
                       torch.zeros(n_train, dtype=torch.long), torch.zeros(n_test, dtype=torch.long))
    shape = x_shape(cfg.model.arch)
    make = lambda n: torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)  # noqa: E731
    return Dataset(cfg.data.name, make(n_train), make(n_test))


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.slow
def test_preset_trains_evaluates_and_draws(name, tmp_path):
    cfg = get_preset(name)
    cfg.train.batch_size, cfg.train.steps, cfg.train.log_every = 4, 2, 1
    cfg.train.eval_samples, cfg.train.eval_splits = 20, 2
    cfg.train.probe_samples, cfg.train.probe_test = 20, 8
    if cfg.data.name == "toy":
        cfg.model.hidden = 16
    result = train(cfg, tmp_path / "run", data=synthetic(cfg), progress=False)
    assert result["steps"] == 2 and result["mse"] >= 0 and result["mse_random"] > 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r["loss_gen"])) for r in rows)
    assert "probe_mse" not in rows[0] and rows[1]["probe_mse"] >= 0  # the last step probes (epochs are longer)
    pngs = {p.name for p in (tmp_path / "run").glob("*.png")}
    assert pngs == ({"toy.png", "curves.png"} if cfg.data.name == "toy" else {"samples.png", "reconstructions.png",
                                                                              "curves.png"})
    if cfg.data.name != "toy":
        assert result["mse_range"] == "[-1, 1]" and result["mse"] == pytest.approx(4 * result["mse_01"])


@pytest.mark.parametrize("name", ["mnist-svae-r", "cifar10-alice", "celeba-svae", "toy-vae"])
def test_build_returns_the_networks_of_a_preset(name):
    model = svae.build(name)
    assert isinstance(model.encoder, torch.nn.Module) and isinstance(model.decoder, torch.nn.Module)
    assert (model.critic is None) == (model.cfg.objective.kind == "vae")
    model.eval()
    z = model.sample_prior(3)
    x = model.decoder(z)
    assert x.shape == (3, *x_shape(model.cfg.model.arch))
    assert model.encoder(x).shape == (3, model.cfg.model.z_dim)


def test_build_applies_overrides_and_validates():
    assert svae.build("toy-svae-r", **{"objective.lam": 0.1}).objective.lam == 0.1
    assert svae.build("toy-svae-r", **{"objective.lam": "0.5"}).objective.lam == 0.5
    with pytest.raises(svae.ConfigError, match="objective.lam"):
        svae.build("toy-svae-r", **{"objective.lam": -1.0})


@pytest.mark.slow
def test_image_arrays_follow_the_contract(tmp_path):
    cfg = get_preset("cifar10-svae-r")
    cfg.train.batch_size, cfg.train.steps, cfg.train.eval_samples, cfg.train.eval_splits = 4, 1, 20, 2
    train(cfg, tmp_path / "run", data=synthetic(cfg), progress=False)
    model = svae.Model.from_run(tmp_path / "run")
    s = model.sample_array(5)
    assert s.shape == (5, 3, 32, 32) and s.dtype == torch.float32 and 0 <= s.min() and s.max() <= 1
    r = model.reconstruct_array(torch.rand(6, 3, 32, 32))
    assert r.shape == (6, 3, 32, 32) and 0 <= r.min() and r.max() <= 1
