"""Datasets held in memory (images as uint8, toy points as float32) and normalised on the fly per batch."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import DataConfig
from . import toy


@dataclass
class Dataset:
    """Train and test splits. Images are uint8 (N, C, H, W); toy points float32 (N, 2)."""

    name: str
    x_train: torch.Tensor
    x_test: torch.Tensor
    y_train: torch.Tensor | None = None
    y_test: torch.Tensor | None = None

    @property
    def is_image(self) -> bool:
        return self.x_train.dtype == torch.uint8

    def to(self, device: torch.device | str) -> "Dataset":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Dataset(self.name, move(self.x_train), move(self.x_test), move(self.y_train), move(self.y_test))


def to_model(x: torch.Tensor, out_range: tuple[float, float] | None) -> torch.Tensor:
    """uint8 images -> float in the decoder's output range; float data passes through."""
    if x.dtype != torch.uint8:
        return x.float()
    lo, hi = out_range or (0.0, 1.0)
    return x.float() * ((hi - lo) / 255.0) + lo


def to_unit(x: torch.Tensor, out_range: tuple[float, float] | None) -> torch.Tensor:
    """Model-range images -> [0, 1] float32 (the command-line array contract); toy points unchanged."""
    if out_range is None:
        return x.float()
    lo, hi = out_range
    return ((x.float() - lo) / (hi - lo)).clamp(0.0, 1.0)


def from_unit(x: torch.Tensor, out_range: tuple[float, float] | None) -> torch.Tensor:
    """[0, 1] images (the array contract) -> the decoder's output range."""
    if out_range is None:
        return x.float()
    lo, hi = out_range
    return x.float() * (hi - lo) + lo


def load_dataset(cfg: DataConfig) -> Dataset:
    """The dataset cfg names: the toy mixture is generated from cfg.seed, real images are read from files."""
    if cfg.name == "toy":
        g = torch.Generator().manual_seed(cfg.seed)
        x_train, y_train = toy.sample_mixture(cfg.n_train, g)
        x_test, y_test = toy.sample_mixture(cfg.n_test, g)
        return Dataset("toy", x_train, x_test, y_train, y_test)
    from .images import load_images  # Pillow and the file formats only when real data is asked for

    splits = load_images(cfg.name, cfg.data_dir, cfg.source)
    ds = Dataset(cfg.name, splits.x_train, splits.x_test, splits.y_train, splits.y_test)
    if cfg.limit:
        ds.x_train = ds.x_train[: cfg.limit]
        ds.y_train = None if ds.y_train is None else ds.y_train[: cfg.limit]
    return ds
