"""Shared helpers of the per-table network tests (test_models_*.py, test_models_common.py)."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch
from torch import nn

from svae.config import ModelConfig
from svae.models import celeba, cifar, mnist

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


@dataclass(frozen=True)
class Arch:
    """One paper table's networks and what the generic checks need to know about them."""

    name: str                        # cfg.arch
    module: ModuleType               # Encoder, Decoder, Critic
    x_shape: tuple[int, int, int]
    out_range: tuple[float, float]   # the decoder's output range, where images() draws from
    noise: tuple[int, int]           # (enc_noise, dec_noise) of the stochasticity check
    grad_noise: tuple[int, int]      # (enc_noise, dec_noise) of the gradient and build_networks checks

    def cfg(self, **kw) -> ModelConfig:
        return ModelConfig(**{"arch": self.name, "z_dim": Z, "enc_noise": 0, "dec_noise": 0, **kw})

    def images(self, b: int = B, c: int | None = None) -> torch.Tensor:
        """A batch in the decoder's range; c channels (default: the data's), e.g. 2x for a pair critic."""
        lo, hi = self.out_range
        c = self.x_shape[0] if c is None else c
        return torch.rand(b, c, *self.x_shape[1:]) * (hi - lo) + lo


ARCHS = {
    "mnist": Arch("mnist", mnist, (1, 28, 28), (0.0, 1.0), noise=(2, 8), grad_noise=(1, 1)),
    "cifar10": Arch("cifar10", cifar, (3, 32, 32), (-1.0, 1.0), noise=(1, 16), grad_noise=(1, 4)),
    "celeba": Arch("celeba", celeba, (3, 64, 64), (-1.0, 1.0), noise=(1, 20), grad_noise=(1, 4)),
}
