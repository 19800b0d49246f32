"""Lambda sweeps: one run per (preset, lambda), resumable; grids side by side and the IS-versus-MSE front."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..data import load_dataset, to_model, to_unit
from ..model import Model
from ..progress import bar
from ..result import EvalResult
from ..run import absolute_paths, train
from ..errors import DivergenceError
from .. import viz


def lam_dir(lam: float) -> str:
    """Folder name of a lambda: lam_0, lam_0.01, lam_1e-06 (repr-exact, so 1e-2 and 0.01 are one run)."""
    return f"lam_{lam:g}" if float(f"{lam:g}") == lam else f"lam_{lam!r}"


def _finished(run_dir: Path, cfg: Config) -> bool:
    """A run counts as done when it was evaluated under exactly this configuration."""
    if not (run_dir / "eval.json").is_file() or not (run_dir / "config.yaml").is_file():
        return False
    try:  # a run of an older svae stored a relative data_dir: the same folder when the sweep runs from there
        return absolute_paths(Config.load(run_dir / "config.yaml")).to_dict() == cfg.to_dict()
    except ValueError:
        return False


def run_sweep(configs: dict[str, list[Config]], out: str | Path, progress: bool | None = None,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train every configuration (preset -> one Config per lambda) into out/<preset>/lam_<value>/, skipping
    finished runs and resuming unfinished ones, then draw the sweep's pictures into out. A run that diverges
    is recorded and the sweep goes on. data: optional preset -> Dataset (tests use synthetic data)."""
    out = Path(out)
    rows = []
    runs = bar(sum(map(len, configs.values())), "sweep", "run")
    for preset, cfgs in configs.items():
        for cfg in cfgs:
            runs.set_postfix_str(f"{preset} lambda={cfg.objective.lam:g}")
            run_dir = out / preset / lam_dir(cfg.objective.lam)
            row = {"preset": preset, "lam": cfg.objective.lam, "run_dir": str(run_dir)}
            if _finished(run_dir, cfg):
                row["status"] = "done before"
            else:
                try:
                    train(cfg, run_dir, resume=True, progress=progress, data=(data or {}).get(preset))
                    row["status"] = "trained"
                except DivergenceError as e:
                    row.update({"status": "diverged", "error": str(e)})
            if (run_dir / "eval.json").is_file() and row["status"] != "diverged":
                ev = EvalResult.load(run_dir)
                row.update({k: ev.get(k) for k in ("is_mean", "is_std", "is_indomain_mean", "mse", "steps")
                            if ev.get(k) is not None})
            rows.append(row)
            runs.update(1)
    runs.close()
    pictures = draw_sweep(out, list(configs), data=data)
    return {"runs": rows, "pictures": [str(p) for p in pictures]}


# ---------------------------------------------------------------- pictures


def _runs(out: Path, preset: str) -> list[tuple[float, Path]]:
    """The evaluated runs of a preset in a sweep folder, by lambda."""
    found = []
    for d in (out / preset).glob("lam_*"):
        if (d / "eval.json").is_file():
            found.append((float(EvalResult.load(d).lam), d))
    return sorted(found)


def _lam_label(lam: float) -> str:
    return f"λ = {lam:g}"


@torch.no_grad()
def _outputs(run_dir: Path, data, seed: int = 0) -> tuple[Model, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A run's model, its samples, a fixed set of test inputs and their reconstructions (fixed seed, so
    every lambda sees the same inputs and the same noise draws)."""
    model = Model.from_run(run_dir)
    is_toy = not data.is_image
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = to_model(data.x_test[:512 if is_toy else 20], model.out_range)
        return model, model.sample(1000 if is_toy else 64), x, model.reconstruct(x)


def draw_sweep(out: str | Path, presets: list[str], data: dict[str, Any] | None = None) -> list[Path]:
    """samples_<preset>.png and reconstructions_<preset>.png (one panel per lambda, side by side, as the
    paper's figures 4 to 7) for every preset, and front.png: IS against MSE, one line per preset."""
    out = Path(out)
    plt = viz._plt()
    written = []
    for preset in presets:
        runs = _runs(out, preset)
        if not runs:
            continue
        ds = (data or {}).get(preset) or load_dataset(Model.from_run(runs[0][1]).cfg.data)
        outs = [(lam, *_outputs(d, ds)) for lam, d in runs]
        for kind in ("samples", "reconstructions"):
            # panel height follows the grid's shape (8x8 samples are square, 4x10 reconstructions wide)
            width = 2.6 if not ds.is_image or kind == "samples" else 3.4
            height = width * (1.0 if not ds.is_image or kind == "samples" else 0.42) + 0.7
            fig, axes = plt.subplots(1, len(outs), figsize=(width * len(outs), height), squeeze=False)
            for ax, (lam, model, samples, x, x_rec) in zip(axes[0], outs):
                _panel(ax, kind, ds, model, samples, x, x_rec)
                ax.set_title(_lam_label(lam), fontsize=10)
            what = "samples G(z)" if kind == "samples" else (
                "reconstructions: x to G(E(x))" if not ds.is_image else
                "reconstructions (rows 1-2: x, rows 3-4: G(E(x)))")
            fig.suptitle(f"{preset}: {what}", fontsize=9)
            fig.tight_layout()
            written.append(viz.save_figure(fig, out / f"{kind}_{preset}.png"))
    front = draw_front(out, presets)
    return written + ([front] if front else [])


def _panel(ax, kind: str, ds, model: Model, samples, x, x_rec) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if not ds.is_image:
        if kind == "samples":
            viz.toy_samples(ax, samples.numpy())
        else:
            a = x.numpy()
            viz.toy_reconstructions(ax, a, x_rec.numpy(), np.array(viz.COLORS)[ds.y_test[:len(a)].numpy()])
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
        ax.set_aspect("equal")
        return
    unit = lambda t: to_unit(t, model.out_range)  # noqa: E731
    if kind == "samples":
        img = viz.grid(unit(samples), nrow=8)
    else:
        img = viz.grid(viz.reconstruction_rows(unit(x), unit(x_rec), nrow=10), nrow=10)
    ax.imshow(np.asarray(img), cmap="gray" if img.mode == "L" else None, interpolation="nearest")


def draw_front(out: str | Path, presets: list[str]) -> Path | None:
    """IS (y) against reconstruction MSE (x, log scale), one point per lambda, one line per preset."""
    out = Path(out)
    plt = viz._plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ylabel, xlabel, skipped, drawn = "", "", [], 0
    for preset in presets:
        evs = [EvalResult.load(d) for _, d in _runs(out, preset)]
        kind, label = (evs[0].sample_score().kind, evs[0].sample_score().label) if evs else ("", "")
        # the first run's kind of IS for the whole line: a line never mixes an IS and an in-domain IS
        pts = [(ev.mse, v, ev.lam) for ev in evs for v in [ev.is_mean if kind == "is" else ev.is_indomain_mean]
               if kind and v is not None and ev.mse]
        if not pts:
            skipped.append(preset)
            continue
        ylabel = label if not ylabel or ylabel == label else "IS (mixed scorers: see the report)"
        xlabel = "MSE per point (sum over coordinates)" if evs[0].is_toy else \
            f"MSE per pixel on {evs[0].mse_range or '[-1, 1]'}"
        mse, score, lams = zip(*pts)
        ax.plot(mse, score, "o-", label=preset, ms=5)
        for m, s, lam in pts:
            ax.annotate(f"{lam:g}", (m, s), textcoords="offset points", xytext=(4, 4), fontsize=8)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    title = "sample quality against reconstruction error; labels: λ"
    if skipped:
        title += f"\nno IS for {', '.join(skipped)} (classifier missing)"
    viz.front_axes(ax, f"{xlabel} (lower is better)", f"{ylabel} (higher is better)", title)
    return viz.save_figure(fig, out / "front.png")


__all__ = ["run_sweep", "draw_sweep", "draw_front", "lam_dir"]
