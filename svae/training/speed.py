"""The speed policy of a training run: how a step is computed on this device, never which losses it minimises.

Layouts (train.channels_last), conv forms (train.fast_convs), in-place activations, one decoder call for two batches
(train.batch_decoder), autocast and loss scaling (train.precision), fused optimisers, and the torch.compile and DDP
wrappers. The trainer asks this object how to call a network and how to apply an update; docs/speed.md has the
figures behind each default.
"""
from __future__ import annotations

import contextlib
import time

import torch

from . import distributed
from ..config import ConfigError, TrainConfig
from .distributed import World
from ..model import Model
from ..models.convs import use_fast_convs
from ..models.tuning import can_split_batch, use_channels_last, use_inplace_acts


class Speed:
    """The speed switches of train.* applied to a model; `net`, `autocast` and `update` are what a step uses."""

    def __init__(self, model: Model, t: TrainConfig, device: torch.device, world: World, image: bool):
        self.model, self.device, self.world = model, device, world
        if world.distributed and not model.objective.adversarial:
            # its encoder is called through encoder.gaussian, a method that a DDP wrapper would not see
            raise ConfigError("objective.kind 'vae' cannot run under torchrun yet; train it in one process")
        self.channels_last = t.channels_last and image
        if self.channels_last:  # NHWC conv weights and maps; batches are made NHWC in layout()
            use_channels_last(model, True)
        use_fast_convs(model, t.fast_convs)  # CPU conv forms; off to time or test the direct kernels
        use_inplace_acts(model, t.inplace_acts)
        # G(z) and G(E(x)) in one decoder call (Trainer.forward_pair): for the reconstructing models, when every
        # BatchNorm of the decoder can normalise the two halves apart
        obj = model.objective
        self.batch_decoder = (t.batch_decoder and obj.adversarial and obj.uses_reconstruction
                              and can_split_batch(model.decoder))
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[t.precision]
        # fp16 gradients underflow without loss scaling; one scaler per optimiser (two backward passes a step)
        self.scalers = ({"critic": torch.amp.GradScaler(device.type), "gen": torch.amp.GradScaler(device.type)}
                        if t.precision == "fp16" else {})
        # fused: one pass over each parameter's memory for the whole Adam update (CPU and CUDA). The default on
        # CPU loops over tensors and runs ~7 elementwise passes; on MNIST's 3.2M-weight decoder layer that loop
        # took 65 ms an update against 14 ms fused (1 thread). fp16's GradScaler keeps the foreach path.
        self.optimizer_kw = {"foreach": True} if t.precision == "fp16" else {"fused": True}
        self.phase_seconds: dict[str, float] | None = None  # set to {} to time the critic and generator updates
        self._nets: dict[str, torch.nn.Module] = {}
        self._fixed: dict[str, torch.nn.Module] = {}
        if world.distributed or t.compile:
            self._wrap_networks(t.compile)

    def _wrap_networks(self, compile_on: bool) -> None:
        """DDP wrappers (under torchrun) and torch.compile (train.compile). The critic is called through its DDP
        wrapper only in its own update: in the encoder+decoder update its weights get no gradient, and a DDP
        forward would then wait in backward for gradients that never come. Without either, the steps look the
        networks up on the model at every call (tests swap them)."""
        compile_ = torch.compile if compile_on else (lambda m: m)
        for name, net in self.model.networks().items():
            self._nets[name] = compile_(distributed.wrap(net, self.world, self.device))
            if name.startswith("critic"):
                self._fixed[name] = compile_(net)

    def net(self, name: str, fixed: bool = False) -> torch.nn.Module:
        """The network to call: wrapped when distributed or compiled; `fixed`: a critic as a fixed function."""
        wrapped = (self._fixed if fixed else self._nets).get(name)
        return wrapped if wrapped is not None else getattr(self.model, name)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the memory layout of the networks' weights."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def optimizer(self, params: list[torch.nn.Parameter], lr: float, betas: tuple[float, float]
                  ) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, betas=betas, **self.optimizer_kw)

    def update(self, opt: torch.optim.Optimizer, loss: torch.Tensor, which: str) -> None:
        """Backward and one optimiser step; under fp16 through the loss scaler of `which` (critic or gen)."""
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(which)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)  # skipped when the scaled gradients overflowed; the scale is then lowered
            scaler.update()

    @contextlib.contextmanager
    def phase(self, name: str):
        """Add the seconds of the block to phase_seconds[name] (svae bench), when phase_seconds is set."""
        if self.phase_seconds is None:
            yield
            return
        start = self.sync_clock()
        yield
        self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + self.sync_clock() - start

    def sync_clock(self) -> float:
        """perf_counter after the device has finished its queued work (benchmark timing only)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()
