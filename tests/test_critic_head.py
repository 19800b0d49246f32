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
