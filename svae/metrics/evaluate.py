"""Evaluation of a trained model: inception score and reconstruction error, as in docs/method.md section 6."""
from __future__ import annotations

import time
from typing import Any

import torch

from ..data import Dataset, to_model, to_unit
from ..data import toy as toy_data
from ..datasets import DATASETS
from . import classifier as clf
from .scores import class_spread, inception_score, reconstruction_errors
from ..model import Model


@torch.no_grad()
def evaluate(model: Model, data: Dataset, n_samples: int = 10000, splits: int = 10, seed: int = 0,
             inception_n: int = -1, reconstructor: Model | None = None) -> dict[str, Any]:
    """Scores of a model on the test split; the same seed gives the same numbers. inception_n: images behind the
    Inception-v3 scores of CIFAR-10 and CelebA (train.eval_inception: -1 auto, 0 none). reconstructor: what
    reconstructs the test images where not `model` itself (the same weights with other BatchNorm statistics:
    svae.metrics.bn_stats.scoring_models)."""
    start = time.perf_counter()
    model.eval()
    reconstructor = (reconstructor or model).eval()
    with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
        torch.manual_seed(seed)
        samples = model.sample(n_samples)
        x = to_model(data.x_test.to(model.device), model.out_range)
        x_rec = reconstructor.reconstruct(x)
    if not DATASETS[data.name].image:
        out = _toy_scores(samples, x, x_rec, splits, seed)
    else:
        x01, rec01 = to_unit(x, model.out_range).cpu(), to_unit(x_rec, model.out_range).cpu()
        out = _image_scores(x01, rec01, seed)
        n_inception = inception_images(inception_n, n_samples, model.device.type)
        out.update(_classifier_scores(data, to_unit(samples, model.out_range).cpu(), x01, rec01, splits, n_inception,
                                      inception_n))
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


def _image_scores(x01, rec01, seed) -> dict[str, Any]:
    """Per-pixel MSE on [-1, 1] (the scale of the published numbers) and on [0, 1], with random pairing;
    x01 and rec01 are the test images and their reconstructions in [0, 1]."""
    rec = reconstruction_errors(x01, rec01, seed)
    d = x01[0].numel()
    scale = 4.0  # [0, 1] -> [-1, 1] doubles every difference
    return {
        "mse": rec["per_coord"] * scale, "mse_std": rec["sum_std"] / d * scale,
        "mse_random": rec["random_per_coord"] * scale, "mse_range": "[-1, 1]",
        "mse_01": rec["per_coord"], "mse_random_01": rec["random_per_coord"],
        "mse_note": "mean squared error per pixel; mse and mse_random on [-1, 1], *_01 on [0, 1]",
    }


def inception_images(setting: int, n_samples: int, device_type: str) -> int:
    """How many samples (and test images) Inception-v3 scores: train.eval_inception, with -1 (auto) meaning all
    eval samples on a GPU and none on a CPU (0.13-0.17 s an image on one core: 10,000 and
    10,000 test images take about 50 minutes)."""
    if setting == -1:
        return n_samples if device_type == "cuda" else 0
    return min(setting, n_samples)


def _classifier_scores(data: Dataset, samples01, x01, rec01, splits: int, n_inception: int = 0,
                       setting: int = -1) -> dict[str, Any]:
    """Sample and reconstruction scores from the networks at hand (docs/evaluation.md), never downloaded:
    MNIST: svae's MNIST classifier. CIFAR-10 / CelebA (the dataset table's `inception`): Inception-v3 FID, KID (and
    IS if the weights have the classifier layer) on n_inception images when a weights file is found; a dataset
    with an in-domain classifier (CIFAR-10) gets its scores too, every key suffixed _indomain so the two never mix."""
    from .classifier import MetricError

    info = DATASETS[data.name]
    out: dict[str, Any] = {"is_mean": None, "is_std": None}
    inception_missing = None
    if info.inception:
        if n_inception:
            try:
                out.update(_inception_scores(samples01[:n_inception], x01[:n_inception], splits))
            except MetricError as e:
                inception_missing = str(e)
        else:
            why = "train.eval_inception is 0" if setting == 0 else (
                "on a CPU by default (train.eval_inception -1: 0.13-0.17 s an image)")
            inception_missing = (f"Inception-v3 not run: {why}; `svae eval RUN_DIR --inception N` scores N images "
                                 f"(10,000 as published; fewer raise FID)")
    if info.classifier is None:  # no classifier of its own: Inception-v3 or MSE alone
        if inception_missing:
            out["is_note"] = f"no Inception-v3 scores: {inception_missing}"
        return out
    try:
        loaded = clf.load(info.classifier)
    except MetricError as e:
        out["is_note"] = f"{e}, then `svae eval RUN_DIR`"
        if inception_missing:
            out["is_note"] += f"; no Inception-v3 scores either: {inception_missing}"
        return out
    from .fid import fid
    from .score_arrays import classifier_fields

    probs = clf.predict(loaded.net, samples01)
    is_mean, is_std = inception_score(probs, splits)
    rec_acc = None if data.y_test is None else float(
        (clf.predict(loaded.net, rec01).argmax(1) == data.y_test.cpu()).double().mean())
    fields = classifier_fields(loaded.info, info.classifier)
    spread = {f"is_{k}": v for k, v in class_spread(probs).items()}  # is_marginal_entropy, ...
    if not info.inception:  # the classifier is the dataset's own scorer (MNIST), not a stand-in for Inception
        out.update({"is_mean": is_mean, "is_std": is_std, "is_classifier": fields.pop("scorer"), **fields, **spread,
                    "rec_accuracy": rec_acc,
                    "rec_accuracy_note": "accuracy of the MNIST classifier on G(E(x)) for the test set, "
                                         "against the labels of x: does the reconstruction keep the digit?"})
        return out
    feats = clf.predict(loaded.net, samples01, what="features")
    test_feats = clf.predict(loaded.net, x01, what="features")
    if inception_missing:
        out["is_note"] = f"no Inception-v3 scores ({inception_missing}); in-domain scores below"
    out.update({f"{k}_indomain": v for k, v in spread.items()})
    out.update({"is_indomain_mean": is_mean, "is_indomain_std": is_std, "fid_indomain": fid(feats, test_feats),
                "rec_accuracy_indomain": rec_acc, "classifier_indomain": fields["scorer"],
                "classifier_indomain_file": fields["classifier_file"],
                "classifier_indomain_sha256": fields["classifier_sha256"],
                "classifier_indomain_test_accuracy": fields["classifier_test_accuracy"],
                "real_test_is_indomain_mean": fields["real_test_is_mean"],
                "real_test_is_indomain_std": fields["real_test_is_std"], "indomain_note": fields["note"]})
    return out


def _inception_scores(samples01, x01, splits: int) -> dict[str, Any]:
    """Inception-v3 FID and KID of the samples against as many test images, the FID between the two halves of those
    test images (the floor that this many images allows), and IS where the weights have the classifier layer;
    MetricError when no weights file is found."""
    from .fid import fid, kid
    from .inception import inception_outputs, load_inception
    from .score_arrays import inception_fields

    net, info = load_inception()
    feats, probs = inception_outputs(net, samples01)
    test_feats = inception_outputs(net, x01)[0]
    out: dict[str, Any] = {"is_mean": None, "is_std": None}
    if info["has_fc"]:
        out["is_mean"], out["is_std"] = inception_score(probs, splits)
    else:
        out["is_note"] = f"{info['weights']} has no classifier layer: FID and KID only"
    half = len(test_feats) // 2
    kid_mean, kid_std = kid(feats, test_feats)
    out.update({"fid": fid(feats, test_feats), "kid_mean": kid_mean, "kid_std": kid_std,
                "fid_real_halves": fid(test_feats[:half], test_feats[half:2 * half]) if half >= 2 else None,
                "inception_images": len(feats),
                "fid_note": f"Inception-v3 pool3 features of {len(feats)} samples against {len(test_feats)} test "
                            f"images; fid_real_halves: the test images' two halves against each other (FID's "
                            f"floor at this size); KID: 100 subsets of up to 1,000",
                "is_classifier": "inception-v3", **inception_fields(info)})
    return out


class Probe:
    """The cheap evaluation behind learning curves (train.probe_every): IS of a few thousand samples, test MSE of
    the first test images, class coverage and ambiguity. Never Inception (seconds per image on a CPU): the exact
    posterior on the toy, the domain's own classifier on MNIST and CIFAR-10 (when trained), MSE alone otherwise.
    The classifier is loaded once; each call forks the RNG, so training draws the same noise with or without it."""

    def __init__(self, data: Dataset, n_samples: int = 2000, n_test: int = 1000, seed: int = 0):
        self.data, self.n_samples, self.seed = data, n_samples, seed
        self.x_test = data.x_test[:n_test]
        self.scorer = None
        domain = DATASETS[data.name].classifier
        if domain:
            try:
                self.scorer = clf.load(domain).net
            except clf.MetricError:  # no classifier for this domain: the probe keeps the MSE
                pass

    @torch.no_grad()
    def __call__(self, model: Model) -> dict[str, Any]:
        start, was_training = time.perf_counter(), model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
                torch.manual_seed(self.seed)
                samples = model.sample(self.n_samples)
                x = to_model(self.x_test.to(model.device), model.out_range)
                x_rec = model.reconstruct(x)
        finally:
            model.train(was_training)
        if not DATASETS[self.data.name].image:
            probs = toy_data.posterior(samples.cpu())
            mse = float(((x - x_rec).pow(2).sum(dim=1)).mean())  # squared distance per point, as eval.json
        else:
            x01, rec01 = to_unit(x, model.out_range).cpu(), to_unit(x_rec, model.out_range).cpu()
            mse = float((x01 - rec01).pow(2).mean()) * 4.0  # per pixel on [-1, 1], as eval.json
            probs = None if self.scorer is None else clf.predict(self.scorer, to_unit(samples, model.out_range).cpu())
        out: dict[str, Any] = {"probe_mse": mse}
        if probs is not None:
            spread = class_spread(probs)
            out.update({"probe_is": inception_score(probs, 1)[0], "probe_coverage": spread["marginal_entropy"],
                        "probe_ambiguity": spread["conditional_entropy"],
                        "probe_min_class": min(spread["class_fractions"])})
        out["probe_seconds"] = round(time.perf_counter() - start, 3)
        return out
