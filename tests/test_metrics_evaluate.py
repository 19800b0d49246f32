"""eval.json of image runs: the MNIST classifier's IS and reconstruction accuracy when it is in the cache, a
note naming the command when it is not, and in-domain CIFAR-10 keys that never share a name with Inception's."""
import math

import pytest
import torch

from svae.metrics import classifier as clf
from svae.presets import get_preset
from svae.run import train
from tests.test_presets import synthetic


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SVAE_INCEPTION_WEIGHTS", raising=False)
    return tmp_path


def _train(name, tmp_path, **train_keys):
    cfg = get_preset(name)
    cfg.train.batch_size, cfg.train.steps, cfg.train.eval_samples, cfg.train.eval_splits = 4, 1, 20, 2
    for key, value in train_keys.items():
        setattr(cfg.train, key, value)
    data = synthetic(cfg, n_train=8, n_test=20)
    data.y_test = torch.arange(20) % 10
    return train(cfg, tmp_path / name, data=data, progress=False)


@pytest.mark.slow
def test_mnist_eval_on_a_fresh_install_uses_the_shipped_classifier(cache):
    ev = _train("mnist-ali", cache)
    assert ev["is_mean"] >= 1.0 and ev["classifier_origin"] == "shipped with svae"
    assert ev["classifier_sha256"] == clf.SHIPPED["mnist"][:16] and ev["classifier_test_accuracy"] >= 0.993
    from svae.experiments.report import row

    assert f"(sha256 {clf.SHIPPED['mnist'][:8]}, test accuracy" in row(cache / "mnist-ali")[1][0]  # svae report


@pytest.mark.slow
def test_eval_without_any_classifier_says_how_to_train_one(cache, monkeypatch):
    monkeypatch.setattr(clf, "SHIPPED", {})
    ev = _train("mnist-ali", cache)
    assert ev["is_mean"] is None and "svae classifier train --domain mnist" in ev["is_note"]


@pytest.mark.slow
def test_mnist_eval_with_the_classifier_reports_is_accuracy_and_real_test_is(cache):
    clf.save(clf.Classifier("mnist"), {"name": "tiny", "test_accuracy": 0.99, "real_test_is_mean": 9.8,
                                       "real_test_is_std": 0.05}, clf.weights_path("mnist"))
    ev = _train("mnist-ali", cache)
    assert 1.0 <= ev["is_mean"] <= 10.0 and ev["is_std"] >= 0 and ev["is_classifier"] == "tiny"
    assert ev["classifier_test_accuracy"] == 0.99 and ev["real_test_is_mean"] == 9.8
    assert 0.0 <= ev["rec_accuracy"] <= 1.0 and "keep the digit" in ev["rec_accuracy_note"]
    # the score's two parts, over all 20 samples: log IS of one split = coverage - ambiguity
    assert len(ev["is_class_fractions"]) == 10 and sum(ev["is_class_fractions"]) == pytest.approx(1.0)
    assert 0.0 <= ev["is_conditional_entropy"] <= ev["is_marginal_entropy"] + 1e-9 <= math.log(10) + 1e-9


@pytest.mark.slow
def test_cifar_eval_uses_labelled_in_domain_keys_when_no_inception_weights(cache):
    clf.save(clf.Classifier("cifar10"), {"name": "svae-cifar10-indomain", "test_accuracy": 0.8,
                                         "real_test_is_mean": 7.0, "real_test_is_std": 0.1},
             clf.weights_path("cifar10"))
    ev = _train("cifar10-svae-r", cache, eval_inception=20)  # asked for, but no weights anywhere
    assert ev["is_mean"] is None and "fid" not in ev and "pt_inception-2015-12-05-6726825d.pth" in ev["is_note"]
    assert ev["is_indomain_mean"] >= 1.0 and ev["fid_indomain"] >= 0 and ev["classifier_indomain_test_accuracy"] == 0.8
    assert "not Inception" in ev["indomain_note"]
    assert len(ev["is_class_fractions_indomain"]) == 10 and "is_marginal_entropy" not in ev


def _images(n, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_on_a_cpu_inception_runs_only_when_asked_and_the_note_says_how(cache, monkeypatch):
    from types import SimpleNamespace

    from svae.metrics.evaluate import _classifier_scores, inception_images
    from svae.metrics import inception

    assert [inception_images(-1, 10000, d) for d in ("cpu", "cuda")] == [0, 10000]
    assert inception_images(0, 10000, "cuda") == 0 and inception_images(500, 200, "cpu") == 200
    monkeypatch.setattr(inception, "load_inception", lambda *a, **k: pytest.fail("Inception loaded on a CPU default"))
    x = _images(8)
    out = _classifier_scores(SimpleNamespace(name="celeba", y_test=None), x, x, x, splits=2, n_inception=0)
    assert "fid" not in out and "svae eval RUN_DIR --inception N" in out["is_note"] and "on a CPU" in out["is_note"]
    out = _classifier_scores(SimpleNamespace(name="celeba", y_test=None), x, x, x, 2, n_inception=0, setting=0)
    assert "train.eval_inception is 0" in out["is_note"]


def test_inception_fid_kid_and_the_real_halves_floor_beside_the_in_domain_scores(cache, monkeypatch):
    from types import SimpleNamespace

    from svae.metrics.evaluate import _classifier_scores
    from svae.metrics import inception
    from tests.test_metrics_inception import TinyInception

    monkeypatch.setattr(inception, "load_inception", lambda path=None, device="cpu": (
        TinyInception(), {"weights": "tiny", "sha256": "0" * 16, "has_fc": False}))
    clf.save(clf.Classifier("cifar10"), {"name": "svae-cifar10-indomain", "test_accuracy": 0.8,
                                         "real_test_is_mean": 7.0, "real_test_is_std": 0.1},
             clf.weights_path("cifar10"))
    samples, x = _images(30, 1), _images(30, 2)
    data = SimpleNamespace(name="cifar10", y_test=torch.arange(30) % 10)
    out = _classifier_scores(data, samples, x, x, splits=2, n_inception=12)
    assert out["inception_images"] == 12 and out["fid"] >= 0 and out["fid_real_halves"] >= 0
    # TinyInception's features are channel means: 6 test images against the other 6
    feats = x[:12].mean(dim=(2, 3))
    from svae.metrics.fid import fid

    assert out["fid_real_halves"] == pytest.approx(fid(feats[:6], feats[6:]))
    assert math.isfinite(out["kid_mean"]) and out["kid_std"] >= 0
    assert out["is_mean"] is None and "FID and KID only" in out["is_note"]  # weights without the classifier layer
    assert out["is_indomain_mean"] >= 1.0  # the cheap in-domain scores are kept beside Inception's
