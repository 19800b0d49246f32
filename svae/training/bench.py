"""`svae bench`: training throughput of a preset against a plain reference step, FLOPs, memory, evaluation cost."""
from __future__ import annotations

import copy
import resource
import statistics
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import Config
from ..data import Dataset, load_dataset
from ..datasets import DATASETS
from ..metrics.evaluate import evaluate
from ..model import Model
from ..models import x_shape
from ..models.convs import use_fast_convs
from ..models.tuning import use_inplace_acts
from ..objectives import critic_loss, vae_loss
from ..result import machine
from .trainer import Trainer


def reference_step(m: Model, opt_critic: torch.optim.Optimizer | None, opt_gen: torch.optim.Optimizer,
                   x: torch.Tensor, critic_steps: int = 1, gen_steps: int = 1, separate_passes: bool = True,
                   same_draws: bool = True) -> dict[str, torch.Tensor]:
    """One batch of training written the straightforward way: the yardstick of `svae bench` and of the
    equality test of the fast step (tests/test_training_speed.py).

    Autograd everywhere (E and G build graphs in the critic update too), fresh forwards for every update,
    the critic's weight gradients computed in the encoder+decoder update (and thrown away), and with
    separate_passes the critic called once on real pairs and once on fake pairs.

    Separate passes are the same mathematics only for a critic whose output for one pair does not depend on
    the rest of the batch. A BatchNorm critic normalises each pass by its own statistics, which is a
    different estimator (docs/method.md section 2 defines the critic on ONE batch of real and fake pairs): the
    benchmark still times it that way (the same FLOPs, and what such code does), and the equality test
    runs it with separate_passes=False, or on critics without batch statistics, where the two agree. A critic
    with model.critic_bn "apart" (the MNIST presets) is defined by two passes, so it always gets them here.

    same_draws: the first encoder+decoder update replays the random state of the last critic update, so it
    sees the same z and noise, as the fast step (train.reuse_forward) does by sharing one forward.
    """
    obj, out = m.objective, {}
    state = None
    if obj.adversarial:
        for i in range(critic_steps):
            if same_draws and i == critic_steps - 1:
                state = _rng_state(x.device)
            z = m.sample_prior(len(x))
            z_hat, x_tilde = m.encoder(x), m.decoder(z)
            lq, lp = _logits(m, x, z_hat.detach(), x_tilde.detach(), z, separate_passes)
            loss = critic_loss(lq, lp)
            opt_critic.zero_grad()
            loss.backward()
            opt_critic.step()
            out["loss_critic"] = loss.detach()
    for j in range(gen_steps):
        if j == 0 and state is not None:
            _set_rng_state(state, x.device)
        if not obj.adversarial:
            mu, logvar = m.encoder.gaussian(x)
            x_rec = m.decoder(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
            loss, nll, kl = vae_loss(x, x_rec, mu, logvar, obj.vae_sigma, obj.rec)
            out.update(loss_gen=loss.detach(), nll=nll.detach(), kl=kl.detach())
        else:
            z = m.sample_prior(len(x))
            z_hat, x_tilde = m.encoder(x), m.decoder(z)
            lq, lp = _logits(m, x, z_hat, x_tilde, z, separate_passes)
            rec_x = rec_z = None
            if obj.uses_reconstruction:
                rec_x, rec_z = obj.rec_distance(x, m.decoder(z_hat)), obj.rec_distance(z, m.encoder(x_tilde))
                out.update(rec_x=rec_x.detach(), rec_z=rec_z.detach())
            loss = obj.generator_loss(lq, lp, rec_x, rec_z)
            out.update(logit_q=lq.mean().detach(), logit_p=lp.mean().detach(), loss_gen=loss.detach())
        opt_gen.zero_grad()
        loss.backward()
        opt_gen.step()
    return out


def _logits(m: Model, x, z_hat, x_tilde, z, separate: bool):
    if m.objective.estimator != "joint":
        raise ValueError("the reference step covers the joint estimator only")
    if separate or m.cfg.model.critic_bn == "apart":  # apart: each joint normalised by its own statistics
        return m.critic(x, z_hat), m.critic(x_tilde, z)
    logits = m.critic(torch.cat([x, x_tilde]), torch.cat([z_hat, z]))
    return logits[:len(x)], logits[len(x):]


def _rng_state(device: torch.device):
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_rng_state(state, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def synthetic_data(cfg: Config, n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """Random uint8 images of the preset's shape (the speed of dense networks does not depend on the pixels);
    the toy mixture is generated as in training."""
    if cfg.data.name == "toy":
        return load_dataset(cfg.data)
    g = torch.Generator().manual_seed(seed)
    shape = x_shape(cfg.model.arch)
    return Dataset(cfg.data.name, torch.randint(0, 256, (n_train, *shape), generator=g, dtype=torch.uint8),
                   torch.randint(0, 256, (n_test, *shape), generator=g, dtype=torch.uint8))


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def bench(cfg: Config, steps: int = 10, warmup: int = 2, reference: bool = True, eval_n: int = 1000,
          data: Dataset | None = None) -> dict[str, Any]:
    """Time `steps` training steps of cfg (after `warmup`), interleaved step by step with the reference step on
    the same batches; FLOPs per step, peak memory, and the cost of evaluating eval_n images.

    The ratio is the median over steps of reference seconds / our seconds, each pair measured back to back so
    that a noisy, shared machine slows both alike."""
    device = torch.device(cfg.train.device)
    b = cfg.train.batch_size
    if data is None:
        data = synthetic_data(cfg, max(4 * b, 1024), eval_n)
    torch.manual_seed(cfg.train.seed)
    model = Model(cfg)
    ref_model = copy.deepcopy(model).to(device)  # the same initial weights, plain NCHW fp32, never compiled,
    use_fast_convs(ref_model, False)               # every conv by its direct kernel,
    use_inplace_acts(ref_model, False)             # and every activation into a new tensor
    trainer = Trainer(model, data, cfg)
    model.train(), ref_model.train()
    ref_opt_gen = torch.optim.Adam(list(ref_model.encoder.parameters()) + list(ref_model.decoder.parameters()),
                                   lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2))
    ref_opt_critic = (torch.optim.Adam(ref_model.critic.parameters(), lr=cfg.train.lr,
                                       betas=(cfg.train.beta1, cfg.train.beta2)) if ref_model.critic is not None else None)
    reference = reference and cfg.objective.estimator == "joint"
    t = cfg.train

    def ours() -> None:
        trainer.train_step()

    def ref(step: int) -> None:
        x = trainer.batch(step).contiguous()  # the batch ours trains on at that step (plain NCHW)
        reference_step(ref_model, ref_opt_critic, ref_opt_gen, x, t.critic_steps, t.gen_steps)

    def timed(fn) -> float:
        start = trainer.speed.sync_clock()
        fn()
        return trainer.speed.sync_clock() - start

    for _ in range(warmup):
        if reference:
            ref(trainer.step)
        ours()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ours_s, ref_s = [], []
    trainer.speed.phase_seconds = {}
    for i in range(steps):
        step = trainer.step
        if reference and i % 2 == 1:  # alternate who goes first: neither always runs on a warmer cache
            ref_s.append(timed(lambda: ref(step)))
        ours_s.append(timed(ours))
        if reference and i % 2 == 0:
            ref_s.append(timed(lambda: ref(step)))
    phases, trainer.speed.phase_seconds = trainer.speed.phase_seconds, None
    peak = _peak_mb(device)
    flops = _flops(ours)
    ref_flops = _flops(lambda: ref(trainer.step)) if reference else None

    step_s = statistics.median(ours_s)
    out: dict[str, Any] = {
        "preset": cfg.preset, "device": str(device), "batch": b, "steps": steps,
        "precision": t.precision, "channels_last": t.channels_last, "compile": t.compile,
        "reuse_forward": t.reuse_forward, "fast_convs": t.fast_convs, "inplace_acts": t.inplace_acts,
        "batch_decoder": trainer.speed.batch_decoder,  # in effect: only the models that reconstruct batch it
        "step_s": step_s, "critic_s": phases.get("critic", 0.0) / steps, "gen_s": phases.get("gen", 0.0) / steps,
        "imgs_per_s": b / step_s,
        "gflop_per_step": flops / 1e9, "gflops_per_s": flops / 1e9 / step_s,
        "peak_mem_mb": peak, "peak_mem_kind": "max allocated (GPU)" if device.type == "cuda" else "max RSS of the process",
    }
    if reference:
        ref_med = statistics.median(ref_s)
        out.update({"reference_step_s": ref_med, "reference_imgs_per_s": b / ref_med,
                    "reference_gflop_per_step": ref_flops / 1e9,
                    "ratio": statistics.median(r / o for r, o in zip(ref_s, ours_s)),
                    "ratio_min": min(r / o for r, o in zip(ref_s, ours_s)),
                    "ratio_max": max(r / o for r, o in zip(ref_s, ours_s))})
    else:
        out.update({"reference_imgs_per_s": None, "ratio": None})
    if eval_n:
        out.update(_eval_cost(model, data, cfg, eval_n, step_s))
    out["machine"] = machine()
    return out


def _eval_cost(model: Model, data: Dataset, cfg: Config, n: int, step_s: float) -> dict[str, Any]:
    """Seconds for evaluate() on n samples and the test split, scaled to 10,000 images, and that as a share
    of the preset's whole training run (steps x seconds per step)."""
    start = time.perf_counter()
    scores = evaluate(model, data, n_samples=n, splits=min(10, n))
    seconds = time.perf_counter() - start
    per_10k = seconds * 10000 / n
    n_train = DATASETS[cfg.data.name].n_train or cfg.data.n_train  # the toy's size is a setting
    train_s = (cfg.train.steps or cfg.train.epochs * (n_train // cfg.train.batch_size)) * step_s
    return {"eval_n": n, "eval_seconds": seconds, "eval_seconds_per_10k": per_10k,
            "eval_share_of_run": per_10k / (per_10k + train_s),
            "eval_scored_with": scores.get("is_classifier") or "no classifier at hand (sampling, reconstruction, MSE)"}


def cpu_name(m: dict[str, Any]) -> str:
    """The CPU model of a bench's `machine` (before the shared helper, `cpu` held the model name itself)."""
    return m.get("cpu_model") or m["cpu"]


def format_result(r: dict[str, Any]) -> str:
    """The figures of one bench as a few readable lines."""
    lines = [f"{r['preset']} on {r['device']} (batch {r['batch']}, {r['precision']}, channels_last "
             f"{r['channels_last']}, compile {r['compile']}, fast_convs {r['fast_convs']}, inplace_acts "
             f"{r.get('inplace_acts')}, batch_decoder {r.get('batch_decoder')}), {r['steps']} timed steps",
             f"  ours:      {r['imgs_per_s']:.1f} images/s, {r['step_s'] * 1000:.1f} ms/step "
             f"(critic {r['critic_s'] * 1000:.1f} ms, generator {r['gen_s'] * 1000:.1f} ms), "
             f"{r['gflop_per_step']:.2f} GFLOP/step, {r['gflops_per_s']:.1f} GFLOP/s"]
    if r.get("ratio") is not None:
        lines.append(f"  reference: {r['reference_imgs_per_s']:.1f} images/s, {r['reference_gflop_per_step']:.2f} "
                     f"GFLOP/step; ours / reference = {r['ratio']:.2f}x (median of interleaved pairs, "
                     f"range {r['ratio_min']:.2f}-{r['ratio_max']:.2f})")
    lines.append(f"  peak memory: {r['peak_mem_mb']:.0f} MB ({r['peak_mem_kind']})")
    if "eval_seconds" in r:
        lines.append(f"  evaluation: {r['eval_seconds']:.1f} s for {r['eval_n']} images, "
                     f"{r['eval_seconds_per_10k']:.0f} s per 10,000 ({100 * r['eval_share_of_run']:.1f}% of a full run)")
    m = r["machine"]
    lines.append(f"  machine: {cpu_name(m)}, {m['threads']} thread(s), torch {m['torch']}, {m['date']}"
                 + (f", {m['gpu']}" if "gpu" in m else ""))
    return "\n".join(lines)
