"""The dataset table (svae/datasets.py) and the model-kind table (svae/kinds.py): every module reads them, so each
row must agree with the networks, readers, classifiers and presets it names."""
import importlib

import pytest
import torch

from svae.config import DATASETS as CONFIG_DATASETS, OBJECTIVES, Config, ConfigError, ModelConfig, validate
from svae.datasets import CLASSIFIER_DOMAINS, DATASETS, IMAGE_DATASETS, SHAPES
from svae.kinds import KINDS, kind
from svae.metrics import classifier
from svae.models import build_networks, x_shape
from svae.objectives import Objective
from svae.presets import PRESETS, get_preset


@pytest.mark.parametrize("name", list(DATASETS))
def test_each_dataset_row_names_networks_that_fit_its_shape_and_range(name):
    d = DATASETS[name]
    cfg = get_preset(f"{name}-ali").model
    nets = build_networks(cfg)
    z = torch.randn(3, cfg.z_dim) * 50  # large codes saturate the output: still inside the range
    x = nets.decoder.eval()(z)
    assert tuple(x.shape[1:]) == d.shape == x_shape(name)
    assert nets.decoder.out_range == d.out_range
    if d.out_range is not None:
        assert d.out_range[0] <= x.min() and x.max() <= d.out_range[1]
    assert nets.critic.eval()(x, z).shape == (3,)


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_each_image_row_names_a_reader_and_an_npz_file(name):
    d = DATASETS[name]
    reader = importlib.import_module(f"svae.data.{d.reader}")
    assert callable(reader.plan) and callable(reader.present) and reader.RAW_HINT
    assert d.npz.endswith(".npz") and d.n_train > 0 and SHAPES[name] == d.shape


def test_the_classifier_domains_are_the_rows_that_name_one():
    assert classifier.DOMAINS == CLASSIFIER_DOMAINS == ("mnist", "cifar10")
    assert not DATASETS["toy"].image and not DATASETS["toy"].inception


def test_config_and_presets_take_their_names_from_the_tables():
    assert CONFIG_DATASETS == tuple(DATASETS) and OBJECTIVES == tuple(KINDS)
    assert set(PRESETS) == {f"{d}-{k.spelling}" for d in DATASETS for k in KINDS.values()}
    for name, cfg in PRESETS.items():
        k = kind(cfg.objective.kind)
        assert name.endswith(f"-{k.spelling}") and cfg.objective.lam == (1.0 if k.reconstructs else 0.0)


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_row_decides_what_its_objective_computes(name):
    k = KINDS[name]
    assert kind(k.spelling) is k and kind(name) is k
    cfg = get_preset(f"toy-{k.spelling}")
    obj = Objective.of(cfg.objective)
    assert obj.adversarial == k.adversarial and obj.critics == (1 if k.adversarial else 0)
    assert obj.uses_reconstruction == (k.reconstructs and cfg.objective.lam > 0)
    if k.adversarial:
        lq, lp = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0])
        expected = {"ali": torch.nn.functional.softplus(lq).mean() + torch.nn.functional.softplus(-lp).mean(),
                    "svae": lq.mean() - lp.mean()}[k.gen_loss]
        assert torch.allclose(obj.adversarial_loss(lq, lp), expected)


def test_an_unknown_name_is_refused_naming_the_rows():
    with pytest.raises(KeyError, match="svae_r"):
        kind("svae-x")
    cfg = Config()
    cfg.data.name = "svhn"
    with pytest.raises(ConfigError, match="toy, mnist, cifar10, celeba"):
        validate(cfg)
    assert ModelConfig().arch in DATASETS
