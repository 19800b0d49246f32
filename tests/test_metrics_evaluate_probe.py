"""Learning curves: the probe's rows in metrics.jsonl, its independence from training, curves.png, the critic_bn switch."""
import json
from types import SimpleNamespace

import pytest
import torch

from svae.config import ConfigError, validate
from svae.data import load_dataset
from svae.metrics.evaluate import Probe
from svae.model import Model
from svae.presets import get_preset
from svae.run import train
from svae.training.trainer import Trainer
from svae.viz import read_metrics

from helpers import tiny_toy


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_probe_rows_come_every_probe_every_steps_and_at_the_end(tmp_path):
    cfg = tiny_toy(steps=10, probe_every=4)
    train(cfg, tmp_path / "run", run_eval=False)
    probes = [r for r in rows(tmp_path / "run") if "probe_mse" in r]
    assert [r["step"] for r in probes] == [4, 8, 10]
    assert all(1.0 <= r["probe_is"] <= 5.0 and r["probe_mse"] > 0 and r["probe_seconds"] >= 0 for r in probes)
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


@pytest.mark.slow
def test_probe_every_minus_one_means_once_an_epoch_and_zero_never(tmp_path):
    cfg = tiny_toy(steps=8, probe_every=-1)  # 64 points in batches of 16: 4 steps an epoch
    assert get_preset("mnist-svae-r").train.probe_every == -1  # the default; the toy probes every 10 epochs
    train(cfg, tmp_path / "a", run_eval=False)
    assert [r["epoch"] for r in rows(tmp_path / "a") if "probe_mse" in r] == [1.0, 2.0]
    train(tiny_toy(steps=8, probe_every=0), tmp_path / "b", run_eval=False)
    assert not [r for r in rows(tmp_path / "b") if "probe_mse" in r]
    assert not (tmp_path / "b" / "curves.png").exists()


def test_training_is_the_same_with_and_without_probes(tmp_path):
    """The probe forks the RNG and restores train mode: the weights after training do not depend on it."""
    def weights(probe_every, name):
        cfg = tiny_toy(steps=8, probe_every=probe_every)
        torch.manual_seed(cfg.train.seed)
        data = load_dataset(cfg.data)
        tr = Trainer(Model(cfg), data, cfg, tmp_path / name, probe=Probe(data, 100, 32))
        (tmp_path / name).mkdir()
        tr.fit(progress=False)
        return tr.model.state_dict()

    a, b = weights(0, "a"), weights(2, "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_probe_keeps_the_models_mode_and_the_global_rng():
    cfg = tiny_toy()
    data = load_dataset(cfg.data)
    model = Model(cfg).train()
    state = torch.get_rng_state()
    out = Probe(data, 100, 32)(model)
    assert model.training and torch.equal(state, torch.get_rng_state())
    assert set(out) >= {"probe_is", "probe_mse", "probe_coverage", "probe_ambiguity", "probe_seconds"}


def test_probe_settings_are_checked():
    with pytest.raises(ConfigError, match="probe_every"):
        validate(tiny_toy(probe_every=-2))
    with pytest.raises(ConfigError, match="probe_samples"):
        validate(tiny_toy(probe_samples=0))


def test_read_metrics_skips_torn_lines_and_events(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "epoch": 0.5}\n{"step": 2, "event": "rollback"}\n{"step": 3')
    assert read_metrics(tmp_path) == [{"step": 1, "epoch": 0.5}]


@pytest.mark.parametrize("preset", ["toy-ali", "mnist-ali"])
def test_critic_bn_apart_equals_two_separate_critic_calls(preset):
    """model.critic_bn=apart: the encoder pairs and the decoder pairs are normalised each by their own statistics,
    which is what two critic calls compute (the authors' scripts), inside the one forward pass."""
    cfg = tiny_toy(preset) if preset.startswith("toy") else __import__("svae").get_preset(preset)
    cfg.model.critic_bn = "apart"
    cfg.train.batch_size = 8
    torch.manual_seed(0)
    model = Model(validate(cfg))
    tr = Trainer.__new__(Trainer)  # only the logits helper: no data needed
    tr.model, tr.objective, tr.critic_bn_apart = model, model.objective, True
    tr.speed = SimpleNamespace(net=lambda name, fixed=False: getattr(model, name))  # the networks, unwrapped
    shape = (8, 2) if preset.startswith("toy") else (8, 1, 28, 28)
    x, xt = torch.rand(shape), torch.rand(shape)
    z, zh = torch.randn(8, cfg.model.z_dim), torch.randn(8, cfg.model.z_dim)
    lq, lp, _ = tr._critic_logits(x, zh, xt, z)
    assert torch.allclose(lq, model.critic(x, zh), atol=1e-5) and torch.allclose(lp, model.critic(xt, z), atol=1e-5)
    if not preset.startswith("toy"):  # with BatchNorm, one joint batch is another function
        tr.critic_bn_apart = False
        assert not torch.allclose(tr._critic_logits(x, zh, xt, z)[0], lq, atol=1e-3)


def test_an_mnist_probe_scores_samples_with_the_shipped_classifier():
    """A fresh install has a probe IS on MNIST: the classifier shipped in the package (the cache is empty here)."""
    from svae.data import Dataset

    cfg = get_preset("mnist-ali")
    g = torch.Generator().manual_seed(0)
    data = Dataset("mnist", torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=g),
                   torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=g))
    out = Probe(data, 50, 16)(Model(cfg))
    assert 1.0 <= out["probe_is"] <= 10.0 and 0 <= out["probe_coverage"] <= 2.31 and out["probe_mse"] > 0
