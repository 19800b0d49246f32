"""The 2-D toy data: a mixture of 5 Gaussians, means (0,0) and (+-2,+-2), std 0.2, equal weights."""
from __future__ import annotations

import math

import torch

MEANS = torch.tensor([[0.0, 0.0], [2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]])
STD = 0.2


def sample_mixture(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points and their component labels, drawn with the given generator (reproducible)."""
    labels = torch.randint(0, len(MEANS), (n,), generator=generator)
    x = MEANS[labels] + STD * torch.randn(n, 2, generator=generator)
    return x, labels


def posterior(x: torch.Tensor) -> torch.Tensor:
    """Exact p(component | x) under the mixture: the toy's 'classifier' for the inception score."""
    means = MEANS.to(x.device, x.dtype)
    log_lik = -((x[:, None, :] - means[None]) ** 2).sum(-1) / (2 * STD**2)  # equal weights and stds cancel
    return torch.softmax(log_lik, dim=1)


def log_density(x: torch.Tensor) -> torch.Tensor:
    """log q(x) of the mixture, for diagnostics and plots."""
    means = MEANS.to(x.device, x.dtype)
    sq = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    log_comp = -sq / (2 * STD**2) - math.log(2 * math.pi * STD**2)
    return torch.logsumexp(log_comp, dim=1) - math.log(len(MEANS))
