"""Inception score from class probabilities, and reconstruction errors beside their random-pairing baseline."""
from __future__ import annotations

import torch


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split of the rows; returns (mean, std) over the splits.
    std is the population std (numpy's default), as in the original inception-score code."""
    if probs.dim() != 2 or len(probs) < splits:
        raise ValueError(f"need (N, K) probabilities with N >= splits={splits}, got {tuple(probs.shape)}")
    probs = probs.double().clamp_min(1e-12)
    scores = []
    for part in probs.chunk(splits):
        p_y = part.mean(dim=0, keepdim=True)
        kl = (part * (part.log() - p_y.log())).sum(dim=1).mean()
        scores.append(kl.exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def class_spread(probs: torch.Tensor) -> dict[str, object]:
    """What limits an inception score: log IS over the whole set is H(p(y)) - E_x H(p(y|x)), the entropy of the
    class marginal (how evenly the samples cover the classes, at most log K) minus the mean entropy of each
    sample's prediction (how unambiguous a sample is). Entropies in nats; fractions of argmax classes."""
    probs = probs.double().clamp_min(1e-12)
    marginal = probs.mean(dim=0)
    counts = torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1])
    return {"marginal_entropy": float(-(marginal * marginal.log()).sum()),
            "conditional_entropy": float(-(probs * probs.log()).sum(dim=1).mean()),
            "class_fractions": [round(float(c) / len(probs), 4) for c in counts]}


def squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error per example, summed over its coordinates (or pixels)."""
    return (x.double() - y.double()).pow(2).flatten(1).sum(dim=1)


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation with no fixed point: pairs every example with another one."""
    perm = torch.randperm(n, generator=generator)
    out = torch.empty_like(perm)
    out[perm] = perm.roll(1)
    return out


def reconstruction_errors(x: torch.Tensor, x_rec: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Mean and std (over examples) of the squared error summed over coordinates, its per-coordinate
    mean, and the random-pairing baseline: x against the reconstruction of another example."""
    per_point = squared_error(x, x_rec)
    other = derangement(len(x), torch.Generator().manual_seed(seed))
    rand = squared_error(x, x_rec[other])
    d = x[0].numel()
    return {
        "sum_mean": float(per_point.mean()), "sum_std": float(per_point.std()),
        "per_coord": float(per_point.mean() / d),
        "random_sum": float(rand.mean()), "random_per_coord": float(rand.mean() / d),
    }
