"""Checks every image table's networks must pass (MNIST, CIFAR-10, CelebA): shapes, output ranges, heads,
noise, gradients, build_networks. The layer-by-layer checks against each table are in test_models_<arch>.py."""
from __future__ import annotations

import pytest
import torch
from model_checks import ARCHS, Arch, B, Z
from torch import nn

from svae.models import build_networks, x_shape


@pytest.fixture(params=list(ARCHS.values()), ids=list(ARCHS))
def arch(request) -> Arch:
    return request.param


def test_shapes_and_output_range(arch):
    c = arch.cfg()
    m = arch.module
    enc, dec, cri = m.Encoder(c), m.Decoder(c), m.Critic(c)
    assert x_shape(arch.name) == arch.x_shape  # the dataset table agrees with the table the networks follow
    assert dec.out_range == arch.out_range
    z = enc(arch.images())
    assert z.shape == (B, Z)
    x = dec(torch.randn(B, Z) * 50)  # large codes saturate the output sigmoid/tanh: still inside the range
    assert x.shape == (B, *arch.x_shape)
    lo, hi = arch.out_range
    assert x.min() >= lo and x.max() <= hi
    assert cri(arch.images(), z).shape == (B,)


def test_gaussian_head(arch):
    enc = arch.module.Encoder(arch.cfg(encoder_head="gaussian"))
    mu, logvar = enc.gaussian(arch.images())
    assert mu.shape == (B, Z) and logvar.shape == (B, Z)
    assert enc(arch.images()).shape == (B, Z)
    with pytest.raises(RuntimeError):
        arch.module.Encoder(arch.cfg()).gaussian(arch.images())


def test_tanh_for_uniform_prior_only(arch):
    big = arch.images() * 1000
    Encoder = arch.module.Encoder
    assert Encoder(arch.cfg(prior="uniform"))(big).abs().max() <= 1.0
    assert Encoder(arch.cfg(z_activation="tanh"))(big).abs().max() <= 1.0
    assert not Encoder(arch.cfg()).head.tanh
    assert not Encoder(arch.cfg(prior="uniform", z_activation="none")).head.tanh


def test_no_noise_is_deterministic_in_eval(arch):
    c = arch.cfg()
    enc, dec = arch.module.Encoder(c).eval(), arch.module.Decoder(c).eval()
    x, z = arch.images(), torch.randn(B, Z)
    assert torch.equal(enc(x), enc(x)) and torch.equal(dec(z), dec(z))


def test_noise_makes_encoder_and_decoder_stochastic(arch):
    # the noise widens the input layers: test_noise_widens_the_input_layers in test_models_<arch>.py
    en, dn = arch.noise
    c = arch.cfg(enc_noise=en, dec_noise=dn)
    enc, dec = arch.module.Encoder(c), arch.module.Decoder(c)
    x, z = arch.images(), torch.randn(B, Z)
    assert not torch.allclose(enc(x), enc(x)) and not torch.allclose(dec(z), dec(z))
    enc.eval(), dec.eval()  # an implicit model samples by a forward pass: noise stays on in eval
    assert not torch.allclose(enc(x), enc(x)) and not torch.allclose(dec(z), dec(z))


def _grads_reach_every_parameter(net: nn.Module, out: torch.Tensor) -> None:
    # a random weighting: a plain sum through train-mode BN gives exactly zero grads upstream of it
    (out * torch.randn_like(out)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_gradients_flow_everywhere(arch, head):
    en, dn = arch.grad_noise
    c = arch.cfg(encoder_head=head, enc_noise=en, dec_noise=dn)
    enc, dec, cri = arch.module.Encoder(c), arch.module.Decoder(c), arch.module.Critic(c)
    _grads_reach_every_parameter(enc, enc(arch.images()))
    _grads_reach_every_parameter(dec, dec(torch.randn(B, Z)))
    _grads_reach_every_parameter(cri, cri(arch.images(), torch.randn(B, Z)))


@pytest.mark.parametrize("noisy", [False, True], ids=["no-noise", "noise"])
def test_build_networks(arch, noisy):
    en, dn = arch.grad_noise if noisy else (0, 0)
    m = arch.module
    nets = build_networks(arch.cfg(enc_noise=en, dec_noise=dn), critics=2)
    assert isinstance(nets.encoder, m.Encoder) and isinstance(nets.decoder, m.Decoder)
    assert isinstance(nets.critic, m.Critic) and isinstance(nets.critic_p, m.Critic)
    assert nets.critic is not nets.critic_p
    x = nets.decoder(torch.randn(B, Z))
    assert nets.critic_p(x, nets.encoder(x)).shape == (B,)
    assert build_networks(arch.cfg(encoder_head="gaussian"), critics=0).critic is None
