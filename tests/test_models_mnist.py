"""Table 1 (MNIST) networks: every layer against the table. Shapes, ranges, noise, heads, gradients and
build_networks are checked for every table in test_models_common.py."""
from __future__ import annotations

from model_checks import ARCHS, Z, spec

from svae.models import mnist

cfg_ = ARCHS["mnist"].cfg


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


def test_noise_widens_the_input_layers():
    assert ARCHS["mnist"].noise == (2, 8)  # the configuration test_models_common checks for stochasticity
    c = cfg_(enc_noise=2, dec_noise=8)
    assert spec(mnist.Encoder(c))[0] == ("conv", 3, 16, 5, 2, 2)  # 1 image channel + 2 noise channels
    assert spec(mnist.Decoder(c))[0] == ("linear", Z + 8, 1024)
