"""Inception score and reconstruction errors on cases with known answers; the toy's exact posterior."""
import math

import pytest
import torch

from svae.data import toy
from svae.metrics.scores import class_spread, derangement, inception_score, reconstruction_errors


def test_inception_score_of_one_hot_uniform_classes_is_the_class_count():
    probs = torch.eye(5).repeat(200, 1)  # every class equally often, each sample certain
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(5.0) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_a_collapsed_or_uncertain_classifier_is_one():
    assert inception_score(torch.eye(5)[torch.zeros(100, dtype=torch.long)], 10)[0] == pytest.approx(1.0)
    assert inception_score(torch.full((100, 5), 0.2), 10)[0] == pytest.approx(1.0)


def test_inception_score_by_hand_and_std_over_splits():
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.5, 0.5]])
    py = torch.tensor([0.5, 0.5])
    kl = [(row * (row / py).log()).sum().item() for row in p]
    s1, s2 = math.exp((kl[0] + kl[1]) / 2), math.exp((kl[2] + kl[3]) / 2)
    mean, std = inception_score(p, splits=2)
    assert mean == pytest.approx((s1 + s2) / 2) and std == pytest.approx(abs(s1 - s2) / 2)
    with pytest.raises(ValueError, match="N >= splits"):
        inception_score(p, splits=10)


def test_class_spread_splits_the_log_score_into_coverage_and_sharpness():
    p = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    marg = p.mean(0)
    h_marg = -(marg * marg.log()).sum().item()
    h_cond = -(p * p.log()).sum(1).mean().item()
    out = class_spread(p)
    assert out["marginal_entropy"] == pytest.approx(h_marg) and out["conditional_entropy"] == pytest.approx(h_cond)
    assert out["class_fractions"] == [0.75, 0.25]
    # over the whole set (one split), log IS is exactly the difference
    assert math.log(inception_score(p, splits=1)[0]) == pytest.approx(h_marg - h_cond)
    # balanced and certain: full coverage (log K), nothing ambiguous; one class: no coverage at all
    balanced = class_spread(torch.eye(4).repeat(5, 1))
    assert balanced["marginal_entropy"] == pytest.approx(math.log(4)) and balanced["conditional_entropy"] < 1e-9
    assert class_spread(torch.eye(4)[[2] * 8])["marginal_entropy"] < 1e-9


def test_real_mixture_samples_score_close_to_five():
    x, _ = toy.sample_mixture(10000, torch.Generator().manual_seed(0))
    mean, _ = inception_score(toy.posterior(x), 10)
    assert 4.95 < mean < 5.0  # docs/method.md section 7: true samples score 4.977


def test_posterior_is_certain_at_the_means_and_log_density_normalises():
    post = toy.posterior(toy.MEANS)
    assert torch.allclose(post, torch.eye(5), atol=1e-6)
    g = torch.linspace(-4, 4, 401)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    dens = toy.log_density(torch.stack([xx.flatten(), yy.flatten()], 1).double()).exp()
    assert dens.sum().item() * (g[1] - g[0]).item() ** 2 == pytest.approx(1.0, abs=1e-3)


def test_derangement_has_no_fixed_point():
    for seed in range(20):
        d = derangement(7, torch.Generator().manual_seed(seed))
        assert sorted(d.tolist()) == list(range(7)) and not (d == torch.arange(7)).any()


def test_reconstruction_errors_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    rec = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    r = reconstruction_errors(x, rec)
    assert r["sum_mean"] == pytest.approx(0.5) and r["per_coord"] == pytest.approx(0.25)
    # with 2 points the derangement swaps them: |x0 - rec1|^2 = 2, |x1 - rec0|^2 = 1
    assert r["random_sum"] == pytest.approx(1.5) and r["random_per_coord"] == pytest.approx(0.75)
