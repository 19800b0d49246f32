"""The critic head: the tables' Linear on [a(x), b(z)] is additive in x and z; the MLP head is not."""
import torch

from svae.config import ModelConfig
from svae.models import build_networks


def swap_gap(critic, x, z):
    """f(x1,z1) + f(x2,z2) - f(x1,z2) - f(x2,z1): zero for every pair iff f(x,z) = a(x) + b(z)."""
    with torch.no_grad():
        same = critic(x, z) + critic(x.flip(0), z.flip(0))
        crossed = critic(x, z.flip(0)) + critic(x.flip(0), z)
    return (same - crossed).abs().max().item()


def test_linear_head_sees_only_the_marginals_and_mlp_head_sees_the_joint():
    torch.manual_seed(0)
    x, z = torch.rand(8, 1, 28, 28), torch.randn(8, 64)
    gaps = {}
    for head in ("linear", "mlp"):
        critic = build_networks(ModelConfig(arch="mnist", z_dim=64, enc_noise=0, dec_noise=0,
                                            critic_head=head)).critic.eval()
        gaps[head] = swap_gap(critic, x, z)
    assert gaps["linear"] < 1e-4 and gaps["mlp"] > 1e-3


def test_mlp_head_layers():
    critic = build_networks(ModelConfig(arch="cifar10", z_dim=128, critic_head="mlp")).critic
    layers = [m for m in critic.out if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == [(512 + 512, 1024), (1024, 1)]
    assert isinstance(critic.out[1], torch.nn.LeakyReLU) and critic.out[1].negative_slope == 0.2


def test_critic_style_dcgan_drops_the_first_bn_and_uses_leaky_relu():
    for arch, z in (("mnist", 64), ("cifar10", 128), ("celeba", 64)):
        table = build_networks(ModelConfig(arch=arch, z_dim=z)).critic.x_net
        dcgan = build_networks(ModelConfig(arch=arch, z_dim=z, critic_style="dcgan")).critic.x_net
        kinds = lambda net: [type(m).__name__ for m in net]  # noqa: E731
        assert kinds(table)[:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
        assert kinds(dcgan)[:4] == ["Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d"]
        assert kinds(dcgan).count("BatchNorm2d") == kinds(table).count("BatchNorm2d") - 1
        assert "ReLU" not in kinds(dcgan)


def test_critic_norm_none_and_dropout_layers():
    for arch, z in (("mnist", 64), ("cifar10", 128), ("celeba", 64)):
        critic = build_networks(ModelConfig(arch=arch, z_dim=z, critic_norm="none", critic_dropout=0.2,
                                            critic_head="mlp")).critic
        kinds = [type(m).__name__ for m in critic.modules()]
        assert "BatchNorm2d" not in kinds
        convs = kinds.count("Conv2d")
        drops = [m for m in critic.modules() if isinstance(m, torch.nn.Dropout)]
        # one after each conv, one after the z branch, one after the head's hidden layer
        assert len(drops) == convs + 2 and all(d.p == 0.2 for d in drops)


def test_spectral_critic_has_unit_spectral_norm_on_every_layer():
    from torch.nn.utils import parametrize

    torch.manual_seed(0)
    critic = build_networks(ModelConfig(arch="mnist", z_dim=64, critic_norm="spectral")).critic.train()
    layers = [m for m in critic.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    with torch.no_grad():
        for _ in range(30):  # each training forward runs one power iteration
            critic(torch.rand(4, 1, 28, 28), torch.randn(4, 64))
        sigmas = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() for m in layers]
    assert all(abs(s - 1) < 0.05 for s in sigmas), sigmas
