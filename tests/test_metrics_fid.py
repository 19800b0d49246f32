"""FID and KID against closed forms: Gaussians with known moments, identical and shifted sets."""
import math

import pytest
import torch

from svae.metrics.fid import fid, frechet_distance, kid, stats


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.5])
    s1, s2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    expected = float((mu1 - mu2).pow(2).sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_with_full_covariances_matches_commuting_case_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    a, b = torch.tensor([1.0, 2.0, 3.0, 4.0]).double(), torch.tensor([4.0, 1.0, 1.0, 9.0]).double()
    c1, c2 = q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T  # same eigenvectors: commute
    expected = float((a + b - 2 * (a * b).sqrt()).sum())
    mu = torch.zeros(4)
    assert frechet_distance(mu, c1, mu, c2) == pytest.approx(expected, rel=1e-9)
    r = torch.randn(4, 4, generator=g, dtype=torch.float64)
    c3 = r @ r.T  # a general covariance: the distance is still symmetric
    assert frechet_distance(mu, c1, mu, c3) == pytest.approx(frechet_distance(mu, c3, mu, c1), rel=1e-9)


def test_fid_of_identical_sets_is_zero_and_of_sampled_gaussians_near_the_closed_form():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 8, generator=g)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)
    y = torch.randn(20000, 8, generator=g) * 2 + 1  # N(1, 4 I): closed form 8 * 1 + 8 * (1 + 4 - 4) = 16
    z = torch.randn(20000, 8, generator=g)
    assert fid(z, y) == pytest.approx(16.0, rel=0.03)


def test_fid_handles_singular_covariances():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(2))
    x = torch.cat([x, torch.zeros(50, 5)], 1)  # rank 3 of 8
    assert math.isfinite(fid(x, x + 0.5)) and fid(x, x + 0.5) == pytest.approx(8 * 0.25, rel=1e-6)


def test_stats_are_mean_and_unbiased_covariance():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    mu, cov = stats(x)
    assert torch.allclose(mu, torch.tensor([2.0, 4.0], dtype=torch.float64))
    assert torch.allclose(cov, torch.tensor([[2.0, 4.0], [4.0, 8.0]], dtype=torch.float64))
    with pytest.raises(ValueError):
        stats(x[:1])


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(400, 4, generator=g), torch.randn(400, 4, generator=g)
    same, _ = kid(a, b, subsets=20, subset_size=200)
    shifted, _ = kid(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.02 and shifted > 0.2
    assert kid(a, a, subsets=3, subset_size=1000)[0] == pytest.approx(kid(a, a, subsets=3)[0])  # size shrinks to N
