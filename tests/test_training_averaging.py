"""The encoder+decoder weight average (train.ema): its arithmetic, that it never changes training, exact resume,
and that checkpoints, probes and eval.json carry it."""
import json

import pytest
import torch

from svae import run
from svae.training.averaging import WeightAverage
from svae.config import ConfigError, validate
from svae.data import load_dataset
from svae.model import Model
from svae.checkpoint import load_checkpoint
from svae.training.trainer import Trainer

from helpers import tiny_toy


class Pair(torch.nn.Module):
    """A stand-in Model: an encoder with BatchNorm (a float and an integer buffer), a decoder and a critic."""
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
        self.decoder = torch.nn.Linear(3, 2)
        self.critic = torch.nn.Linear(4, 1)
        self.critic_p = None


def make(cfg, run_dir=None):
    torch.manual_seed(cfg.train.seed)
    return Trainer(Model(cfg), load_dataset(cfg.data), cfg, run_dir)


def weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_average_follows_the_formula_and_copies_integer_buffers():
    live = Pair()
    avg = WeightAverage(live, decay=0.75)
    assert avg.model.critic is None and live.critic is not None  # the critic is neither copied nor lost
    start = weights(live)
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    live.encoder(torch.randn(8, 2))  # train mode: moves the running mean and counts a batch
    avg.update(live)
    now, got = weights(live), weights(avg.model)
    for k in ("encoder.0.weight", "decoder.bias", "encoder.1.running_mean"):
        assert torch.allclose(got[k], 0.75 * start[k] + 0.25 * now[k], atol=1e-6), k
    assert got["encoder.1.num_batches_tracked"].item() == 1
    assert not any(p.requires_grad for p in avg.model.parameters())


def test_decay_outside_the_open_unit_interval_is_refused():
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(Pair(), decay=1.0)
    cfg = tiny_toy()
    cfg.train.ema = 1.0
    with pytest.raises(ConfigError, match=r"train.ema: a decay in \[0, 1\)"):
        validate(cfg)


def test_the_average_never_changes_training():
    off = make(tiny_toy(steps=12))
    off.fit(progress=False)
    on = make(tiny_toy(steps=12, ema=0.9))  # make() seeds the global RNG that training draws from
    on.fit(progress=False)
    a, b = weights(off.model), weights(on.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    avg = weights(on.average.model)  # and it is an average, not a copy
    assert any(not torch.equal(avg[k], b[k]) for k in avg if k.startswith("decoder."))


def test_resume_restores_the_average_exactly(tmp_path):
    cfg = tiny_toy(steps=10, ema=0.8)
    full = make(cfg)
    full.fit(progress=False)
    half = make(cfg, tmp_path / "run")
    (tmp_path / "run").mkdir()
    half.fit(steps=5, progress=False)
    half.save()
    resumed = make(cfg)
    resumed.resume(tmp_path / "run" / "checkpoints" / "last.pt")
    resumed.fit(progress=False)
    a, b = weights(full.average.model), weights(resumed.average.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_probes_both_and_scores_the_average_with_the_live_weights_beside(tmp_path):
    cfg = tiny_toy(steps=8, ema=0.5, probe_every=4)
    out = tmp_path / "run"
    result = run.train(cfg, out, progress=False)
    assert result["weights"] == "ema 0.5" and set(result["live"]) >= {"is_mean", "mse"}
    assert result["mse"] != result["live"]["mse"]
    probes = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "probe_mse" in r]
    assert len(probes) == 2 and all("probe_mse_ema" in r and "probe_is_ema" in r for r in probes)
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert set(ckpt["ema"]["nets"]) == {"encoder", "decoder"}
    # the checkpoint's model is the average unless asked for the live weights; svae eval scores it again
    avg = Model.from_checkpoint(ckpt, "last.pt")
    live = Model.from_checkpoint(ckpt, "last.pt", weights="live")
    for name in ("encoder", "decoder"):
        mine = getattr(avg, name).state_dict()
        assert all(torch.equal(mine[k], v) for k, v in ckpt["ema"]["nets"][name].items())
        theirs = getattr(live, name).state_dict()
        assert all(torch.equal(theirs[k], v) for k, v in ckpt["nets"][name].items())
    from_run = Model.from_run(out, weights="live").decoder.state_dict()
    assert all(torch.equal(from_run[k], v) for k, v in ckpt["nets"]["decoder"].items())
    again = run.evaluate_run(out)
    assert again["mse"] == pytest.approx(result["mse"]) and again["live"]["mse"] == pytest.approx(result["live"]["mse"])


def test_a_decay_too_slow_for_the_run_warns_with_one_that_fits(capsys, tmp_path):
    make(tiny_toy(steps=12, ema=0.999), tmp_path)
    err = capsys.readouterr().err
    assert "train.ema 0.999 over 12 steps: the initial weights keep 99% of the final average; 0 (off) forgets" in err
    make(tiny_toy(steps=40, ema=0.999), tmp_path)
    assert "over 40 steps: the initial weights keep 96% of the final average; a decay of at most 0.925 forgets " \
        "them" in capsys.readouterr().err
    make(tiny_toy(steps=12, ema=0.5), tmp_path)
    make(tiny_toy(steps=12, ema=0.999))  # no run: svae bench times a few steps of a long run's configuration
    assert capsys.readouterr().err == ""
