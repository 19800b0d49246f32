"""Evaluation of a trained model: inception score and reconstruction error, as in METHOD.md section 6."""
from __future__ import annotations

import time
from typing import Any

import torch

from .data import Dataset, to_model, to_unit
from .data import toy as toy_data
from .metrics.scores import inception_score, reconstruction_errors
from .model import Model


@torch.no_grad()
def evaluate(model: Model, data: Dataset, n_samples: int = 10000, splits: int = 10, seed: int = 0) -> dict[str, Any]:
    """Scores of a model on the test split; the same seed gives the same numbers."""
    start = time.perf_counter()
    model.eval()
    with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
        torch.manual_seed(seed)
        samples = model.sample(n_samples)
        x = to_model(data.x_test.to(model.device), model.out_range)
        x_rec = model.reconstruct(x)
    if data.name == "toy":
        out = _toy_scores(samples, x, x_rec, splits, seed)
    else:
        out = _image_scores(samples, x, x_rec, model.out_range, seed)
    out.update({"n_samples": n_samples, "splits": splits, "n_test": len(x),
                "eval_seconds": round(time.perf_counter() - start, 3)})
    return out


def _toy_scores(samples, x, x_rec, splits, seed) -> dict[str, Any]:
    """IS with the exact mixture posterior as the classifier; MSE as the squared distance per point."""
    is_mean, is_std = inception_score(toy_data.posterior(samples.cpu()), splits)
    rec = reconstruction_errors(x.cpu(), x_rec.cpu(), seed)
    return {
        "is_mean": is_mean, "is_std": is_std, "is_classifier": "exact mixture posterior",
        "mse": rec["sum_mean"], "mse_std": rec["sum_std"], "mse_per_coord": rec["per_coord"],
        "mse_random": rec["random_sum"], "mse_random_per_coord": rec["random_per_coord"],
        "mse_note": "squared distance per point (sum over the 2 coordinates); per_coord = sum / 2",
        "mode_coverage": _toy_modes(samples.cpu()),
    }


def _toy_modes(samples: torch.Tensor) -> dict[str, Any]:
    """How many of the 5 modes the samples reach, and the share of samples within 3 std of some mode."""
    dist = torch.cdist(samples, toy_data.MEANS)
    near = dist.min(dim=1)
    hit = near.values < 3 * toy_data.STD
    counts = torch.bincount(near.indices[hit], minlength=len(toy_data.MEANS))
    return {"modes": int((counts > 0.02 * len(samples)).sum()), "high_quality": float(hit.float().mean())}


def _image_scores(samples, x, x_rec, out_range, seed) -> dict[str, Any]:
    """Per-pixel MSE on [-1, 1] (the scale of the published numbers) and on [0, 1], with random pairing."""
    x01, rec01 = to_unit(x, out_range).cpu(), to_unit(x_rec, out_range).cpu()
    rec = reconstruction_errors(x01, rec01, seed)
    d = x01[0].numel()
    scale = 4.0  # [0, 1] -> [-1, 1] doubles every difference
    return {
        "is_mean": None, "is_std": None,
        "is_note": "image inception score needs a classifier (svae score); not computed here",
        "mse": rec["per_coord"] * scale, "mse_std": rec["sum_std"] / d * scale,
        "mse_random": rec["random_per_coord"] * scale, "mse_range": "[-1, 1]",
        "mse_01": rec["per_coord"], "mse_random_01": rec["random_per_coord"],
        "mse_note": "mean squared error per pixel; mse and mse_random on [-1, 1], *_01 on [0, 1]",
    }
