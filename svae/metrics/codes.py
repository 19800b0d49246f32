"""Where the samples' ambiguity comes from: the decoder on the encoder's codes against the decoder on the prior.

An inception score falls short either because the decoder cannot draw clear images, or because the prior p(z)
puts mass where the encoder never puts codes (q(z) != p(z)), where only the critic, never the reconstruction term,
shapes what the decoder draws.
The classifier tells the two apart by scoring the same decoder on four inputs: real test images (the ceiling),
G(E(x)) (the decoder on the codes of test images: what it can draw), G(z) for z from the prior (the samples), and
G(z) for z from a Gaussian with the codes' mean and covariance (are the codes' first two moments enough?), and
G(z) on the straight path from a code to a prior sample, z = (1 - t) E(x) + t z_p: where on the way from the codes
to the prior the images turn ambiguous. scripts/code_gap.py runs it on a study's runs.
"""
from __future__ import annotations

from typing import Any

import torch

from ..data import Dataset, to_model, to_unit
from ..datasets import DATASETS
from ..model import Model
from ..models.blocks import sample_prior
from . import classifier as clf
from .scores import class_spread, inception_score

PATH = (0.25, 0.5, 0.75)  # the path's inner points (t = 0 are the reconstructions, t = 1 the samples)


def _scores(net: torch.nn.Module, x01: torch.Tensor) -> dict[str, float]:
    """IS, coverage H(p(y)) and ambiguity E H(p(y|x)) of images in [0, 1] (log IS = coverage - ambiguity)."""
    probs = clf.predict(net, x01)
    spread = class_spread(probs)
    return {"is": inception_score(probs)[0], "coverage": spread["marginal_entropy"],
            "ambiguity": spread["conditional_entropy"]}


@torch.no_grad()
def code_gap(model: Model, data: Dataset, n: int = 10000, seed: int = 0) -> dict[str, Any]:
    """The classifier's scores of real test images, of the decoder on their codes, on prior samples, on samples
    of a Gaussian fitted to the codes and on the path from codes to prior samples; the codes' moments against the
    prior's, and how far prior samples lie from the nearest code against how far codes lie from each other (for a
    Gaussian encoder, whose codes are draws of q(z|x), also the median standard deviation of q(z|x)).
    Needs a dataset with a classifier of its own (MNIST, CIFAR-10)."""
    info = DATASETS[data.name]
    if not info.image or info.classifier is None:
        raise ValueError(f"code_gap needs an image dataset with a classifier of its own (mnist, cifar10), "
                         f"got {data.name!r}")
    net = clf.load(info.classifier).net
    model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x = to_model(data.x_test[:n].to(model.device), model.out_range)
        z = model.encode(x)
        shape = z.shape[1:]  # what the decoder takes (a vector, or a 1x1 map for the conv networks)
        codes = z.flatten(1).double()
        prior = model.sample_prior(len(z))
        mean, cov = codes.mean(0), torch.cov(codes.T)
        fitted = torch.distributions.MultivariateNormal(
            mean, cov + 1e-6 * torch.eye(len(mean), dtype=cov.dtype, device=cov.device)).sample((len(z),))
        rec = model.decode(z)
        samples = model.decode(prior)
        fitted_samples = model.decode(fitted.to(z.dtype).reshape(-1, *shape))
        path = [model.decode(torch.lerp(z, prior.reshape(z.shape), t)) for t in PATH]
    unit = lambda t: to_unit(t, model.out_range).cpu()  # noqa: E731
    out: dict[str, Any] = {"n": len(codes), "seed": seed, "classifier": info.classifier,
                           "prior_kind": model.cfg.model.prior}
    for name, images in (("real", x), ("reconstructions", rec), ("fitted", fitted_samples)):
        out[name] = _scores(net, unit(images))
    out["prior"] = _scores(net, unit(samples))
    out["path"] = [{"t": 0.0, **out["reconstructions"]}] + [
        {"t": t, **_scores(net, unit(images))} for t, images in zip(PATH, path)] + [{"t": 1.0, **out["prior"]}]
    codes, prior = codes.cpu(), prior.flatten(1).double().cpu()
    eig = torch.linalg.eigvalsh(cov)
    d = len(mean)
    out["codes"] = {
        "dims": d, "mean_norm": float(mean.norm()),
        "cov_eigenvalues": {"min": float(eig.min()), "median": float(eig.median()), "max": float(eig.max())},
        # KL(N(mean, cov) || N(0, I)): how far the codes' first two moments sit from a standard normal prior (for
        # the uniform prior on [-1, 1]^d the reference is its own covariance, I/3)
        "kl_fit": float(_kl_to_isotropic(mean.cpu(), cov.cpu(), 1.0 if out["prior_kind"] == "normal" else 1 / 3)),
        "nearest_code_median": {"prior_samples": float(_nearest(prior, codes).median()),
                                "codes": float(_nearest(codes, codes, exclude_self=True).median())}}
    if model.cfg.model.encoder_head == "gaussian":  # the codes are draws of q(z|x): how wide is it?
        logvar = torch.cat([model.encoder.gaussian(x[i:i + 1000])[1] for i in range(0, len(x), 1000)])
        out["codes"]["posterior_std_median"] = float((0.5 * logvar.double()).exp().median())
    return out


def prior_spacing(prior: str, dims: int, n: int, seed: int = 0) -> float:
    """The nearest-code medians that codes drawn from the prior itself would give: the median distance from each of
    n prior samples to the nearest of n other prior samples (the scale against which code_gap's two medians read)."""
    g = torch.Generator().manual_seed(seed)
    queries, codes = (sample_prior(n, dims, prior, generator=g).double() for _ in range(2))
    return float(_nearest(queries, codes).median())


def _kl_to_isotropic(mean: torch.Tensor, cov: torch.Tensor, var: float) -> torch.Tensor:
    """KL(N(mean, cov) || N(0, var I)) in nats."""
    d = len(mean)
    return 0.5 * (cov.trace() / var + mean @ mean / var - d + d * torch.log(torch.tensor(var, dtype=cov.dtype))
                  - torch.logdet(cov))


def _nearest(queries: torch.Tensor, codes: torch.Tensor, exclude_self: bool = False,
             chunk: int = 1000) -> torch.Tensor:
    """Each query's distance to its nearest code (in chunks: 10,000 x 10,000 distances at once would take 800 MB);
    exclude_self when the queries are the codes (each code's nearest other code: the scale of near and far)."""
    out = []
    for i in range(0, len(queries), chunk):
        dist = torch.cdist(queries[i:i + chunk], codes)
        if exclude_self:
            dist[torch.arange(len(dist)), torch.arange(i, i + len(dist))] = float("inf")
        out.append(dist.min(dim=1).values)
    return torch.cat(out)
