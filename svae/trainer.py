"""The one training loop: k critic updates then g encoder+decoder updates per batch, logging, checkpoints.

It knows no architecture: it calls model.encoder(x), model.decoder(z), model.critic(x, z) and the
objective's pure loss functions, nothing else. Stopping on signals and catching NaN/inf live in guard.py.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import __version__
from .checkpoint import CheckpointError, find_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import Config, ConfigError
from .data import Dataset, to_model
from .guard import DivergenceError, FiniteWatch, Interrupted, StopSignals
from .model import Model
from .objectives import critic_loss, marginal_critic_loss, vae_loss

__all__ = ["Trainer", "DivergenceError", "Interrupted", "epoch_order"]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of an epoch depends on (seed, epoch) alone, so a resumed run sees the same batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class Trainer:
    """Trains a Model on a Dataset; the run directory (if given) receives metrics and checkpoints."""

    def __init__(self, model: Model, data: Dataset, cfg: Config, run_dir: str | Path | None = None):
        self.cfg, self.t = cfg, cfg.train
        self.device = torch.device(self.t.device)
        self.model = model.to(self.device)
        self.objective = model.objective
        self.data = data.to(self.device)  # uint8 images are small: keep them where the model is
        self.run_dir = Path(run_dir) if run_dir else None
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run (resumes included)
        self._clock = time.perf_counter()
        betas = (self.t.beta1, self.t.beta2)
        gen_params = list(model.encoder.parameters()) + list(model.decoder.parameters())
        self.opt_gen = torch.optim.Adam(gen_params, lr=self.t.lr, betas=betas)
        critic_params = [p for c in (model.critic, model.critic_p) if c is not None for p in c.parameters()]
        self.opt_critic = torch.optim.Adam(critic_params, lr=self.t.lr, betas=betas) if critic_params else None
        n = len(self.data.x_train)
        self.steps_per_epoch = n // self.t.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(f"train.batch_size {self.t.batch_size} is larger than the dataset ({n} examples)")
        self.total_steps = self.t.steps or self.t.epochs * self.steps_per_epoch
        self._order: tuple[int, torch.Tensor] | None = None
        self._rng_devices = [self.device] if self.device.type == "cuda" else []
        self.rollbacks = 0  # divergences recovered from so far in this run (kept in checkpoints)
        self.watch = FiniteWatch(self.model)
        self._check_every_step = self.device.type == "cpu"  # reading a flag costs nothing there, a sync on GPU

    # ---- one batch ---------------------------------------------------------------------------------
    def batch(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.data.x_train), self.t.seed, epoch).to(self.device))
        idx = self._order[1][i * self.t.batch_size:(i + 1) * self.t.batch_size]
        return to_model(self.data.x_train[idx], self.model.out_range)

    def _critic_logits(self, x, z_hat, x_tilde, z):
        """Critic logits on encoder pairs and decoder pairs, in one forward pass (one batch for BatchNorm)."""
        m, b = self.model, len(x)
        if self.objective.estimator == "marginal":
            # g_q: (x, E(x)) against (x, z), g_p: (G(z), z) against (x, z); x and z are independent: q(x)p(z)
            g_q = m.critic(torch.cat([x, x]), torch.cat([z_hat, z]))
            g_p = m.critic_p(torch.cat([x_tilde, x]), torch.cat([z, z]))
            return g_q[:b], g_p[:b], (g_q[b:], g_p[b:])
        logits = m.critic(torch.cat([x, x_tilde]), torch.cat([z_hat, z]))
        return logits[:b], logits[b:], None

    def critic_step(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        z = m.sample_prior(len(x))
        with torch.no_grad():
            z_hat, x_tilde = m.encoder(x), m.decoder(z)
        lq, lp, marg = self._critic_logits(x, z_hat, x_tilde, z)
        if marg is None:
            loss = critic_loss(lq, lp)
        else:
            loss = marginal_critic_loss(lq, marg[0]) + marginal_critic_loss(lp, marg[1])
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        return loss.detach()

    def generator_step(self, x: torch.Tensor, log: bool = False) -> dict[str, torch.Tensor]:
        m, obj = self.model, self.objective
        if not obj.adversarial:
            mu, logvar = m.encoder.gaussian(x)
            x_rec = m.decoder(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
            loss, nll, kl = vae_loss(x, x_rec, mu, logvar, obj.vae_sigma, obj.rec)
            out = {"loss_gen": loss, "nll": nll, "kl": kl}
        else:
            z = m.sample_prior(len(x))
            z_hat, x_tilde = m.encoder(x), m.decoder(z)
            self._critics_require_grad(False)  # the critic is a fixed function here: skip its weight grads
            lq, lp, _ = self._critic_logits(x, z_hat, x_tilde, z)
            self._critics_require_grad(True)
            out = {"logit_q": lq.mean(), "logit_p": lp.mean()}
            if obj.uses_reconstruction:
                out["rec_x"] = obj.rec_distance(x, m.decoder(z_hat))
                out["rec_z"] = obj.rec_distance(z, m.encoder(x_tilde))
            elif log:  # reported for every model, computed only when logged, on a forked RNG so that
                # the log schedule never changes the training noise (resume stays bitwise exact)
                with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices):
                    out["rec_x"] = obj.rec_distance(x, m.decoder(z_hat))
                    out["rec_z"] = obj.rec_distance(z, m.encoder(x_tilde))
            loss = obj.generator_loss(lq, lp, out.get("rec_x"), out.get("rec_z"))
            out["loss_gen"] = loss
        self.opt_gen.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_gen.step()
        return {k: v.detach() for k, v in out.items()}

    def _critics_require_grad(self, flag: bool) -> None:
        for c in (self.model.critic, self.model.critic_p):
            if c is not None:
                c.requires_grad_(flag)

    def train_step(self, log: bool = False) -> dict[str, torch.Tensor]:
        x = self.batch(self.step)
        out: dict[str, torch.Tensor] = {}
        if self.objective.adversarial:
            for _ in range(self.t.critic_steps):
                out["loss_critic"] = self.critic_step(x)
        for j in range(self.t.gen_steps):
            out.update(self.generator_step(x, log=log and j == self.t.gen_steps - 1))
        self.step += 1
        return out

    # ---- the loop ----------------------------------------------------------------------------------
    def fit(self, steps: int | None = None, progress: bool | None = None) -> list[dict[str, Any]]:
        """Train until total_steps (or `steps` more); log every log_every steps; checkpoint as configured.

        Raises DivergenceError at the first non-finite loss or parameter (unless train.on_divergence is
        rollback), and Interrupted after SIGINT/SIGTERM once the step is finished and checkpointed.
        """
        end = self.total_steps if steps is None else min(self.total_steps, self.step + steps)
        self.model.train()
        history: list[dict[str, Any]] = []
        progress = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=end, initial=self.step, disable=not progress, desc="train", unit="step", leave=False)
        self._clock = time.perf_counter()
        if self.run_dir and self.t.on_divergence == "rollback" and not self.ckpt_path.is_file():
            self.save()  # something to roll back to before the first periodic checkpoint
        with StopSignals() as stop:
            while self.step < end:
                log = (self.step + 1) % self.t.log_every == 0 or self.step + 1 == end
                out = self.train_step(log=log)
                self.watch.record(self.step, out)
                save = bool(self.run_dir and self.t.ckpt_every and self.step % self.t.ckpt_every == 0)
                if (self._check_every_step or log or save or stop.signum) and not self._healthy(history):
                    bar.n = self.step  # rolled back
                    continue
                bar.update(1)
                if log:
                    row = {"step": self.step, "epoch": self.step / self.steps_per_epoch,
                           **{k: float(v) for k, v in out.items()}, "seconds": round(self._tick(), 3)}
                    history.append(row)
                    self._write_metrics(row)
                    bar.set_postfix({k: f"{row[k]:.3g}" for k in ("loss_critic", "loss_gen") if k in row})
                if (save and self.step < end) or (stop.signum and self.run_dir):
                    if not self._healthy(history):  # a signal may have come after the check above
                        bar.n = self.step
                        continue
                    self._tick()
                    self.save()
                if stop.signum:
                    raise Interrupted(stop.signum, self.step, self.ckpt_path if self.run_dir else None)
            bar.close()
            self._tick()
            if self.run_dir:
                self.save()
            if stop.signum:  # came during the final save: the run is complete, but the caller asked to stop
                raise Interrupted(stop.signum, self.step, self.ckpt_path if self.run_dir else None)
        return history

    def _tick(self) -> float:
        """Add the time since the last tick to self.elapsed (training seconds over every session) and return it."""
        now = time.perf_counter()
        self.elapsed += now - self._clock
        self._clock = now
        return self.elapsed

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
        for opt in self.optimizers():
            for group in opt.param_groups:
                group["lr"] *= self.t.rollback_lr_factor
        lr = self.opt_gen.param_groups[0]["lr"]
        history[:] = [r for r in history if r["step"] <= self.step]
        self._write_metrics({"step": err.step, "event": "rollback", "to_step": self.step, "lr": lr,
                             "rollback": rollbacks, "reason": str(err)})
        print(f"svae: warning: {err}; rolled back to step {self.step} ({path.name}), learning rate now {lr:g} "
              f"(rollback {rollbacks} of at most {self.t.max_rollbacks})", file=sys.stderr)
        return False

    def _write_metrics(self, row: dict[str, Any]) -> None:
        if self.run_dir:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

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
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, path)

    # ---- state -------------------------------------------------------------------------------------
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
            "nets": {k: v.state_dict() for k, v in self.model.networks().items()},
            "opt_gen": self.opt_gen.state_dict(),
            "opt_critic": self.opt_critic.state_dict() if self.opt_critic else None,
            **rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = state.get("data", {}).get("n_train", len(self.data.x_train))
        if n != len(self.data.x_train):
            raise ValueError(f"the checkpoint was trained on {n} examples, this dataset has "
                             f"{len(self.data.x_train)}: the data order would differ")
        for name, net in self.model.networks().items():
            net.load_state_dict(state["nets"][name])
        self.opt_gen.load_state_dict(state["opt_gen"])
        if self.opt_critic is not None:
            self.opt_critic.load_state_dict(state["opt_critic"])
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
