"""Table 1 (MNIST) networks: every layer against the table, shapes, ranges, noise, heads, gradients."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from svae.config import ModelConfig
from svae.models import build_networks, mnist, x_shape

B, Z = 4, 64


def spec(module: nn.Module) -> list[tuple]:
    """The layers that carry the architecture, in registration (= forward) order."""
    out = []
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            out.append(("deconv", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0],
                        m.padding[0], m.output_padding[0]))
        elif isinstance(m, nn.Conv2d):
            out.append(("conv", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]))
        elif isinstance(m, nn.Linear):
            out.append(("linear", m.in_features, m.out_features))
        elif isinstance(m, nn.BatchNorm1d):
            out.append(("bn1d", m.num_features))
        elif isinstance(m, nn.BatchNorm2d):
            out.append(("bn2d", m.num_features))
        elif isinstance(m, nn.LeakyReLU):
            out.append(("lrelu", m.negative_slope))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            out.append(("gap", m.output_size))
        elif isinstance(m, (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d)):
            out.append((type(m).__name__.lower(),))
    return out


def cfg_(**kw) -> ModelConfig:
    return ModelConfig(**{"arch": "mnist", "z_dim": Z, "enc_noise": 0, "dec_noise": 0, **kw})


def images(b: int = B, c: int = 1) -> torch.Tensor:
    return torch.rand(b, c, 28, 28)  # in the decoder's range [0, 1]


def conv(i, o):
    return [("conv", i, o, 5, 2, 2), ("bn2d", o), ("relu",)]


def test_encoder_layers_follow_table_1():
    assert spec(mnist.Encoder(cfg_())) == [
        *conv(1, 16), *conv(16, 32),
        ("linear", 32 * 7 * 7, 784), ("bn1d", 784), ("relu",),
        ("linear", 784, Z),  # the LatentHead: "MLP output dim of z", no activation for the normal prior
    ]


def test_decoder_layers_follow_table_1():
    assert spec(mnist.Decoder(cfg_())) == [
        ("linear", Z, 1024), ("bn1d", 1024), ("relu",),
        ("linear", 1024, 3136), ("bn2d", 64), ("relu",),
        ("deconv", 64, 64, 5, 2, 2, 1), ("bn2d", 64), ("relu",),
        ("deconv", 64, 1, 5, 2, 2, 1), ("sigmoid",),
    ]


def test_critic_layers_follow_table_1():
    assert spec(mnist.Critic(cfg_())) == [
        *conv(1, 32), *conv(32, 64), *conv(64, 128),
        ("linear", Z, 1024), ("relu",),
        ("linear", 128 * 4 * 4 + 1024, 1),
    ]


def test_shapes_and_output_range():
    c = cfg_()
    enc, dec, cri = mnist.Encoder(c), mnist.Decoder(c), mnist.Critic(c)
    assert mnist.X_SHAPE == (1, 28, 28) and x_shape("mnist") == (1, 28, 28)
    assert dec.out_range == (0.0, 1.0)
    z = enc(images())
    assert z.shape == (B, Z)
    x = dec(torch.randn(B, Z) * 50)  # large codes saturate the sigmoid: still inside [0, 1]
    assert x.shape == (B, *mnist.X_SHAPE)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert cri(images(), z).shape == (B,)


def test_gaussian_head():
    enc = mnist.Encoder(cfg_(encoder_head="gaussian"))
    mu, logvar = enc.gaussian(images())
    assert mu.shape == (B, Z) and logvar.shape == (B, Z)
    assert enc(images()).shape == (B, Z)
    with pytest.raises(RuntimeError):
        mnist.Encoder(cfg_()).gaussian(images())


def test_tanh_for_uniform_prior_only():
    big = images() * 1000
    assert mnist.Encoder(cfg_(prior="uniform"))(big).abs().max() <= 1.0
    assert not mnist.Encoder(cfg_()).head.tanh


def test_no_noise_is_deterministic_in_eval():
    c = cfg_()
    enc, dec = mnist.Encoder(c).eval(), mnist.Decoder(c).eval()
    x, z = images(), torch.randn(B, Z)
    assert torch.equal(enc(x), enc(x)) and torch.equal(dec(z), dec(z))


def test_noise_makes_encoder_and_decoder_stochastic():
    c = cfg_(enc_noise=2, dec_noise=8)
    enc, dec = mnist.Encoder(c), mnist.Decoder(c)
    assert spec(enc)[0] == ("conv", 3, 16, 5, 2, 2)  # 1 image channel + 2 noise channels
    assert spec(dec)[0] == ("linear", Z + 8, 1024)
    x, z = images(), torch.randn(B, Z)
    assert not torch.allclose(enc(x), enc(x)) and not torch.allclose(dec(z), dec(z))
    enc.eval(), dec.eval()  # an implicit model samples by a forward pass: noise stays on in eval
    assert not torch.allclose(enc(x), enc(x)) and not torch.allclose(dec(z), dec(z))


def test_pair_critic_takes_two_channels():
    cri = mnist.Critic(cfg_(critic_input="pair"))
    assert spec(cri)[0] == ("conv", 2, 32, 5, 2, 2)
    assert cri(images(c=2), torch.randn(B, Z)).shape == (B,)
    with pytest.raises(RuntimeError):
        cri(images(c=1), torch.randn(B, Z))


def _grads_reach_every_parameter(net: nn.Module, out: torch.Tensor) -> None:
    # a random weighting: a plain sum through train-mode BN gives exactly zero grads upstream of it
    (out * torch.randn_like(out)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_gradients_flow_everywhere(head):
    c = cfg_(encoder_head=head, enc_noise=1, dec_noise=1)
    enc, dec, cri = mnist.Encoder(c), mnist.Decoder(c), mnist.Critic(c)
    _grads_reach_every_parameter(enc, enc(images()))
    _grads_reach_every_parameter(dec, dec(torch.randn(B, Z)))
    _grads_reach_every_parameter(cri, cri(images(), torch.randn(B, Z)))


def test_build_networks():
    nets = build_networks(cfg_(), critics=2)
    assert isinstance(nets.encoder, mnist.Encoder) and isinstance(nets.decoder, mnist.Decoder)
    assert isinstance(nets.critic, mnist.Critic) and isinstance(nets.critic_p, mnist.Critic)
    assert nets.critic is not nets.critic_p
    x = nets.decoder(torch.randn(B, Z))
    assert nets.critic_p(x, nets.encoder(x)).shape == (B,)
    assert build_networks(dataclasses.replace(cfg_(), encoder_head="gaussian"), critics=0).critic is None
