"""Table 3 of the sVAE appendix (CIFAR-10, 32x32 RGB in [-1, 1]): encoder, decoder and critic, layer for layer."""
from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..datasets import DATASETS
from .blocks import (Decoder as _Decoder, Encoder as _Encoder, JointCritic, conv_bn, critic_channels, critic_convs,
                     deconv, linear_to_map, lrelu)
from .tuning import BatchNorm2d, Flatten


class Encoder(_Encoder):
    """x (B,3,32,32) -> z.  [x, noise] -> conv 32, 64, 128, 256 (leaky ReLU 0.2) -> MLP 512 -> LatentHead.

    Each conv is Conv -> BN -> leaky ReLU (DCGAN order, as in the ALICE scripts the tables come from).
    "Concat with noise": cfg.enc_noise noise channels of full 32x32 size. "MLP output 512, lReLU" has no BN
    in the table, so none here. "MLP output dim of z, tanh" is the LatentHead: its tanh is on when
    blocks.uses_tanh(cfg) (the uniform prior, or z_activation='tanh'), so a normal prior is not clipped.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, nn.Sequential(
            *conv_bn(3 + cfg.enc_noise, 32, act=lrelu), *conv_bn(32, 64, act=lrelu),
            *conv_bn(64, 128, act=lrelu), *conv_bn(128, 256, act=lrelu),                       # 32 -> 2
            Flatten(),
            nn.Linear(256 * 2 * 2, 512), lrelu(),
        ), 512)


class Decoder(_Decoder):
    """z -> x (B,3,32,32) in [-1, 1].  [z, noise] -> MLP 8192 (= 512x4x4) -> deconv 256, 128 -> deconv 3, tanh.

    "MP output 8192" is read as MLP (a typo: there is nothing to pool). Its BN acts per channel after the
    reshape to 512x4x4 (BatchNorm2d), as for a conv layer and as in the ALICE CIFAR script. The deconvs use
    plain ReLU as the table says (the MLP row says leaky ReLU). The output deconv has tanh and no BN, as in
    the table. Noise: cfg.dec_noise dims concatenated to z ("Input z", then "concat random noise").
    """

    out_range = DATASETS["cifar10"].out_range  # the tanh below

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, nn.Sequential(
            *linear_to_map(cfg, cfg.z_dim + cfg.dec_noise, (512, 4, 4), lrelu),
            deconv(512, 256), BatchNorm2d(256), nn.ReLU(),                      # 4 -> 8
            deconv(256, 128), BatchNorm2d(128), nn.ReLU(),                      # 8 -> 16
            deconv(128, 3), nn.Tanh(),                                           # 16 -> 32
        ))


class Critic(JointCritic):
    """(x, z) -> logit (B,).  Image branch conv 64, 128, 256, 512 (ReLU, as the table says, unlike the
    encoder's leaky ReLU) down to 512x2x2, then "avg pooling", read as global average pooling to 512
    features; z branch MLP 512 + ReLU; the two concatenated ("concat two features from X and z"), then
    MLP 1, a raw logit. Global pooling gives the two branches the same width (512 and 512).
    The first conv has BN because the table says so (DCGAN critics often skip it there).
    """

    def __init__(self, cfg: ModelConfig):
        x_net = nn.Sequential(
            *critic_convs(cfg, [critic_channels(cfg, 3), 64, 128, 256, 512]),    # 32 -> 2
            nn.AdaptiveAvgPool2d(1), Flatten(),                                  # 512x2x2 -> 512
        )
        super().__init__(cfg, x_net, 512, 512)
