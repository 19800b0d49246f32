"""The one training loop: k critic updates then g encoder+decoder updates per batch, logging, checkpoints.

It knows no architecture: it calls model.encoder(x), model.decoder(z), model.critic(x, z) and the
objective's pure loss functions, nothing else. Stopping on signals and catching NaN/inf live in guard.py.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from . import __version__, distributed
from .atomic import WriteError, write_text
from .checkpoint import (CheckpointError, find_checkpoint, load_checkpoint, load_networks, rng_state, save_checkpoint,
                         set_rng_state)
from .config import Config, ConfigError
from .distributed import World
from .data import Dataset, to_model
from .guard import DivergenceError, FiniteWatch, Interrupted, StopSignals
from .model import Model
from .models.convs import use_fast_convs
from .models.tuning import can_split_batch, split_batch, use_channels_last, use_inplace_acts
from .objectives import critic_loss, marginal_critic_loss, vae_loss
from .tracking import MetricsSink

__all__ = ["Trainer", "DivergenceError", "Interrupted", "epoch_order"]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of an epoch depends on (seed, epoch) alone, so a resumed run sees the same batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class Trainer:
    """Trains a Model on a Dataset; the run directory (if given) receives metrics and checkpoints.

    Under torchrun (svae/distributed.py) each rank trains on its own slice of every global batch, with one
    DistributedDataParallel wrapper per network; pass run_dir on rank 0 only.
    """

    def __init__(self, model: Model, data: Dataset, cfg: Config, run_dir: str | Path | None = None,
                 world: World | None = None, probe: Callable[[Model], dict[str, Any]] | None = None):
        self.cfg, self.t = cfg, cfg.train
        self.world = world or distributed.current()
        self.device = torch.device(self.t.device)
        self.model = model.to(self.device)
        self.objective = model.objective
        self.data = data.to(self.device)  # uint8 images are small: keep them where the model is
        self.channels_last = self.t.channels_last and self.data.is_image
        if self.channels_last:  # NHWC conv weights and maps; batches are made NHWC in batch()
            use_channels_last(self.model, True)
        use_fast_convs(self.model, self.t.fast_convs)  # CPU conv forms; off to time or test the direct kernels
        use_inplace_acts(self.model, self.t.inplace_acts)
        # G(z) and G(E(x)) in one decoder call (forward_pair): for the reconstructing models, when every BatchNorm of
        # the decoder can normalise the two halves apart
        self.batch_decoder = (self.t.batch_decoder and self.objective.adversarial and self.objective.uses_reconstruction
                              and can_split_batch(self.model.decoder))
        self.critic_bn_apart = cfg.model.critic_bn == "apart" and model.critic is not None
        self.run_dir = Path(run_dir) if run_dir else None
        self.probe = probe  # learning curves: a cheap evaluation every probe_every steps (evaluate.Probe)
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run (resumes included)
        self._clock = time.perf_counter()
        betas = (self.t.beta1, self.t.beta2)
        # fused: one pass over each parameter's memory for the whole Adam update (CPU and CUDA). The default on
        # CPU loops over tensors and runs ~7 elementwise passes; on MNIST's 3.2M-weight decoder layer that loop
        # took 65 ms an update against 14 ms fused (1 thread). fp16's GradScaler keeps the foreach path.
        opt_kw = {"foreach": True} if self.t.precision == "fp16" else {"fused": True}
        gen_params = list(model.encoder.parameters()) + list(model.decoder.parameters())
        self.opt_gen = torch.optim.Adam(gen_params, lr=self.t.lr, betas=betas, **opt_kw)
        critic_params = [p for c in (model.critic, model.critic_p) if c is not None for p in c.parameters()]
        self.opt_critic = (torch.optim.Adam(critic_params, lr=self.t.lr, betas=betas, **opt_kw)
                           if critic_params else None)
        n = len(self.data.x_train)
        self.global_batch = self.t.batch_size * self.world.size  # train.batch_size is per rank
        self.steps_per_epoch = n // self.global_batch
        if self.steps_per_epoch == 0:
            raise ConfigError(f"train.batch_size {self.t.batch_size} x {self.world.size} process(es) is larger than "
                              f"the dataset ({n} examples)")
        self.total_steps = self.t.steps or self.t.epochs * self.steps_per_epoch
        self.probe_every = self.steps_per_epoch if self.t.probe_every == -1 else self.t.probe_every
        self._order: tuple[int, torch.Tensor] | None = None
        self._rng_devices = [self.device] if self.device.type == "cuda" else []
        self.rollbacks = 0  # divergences recovered from so far in this run (kept in checkpoints)
        self.watch = FiniteWatch(self.model)
        self._check_every_step = self.device.type == "cpu"  # reading a flag costs nothing there, a sync on GPU
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.t.precision]
        # fp16 gradients underflow without loss scaling; one scaler per optimiser (two backward passes a step)
        self.scalers = ({"critic": torch.amp.GradScaler(self.device.type), "gen": torch.amp.GradScaler(self.device.type)}
                        if self.t.precision == "fp16" else {})
        self._nets: dict[str, torch.nn.Module] = {}
        self._fixed: dict[str, torch.nn.Module] = {}
        if self.world.distributed and not self.objective.adversarial:
            # its encoder is called through encoder.gaussian, a method that a DDP wrapper would not see
            raise ConfigError("objective.kind 'vae' cannot run under torchrun yet; train it in one process")
        if self.world.distributed or self.t.compile:
            self._wrap_networks()
        self.phase_seconds: dict[str, float] | None = None  # set to {} to time the critic and generator updates

    def _wrap_networks(self) -> None:
        """DDP wrappers (under torchrun) and torch.compile (train.compile). The critic is called through its DDP
        wrapper only in its own update: in the encoder+decoder update its weights get no gradient, and a DDP
        forward would then wait in backward for gradients that never come. Without either, the steps look the
        networks up on self.model at every call (tests swap them)."""
        compile_ = torch.compile if self.t.compile else (lambda m: m)
        for name, net in self.model.networks().items():
            self._nets[name] = compile_(distributed.wrap(net, self.world, self.device))
            if name.startswith("critic"):
                self._fixed[name] = compile_(net)

    def net(self, name: str, fixed: bool = False) -> torch.nn.Module:
        """The network to call: wrapped when distributed or compiled; `fixed`: a critic as a fixed function."""
        wrapped = (self._fixed if fixed else self._nets).get(name)
        return wrapped if wrapped is not None else getattr(self.model, name)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ---- one batch ---------------------------------------------------------------------------------
    def batch(self, step: int) -> torch.Tensor:
        """This rank's slice of the global batch of `step`: a distributed sampler over the epoch's order, which
        depends on (seed, epoch) alone; with one process, the batch itself."""
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.data.x_train), self.t.seed, epoch).to(self.device))
        start = i * self.global_batch + self.world.rank * self.t.batch_size
        x = to_model(self.data.x_train[self._order[1][start:start + self.t.batch_size]], self.model.out_range)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _critic_logits(self, x, z_hat, x_tilde, z, fixed: bool = False):
        """Critic logits on encoder pairs and decoder pairs, in one forward pass (one batch for BatchNorm)."""
        b = len(x)
        with contextlib.ExitStack() as apart:
            if self.critic_bn_apart:  # each half normalised by its own statistics, as two critic calls would
                for c in (self.model.critic, self.model.critic_p):
                    if c is not None:
                        apart.enter_context(split_batch(c, 2))
            return self._critic_forward(x, z_hat, x_tilde, z, b, fixed)

    def _critic_forward(self, x, z_hat, x_tilde, z, b: int, fixed: bool):
        if self.objective.estimator == "marginal":
            # g_q: (x, E(x)) against (x, z), g_p: (G(z), z) against (x, z); x and z are independent: q(x)p(z)
            g_q = self.net("critic", fixed)(torch.cat([x, x]), torch.cat([z_hat, z])).float()
            g_p = self.net("critic_p", fixed)(torch.cat([x_tilde, x]), torch.cat([z, z])).float()
            return g_q[:b], g_p[:b], (g_q[b:], g_p[b:])
        logits = self.net("critic", fixed)(torch.cat([x, x_tilde]), torch.cat([z_hat, z])).float()
        return logits[:b], logits[b:], None

    def forward_pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """z ~ p(z), E(x), G(z) and, for train.batch_decoder, G(E(x)), with autograd: the generator update's forward,
        which the last critic update of the batch can share (E and G do not change during critic updates).

        G(z) and G(E(x)) go through the decoder as one batch whose BatchNorm layers normalise each half by its own
        statistics (tuning.split_batch): the function of two calls, with each weight read and its gradient written
        once (docs/speed.md). Without it the 4th element is None and the generator update calls G(E(x)) itself."""
        z = self.model.sample_prior(len(x))
        dec = self.net("decoder")
        with self._autocast():
            z_hat = self.net("encoder")(x)
            if not self.batch_decoder:
                return z, z_hat, dec(z), None
            with split_batch(self.model.decoder, 2):
                x_tilde, x_rec = dec(torch.cat([z, z_hat])).chunk(2)
        return z, z_hat, x_tilde, x_rec

    def critic_step(self, x: torch.Tensor, pair: tuple | None = None) -> torch.Tensor:
        """One critic update; on `pair` (z, E(x), G(z)) from forward_pair, detached, else on a fresh draw."""
        if pair is None:
            z = self.model.sample_prior(len(x))
            with torch.no_grad(), self._autocast():
                z_hat, x_tilde = self.net("encoder")(x), self.net("decoder")(z)
        else:
            z, z_hat, x_tilde = pair[0], pair[1].detach(), pair[2].detach()
        with self._autocast():
            lq, lp, marg = self._critic_logits(x, z_hat, x_tilde, z)
        if marg is None:
            loss = critic_loss(lq, lp)
        else:
            loss = marginal_critic_loss(lq, marg[0]) + marginal_critic_loss(lp, marg[1])
        self._update(self.opt_critic, loss, "critic")
        return loss.detach()

    def generator_step(self, x: torch.Tensor, log: bool = False, pair: tuple | None = None) -> dict[str, torch.Tensor]:
        """One encoder+decoder update; on `pair` from forward_pair (its graph kept), else on a fresh draw."""
        m, obj = self.model, self.objective
        enc, dec = self.net("encoder"), self.net("decoder")
        if not obj.adversarial:
            with self._autocast():
                mu, logvar = m.encoder.gaussian(x)  # a method, not forward: never compiled nor DDP-wrapped
                x_rec = dec(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
            loss, nll, kl = vae_loss(x, x_rec.float(), mu.float(), logvar.float(), obj.vae_sigma, obj.rec)
            out = {"loss_gen": loss, "nll": nll, "kl": kl}
        else:
            z, z_hat, x_tilde, x_rec = pair if pair is not None else self.forward_pair(x)
            self._critics_require_grad(False)  # the critic is a fixed function here: skip its weight grads
            with self._autocast():
                lq, lp, _ = self._critic_logits(x, z_hat, x_tilde, z, fixed=True)
            self._critics_require_grad(True)
            out = {"logit_q": lq.mean(), "logit_p": lp.mean()}
            if obj.uses_reconstruction:
                with self._autocast():
                    x_rec = dec(z_hat) if x_rec is None else x_rec
                    z_rec = enc(x_tilde)
                out["rec_x"] = obj.rec_distance(x, x_rec.float())
                out["rec_z"] = obj.rec_distance(z, z_rec.float())
            elif log:  # reported for every model, computed only when logged, on a forked RNG so that
                # the log schedule never changes the training noise (resume stays bitwise exact)
                with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices), self._autocast():
                    out["rec_x"] = obj.rec_distance(x, m.decoder(z_hat).float())
                    out["rec_z"] = obj.rec_distance(z, m.encoder(x_tilde).float())
            loss = obj.generator_loss(lq, lp, out.get("rec_x"), out.get("rec_z"))
            out["loss_gen"] = loss
        self._update(self.opt_gen, loss, "gen")
        return {k: v.detach() for k, v in out.items()}

    def _update(self, opt: torch.optim.Optimizer, loss: torch.Tensor, which: str) -> None:
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(which)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)  # skipped when the scaled gradients overflowed; the scale is then lowered
            scaler.update()

    def _critics_require_grad(self, flag: bool) -> None:
        for c in (self.model.critic, self.model.critic_p):
            if c is not None:
                c.requires_grad_(flag)

    def train_step(self, log: bool = False) -> dict[str, torch.Tensor]:
        """One batch: train.critic_steps critic updates, then train.gen_steps encoder+decoder updates.

        With train.reuse_forward the last critic update and the first encoder+decoder update share one draw of
        z and one forward E(x), G(z): the critic trains on detached copies, and the generator update backpropagates
        through the same graph after the critic has moved (the critic is re-run on it with its new weights).
        Each update computes exactly the losses and gradients it did with two draws (tests/test_fast_step.py);
        what changes is that both updates see the same z and noise, and E's and G's BatchNorm running averages
        move once for that forward instead of twice.
        """
        if self.world.distributed:  # per-rank draws that a resumed run repeats (svae/distributed.py)
            torch.manual_seed(self.world.step_seed(self.t.seed, self.step))
        timing = self.phase_seconds is not None
        if timing:
            start = self._sync_clock()
        x = self.batch(self.step)
        out: dict[str, torch.Tensor] = {}
        pair = None
        if self.objective.adversarial:
            for i in range(self.t.critic_steps):
                if self.t.reuse_forward and i == self.t.critic_steps - 1:
                    pair = self.forward_pair(x)
                out["loss_critic"] = self.critic_step(x, pair)
        if timing:
            mid = self._sync_clock()
            self.phase_seconds["critic"] = self.phase_seconds.get("critic", 0.0) + mid - start
        for j in range(self.t.gen_steps):
            out.update(self.generator_step(x, log=log and j == self.t.gen_steps - 1, pair=pair if j == 0 else None))
        if timing:
            self.phase_seconds["gen"] = self.phase_seconds.get("gen", 0.0) + self._sync_clock() - mid
        self.step += 1
        return out

    def _sync_clock(self) -> float:
        """perf_counter after the device has finished its queued work (benchmark timing only)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

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
                probe = (self._probe() if self.probe and self.probe_every
                         and (self.step % self.probe_every == 0 or self.step == end) else {})
                if log or probe:  # a probe joins the step's log row, or makes a row of its own
                    row = {"step": self.step, "epoch": self.step / self.steps_per_epoch,
                           **{k: float(v) for k, v in out.items() if log}, "seconds": round(self._tick(), 3), **probe}
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

    def _probe(self) -> dict[str, Any]:
        """The learning-curve values of this step; their seconds are kept out of the training time (probe_seconds
        says what they cost)."""
        self._tick()
        values = self.probe(self.model)
        self._clock = time.perf_counter()
        return values

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

    sink: MetricsSink | None = None  # another destination of every metrics row (TensorBoard), set by run.train

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
            "world_size": self.world.size,  # processes that shared each batch (torchrun); 1 otherwise
            "nets": {k: v.state_dict() for k, v in self.model.networks().items()},
            "opt_gen": self.opt_gen.state_dict(),
            "opt_critic": self.opt_critic.state_dict() if self.opt_critic else None,
            **({"scalers": {k: v.state_dict() for k, v in self.scalers.items()}} if self.scalers else {}),
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
        for k, scaler in self.scalers.items():  # fp16: the loss scale and its growth counter
            if k in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][k])
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
