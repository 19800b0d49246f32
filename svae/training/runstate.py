"""The state of a training run beyond its networks: checkpoints, resuming, the metrics file, the clock, rollback.

RunState is the part of the Trainer that outlives a process: what a checkpoint holds and how it is restored, the
metrics rows appended to RUN_DIR/metrics.jsonl, the training seconds over every session, and the rollback from a
divergence to the last checkpoint (train.on_divergence). It reads the trainer's model, optimisers, speed scalers,
step and run_dir.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..atomic import WriteError, write_text
from ..checkpoint import (CheckpointError, find_checkpoint, load_checkpoint, load_networks, rng_state, save_checkpoint,
                         set_rng_state)
from .guard import DivergenceError
from .tracking import MetricsSink


class RunState:
    """Checkpoint state, metrics and rollback of a Trainer (a base class of it)."""

    sink: MetricsSink | None = None  # another destination of every metrics row (TensorBoard), set by run.train

    def _tick(self) -> float:
        """Add the time since the last tick to self.elapsed (training seconds over every session) and return it."""
        now = time.perf_counter()
        self.elapsed += now - self._clock
        self._clock = now
        return self.elapsed

    def _probe(self) -> dict[str, Any]:
        """The learning-curve values of this step; their seconds are kept out of the training time (probe_seconds
        says what they cost)."""
        self._tick()
        values = self.probe(self.model)
        if self.average is not None:  # the average beside the live weights, on the same draws
            values.update({f"{k}_ema": v for k, v in self.probe(self.average.model).items()})
        self._clock = time.perf_counter()
        return values

    def _healthy(self, history: list[dict[str, Any]]) -> bool:
        """False after rolling back from a divergence; raises it when the run stops instead."""
        err = self.watch.check()
        if err is None:
            return True
        found = None
        if self.run_dir:  # the error path: loading the checkpoint to name it costs nothing that matters
            try:
                found = find_checkpoint(self.run_dir, map_location=self.device)
            except CheckpointError:
                pass
        last = f"; {found[0]} holds step {found[1]['step']}" if found else ""
        if self.t.on_divergence != "rollback":
            raise DivergenceError(f"{err}{last}; lower train.lr, or set train.on_divergence=rollback to "
                                  "recover from it", err.step, err.values)
        if found is None:
            raise DivergenceError(f"{err}; no checkpoint to roll back to (rollback needs a run directory)",
                                  err.step, err.values)
        if self.rollbacks >= self.t.max_rollbacks:
            raise DivergenceError(f"{err}; giving up after {self.rollbacks} rollback(s) (train.max_rollbacks){last}",
                                  err.step, err.values)
        path, state, _ = found
        elapsed, rollbacks = self._tick(), self.rollbacks + 1
        self.resume(state)
        self.elapsed, self.rollbacks = elapsed, rollbacks
        lr = self.apply_lr()  # train.lr times rollback_lr_factor per rollback so far (and the decay's share)
        history[:] = [r for r in history if r["step"] <= self.step]
        self._write_metrics({"step": err.step, "event": "rollback", "to_step": self.step, "lr": lr,
                             "rollback": rollbacks, "reason": str(err)})
        print(f"svae: warning: {err}; rolled back to step {self.step} ({path.name}), learning rate now {lr:g} "
              f"(rollback {rollbacks} of at most {self.t.max_rollbacks})", file=sys.stderr)
        return False

    def _write_metrics(self, row: dict[str, Any]) -> None:
        if self.run_dir:
            path = self.run_dir / "metrics.jsonl"
            try:  # appended, not rewritten: a torn last line is dropped on resume (drop_metrics_after)
                with open(path, "a") as f:
                    f.write(json.dumps(row) + "\n")
            except OSError as e:
                raise WriteError(f"could not write metrics {path}: {e.strerror or e}") from None
        if self.sink is not None:
            self.sink.write(row)

    def drop_metrics_after(self, step: int) -> None:
        """Drop metric rows past `step` (written after the checkpoint being resumed), and any torn last line."""
        path = self.run_dir / "metrics.jsonl" if self.run_dir else None
        if path is None or not path.is_file():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    keep.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                pass
        write_text(path, "".join(keep), "metrics")

    @property
    def ckpt_path(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "checkpoints" / "last.pt"

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [o for o in (self.opt_gen, self.opt_critic) if o is not None]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly; plain containers and tensors only (weights_only loadable)."""
        epoch, batch = divmod(self.step, self.steps_per_epoch)
        return {
            "version": __version__,
            "config": self.cfg.to_dict(),
            "step": self.step,
            "epoch": epoch,
            # the data order is a function of (seed, epoch): the step is the position in it
            "data": {"n_train": len(self.data.x_train), "epoch": epoch, "batch": batch, "seed": self.t.seed},
            "elapsed": self.elapsed,
            "rollbacks": self.rollbacks,
            "world_size": self.world.size,  # processes that shared each batch (torchrun); 1 otherwise
            "nets": {k: v.state_dict() for k, v in self.model.networks().items()},
            "opt_gen": self.opt_gen.state_dict(),
            "opt_critic": self.opt_critic.state_dict() if self.opt_critic else None,
            **({"ema": self.average.state_dict()} if self.average is not None else {}),
            **({"scalers": {k: v.state_dict() for k, v in self.speed.scalers.items()}} if self.speed.scalers else {}),
            **rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = state.get("data", {}).get("n_train", len(self.data.x_train))
        if n != len(self.data.x_train):
            raise ValueError(f"the checkpoint was trained on {n} examples, this dataset has "
                             f"{len(self.data.x_train)}: the data order would differ")
        where = f"the checkpoint of step {state.get('step')}"
        load_networks(self.model.networks(), state, where)
        try:
            self.opt_gen.load_state_dict(state["opt_gen"])
            if self.opt_critic is not None:
                self.opt_critic.load_state_dict(state["opt_critic"])
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{where}: its optimiser states do not fit the networks ({e})") from None
        for k, scaler in self.speed.scalers.items():  # fp16: the loss scale and its growth counter
            if k in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][k])
        if self.average is not None:  # a run that turns train.ema on when resumed averages from here
            if "ema" in state:
                self.average.load_state_dict(state["ema"])
            else:
                self.average.reset(self.model)
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.rollbacks = int(state.get("rollbacks", 0))
        self.watch.pending.clear()
        set_rng_state(state)

    def save(self) -> Path:
        """Write checkpoints/last.pt (and its step copy, the newest train.keep_ckpts kept) atomically."""
        return save_checkpoint(self.state_dict(), self.ckpt_path, keep=self.t.keep_ckpts)

    def resume(self, source: str | Path | dict[str, Any]) -> None:
        """Continue from a checkpoint (a path or a loaded state); metric rows logged after it are dropped."""
        state = source if isinstance(source, dict) else load_checkpoint(source, map_location=self.device)
        self.load_state_dict(state)
        self.drop_metrics_after(self.step)
