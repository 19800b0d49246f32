"""Score any array of images the same way (`svae score`): IS, FID or KID with svae's classifiers or Inception-v3."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..data._checks import check_array, read_npy
from ..datasets import DATASETS, SHAPES
from . import classifier as clf
from .classifier import MetricError
from .fid import fid, kid
from .scores import inception_score

if TYPE_CHECKING:
    from .inception import Weights

INDOMAIN_NOTE = ("in-domain CIFAR-10 classifier trained by svae, not Inception-v3: compare only with other "
                 "in-domain numbers, never with published Inception scores")


def load_array(path: str | Path, what: str = "file") -> torch.Tensor:
    """An (N, C, H, W) image array: float in [0, 1] (the array contract) or uint8 0..255."""
    arr = read_npy(path, what)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise MetricError(f"{what} {path}: shape {arr.shape}, expected images (N, C, H, W) with C = 1 or 3")
    return torch.from_numpy(check_array(arr, f"{what} {path}", None, images=True))


def dataset_of(shape: tuple[int, ...]) -> str:
    for name, s in SHAPES.items():
        if tuple(shape) == s:
            return name
    known = ", ".join(f"{k} {v}" for k, v in SHAPES.items())
    raise MetricError(f"images of shape {tuple(shape)} match no dataset ({known})")


def reference_images(domain_data: str, ref: str | None, data_dir: str | None) -> tuple[torch.Tensor, str]:
    """The reference set of FID / KID: --ref FILE.npy, or the test split of the dataset in --data-dir (or in the
    default data folder)."""
    if ref:
        return load_array(ref, "--ref"), str(ref)
    from ..data.images import DataError, load_images

    try:
        splits = load_images(domain_data, data_dir)
    except DataError as e:
        if data_dir:
            raise
        raise MetricError(f"fid / kid need a reference: --ref FILE.npy, or --data-dir DIR (its test split); "
                          f"{e}") from None
    return splits.x_test.float() / 255.0, f"{domain_data} test split ({data_dir or 'default data folder'})"


def classifier_fields(info: dict[str, Any], domain: str) -> dict[str, Any]:
    """What every score from svae's classifier carries: which net (name, file, where it came from, sha256), its
    test accuracy and the real test set's IS, so that two scores are known to be comparable or not."""
    out = {"scorer": info.get("name", f"svae-{domain}"), "classifier_file": info.get("file"),
           "classifier_origin": info.get("origin"), "classifier_sha256": info.get("sha256"),
           "classifier_test_accuracy": info.get("test_accuracy"),
           "real_test_is_mean": info.get("real_test_is_mean"), "real_test_is_std": info.get("real_test_is_std")}
    if DATASETS[domain].inception:  # svae's classifier stands in for Inception-v3 there: say so
        out.update({"in_domain": True, "note": INDOMAIN_NOTE})
    return out


def inception_fields(info: dict[str, Any]) -> dict[str, Any]:
    """What every Inception-v3 score carries: which weights file, where it was found, its sha256 and whether
    that is the known sha256 of the published weights."""
    return {"inception_weights": info["weights"], "inception_file": info.get("file"),
            "inception_origin": info.get("origin"), "inception_sha256": info["sha256"],
            "inception_known": info.get("known")}


def score_images(x: torch.Tensor, metric: str, domain: str, ref: torch.Tensor | None = None,
                 inception_weights: str | Path | Weights | None = None, classifier: str | None = None,
                 splits: int = 10, device: str = "cpu") -> dict[str, Any]:
    """IS of x, or FID / KID of x against ref, in the feature space of domain's network."""
    if metric not in ("is", "fid", "kid"):
        raise MetricError(f"unknown metric {metric!r}; expected is, fid or kid")
    if splits < 1:
        raise MetricError(f"--splits must be >= 1, got {splits}")
    if metric == "is" and len(x) < splits:
        raise MetricError(f"{len(x)} images for {splits} splits: the inception score needs at least one per split")
    if metric != "is" and (ref is None or len(x) < 2 or len(ref) < 2):
        raise MetricError("fid / kid need at least 2 images and 2 reference images")
    if domain == "inception":
        from .inception import inception_outputs, load_inception

        net, info = load_inception(inception_weights, device)
        if metric == "is" and not info["has_fc"]:
            raise MetricError(f"{info['weights']}: these Inception weights have no classifier layer (features only): "
                              "use them for fid / kid; the inception score needs pt_inception-2015-12-05-6726825d.pth")
        feats, probs = inception_outputs(net, x)
        ref_feats = inception_outputs(net, ref)[0] if metric != "is" else None
        out: dict[str, Any] = {"scorer": "inception-v3 (TF 2015-12-05, pytorch-fid/torch-fidelity port)",
                               **inception_fields(info)}
    else:
        if tuple(x.shape[1:]) != SHAPES[domain] or (ref is not None and tuple(ref.shape[1:]) != SHAPES[domain]):
            raise MetricError(f"--domain {domain} scores images of shape (N, {', '.join(map(str, SHAPES[domain]))}), "
                              f"got {tuple(x.shape)}" + ("" if ref is None else f" and reference {tuple(ref.shape)}"))
        loaded = clf.load(domain, classifier, device)
        probs = clf.predict(loaded.net, x) if metric == "is" else None
        feats = clf.predict(loaded.net, x, what="features") if metric != "is" else None
        ref_feats = clf.predict(loaded.net, ref, what="features") if metric != "is" else None
        out = classifier_fields(loaded.info, domain)
    out.update({"metric": metric, "domain": domain, "n": len(x)})
    if metric == "is":
        out["is_mean"], out["is_std"] = inception_score(probs, splits)
        out["splits"] = splits
    elif metric == "fid":
        out["fid"], out["n_ref"] = fid(feats, ref_feats), len(ref_feats)
    else:
        out["kid_mean"], out["kid_std"] = kid(feats, ref_feats)
        out["n_ref"] = len(ref_feats)
    return out


def score_file(path: str, metric: str, domain: str, ref: str | None = None, data_dir: str | None = None,
               inception_weights: str | None = None, classifier: str | None = None, splits: int = 10,
               device: str = "cpu") -> dict[str, Any]:
    """`svae score FILE.npy`: the JSON-ready scores of an image array."""
    x = load_array(path)
    weights = None
    if domain == "inception":  # fail on missing weights before reading a reference set
        from .inception import find_weights

        weights = find_weights(inception_weights)
    ref_x, ref_name = None, None
    if metric != "is":
        data = domain if domain != "inception" else dataset_of(x.shape[1:])
        ref_x, ref_name = reference_images(data, ref, data_dir)
    out = {"file": str(path), **score_images(x, metric, domain, ref_x, weights, classifier, splits, device)}
    if ref_name:
        out["ref"] = ref_name
    return out
