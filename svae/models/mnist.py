"""Table 1 of the sVAE appendix (MNIST, 28x28 gray in [0, 1]): encoder, decoder and critic, layer for layer."""
from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..datasets import DATASETS
from .blocks import (Decoder as _Decoder, Encoder as _Encoder, JointCritic, conv_bn, critic_channels, critic_convs,
                     deconv, linear_to_map)
from .tuning import BatchNorm1d, BatchNorm2d, Flatten


class Encoder(_Encoder):
    """x (B,1,28,28) -> z.  conv 16 -> conv 32 -> MLP 784 -> LatentHead (the table's "MLP output dim of z").

    Every layer is Linear/Conv -> BN -> ReLU (the usual DCGAN order; the ALICE scripts do the same).
    The table gives "MLP output 784, BN" no activation; we add the table's ReLU, as otherwise that layer
    and the linear head would compose to one affine map. cfg.enc_noise > 0 concatenates that many noise
    channels (28x28) to the image: the table has none (presets set 0), but a stochastic variant is a switch.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, nn.Sequential(
            *conv_bn(1 + cfg.enc_noise, 16),                                     # 28 -> 14
            *conv_bn(16, 32),                                                    # 14 -> 7
            Flatten(),
            nn.Linear(32 * 7 * 7, 784), nn.BatchNorm1d(784), nn.ReLU(),
        ), 784)


class Decoder(_Decoder):
    """z -> x (B,1,28,28) in [0, 1].  MLP 1024 -> MLP 3136 (= 64x7x7) -> deconv 64 -> deconv 1 -> sigmoid.

    The table's last row "5x5 deconv. 1 ReLU, stride 2, sigmoid" is read as a sigmoid output with no ReLU
    (a ReLU before the sigmoid would confine pixels to [0.5, 1]) and no BN. The 3136 units are reshaped to
    64 channels of 7x7 (64 = the next deconv's width); cfg.decoder_bn says whether their BN acts on the 3136 units
    (the table's MLP row; the MNIST presets) or per channel (blocks.linear_to_map says why it matters). The MLP rows say "BN" only; ReLU added as in the encoder (two bare linear maps
    would collapse to one). cfg.dec_noise > 0 concatenates that many noise dims to z (0 in the presets).
    """

    out_range = DATASETS["mnist"].out_range  # the sigmoid below

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, nn.Sequential(
            nn.Linear(cfg.z_dim + cfg.dec_noise, 1024), BatchNorm1d(1024), nn.ReLU(),
            *linear_to_map(cfg, 1024, (64, 7, 7), nn.ReLU),
            deconv(64, 64), BatchNorm2d(64), nn.ReLU(),                         # 7 -> 14
            deconv(64, 1), nn.Sigmoid(),                                         # 14 -> 28
        ))


class Critic(JointCritic):
    """(x, z) -> logit (B,).  Image branch conv 32 -> 64 -> 128 (28 -> 14 -> 7 -> 4, 2048 features);
    z branch MLP 1024 + ReLU; the two concatenated, then MLP 1 (a raw logit: the losses apply the sigmoid).

    "Input two 28x28 gray image" is read as the images of the two joints, one per pair: the critic sees
    (x, E(x)) or (G(z), z) (docs/architectures.md). The first conv has BN because the table says so.
    """

    def __init__(self, cfg: ModelConfig):
        x_net = nn.Sequential(
            *critic_convs(cfg, [critic_channels(cfg, 1), 32, 64, 128]),          # 28 -> 4
            Flatten(),
        )
        super().__init__(cfg, x_net, 128 * 4 * 4, 1024)
