"""Frechet distance between Gaussian fits of two feature sets, and the kernel inception distance (KID)."""
from __future__ import annotations

import torch


def stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (N - 1, as numpy.cov) of (N, D) features, in float64."""
    f = features.double()
    if f.dim() != 2 or len(f) < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got {tuple(f.shape)}")
    mu = f.mean(dim=0)
    c = f - mu
    return mu, c.T @ c / (len(f) - 1)


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition; tiny negative
    eigenvalues (rounding) are clipped to 0."""
    m = (m + m.T) / 2
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2): the product S1 S2 is not symmetric, but this one is
    (and PSD), so its square root comes from a symmetric eigendecomposition, which is stable where the
    general matrix square root (scipy's sqrtm) can return complex parts or fail on singular covariances.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    s1 = _sqrt_psd(cov1)
    middle = _sqrt_psd(s1 @ cov2 @ s1)
    d = float((mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * torch.trace(middle))
    return max(d, 0.0)  # rounding can leave -1e-12 for identical sets


def fid(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """FID of two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*stats(features1), *stats(features2))


def _poly_mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018)."""
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    sum_xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    sum_yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sum_xx + sum_yy - 2 * kxy.mean())


def kid(features1: torch.Tensor, features2: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID: mean and std of the unbiased polynomial-kernel MMD^2 over random subsets of both sets (as
    torch-fidelity's defaults: 100 subsets of 1,000); subset_size shrinks to the smaller set if needed."""
    x, y = features1.double(), features2.double()
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError(f"KID needs at least 2 features in each set, got {len(x)} and {len(y)}")
    g = torch.Generator().manual_seed(seed)
    vals = torch.tensor([_poly_mmd2_unbiased(x[torch.randperm(len(x), generator=g)[:size]],
                                             y[torch.randperm(len(y), generator=g)[:size]])
                         for _ in range(subsets)])
    return float(vals.mean()), float(vals.std(unbiased=False)) if subsets > 1 else 0.0
