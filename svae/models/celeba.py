"""Table 2 of the sVAE appendix (CelebA, 64x64 RGB in [-1, 1]): encoder, decoder and critic, layer for layer."""
from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..datasets import DATASETS
from .blocks import (Decoder as _Decoder, Encoder as _Encoder, JointCritic, conv_bn, critic_channels, critic_convs,
                     deconv, linear_to_map, lrelu)
from .tuning import BatchNorm1d, BatchNorm2d, Flatten


class Encoder(_Encoder):
    """x (B,3,64,64) -> z.  [x, noise] -> 4x4 conv 32, 64, 128, 256, 512 (leaky ReLU 0.2; 64 -> 2)
    -> MLP 512 (leaky ReLU) -> LatentHead.

    Each conv is Conv -> BN -> leaky ReLU (DCGAN order, as in the ALICE scripts the tables come from).
    "Concat with noise": cfg.enc_noise noise channels of full 64x64 size. "MLP output 512, lReLU" has no BN
    in the table, so none here. "MLP output dim of z, tanh" is the LatentHead: its tanh is on when
    blocks.uses_tanh(cfg) (the uniform prior, or z_activation='tanh'), so a normal prior is not clipped.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, nn.Sequential(
            *conv_bn(3 + cfg.enc_noise, 32, 4, lrelu), *conv_bn(32, 64, 4, lrelu), *conv_bn(64, 128, 4, lrelu),
            *conv_bn(128, 256, 4, lrelu), *conv_bn(256, 512, 4, lrelu),          # 64 -> 2
            Flatten(),
            nn.Linear(512 * 2 * 2, 512), lrelu(),
        ), 512)


class Decoder(_Decoder):
    """z -> x (B,3,64,64) in [-1, 1].  [z, noise] -> MLP 1024 -> MLP 8192 (= 512x4x4)
    -> deconv 256, 128, 64 (leaky ReLU) -> deconv 3, tanh.

    "Input z concat with noise" and the next row "concat random noise" are read as ONE concatenation of
    cfg.dec_noise dims (a second one would only add more noise dims). Linear -> BN -> leaky ReLU; the 8192
    units are reshaped to 512x4x4 and batch-normalised per channel (BatchNorm2d), as the ALICE CelebA script
    does. The table's output row "5x5 deconv. 3 tanh, stride 2, BN" gets no BN: BN right before the tanh
    would force each generated batch's per-channel mean and spread to BN's learned constants, and neither
    DCGAN, Table 3's output row nor the ALICE script puts BN on the output.
    """

    out_range = DATASETS["celeba"].out_range  # the tanh below

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, nn.Sequential(
            nn.Linear(cfg.z_dim + cfg.dec_noise, 1024), BatchNorm1d(1024), lrelu(),
            *linear_to_map(cfg, 1024, (512, 4, 4), lrelu),
            deconv(512, 256), BatchNorm2d(256), lrelu(),                        # 4 -> 8
            deconv(256, 128), BatchNorm2d(128), lrelu(),                        # 8 -> 16
            deconv(128, 64), BatchNorm2d(64), lrelu(),                          # 16 -> 32
            deconv(64, 3), nn.Tanh(),                                            # 32 -> 64
        ))


class Critic(JointCritic):
    """(x, z) -> logit (B,).  Image branch 5x5 conv 64, 128, 256, 512 (ReLU, as the table says, unlike the
    encoder's leaky ReLU) down to 512x4x4 = 8192 features, no pooling (Table 2 has none, unlike Table 3);
    z branch MLP 2048 + ReLU (the table's "2046" read as 2048 = 2x2x512, a power-of-two width and the
    ALICE CelebA script's z branch); the two concatenated, then MLP 1, a raw logit.
    The first conv has BN because the table says so (DCGAN critics often skip it there).
    """

    def __init__(self, cfg: ModelConfig):
        x_net = nn.Sequential(
            *critic_convs(cfg, [critic_channels(cfg, 3), 64, 128, 256, 512]),    # 64 -> 4
            Flatten(),
        )
        super().__init__(cfg, x_net, 512 * 4 * 4, 2048)
