"""A model: the networks of one preset plus its prior and objective; sampling and reconstruction."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .checkpoint import checkpoint_config, load_checkpoint, load_networks, run_checkpoint
from .config import Config, validate
from .data import from_unit, to_unit
from .models import build_networks
from .models.blocks import sample_prior
from .objectives import Objective
from .progress import bar


def without_critics(model: nn.Module) -> nn.Module:
    """A deep copy of a Model (or any module with `critic` and `critic_p` attributes) whose critics are None: what
    samples and reconstructs (a weight average, BatchNorm statistics of its own) without copying what only trains.
    `model` keeps its critics."""
    kept = {k: getattr(model, k) for k in ("critic", "critic_p")}
    for k in kept:
        setattr(model, k, None)
    try:
        return copy.deepcopy(model)
    finally:
        for k, net in kept.items():
            setattr(model, k, net)


class Model(nn.Module):
    """encoder, decoder and critic(s) of a configuration; `svae.build(preset)` returns one."""

    def __init__(self, cfg: Config):
        super().__init__()
        validate(cfg)
        self.cfg = cfg
        self.objective = Objective.of(cfg.objective)
        nets = build_networks(cfg.model, critics=self.objective.critics)
        self.encoder = nets.encoder
        self.decoder = nets.decoder
        self.critic = nets.critic
        self.critic_p = nets.critic_p

    @property
    def out_range(self) -> tuple[float, float] | None:
        return getattr(self.decoder, "out_range", None)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by name (the keys of checkpoints and optimisers)."""
        return {k: m for k, m in self.named_children() if m is not None}

    def critics_require_grad(self, flag: bool) -> None:
        """Switch the critics' weight gradients (off while the encoder+decoder update treats them as fixed)."""
        for c in (self.critic, self.critic_p):
            if c is not None:
                c.requires_grad_(flag)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_prior(n, self.cfg.model.z_dim, self.cfg.model.prior, self.device, generator)

    @torch.no_grad()
    def sample(self, n: int, batch_size: int = 1000) -> torch.Tensor:
        """n samples x = G(z), z ~ p(z), in the model's range, on the model's device (eval mode)."""
        out = []
        with bar(n, "sampling", "sample") as b:
            for i in range(0, n, batch_size):
                out.append(self.decoder(self.sample_prior(min(batch_size, n - i))))
                b.update(len(out[-1]))
        return torch.cat(out)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        return torch.cat([self.encoder(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def decode(self, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """G(z) for codes of the shape the encoder gives (prior samples, codes, anything between)."""
        return torch.cat([self.decoder(z[i:i + batch_size]) for i in range(0, len(z), batch_size)])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """G(E(x)) for x in the model's range."""
        out = []
        with bar(len(x), "reconstructing", "img") as b:
            for i in range(0, len(x), batch_size):
                out.append(self.decoder(self.encoder(x[i:i + batch_size])))
                b.update(len(out[-1]))
        return torch.cat(out)

    # The array contract of the command line: images in [0, 1], toy points in data coordinates.
    @torch.no_grad()
    def sample_array(self, n: int, batch_size: int = 1000) -> torch.Tensor:
        """sample(n) in the array contract, filled batch by batch into one CPU tensor (the same draws as
        sample(n)): the memory it takes is the output's, which the command line checks beforehand."""
        out = None
        for i in range(0, n, batch_size):
            x = to_unit(self.decoder(self.sample_prior(min(batch_size, n - i))), self.out_range).cpu()
            if out is None:
                out = torch.empty((n, *x.shape[1:]), dtype=torch.float32)
            out[i:i + len(x)] = x
        return out

    def reconstruct_array(self, x_unit: torch.Tensor) -> torch.Tensor:
        x = from_unit(x_unit, self.out_range).to(self.device)
        return to_unit(self.reconstruct(x), self.out_range).cpu()

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "cpu", weights: str = "auto") -> "Model":
        """The model of a run directory, with the weights of checkpoints/last.pt, in eval mode (weights: as
        from_checkpoint)."""
        path = run_checkpoint(run_dir)
        return cls.from_checkpoint(load_checkpoint(path, map_location=device), path, device, weights)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, path: str | Path, device: str = "cpu", weights: str = "auto") -> "Model":
        """The model of a loaded checkpoint (`path` names it in errors), in eval mode. weights: "auto" (the
        encoder's and decoder's weight average where the run kept one, train.ema, else the live weights), "live"."""
        model = cls(checkpoint_config(ckpt, path))
        load_networks(model.networks(), ckpt, path)
        if weights == "auto" and "ema" in ckpt:
            load_networks({k: getattr(model, k) for k in ckpt["ema"]["nets"]}, ckpt["ema"], f"{path} (ema)")
        elif weights not in ("auto", "live"):
            raise ValueError(f"weights: auto or live, got {weights!r}")
        return model.to(device).eval()
