"""Table 2 (CelebA) networks: every layer against the table. Shapes, ranges, noise, heads, gradients and
build_networks are checked for every table in test_models_common.py."""
from __future__ import annotations

from model_checks import ARCHS, Z, spec

from svae.models import celeba

cfg_ = ARCHS["celeba"].cfg


def conv(i, o, k, act=("lrelu", 0.2)):
    return [("conv", i, o, k, 2, (k - 1) // 2), ("bn2d", o), act]


def test_encoder_layers_follow_table_2():
    assert spec(celeba.Encoder(cfg_())) == [
        *conv(3, 32, 4), *conv(32, 64, 4), *conv(64, 128, 4), *conv(128, 256, 4), *conv(256, 512, 4),
        ("linear", 512 * 2 * 2, 512), ("lrelu", 0.2),
        ("linear", 512, Z),  # the LatentHead: "MLP output dim of z, tanh" (tanh via the prior)
    ]


def test_decoder_layers_follow_table_2():
    lrelu = ("lrelu", 0.2)
    assert spec(celeba.Decoder(cfg_())) == [
        ("linear", Z, 1024), ("bn1d", 1024), lrelu,
        ("linear", 1024, 8192), ("bn2d", 512), lrelu,
        ("deconv", 512, 256, 5, 2, 2, 1), ("bn2d", 256), lrelu,
        ("deconv", 256, 128, 5, 2, 2, 1), ("bn2d", 128), lrelu,
        ("deconv", 128, 64, 5, 2, 2, 1), ("bn2d", 64), lrelu,
        ("deconv", 64, 3, 5, 2, 2, 1), ("tanh",),  # no BN on the output (see the docstring)
    ]


def test_critic_layers_follow_table_2():
    relu = ("relu",)
    assert spec(celeba.Critic(cfg_())) == [
        *conv(3, 64, 5, relu), *conv(64, 128, 5, relu), *conv(128, 256, 5, relu), *conv(256, 512, 5, relu),
        ("linear", Z, 2048), relu,
        ("linear", 512 * 4 * 4 + 2048, 1),
    ]


def test_noise_widens_the_input_layers():
    assert ARCHS["celeba"].noise == (1, 20)  # the configuration test_models_common checks for stochasticity
    c = cfg_(enc_noise=1, dec_noise=20)
    assert spec(celeba.Encoder(c))[0] == ("conv", 4, 32, 4, 2, 1)  # 3 colour channels + 1 noise channel
    assert spec(celeba.Decoder(c))[0] == ("linear", Z + 20, 1024)
