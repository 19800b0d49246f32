"""An exponential moving average of the encoder's and decoder's weights (train.ema), kept beside training.

A GAN's generator does not converge to a point: between two probes half an epoch apart its samples' IS moves by
as much as the gap between two models (docs/results.md). Averaging the weights over the last ~1/(1-decay) steps
smooths that walk (Yazici et al., "The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019). The
average never feeds back into training, so a run with it trains exactly as one without; it is probed beside the
live weights (metrics keys with the suffix _ema), evaluated at the end, and saved in checkpoints under "ema".

BatchNorm's running statistics are averaged with the same decay as the weights (integer buffers are copied): the
statistics then belong to the same stretch of training as the weights they normalise.
"""
from __future__ import annotations

from typing import Any

import torch

from ..model import without_critics

AVERAGED = ("encoder", "decoder")  # the critics are never sampled from: not averaged


class WeightAverage:
    """avg <- decay * avg + (1 - decay) * live after every step, for the encoder and decoder of a Model.

    `model` is a copy of the live Model (critics dropped) that holds the averages: sample from it, reconstruct with
    it, evaluate it like any Model."""

    def __init__(self, live: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.model = without_critics(live)  # only the encoder and decoder are averaged
        self.model.requires_grad_(False)
        self.model.eval()

    def _pairs(self, live: torch.nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor],
                                                      list[torch.Tensor]]:
        avg_f, live_f, avg_i, live_i = [], [], [], []
        for name in AVERAGED:
            mine, theirs = getattr(self.model, name), getattr(live, name)
            for a, b in zip([*mine.parameters(), *mine.buffers()], [*theirs.parameters(), *theirs.buffers()]):
                (avg_f if a.is_floating_point() else avg_i).append(a)
                (live_f if a.is_floating_point() else live_i).append(b.detach())
        return avg_f, live_f, avg_i, live_i

    @torch.no_grad()
    def update(self, live: torch.nn.Module) -> None:
        """One step of the average towards the live weights (one fused call for every floating tensor)."""
        avg_f, live_f, avg_i, live_i = self._pairs(live)
        torch._foreach_lerp_(avg_f, live_f, 1.0 - self.decay)
        for a, b in zip(avg_i, live_i):
            a.copy_(b)

    @torch.no_grad()
    def reset(self, live: torch.nn.Module) -> None:
        """Start the average at the live weights (a run that turns train.ema on when resumed)."""
        avg_f, live_f, avg_i, live_i = self._pairs(live)
        for a, b in zip(avg_f + avg_i, live_f + live_i):
            a.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "nets": {k: getattr(self.model, k).state_dict() for k in AVERAGED}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in AVERAGED:
            getattr(self.model, k).load_state_dict(state["nets"][k])
