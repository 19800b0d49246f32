"""Data-parallel training under torchrun: process group, rank, per-rank seeds; a no-op in one process."""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone logs, evaluates, draws and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def step_seed(self, seed: int, step: int) -> int:
        """The RNG seed of one rank's step. Ranks must draw different z and noise (else N processes would
        train on N copies of one draw); a function of (seed, rank, step) needs no state to resume exactly."""
        return (seed * 1_000_003 + step) * 4099 + self.rank


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str) -> tuple[World, str]:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); returns the world and the
    device this rank trains on (cuda:LOCAL_RANK for a CUDA run). Without torchrun: one process, unchanged."""
    if not launched():
        return World(), device
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        # DistributedDataParallel's constructor imports torch._dynamo; imported while a process group exists, it
        # keeps a reference to the group that destroy_process_group cannot drop, so gloo's worker threads outlive
        # it and race the interpreter's exit ("terminate called without an active exception", SIGABRT, about
        # one run in four). Imported first, it holds nothing, and cleanup() joins those threads.
        import torch._dynamo  # noqa: F401
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return World(rank, size, local), device


def current() -> World:
    """The world of an already initialised process group (one process when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return World()


def cleanup() -> None:
    """Destroy the process group, which joins gloo's threads (see setup)."""
    if dist.is_available() and dist.is_initialized():
        # DDP wrappers left in reference cycles (freed only by the cyclic collector) keep the group alive, and its
        # gloo threads with it; collected first, nothing holds it (tests/test_training_distributed.py)
        gc.collect()
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """One DistributedDataParallel wrapper per network: its gradients are averaged over the ranks in backward.
    Parameters are broadcast from rank 0 when wrapped, so every rank starts from the same weights."""
    if not world.distributed or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)
