"""Run directories: train into one, resume it, evaluate it and draw its pictures. The CLI calls only these."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from . import __version__, rundir
from .checkpoint import find_checkpoint, load_checkpoint, run_checkpoint
from .config import Config, ConfigError, resumable_keys, set_value, validate
from .data import Dataset, load_dataset, to_model, to_unit
from .metrics.bn_stats import scoring_models
from .metrics.evaluate import Probe, evaluate
from .model import Model
from .presets import get_preset
from .result import EvalResult, machine
from .errors import Interrupted
from .rundir import RunError
from .training import distributed, tracking
from .training.trainer import Trainer
from . import viz


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def prepare(cfg: Config, out: Path, resume: bool = False, force: bool = False) -> dict | None:
    """Check the run directory (locked by the caller) before anything is written, clear what --force or an
    unfinished run leaves to clear, and mark it as svae's; return the checkpoint to resume from."""
    own = rundir.own_files(out)
    has_ckpt = rundir.has_checkpoint(out)
    if own and not rundir.is_marked(out) and not (resume and has_ckpt):
        names = ", ".join(str(p.relative_to(out)) for p in own[:3]) + (", ..." if len(own) > 3 else "")
        older = "; an older svae run continues with --resume auto" if has_ckpt else ""
        raise RunError(f"{out}: holds {names}, which svae did not write there (no {rundir.MARKER} marker), so "
                       f"neither a new run nor --force may touch them: use another --out{older}")
    ckpt = None
    if resume and has_ckpt:
        ckpt = _resume_from(cfg, out)
    elif has_ckpt and not force:
        raise RunError(f"{out}: already holds a run; pass --resume auto to continue it or --force to replace it")
    elif own:  # --force, or a run stopped before its first checkpoint: nothing in it can be continued
        if not (force or resume):
            print(f"svae: warning: {out}: replacing an unfinished run (it has no checkpoint)", file=sys.stderr)
        rundir.clear(out)
    rundir.mark(out)
    return ckpt


def _resume_from(cfg: Config, out: Path) -> dict:
    found = find_checkpoint(out)  # last.pt, else the newest step copy that loads
    if found is None:
        raise RunError(f"{out}: no checkpoint to resume from")
    ckpt_path, ckpt, skipped = found
    for problem in skipped:
        print(f"svae: warning: skipped {problem}; resuming from {ckpt_path}", file=sys.stderr)
    if ckpt.get("version") != __version__:
        print(f"svae: warning: {ckpt_path} was written by svae {ckpt.get('version')}, this is {__version__}",
              file=sys.stderr)
    old, new = _flat(ckpt["config"]), _flat(cfg.to_dict())
    resumable = resumable_keys()  # declared with each field in config.py: how long, where and how fast, never what
    changed = sorted(k for k in old if k in new and old[k] != new[k] and k not in resumable)
    if changed:
        raise RunError(f"{out}: --resume with a different configuration ({', '.join(changed)}); "
                       "use the run's own settings or a new --out")
    return ckpt


def train(cfg: Config, out: str | Path, resume: bool = False, force: bool = False, run_eval: bool = True,
          progress: bool | None = None, data: Dataset | None = None) -> dict[str, Any]:
    """Train cfg into the run directory `out` (resuming from its checkpoint if asked), then evaluate it.

    Under torchrun every rank calls this; rank 0 alone checks, locks and writes the run directory and evaluates.
    A relative data.data_dir is made absolute first, so that the run's config.yaml works from any folder."""
    out = rundir.check_out(out)
    absolute_paths(cfg)
    world, cfg.train.device = distributed.setup(cfg.train.device)
    try:
        if not world.main:
            return _train(cfg, out, resume, force, run_eval, progress, data, world)
        if out.exists() and not out.is_dir():
            raise RunError(f"{out}: exists and is not a directory")
        with rundir.locked(out):
            return _train(cfg, out, resume, force, run_eval, progress, data, world)
    finally:
        distributed.cleanup()


def _train(cfg: Config, out: Path, resume: bool, force: bool, run_eval: bool, progress: bool | None,
           data: Dataset | None, world: distributed.World) -> dict[str, Any]:
    if world.distributed and cfg.train.on_divergence == "rollback":
        raise ConfigError("train.on_divergence 'rollback' is not supported under torchrun; use 'stop'")
    tracking.check(cfg)
    ckpt = None
    if world.main:
        ckpt = prepare(cfg, out, resume, force)
    if world.distributed:
        torch.distributed.barrier()  # rank 0 has checked (and with --force cleared) the run directory
        if not world.main and resume:
            found = find_checkpoint(out)
            ckpt = found[1] if found else None
    if ckpt is not None and int(ckpt.get("world_size", 1)) != world.size:
        raise RunError(f"{out}: --resume with {world.size} process(es), the checkpoint was trained with "
                       f"{ckpt.get('world_size', 1)}: the batches would differ; use the same --nproc_per_node")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = data if data is not None else load_dataset(cfg.data)
    n = len(data.x_train)
    if n < cfg.train.batch_size:
        raise ConfigError(f"train.batch_size {cfg.train.batch_size} is larger than the dataset ({n} training examples)")
    if ckpt is not None and ckpt.get("data", {}).get("n_train", n) != n:
        raise RunError(f"{out}: --resume with a different training set ({n} examples, the checkpoint was trained "
                       f"on {ckpt['data']['n_train']}); use the run's own data or a new --out")
    torch.manual_seed(cfg.train.seed)  # networks are initialised from the seed (the same on every rank)
    model = Model(cfg)
    if world.main:
        cfg.save(out / "config.yaml")
    probe = (Probe(data, cfg.train.probe_samples, cfg.train.probe_test)
             if world.main and cfg.train.probe_every else None)
    trainer = Trainer(model, data, cfg, run_dir=out if world.main else None, world=world, probe=probe)
    if ckpt is not None:
        trainer.resume(ckpt)
    trainer.sink = tracking.open_sink(cfg, out, trainer.step) if world.main else None
    try:
        trainer.fit(progress=progress if world.main else False)
    except Interrupted:
        if world.main and probe is not None:  # a run stopped early: its curves so far
            viz.curves([out], out / "curves.png")
        raise
    if world.distributed:  # the ranks leave training together, after rank 0's last checkpoint
        torch.distributed.barrier()
    if world.main and probe is not None:
        viz.curves([out], out / "curves.png")
    result = {"steps": trainer.step, "seconds": round(trainer.elapsed, 3)}
    if world.distributed:
        result.update(rank=world.rank, world_size=world.size)
    if run_eval and world.main:
        if trainer.average is not None:  # the average is the run's result; the live weights are scored beside it
            result = _evaluate(out, trainer.average.model, data, trainer_info=result, live=model)
        else:
            result = _evaluate(out, model, data, trainer_info=result)
    if trainer.sink is not None:
        if run_eval:
            trainer.sink.write_eval(result, out)
        trainer.sink.close()
    return result


def absolute_paths(cfg: Config) -> Config:
    """data.data_dir as an absolute path (the user's ~ expanded), so a run's config.yaml names its data from any
    folder; symbolic links are kept as given."""
    if cfg.data.data_dir:
        cfg.data.data_dir = os.path.abspath(os.path.expanduser(cfg.data.data_dir))
    return cfg


def evaluate_run(run_dir: str | Path, device: str = "cpu", data_dir: str | None = None,
                 inception: int | None = None, bn_stats: str | None = None) -> dict[str, Any]:
    """Scores and pictures of a run directory (locked meanwhile); writes DIR/eval.json and returns it.
    data_dir: where the dataset is now, if not where config.yaml says (a moved folder, an older relative path);
    inception: images behind the Inception-v3 scores, instead of the run's train.eval_inception; bn_stats: the
    BatchNorm statistics to score with, instead of the run's train.eval_bn_stats."""
    run_dir = Path(run_dir)
    path = run_checkpoint(run_dir)
    ckpt = load_checkpoint(path, map_location=device)  # opened once: the weights and the step it holds
    model = Model.from_checkpoint(ckpt, path, device)
    live = Model.from_checkpoint(ckpt, path, device, weights="live") if "ema" in ckpt else None
    if inception is not None:
        model.cfg.train.eval_inception = inception
    if bn_stats is not None:
        set_value(model.cfg, "train.eval_bn_stats", bn_stats)
        validate(model.cfg)
    info = {"steps": int(ckpt["step"]), "seconds": round(float(ckpt.get("elapsed", 0.0)), 3)}
    if data_dir:
        model.cfg.data.data_dir = data_dir
    data = load_dataset(absolute_paths(model.cfg).data)
    with rundir.locked(run_dir, create=False):
        return _evaluate(run_dir, model, data, info, live=live)


# what eval.json keeps of the live weights' scores when the run's result is their average (train.ema)
LIVE_KEYS = ("is_mean", "is_std", "is_indomain_mean", "is_indomain_std", "fid", "mse", "rec_accuracy")


def _evaluate(run_dir: Path, model: Model, data: Dataset, trainer_info: dict,
              live: Model | None = None) -> dict[str, Any]:
    """Score `model` (with `live`: the weight average, and the live weights beside it under "live") and draw it."""
    cfg = model.cfg
    bn = cfg.train.eval_bn_stats
    sampler, reconstructor = scoring_models(model, data, bn)
    scores = evaluate(sampler, data, cfg.train.eval_samples, cfg.train.eval_splits,
                      inception_n=cfg.train.eval_inception, reconstructor=reconstructor)
    extra: dict[str, Any] = {} if bn == "running" else {"bn_stats": bn}  # absent: as every eval.json before the key
    if live is not None:
        live_sampler, live_reconstructor = scoring_models(live, data, bn)
        live_scores = evaluate(live_sampler, data, cfg.train.eval_samples, cfg.train.eval_splits,
                               inception_n=cfg.train.eval_inception, reconstructor=live_reconstructor)
        extra.update({"weights": f"ema {cfg.train.ema:g}",
                      "live": {k: live_scores[k] for k in LIVE_KEYS if live_scores.get(k) is not None}})
    result = EvalResult.from_dict({
        "preset": cfg.preset, "model": cfg.objective.kind, "lam": cfg.objective.lam, "seed": cfg.train.seed,
        **scores, **extra, **trainer_info, "machine": machine()})
    draw(sampler, data, run_dir, reconstructor=reconstructor)  # the pictures show what was scored
    result.save(run_dir / "eval.json")
    return result.to_dict()


@torch.no_grad()
def draw(model: Model, data: Dataset, run_dir: Path, seed: int = 0, reconstructor: Model | None = None) -> list[Path]:
    """The run's pictures: the toy's four panels, or sample and reconstruction grids (the reconstructions by
    `reconstructor` where given: the same weights with other BatchNorm statistics, svae/metrics/bn_stats.py)."""
    model.eval()
    reconstructor = (reconstructor or model).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = to_model(data.x_test[:40 if data.is_image else 1024].to(model.device), model.out_range)
        x_rec, samples = reconstructor.reconstruct(x), model.sample(100 if data.is_image else 2000)
        if not data.is_image:
            z = reconstructor.encode(x)  # the codes belong to the reconstruction pathway
            title = f"{model.cfg.preset or model.cfg.objective.kind} (lambda={model.cfg.objective.lam:g})"
            return [viz.toy_figure(x, data.y_test[:len(x)], samples, x_rec, z, run_dir / "toy.png", title)]
    unit = lambda t: to_unit(t, model.out_range)  # noqa: E731
    return [viz.save_grid(unit(samples), run_dir / "samples.png", nrow=10),
            viz.save_reconstruction_grid(unit(x), unit(x_rec), run_dir / "reconstructions.png", nrow=10)]


def build(preset: str, **overrides: Any) -> Model:
    """The model of a preset, with dotted-key overrides: build('mnist-svae-r', **{'objective.lam': 0.1})."""
    cfg = get_preset(preset)
    for k, v in overrides.items():
        set_value(cfg, k, v, parse=isinstance(v, str))
    validate(cfg)
    return Model(cfg)


__all__ = ["train", "evaluate_run", "draw", "build", "prepare", "absolute_paths", "RunError", "ConfigError"]
