"""IS / FID plumbing with tiny stand-in networks (no weights files), the classifier cache, and `svae score`."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from svae.cli import main
from svae.metrics import classifier as clf
from svae.metrics import score_arrays as score_mod
from svae.metrics.classifier import Classifier, MetricError, augment, random_shift


class OneHot(nn.Module):
    """Stand-in classifier: an image's mean pixel value k/10 (+0.05) names its class k, with certainty;
    features are the pixels of its top-left 2x2 corner (few dimensions keep the covariances small)."""

    def __init__(self, uniform: bool = False):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.uniform = uniform

    def features(self, x):
        return x[:, :, :2, :2].flatten(1)

    def forward(self, x):
        k = (x.flatten(1).mean(1) * 10).floor().long().clamp(0, 9)
        if self.uniform:
            return torch.zeros(len(x), 10)
        return torch.nn.functional.one_hot(k, 10).float() * 100


def images(classes, shape=(1, 28, 28)):
    return torch.stack([torch.full(shape, k / 10 + 0.05) for k in classes])


@pytest.fixture
def stand_in(monkeypatch):
    def use(net):
        monkeypatch.setattr(clf, "load", lambda domain, path=None, device="cpu": clf.Loaded(
            net, {"name": "stand-in", "test_accuracy": 1.0, "real_test_is_mean": 10.0, "real_test_is_std": 0.0}))
    return use


def test_inception_score_of_a_one_hot_balanced_classifier_is_the_class_count(stand_in):
    stand_in(OneHot())
    out = score_mod.score_images(images(list(range(10)) * 20), "is", "mnist")
    assert out["is_mean"] == pytest.approx(10.0) and out["is_std"] == pytest.approx(0.0, abs=1e-9)
    assert out["classifier_test_accuracy"] == 1.0 and out["real_test_is_mean"] == 10.0


def test_inception_score_of_uniform_predictions_or_one_class_is_one(stand_in):
    stand_in(OneHot(uniform=True))
    assert score_mod.score_images(images(list(range(10)) * 2), "is", "mnist")["is_mean"] == pytest.approx(1.0)
    stand_in(OneHot())
    assert score_mod.score_images(images([3] * 20), "is", "mnist")["is_mean"] == pytest.approx(1.0)


def test_fid_in_classifier_features_is_zero_for_one_set_and_labelled_in_domain_for_cifar(stand_in):
    stand_in(OneHot())
    x = torch.rand(30, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = score_mod.score_images(x, "fid", "cifar10", ref=x)
    assert out["fid"] == pytest.approx(0.0, abs=1e-6) and out["in_domain"] is True and "not Inception" in out["note"]
    shifted = score_mod.score_images(x, "fid", "cifar10", ref=(x + 0.1).clamp(0, 1))["fid"]
    assert shifted > 0.05  # about 12 features x 0.1^2
    with pytest.raises(MetricError, match="shape"):
        score_mod.score_images(x, "is", "mnist")


def test_classifier_round_trips_through_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path))
    monkeypatch.setattr(clf, "SHIPPED", {})  # as for a domain svae ships no classifier for
    with pytest.raises(MetricError, match="svae classifier train --domain mnist"):
        clf.load("mnist")
    net = Classifier("mnist")
    path = clf.save(net, {"name": "tiny", "test_accuracy": 0.5}, clf.weights_path("mnist"))
    assert path == tmp_path / "classifiers" / "mnist-cnn.pt" and path.with_suffix(".json").is_file()
    loaded = clf.load("mnist")
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(clf.predict(loaded.net, x), clf.predict(net.eval(), x))
    assert loaded.info["test_accuracy"] == 0.5
    assert clf.load("mnist", tmp_path / "classifiers").info["name"] == "tiny"  # a folder works as --classifier


# ---------------------------------------------------------------- the classifiers shipped with svae


def test_a_fresh_install_scores_mnist_with_the_shipped_classifier(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "empty"))
    loaded = clf.load("mnist")
    info = loaded.info
    assert info["origin"] == "shipped with svae" and info["sha256"] == clf.SHIPPED["mnist"][:16]
    assert info["file"] == str(clf.SHIPPED_DIR / "mnist-cnn.pt")
    assert info["test_accuracy"] >= 0.993 and info["real_test_is_mean"] >= 9.7  # measured on the fp16 file itself
    fields = score_mod.score_images(torch.rand(20, 1, 28, 28), "is", "mnist", splits=2)
    assert fields["classifier_origin"] == "shipped with svae" and fields["classifier_sha256"] == info["sha256"]
    assert fields["classifier_test_accuracy"] == info["test_accuracy"]


def test_a_fresh_install_scores_cifar10_in_domain_with_the_shipped_classifier(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "empty"))
    info = clf.load("cifar10").info
    assert info["origin"] == "shipped with svae" and info["sha256"] == clf.SHIPPED["cifar10"][:16]
    # measured on the shipped file itself by scripts/ship_classifier.py (the JPEG-decoded test split of the data)
    assert info["test_accuracy"] >= 0.85 and 6.5 <= info["real_test_is_mean"] <= 10 and info["in_domain"]
    fields = score_mod.score_images(torch.rand(20, 3, 32, 32), "is", "cifar10", splits=2)
    assert fields["classifier_origin"] == "shipped with svae" and 1.0 <= fields["is_mean"] <= 10.0


def test_an_explicit_file_beats_the_user_cache_which_beats_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    clf.save(Classifier("mnist"), {"name": "mine"}, clf.weights_path("mnist"))
    clf.save(Classifier("mnist"), {"name": "explicit"}, tmp_path / "other.pt")
    assert clf.load("mnist").info["origin"] == "user cache" and clf.load("mnist").info["name"] == "mine"
    explicit = clf.load("mnist", tmp_path / "other.pt").info
    assert explicit["origin"] == "--classifier" and explicit["name"] == "explicit"
    with pytest.raises(MetricError, match="from --classifier"):
        clf.load("mnist", tmp_path / "missing.pt")


def test_a_damaged_shipped_classifier_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "empty"))
    broken = tmp_path / "weights"
    broken.mkdir()
    data = bytearray((clf.SHIPPED_DIR / "mnist-cnn.pt").read_bytes())
    data[-100] ^= 1  # one bit of one weight
    (broken / "mnist-cnn.pt").write_bytes(bytes(data))
    monkeypatch.setattr(clf, "SHIPPED_DIR", broken)
    with pytest.raises(MetricError, match="damaged; reinstall svae"):
        clf.load("mnist")
    (broken / "mnist-cnn.pt").unlink()
    with pytest.raises(MetricError, match="missing; reinstall svae"):
        clf.load("mnist")


def test_a_domain_without_a_shipped_classifier_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "SHIPPED", {k: v for k, v in clf.SHIPPED.items() if k != "cifar10"})
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path))
    with pytest.raises(MetricError) as e:
        clf.load("cifar10")
    msg = str(e.value)
    assert str(tmp_path / "classifiers" / "cifar10-indomain.pt") in msg and "none ships with svae" in msg
    assert "svae classifier train --domain cifar10" in msg


def test_every_shipped_file_is_package_data_of_the_wheel():
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["svae.metrics"]
    assert clf.SHIPPED, "no classifier is shipped"
    for domain in clf.SHIPPED:
        for name in (clf.WEIGHTS[domain], clf.WEIGHTS[domain].replace(".pt", ".json")):
            assert (clf.SHIPPED_DIR / name).is_file() and any(fnmatch.fnmatch(f"weights/{name}", g) for g in globs)


@pytest.mark.slow
def test_the_shipped_classifier_gives_the_real_mnist_test_set_its_recorded_is(tmp_path, monkeypatch):
    from helpers import shared_data_dir

    folder = shared_data_dir()
    if not (folder / "mnist.npz").is_file():
        pytest.skip(f"no mnist.npz in {folder} (set SVAE_SHARED_DATA to the folder holding it)")
    from svae.data.images import load_images

    monkeypatch.setenv("SVAE_CACHE", str(tmp_path))
    x = load_images("mnist", folder, "npz").x_test.float() / 255.0
    out = score_mod.score_images(x, "is", "mnist")
    assert out["classifier_origin"] == "shipped with svae" and out["is_mean"] >= 9.7
    assert round(out["is_mean"], 3) == round(out["real_test_is_mean"], 3)


def test_training_loop_runs_and_writes_the_sidecar_numbers():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    out = clf.train("mnist", x, y, x[:20], y[:20], epochs=1, batch_size=32, log=lambda s: None)
    assert {"test_accuracy", "real_test_is_mean", "real_test_is_std"} <= set(out.info)
    assert 1.0 <= out.info["real_test_is_mean"] <= 10.0


def test_augmentation_shifts_within_the_padding_and_flips_cifar_only():
    x = torch.zeros(8, 1, 6, 6)
    x[:, :, 2:4, 2:4] = 1.0
    s = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert s.shape == x.shape and torch.all(s.sum(dim=(1, 2, 3)) == 4)  # the blob moves but stays whole
    c = torch.rand(64, 3, 8, 8)
    assert augment(c, "cifar10", torch.Generator().manual_seed(0)).shape == c.shape


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder with a randomly initialised (untrained) MNIST classifier in it."""
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SVAE_INCEPTION_WEIGHTS", raising=False)
    torch.manual_seed(0)
    clf.save(Classifier("mnist"), {"name": "tiny-untrained", "test_accuracy": 0.1, "real_test_is_mean": 1.2,
                                   "real_test_is_std": 0.01}, clf.weights_path("mnist"))
    return tmp_path


def test_score_cli_prints_json_and_a_collapsed_set_scores_one(cache, capsys):
    x = np.random.default_rng(0).random((40, 1, 28, 28)).astype(np.float32)
    np.save(cache / "x.npy", x)
    np.save(cache / "one.npy", np.repeat(x[:1], 40, axis=0))
    assert main(["score", str(cache / "x.npy"), "--metric", "is", "--domain", "mnist", "--splits", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"is_mean", "is_std", "classifier_test_accuracy", "real_test_is_mean"} <= set(out) and out["n"] == 40
    assert main(["score", str(cache / "one.npy"), "--domain", "mnist"]) == 0
    assert json.loads(capsys.readouterr().out)["is_mean"] == pytest.approx(1.0)
    fid_argv = ["score", str(cache / "x.npy"), "--metric", "fid", "--domain", "mnist", "--ref", str(cache / "x.npy")]
    assert main(fid_argv) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("argv,message", [
    (["--metric", "is", "--domain", "cifar10", "--classifier", "/nope.pt"], "from --classifier"),
    (["--metric", "fid", "--domain", "mnist"], "need a reference: --ref FILE.npy, or --data-dir"),
    (["--metric", "is", "--domain", "inception"], "pt_inception-2015-12-05-6726825d.pth"),
    (["--metric", "fid", "--domain", "inception", "--ref", "X"], "pt_inception-2015-12-05-6726825d.pth"),
    (["--metric", "is", "--domain", "inception", "--inception-weights", "/nope.pth"],
     "/nope.pth (from --inception-weights): no such file"),
])
def test_score_cli_bad_input_exits_2_with_one_line(cache, capsys, argv, message):
    np.save(cache / "x.npy", np.zeros((20, 3, 32, 32) if "cifar10" in argv else (20, 1, 28, 28), np.float32))
    argv = [a if a != "X" else str(cache / "x.npy") for a in argv]
    assert main(["score", str(cache / "x.npy")] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("svae: error:")


def test_score_cli_rejects_arrays_outside_the_contract(cache, capsys):
    np.save(cache / "bad.npy", np.full((20, 1, 28, 28), 3.0, np.float32))
    assert main(["score", str(cache / "bad.npy"), "--domain", "mnist"]) == 2
    assert "expected [0, 1]" in capsys.readouterr().err
    np.save(cache / "flat.npy", np.zeros((20, 784), np.float32))
    assert main(["score", str(cache / "flat.npy"), "--domain", "mnist"]) == 2
    assert "expected images (N, C, H, W)" in capsys.readouterr().err
