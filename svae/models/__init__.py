"""Network registry: one module per paper table, each with Encoder, Decoder, Critic; the dataset table names it."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from torch import nn

from ..config import ModelConfig
from ..datasets import DATASETS
from .blocks import init_xavier


def arch_module(arch: str) -> ModuleType:
    if arch not in DATASETS:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {', '.join(DATASETS)}")
    return importlib.import_module(f"{__name__}.{DATASETS[arch].networks}")


@dataclass
class Networks:
    """The networks of one model. critic is None for the VAE; critic_p is the second critic of the
    two-critic (marginal) estimator, where critic estimates log q(x,z)/(q(x)p(z)) and critic_p the same for p."""

    encoder: nn.Module
    decoder: nn.Module
    critic: nn.Module | None = None
    critic_p: nn.Module | None = None


def build_networks(cfg: ModelConfig, critics: int = 1) -> Networks:
    """Fresh networks for cfg.arch with `critics` critics (0 for the VAE, 2 for the marginal estimator)."""
    mod = arch_module(cfg.arch)
    init = init_xavier if cfg.init == "xavier" else (lambda net: net)
    return Networks(
        encoder=init(mod.Encoder(cfg)),
        decoder=init(mod.Decoder(cfg)),
        critic=init(mod.Critic(cfg)) if critics >= 1 else None,
        critic_p=init(mod.Critic(cfg)) if critics >= 2 else None,
    )


def x_shape(arch: str) -> tuple[int, ...]:
    """Shape of one data point (without the batch dimension) for an architecture (the dataset table's)."""
    if arch not in DATASETS:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[arch].shape
