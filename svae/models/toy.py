"""The 2-D toy experiment's networks: MLPs of 2 x 256 ReLU, 2 noise dims on encoder and decoder inputs."""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..datasets import DATASETS
from .blocks import Decoder as _Decoder, Encoder as _Encoder, mlp

X_DIM = DATASETS["toy"].shape[0]


class Encoder(_Encoder):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, mlp([X_DIM + cfg.enc_noise] + [cfg.hidden] * cfg.layers, last_act=True), cfg.hidden)


class Decoder(_Decoder):
    out_range = DATASETS["toy"].out_range  # None: data coordinates, unbounded

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, mlp([cfg.z_dim + cfg.dec_noise] + [cfg.hidden] * cfg.layers + [X_DIM]))


class Critic(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = mlp([X_DIM + cfg.z_dim] + [cfg.hidden] * cfg.layers + [1])

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, z], dim=1)).squeeze(1)
