"""The one training loop: k critic updates then g encoder+decoder updates per batch, logging, checkpoints.

It knows no architecture: it calls model.encoder(x), model.decoder(z), model.critic(x, z) and the objective's
pure losses, nothing else. How a step is computed fast lives in speed.py, what a checkpoint holds and rollback in
runstate.py, stopping on signals and catching NaN/inf in guard.py.
"""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from . import distributed
from .averaging import WeightAverage
from ..config import Config, ConfigError
from .distributed import World
from ..data import Dataset, to_model
from .guard import DivergenceError, FiniteWatch, Interrupted, StopSignals
from ..model import Model
from ..models.tuning import split_batch
from ..objectives import r1_penalty, reparameterise
from .runstate import RunState
from .speed import Speed

__all__ = ["Trainer", "DivergenceError", "Interrupted", "epoch_order"]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of an epoch depends on (seed, epoch) alone, so a resumed run sees the same batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class Trainer(RunState):
    """Trains a Model on a Dataset; the run directory (if given) receives metrics and checkpoints.

    Under torchrun (svae/training/distributed.py) each rank trains on its own slice of every global batch, with one
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
        self.speed = Speed(self.model, self.t, self.device, self.world, self.data.is_image)
        # the weight average starts at the initial weights (a resumed run loads its own from the checkpoint)
        self.average = WeightAverage(self.model, self.t.ema) if self.t.ema else None
        self.critic_bn_apart = cfg.model.critic_bn == "apart" and model.critic is not None
        if cfg.objective.r1 and self.world.distributed:
            raise ConfigError("objective.r1 does not run under torchrun: DistributedDataParallel cannot differentiate "
                              "the critic's input gradient (train on one process)")
        self.run_dir = Path(run_dir) if run_dir else None
        self.probe = probe  # learning curves: a cheap evaluation every probe_every steps (evaluate.Probe)
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run (resumes included)
        self._clock = time.perf_counter()
        betas = (self.t.beta1, self.t.beta2)
        self.opt_gen = self.speed.optimizer(list(model.encoder.parameters()) + list(model.decoder.parameters()),
                                            self.t.lr, betas)
        critic_params = [p for c in (model.critic, model.critic_p) if c is not None for p in c.parameters()]
        self.opt_critic = self.speed.optimizer(critic_params, self.t.lr, betas) if critic_params else None
        n = len(self.data.x_train)
        self.global_batch = self.t.batch_size * self.world.size  # train.batch_size is per rank
        self.steps_per_epoch = n // self.global_batch
        if self.steps_per_epoch == 0:
            raise ConfigError(f"train.batch_size {self.t.batch_size} x {self.world.size} process(es) is larger than "
                              f"the dataset ({n} examples)")
        self.total_steps = self.t.steps or self.t.epochs * self.steps_per_epoch
        self.decay_steps = min(self.total_steps, round(self.t.lr_decay_epochs * self.steps_per_epoch))
        if self.average is not None and self.run_dir and self.t.ema ** self.total_steps > 0.05:  # runs, not bench
            fits = f"a decay of at most {1 - 3 / self.total_steps:.4g}" if self.total_steps > 30 else "0 (off)"
            print(f"svae: warning: train.ema {self.t.ema:g} over {self.total_steps} steps: the initial weights keep "
                  f"{self.t.ema ** self.total_steps:.0%} of the final average; {fits} forgets them "
                  "(docs/evaluation.md)", file=sys.stderr)
        self.probe_every = self.steps_per_epoch if self.t.probe_every == -1 else self.t.probe_every
        self._order: tuple[int, torch.Tensor] | None = None
        self._rng_devices = [self.device] if self.device.type == "cuda" else []
        self.rollbacks = 0  # divergences recovered from so far in this run (kept in checkpoints)
        self.watch = FiniteWatch(self.model)
        self._check_every_step = self.device.type == "cpu"  # reading a flag costs nothing there, a sync on GPU

    def lr_at(self, step: int) -> float:
        """The learning rate of batch `step` (0-based): train.lr, times train.rollback_lr_factor per rollback, times
        the linear decay of the last train.lr_decay_epochs, which reaches 1 / decay_steps at the last batch."""
        scale = min(1.0, (self.total_steps - step) / self.decay_steps) if self.decay_steps else 1.0
        return self.t.lr * self.t.rollback_lr_factor ** self.rollbacks * scale

    def apply_lr(self) -> float:
        """Set every optimiser's rate to lr_at(step): after a rollback, and every step while a decay runs."""
        lr = self.lr_at(self.step)
        for opt in self.optimizers():
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    # ---- one batch ---------------------------------------------------------------------------------
    def batch(self, step: int) -> torch.Tensor:
        """This rank's slice of the global batch of `step`: a distributed sampler over the epoch's order, which
        depends on (seed, epoch) alone; with one process, the batch itself."""
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.data.x_train), self.t.seed, epoch).to(self.device))
        start = i * self.global_batch + self.world.rank * self.t.batch_size
        x = to_model(self.data.x_train[self._order[1][start:start + self.t.batch_size]], self.model.out_range)
        return self.speed.layout(x)

    def _critic_logits(self, x, z_hat, x_tilde, z, fixed: bool = False):
        """Critic logits on encoder pairs and decoder pairs, one forward pass per critic (one batch for BatchNorm);
        which pairs each critic sees is the objective's (Objective.critic_inputs)."""
        with contextlib.ExitStack() as apart:
            if self.critic_bn_apart:  # each half normalised by its own statistics, as two critic calls would
                for c in (self.model.critic, self.model.critic_p):
                    if c is not None:
                        apart.enter_context(split_batch(c, 2))
            logits = {name: self.speed.net(name, fixed)(xs, zs).float()
                      for name, (xs, zs) in self.objective.critic_inputs(x, z_hat, x_tilde, z).items()}
        return self.objective.split_logits(logits, len(x))

    def forward_pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """z ~ p(z), E(x), G(z) and, for train.batch_decoder, G(E(x)), with autograd: the generator update's forward,
        which the last critic update of the batch can share (E and G do not change during critic updates).

        G(z) and G(E(x)) go through the decoder as one batch whose BatchNorm layers normalise each half by its own
        statistics (tuning.split_batch): the function of two calls, with each weight read and its gradient written
        once (docs/speed.md). Without it the 4th element is None and the generator update calls G(E(x)) itself."""
        z = self.model.sample_prior(len(x))
        dec = self.speed.net("decoder")
        with self.speed.autocast():
            z_hat = self.speed.net("encoder")(x)
            if not self.speed.batch_decoder:
                return z, z_hat, dec(z), None
            with split_batch(self.model.decoder, 2):
                x_tilde, x_rec = dec(torch.cat([z, z_hat])).chunk(2)
        return z, z_hat, x_tilde, x_rec

    def critic_step(self, x: torch.Tensor, pair: tuple | None = None, r1: bool = False) -> dict[str, torch.Tensor]:
        """One critic update; on `pair` (z, E(x), G(z)) from forward_pair, detached, else on a fresh draw.
        r1: add objective.r1's gradient penalty at the encoder pairs (weighted by r1_every, the lazy schedule)."""
        if pair is None:
            z = self.model.sample_prior(len(x))
            with torch.no_grad(), self.speed.autocast():
                z_hat, x_tilde = self.speed.net("encoder")(x), self.speed.net("decoder")(z)
        else:
            z, z_hat, x_tilde = pair[0], pair[1].detach(), pair[2].detach()
        if r1:  # fresh leaves: the penalty differentiates the logits with respect to the pair itself
            x, z_hat = x.detach().requires_grad_(True), z_hat.detach().requires_grad_(True)
        with self.speed.autocast():
            lq, lp, marginal = self._critic_logits(x, z_hat, x_tilde, z)
        loss = self.objective.critic_loss(lq, lp, marginal)
        out = {"loss_critic": loss.detach()}
        if r1:
            penalty = r1_penalty(lq, (x, z_hat))
            loss = loss + 0.5 * self.objective.r1 * self.objective.r1_every * penalty
            out["r1"] = penalty.detach()
        self.speed.update(self.opt_critic, loss, "critic")
        return out

    def generator_step(self, x: torch.Tensor, log: bool = False, pair: tuple | None = None) -> dict[str, torch.Tensor]:
        """One encoder+decoder update; on `pair` from forward_pair (its graph kept), else on a fresh draw."""
        m, obj, autocast = self.model, self.objective, self.speed.autocast
        enc, dec = self.speed.net("encoder"), self.speed.net("decoder")
        if not obj.adversarial:
            with autocast():
                mu, logvar = m.encoder.gaussian(x)  # a method, not forward: never compiled nor DDP-wrapped
                x_rec = dec(reparameterise(mu, logvar))
            out = obj.vae_terms(x, x_rec.float(), mu.float(), logvar.float())
        else:
            z, z_hat, x_tilde, x_rec = pair if pair is not None else self.forward_pair(x)
            m.critics_require_grad(False)  # the critic is a fixed function here: skip its weight grads
            with autocast():
                lq, lp, _ = self._critic_logits(x, z_hat, x_tilde, z, fixed=True)
            m.critics_require_grad(True)
            out = {"logit_q": lq.mean(), "logit_p": lp.mean()}
            if obj.uses_reconstruction:
                with autocast():
                    x_rec = dec(z_hat) if x_rec is None else x_rec
                    z_rec = enc(x_tilde)
                out["rec_x"] = obj.rec_distance(x, x_rec.float())
                out["rec_z"] = obj.rec_distance(z, z_rec.float())
            elif log:  # reported for every model, computed only when logged, on a forked RNG so that
                # the log schedule never changes the training noise (resume stays bitwise exact)
                with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices), autocast():
                    out["rec_x"] = obj.rec_distance(x, m.decoder(z_hat).float())
                    out["rec_z"] = obj.rec_distance(z, m.encoder(x_tilde).float())
            out["loss_gen"] = obj.generator_loss(lq, lp, out.get("rec_x"), out.get("rec_z"))
        self.speed.update(self.opt_gen, out["loss_gen"], "gen")
        return {k: v.detach() for k, v in out.items()}

    def train_step(self, log: bool = False) -> dict[str, torch.Tensor]:
        """One batch: train.critic_steps critic updates, then train.gen_steps encoder+decoder updates.

        With train.reuse_forward the last critic update and the first encoder+decoder update share one draw of
        z and one forward E(x), G(z): the critic trains on detached copies, and the generator update backpropagates
        through the same graph after the critic has moved (the critic is re-run on it with its new weights).
        Each update computes exactly the losses and gradients it did with two draws (tests/test_training_speed.py);
        what changes is that both updates see the same z and noise, and E's and G's BatchNorm running averages
        move once for that forward instead of twice.
        """
        if self.world.distributed:  # per-rank draws that a resumed run repeats (svae/training/distributed.py)
            torch.manual_seed(self.world.step_seed(self.t.seed, self.step))
        out: dict[str, torch.Tensor] = {}
        pair = None
        if self.decay_steps:  # set every step, so a resumed or rolled-back run follows the same schedule
            self.apply_lr()
        with self.speed.phase("critic"):  # benchmark timing (svae bench), off in training
            x = self.batch(self.step)
            if self.objective.adversarial:
                r1 = self.objective.r1 > 0 and self.step % self.objective.r1_every == 0
                for i in range(self.t.critic_steps):
                    if self.t.reuse_forward and i == self.t.critic_steps - 1:
                        pair = self.forward_pair(x)
                    out.update(self.critic_step(x, pair, r1=r1 and i == 0))
        with self.speed.phase("gen"):
            for j in range(self.t.gen_steps):
                out.update(self.generator_step(x, log=log and j == self.t.gen_steps - 1,
                                               pair=pair if j == 0 else None))
        if self.average is not None:
            self.average.update(self.model)
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
                probe = (self._probe() if self.probe and self.probe_every
                         and (self.step % self.probe_every == 0 or self.step == end) else {})
                if log or probe:  # a probe joins the step's log row, or makes a row of its own
                    row = {"step": self.step, "epoch": self.step / self.steps_per_epoch,
                           **{k: float(v) for k, v in out.items() if log}, "seconds": round(self._tick(), 3), **probe}
                    if log and self.decay_steps:  # the rate the logged batch trained with
                        row["lr"] = self.lr_at(self.step - 1)
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
