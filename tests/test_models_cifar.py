"""Table 3 (CIFAR-10) networks: every layer against the table, shapes, ranges, noise, heads, gradients."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from svae.config import ModelConfig
from svae.models import build_networks, cifar, x_shape

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
    return ModelConfig(**{"arch": "cifar10", "z_dim": Z, "enc_noise": 0, "dec_noise": 0, **kw})


def images(b: int = B, c: int = 3) -> torch.Tensor:
    return torch.rand(b, c, 32, 32) * 2 - 1  # in the decoder's range [-1, 1]


def conv(i, o, act=("lrelu", 0.2)):
    return [("conv", i, o, 5, 2, 2), ("bn2d", o), act]


def test_encoder_layers_follow_table_3():
    assert spec(cifar.Encoder(cfg_())) == [
        *conv(3, 32), *conv(32, 64), *conv(64, 128), *conv(128, 256),
        ("linear", 256 * 2 * 2, 512), ("lrelu", 0.2),
        ("linear", 512, Z),  # the LatentHead: "MLP output dim of z, tanh" (tanh via the prior)
    ]


def test_decoder_layers_follow_table_3():
    assert spec(cifar.Decoder(cfg_())) == [
        ("linear", Z, 8192), ("bn2d", 512), ("lrelu", 0.2),
        ("deconv", 512, 256, 5, 2, 2, 1), ("bn2d", 256), ("relu",),
        ("deconv", 256, 128, 5, 2, 2, 1), ("bn2d", 128), ("relu",),
        ("deconv", 128, 3, 5, 2, 2, 1), ("tanh",),
    ]


def test_critic_layers_follow_table_3():
    relu = ("relu",)
    assert spec(cifar.Critic(cfg_())) == [
        *conv(3, 64, relu), *conv(64, 128, relu), *conv(128, 256, relu), *conv(256, 512, relu),
        ("gap", 1),
        ("linear", Z, 512), relu,
        ("linear", 512 + 512, 1),
    ]


def test_shapes_and_output_range():
    c = cfg_()
    enc, dec, cri = cifar.Encoder(c), cifar.Decoder(c), cifar.Critic(c)
    assert cifar.X_SHAPE == (3, 32, 32) and x_shape("cifar10") == (3, 32, 32)
    assert dec.out_range == (-1.0, 1.0)
    z = enc(images())
    assert z.shape == (B, Z)
    x = dec(torch.randn(B, Z) * 50)  # large codes saturate the tanh: still inside [-1, 1]
    assert x.shape == (B, *cifar.X_SHAPE)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert cri(images(), z).shape == (B,)


def test_gaussian_head():
    enc = cifar.Encoder(cfg_(encoder_head="gaussian"))
    mu, logvar = enc.gaussian(images())
    assert mu.shape == (B, Z) and logvar.shape == (B, Z)
    assert enc(images()).shape == (B, Z)


def test_tanh_for_uniform_prior_only():
    big = images() * 1000
    assert cifar.Encoder(cfg_(prior="uniform"))(big).abs().max() <= 1.0
    assert cifar.Encoder(cfg_(z_activation="tanh"))(big).abs().max() <= 1.0
    assert not cifar.Encoder(cfg_()).head.tanh


def test_no_noise_is_deterministic_in_eval():
    c = cfg_()
    enc, dec = cifar.Encoder(c).eval(), cifar.Decoder(c).eval()
    x, z = images(), torch.randn(B, Z)
    assert torch.equal(enc(x), enc(x)) and torch.equal(dec(z), dec(z))


def test_noise_makes_encoder_and_decoder_stochastic():
    c = cfg_(enc_noise=1, dec_noise=16)
    enc, dec = cifar.Encoder(c), cifar.Decoder(c)
    assert spec(enc)[0] == ("conv", 4, 32, 5, 2, 2)  # 3 colour channels + 1 noise channel
    assert spec(dec)[0] == ("linear", Z + 16, 8192)
    x, z = images(), torch.randn(B, Z)
    assert not torch.allclose(enc(x), enc(x)) and not torch.allclose(dec(z), dec(z))
    enc.eval(), dec.eval()  # an implicit model samples by a forward pass: noise stays on in eval
    assert not torch.allclose(enc(x), enc(x)) and not torch.allclose(dec(z), dec(z))


def test_pair_critic_takes_two_images():
    cri = cifar.Critic(cfg_(critic_input="pair"))
    assert spec(cri)[0] == ("conv", 6, 64, 5, 2, 2)
    assert cri(images(c=6), torch.randn(B, Z)).shape == (B,)


def _grads_reach_every_parameter(net: nn.Module, out: torch.Tensor) -> None:
    # a random weighting: a plain sum through train-mode BN gives exactly zero grads upstream of it
    (out * torch.randn_like(out)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_gradients_flow_everywhere(head):
    c = cfg_(encoder_head=head, enc_noise=1, dec_noise=4)
    enc, dec, cri = cifar.Encoder(c), cifar.Decoder(c), cifar.Critic(c)
    _grads_reach_every_parameter(enc, enc(images()))
    _grads_reach_every_parameter(dec, dec(torch.randn(B, Z)))
    _grads_reach_every_parameter(cri, cri(images(), torch.randn(B, Z)))


def test_build_networks():
    nets = build_networks(cfg_(enc_noise=1, dec_noise=4), critics=2)
    assert isinstance(nets.encoder, cifar.Encoder) and isinstance(nets.decoder, cifar.Decoder)
    assert isinstance(nets.critic, cifar.Critic) and isinstance(nets.critic_p, cifar.Critic)
    assert nets.critic is not nets.critic_p
    x = nets.decoder(torch.randn(B, Z))
    assert nets.critic_p(x, nets.encoder(x)).shape == (B,)
