"""BatchNorm statistics per pathway at evaluation (svae.metrics.bn_stats, train.eval_bn_stats, scripts/bn_stats.py)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import finished_study
from svae.config import ConfigError, validate
from svae.data import Dataset
from svae.metrics.bn_stats import estimate, estimate_batches, pathway_models, pathway_sampler, scoring_models
from svae.metrics.evaluate import evaluate
from svae.model import Model
from svae.presets import get_preset


def _mnist(n_train: int = 120, n_test: int = 30) -> Dataset:
    g = torch.Generator().manual_seed(0)
    return Dataset("mnist", torch.randint(0, 256, (n_train, 1, 28, 28), dtype=torch.uint8, generator=g),
                   torch.randint(0, 256, (n_test, 1, 28, 28), dtype=torch.uint8, generator=g))


def test_estimate_replaces_the_running_statistics_by_the_plain_average_over_the_batches():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    batches = [torch.randn(6, 2) + 3 * i for i in range(3)]
    with torch.no_grad():
        h = [net[0](b) for b in batches]
    assert estimate(net, batches) == 1
    bn = net[1]
    # not the exponential average with momentum 0.1 (which would keep 0.9^3 of the initial zeros and ones)
    assert torch.allclose(bn.running_mean, torch.stack([x.mean(0) for x in h]).mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, torch.stack([x.var(0) for x in h]).mean(0), atol=1e-4)  # unbiased, as BN
    assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 3 and not net.training


def test_estimate_without_batchnorm_touches_nothing():
    def never():
        raise AssertionError("the inputs of a net without BatchNorm must not be computed")
        yield

    assert estimate(nn.Linear(2, 2), never()) == 0


def test_pathway_models_estimate_each_pathway_on_its_own_inputs_and_leave_the_model_as_it_was():
    torch.manual_seed(0)
    model = Model(get_preset("mnist-svae-r")).eval()
    data = _mnist()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    sampler, reconstructor = pathway_models(model, data, batches=2, batch_size=50, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)  # the evaluation's draws stay those without it
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.critic is not None and sampler.critic is None and reconstructor.critic is None
    assert not (sampler.training or reconstructor.training)
    # the sampler's decoder: its first BN holds the average statistics of its first layer on the same prior draws
    linear, bn = sampler.decoder.net[0], sampler.decoder.net[1]
    assert isinstance(linear, nn.Linear) and isinstance(bn, nn.BatchNorm1d)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        zs = [model.sample_prior(50) for _ in range(2)]
    with torch.no_grad():
        means = torch.stack([linear(z).mean(0) for z in zs]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5)
    # the sampler encodes as trained; the reconstructor's encoder and decoder were both re-estimated, on images
    assert all(torch.equal(a, b) for a, b in zip(sampler.encoder.state_dict().values(),
                                                 model.encoder.state_dict().values()))
    first_mean = lambda net: next(b for n, b in net.named_buffers() if n.endswith("running_mean"))  # noqa: E731
    assert not torch.allclose(first_mean(reconstructor.encoder), first_mean(model.encoder))
    assert not torch.allclose(reconstructor.decoder.net[1].running_mean, bn.running_mean)
    again = pathway_models(model, data, batches=2, batch_size=50, seed=3)[1]
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), reconstructor.state_dict().values()))


def test_the_sampler_alone_is_pathway_models_sampler_without_the_data():
    torch.manual_seed(0)
    model = Model(get_preset("mnist-svae-r")).eval()
    rng = torch.get_rng_state()
    alone = pathway_sampler(model, batches=2, batch_size=50, seed=3)
    assert torch.equal(torch.get_rng_state(), rng) and alone.critic is None and not alone.training
    both = pathway_models(model, _mnist(), batches=2, batch_size=50, seed=3)[0]
    assert all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(), both.state_dict().values()))


def test_the_image_presets_score_per_pathway_and_the_toy_has_no_batchnorm_to_choose():
    for preset in ("mnist-alice", "cifar10-svae-r", "celeba-ali", "mnist-vae"):
        assert get_preset(preset).train.eval_bn_stats == "pathway"
    toy = Model(get_preset("toy-svae-r"))
    assert get_preset("toy-svae-r").train.eval_bn_stats == "running"
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in toy.modules())


def test_the_scoring_models_are_the_model_itself_or_the_pathway_copies():
    torch.manual_seed(0)
    model, data = Model(get_preset("mnist-svae-r")), _mnist()
    assert scoring_models(model, data, "running") == (model, model)
    sampler, reconstructor = scoring_models(model, data, "pathway")
    running = evaluate(model, data, n_samples=20, splits=2)
    pathway = evaluate(sampler, data, n_samples=20, splits=2, reconstructor=reconstructor)
    assert pathway["mse"] != running["mse"] and pathway["is_mean"] != running["is_mean"]
    # the reconstructor reconstructs, the model samples: the sampler's samples with the model's reconstructions
    mixed = evaluate(sampler, data, n_samples=20, splits=2, reconstructor=model)
    assert mixed["mse"] == running["mse"] and mixed["is_mean"] == pathway["is_mean"]
    with pytest.raises(ValueError, match="bn_stats: one of running, pathway"):
        scoring_models(model, data, "batch")


def test_the_estimate_draws_as_many_inputs_as_the_evaluation_scores_up_to_50_batches():
    torch.manual_seed(0)
    model, data = Model(get_preset("mnist-svae-r")), _mnist()
    for n, batches in ((10000, 50), (5000, 50), (4901, 50), (200, 2), (150, 2), (20, 1)):
        model.cfg.train.eval_samples = n
        assert estimate_batches(model) == batches
    model.cfg.train.eval_samples = 200
    scored = scoring_models(model, data, "pathway", seed=1)[0]
    two = pathway_models(model, data, batches=2, seed=1)[0]
    three = pathway_models(model, data, batches=3, seed=1)[0]
    assert torch.equal(scored.decoder.net[1].running_mean, two.decoder.net[1].running_mean)
    assert not torch.equal(scored.decoder.net[1].running_mean, three.decoder.net[1].running_mean)


def test_the_config_takes_only_the_known_statistics():
    cfg = get_preset("mnist-svae-r")
    cfg.train.eval_bn_stats = "pathway"
    validate(cfg)
    cfg.train.eval_bn_stats = "batch"
    with pytest.raises(ConfigError, match="train.eval_bn_stats"):
        validate(cfg)


def _script():
    """scripts/bn_stats.py as a module (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bn_stats", Path(__file__).parents[1] / "scripts" / "bn_stats.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_block_sets_running_and_pathway_scores_side_by_side_over_seeds(tmp_path):
    script = _script()
    study, out, records = finished_study(tmp_path)
    for run, mse in zip(study.runs(out), (0.03, 0.05)):
        (run.dir / "bn.json").write_text(json.dumps({"eval_id": script.code_gap.eval_id(run.dir),
                                                     "running": {"is_mean": 8.0, "mse": 0.06},
                                                     "pathway": {"is_mean": 8.2, "mse": mse}}))
    text = script.block(study, out, records, tmp_path / "img", "img")
    assert "| variant | preset | λ | runs | IS: running | IS: pathway | MSE: running | MSE: pathway |" in text
    assert "| baseline | mnist-svae-r | 1 | 2 | 8.000 ± 0.000 | 8.200 ± 0.000 | 0.0600 ± 0.0000 | 0.0400 ± 0.0141 |" \
        in text
    run = study.runs(out)[1]  # evaluated again since: its bn.json no longer describes it
    (run.dir / "eval.json").write_text(json.dumps({"is_mean": 8.5, "mse": 0.05}))
    assert "| baseline | mnist-svae-r | 1 | 1 | 8.000 | 8.200 | 0.0600 | 0.0300 |" in script.block(
        study, out, records, tmp_path / "img", "img")
