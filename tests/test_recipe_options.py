"""The recipe switches: decoder_bn (Table 1's MLP BN over units), the authors' probability loss, critic noise, lrelu
critics and Xavier initialisation; each against a hand computation or the layers it must build."""
import pytest
import torch
from torch import nn

import svae
from svae.config import ConfigError, validate
from svae.models.tuning import BatchNorm1d, BatchNorm2d, Unflatten
from svae.objectives import Objective, probability_generator_loss
from svae.presets import get_preset


@pytest.mark.parametrize("preset, units", [("mnist-ali", 64 * 7 * 7), ("cifar10-ali", 512 * 4 * 4),
                                           ("celeba-ali", 512 * 4 * 4)])
def test_decoder_bn_units_normalises_the_mlp_layer_over_its_units(preset, units):
    layers = list(svae.build(preset, **{"model.decoder_bn": "units"}).decoder.net)
    i = next(k for k, m in enumerate(layers) if isinstance(m, Unflatten))
    assert isinstance(layers[i - 2], BatchNorm1d) and layers[i - 2].num_features == units
    layers = list(svae.build(preset, **{"model.decoder_bn": "channels"}).decoder.net)
    i = next(k for k, m in enumerate(layers) if isinstance(m, Unflatten))
    assert isinstance(layers[i + 1], BatchNorm2d)


def test_with_bn_over_units_a_faint_dependence_on_z_is_restored_per_channel_it_is_not():
    """The collapse that per-channel BN allows: once the Linear's output depends on z only faintly (small weights)
    beside a spatial pattern (its bias), per-channel statistics are those of the pattern and every sample comes out
    the same image; BN over the units divides each unit by its own spread across the batch, restoring the variation."""
    spread = {}
    for bn in ("channels", "units"):
        torch.manual_seed(0)
        dec = svae.build("mnist-ali", **{"model.decoder_bn": bn}).decoder.train()
        lin = dec.net[3]
        with torch.no_grad():
            lin.weight.mul_(1e-4)
            lin.bias.copy_(torch.randn_like(lin.bias))
        spread[bn] = float(dec(torch.randn(32, 64)).std(dim=0).mean())
    assert spread["channels"] < 1e-3 and spread["units"] > 0.05


def test_mnist_presets_share_one_recipe():
    base = get_preset("mnist-ali").to_dict()
    for name in ("mnist-alice", "mnist-svae", "mnist-svae-r"):
        cfg = get_preset(name).to_dict()
        diff = {(s, k) for s in base if isinstance(base[s], dict) for k in base[s] if base[s][k] != cfg[s][k]}
        assert diff <= {("objective", "kind"), ("objective", "lam")}, (name, diff)
    assert base["model"]["decoder_bn"] == "units"
    # the critic's BN per joint (docs/recipe.md); CIFAR-10 and CelebA keep one batch until measured there
    assert base["model"]["critic_bn"] == "apart"
    assert get_preset("cifar10-svae-r").model.critic_bn == get_preset("celeba-svae-r").model.critic_bn == "joint"


def test_probability_loss_is_the_authors_form():
    lq, lp = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 1.0])
    want = (0.5 + 1 / (1 + torch.exp(torch.tensor(-2.0)))) / 2 - (1 / (1 + torch.e) + 1 / (1 + torch.exp(torch.tensor(-1.0)))) / 2
    assert probability_generator_loss(lq, lp) == pytest.approx(float(want))
    for kind in ("ali", "svae"):
        assert Objective(kind=kind, lam=0.0, gen_loss="probability").generator_loss(lq, lp) == pytest.approx(float(want))
    with pytest.raises(ConfigError, match="gen_loss"):
        validate(_with(get_preset("mnist-svae-r"), "objective.gen_loss", "nope"))


def _with(cfg, key, value):
    from svae.config import set_value

    set_value(cfg, key, value)
    return cfg


def test_critic_noise_widens_the_critic_inputs_and_draws_anew_each_call():
    model = svae.build("mnist-ali", **{"model.critic_x_noise": 1, "model.critic_z_noise": 20})
    c = model.critic.eval()
    assert c.x_net[0].in_channels == 2 and c.z_net[0].in_features == 64 + 20
    x, z = torch.rand(4, 1, 28, 28), torch.randn(4, 64)
    assert not torch.equal(c(x, z), c(x, z))
    with pytest.raises(ConfigError, match="image critics"):
        validate(_with(get_preset("toy-ali"), "model.critic_z_noise", "3"))


def test_lrelu_critic_keeps_bn_on_every_conv():
    c = svae.build("mnist-ali", **{"model.critic_style": "lrelu"}).critic
    kinds = [type(m).__name__ for m in c.x_net]
    assert kinds.count("BatchNorm2d") == 3 and kinds.count("LeakyReLU") == 3 and "ReLU" not in kinds
    assert isinstance(c.z_net[1], nn.LeakyReLU)


def test_xavier_init_sets_every_weight_and_zeroes_biases():
    torch.manual_seed(0)
    model = svae.build("mnist-ali", **{"model.init": "xavier"})
    for net in model.networks().values():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = (6 / (fan_in + fan_out)) ** 0.5
                assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.9 * bound
                assert m.bias is None or not m.bias.any()
