"""BatchNorm statistics per pathway: each use of a network evaluated with the statistics of what that use feeds it.

In training, every BatchNorm normalises each batch by that batch's own statistics, and the decoder sees two kinds
of batch: prior draws z (the samples) and the encoder's codes E(x) (the reconstructions); the encoder sees real
images x and decoded samples G(z). Their running averages, which evaluation uses, blend the two kinds, so at
evaluation the samples are normalised partly by the codes' statistics and the reconstructions partly by the
prior's: neither pathway is evaluated as it was trained. Re-estimating the statistics on each pathway's own inputs
(as torch.optim.swa_utils.update_bn does for a weight average) gives two copies of the model: a sampler (the
decoder's statistics from prior draws) and a reconstructor (the encoder's from training images, the decoder's from
their codes). docs/evaluation.md section 5c describes the option, docs/results.md has the MNIST measurements.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import nn

from ..config import BN_STATS
from ..data import Dataset, to_model
from ..model import Model, without_critics


@torch.no_grad()
def estimate(net: nn.Module, inputs: Iterable[torch.Tensor]) -> int:
    """Replace the running statistics of every BatchNorm of `net` by their plain average over the batches that
    `inputs` feeds it (in train mode, as training normalised them); `net` ends in eval mode. Returns the number of
    BatchNorm layers re-estimated (0: nothing to do, and `inputs` is not consumed)."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches, not an exponential one
    net.train()
    try:
        for x in inputs:
            net(x)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        net.eval()
    return len(norms)


def _image_batches(data: Dataset, model: Model, batches: int, batch_size: int,
                   generator: torch.Generator) -> Iterator[torch.Tensor]:
    """`batches` random batches of training images, in the model's range, on its device."""
    order = torch.randperm(len(data.x_train), generator=generator)[:batches * batch_size]
    for i in range(0, len(order), batch_size):
        yield to_model(data.x_train[order[i:i + batch_size]].to(model.device), model.out_range)


def _sampler(model: Model, batches: int, batch_size: int) -> Model:
    """A copy of `model` (critics left out) whose decoder's statistics are those of `batches` prior draws."""
    sampler = without_critics(model)
    estimate(sampler.decoder, (sampler.sample_prior(batch_size) for _ in range(batches)))
    return sampler.eval()


@contextmanager
def _seeded(model: Model, seed: int) -> Iterator[None]:
    """The global RNG seeded with `seed` inside and restored after: the prior draws and the networks' noise inputs
    come from it, and an evaluation's own draws must stay those it makes without the re-estimation."""
    with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def pathway_sampler(model: Model, batches: int = 50, batch_size: int = 100, seed: int = 0) -> Model:
    """pathway_models' sampler alone (the same statistics for the same seed): it needs no data, so `svae sample`
    draws what an evaluation per pathway scored without the dataset at hand."""
    with _seeded(model, seed):
        return _sampler(model, batches, batch_size)


def pathway_models(model: Model, data: Dataset, batches: int = 50, batch_size: int = 100,
                   seed: int = 0) -> tuple[Model, Model]:
    """(sampler, reconstructor): copies of `model` (critics left out) whose BatchNorm statistics are re-estimated
    on `batches` batches of each pathway's inputs: the sampler's decoder on prior draws, the reconstructor's
    encoder on training images and its decoder on their codes. `model` is not changed; the same seed gives the
    same statistics, and the global RNG is left as it was."""
    reconstructor = without_critics(model)
    with _seeded(model, seed):
        g = torch.Generator().manual_seed(seed)
        sampler = _sampler(model, batches, batch_size)
        images = list(_image_batches(data, model, batches, batch_size, g))
        estimate(reconstructor.encoder, images)  # leaves it in eval mode: the codes are the evaluated encoder's
        estimate(reconstructor.decoder, (reconstructor.encoder(x) for x in images))
    return sampler, reconstructor.eval()


def estimate_batches(model: Model, batch_size: int = 100) -> int:
    """Batches behind a run's per-pathway statistics: as many inputs as its evaluation scores samples
    (train.eval_samples), at most 5,000 (50 batches of 100, every full evaluation): a small evaluation (a test's, a
    tiny GPU check's) is not outweighed by the estimate. `svae sample` and `reconstruct` use the same number."""
    return max(1, min(50, math.ceil(model.cfg.train.eval_samples / batch_size)))


def scoring_models(model: Model, data: Dataset, bn_stats: str, seed: int = 0) -> tuple[Model, Model]:
    """(sampler, reconstructor) that an evaluation with train.eval_bn_stats = bn_stats scores: `model` itself for
    both with "running", pathway_models' copies (estimate_batches of them) with "pathway"."""
    if bn_stats not in BN_STATS:
        raise ValueError(f"bn_stats: one of {', '.join(BN_STATS)}, got {bn_stats!r}")
    if bn_stats == "running":
        return model, model
    return pathway_models(model, data, batches=estimate_batches(model), seed=seed)
