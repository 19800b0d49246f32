"""Table 3 (CIFAR-10) networks: every layer against the table. Shapes, ranges, noise, heads, gradients and
build_networks are checked for every table in test_models_common.py."""
from __future__ import annotations

from model_checks import ARCHS, Z, spec

from svae.models import cifar

cfg_ = ARCHS["cifar10"].cfg


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


def test_noise_widens_the_input_layers():
    assert ARCHS["cifar10"].noise == (1, 16)  # the configuration test_models_common checks for stochasticity
    c = cfg_(enc_noise=1, dec_noise=16)
    assert spec(cifar.Encoder(c))[0] == ("conv", 4, 32, 5, 2, 2)  # 3 colour channels + 1 noise channel
    assert spec(cifar.Decoder(c))[0] == ("linear", Z + 16, 8192)
