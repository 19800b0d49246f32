"""Pictures: the toy's scatter plots, sample grids, and reconstruction grids laid out as the paper's figures."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .atomic import write_atomic

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """A matplotlib figure as a PNG file, written atomically; the figure is closed."""
    try:
        return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=80), "picture")
    finally:
        _plt().close(fig)


def front_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """The finish of a score-against-MSE front: a log MSE axis where lambda moves it by decades (a narrow range
    reads better linear), labels, grid, legend."""
    xs = [x for line in ax.get_lines() for x in line.get_xdata()]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(_plt().NullFormatter())  # the minor labels of a short log range overlap
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()


def toy_figure(x_test: torch.Tensor, y_test: torch.Tensor, samples: torch.Tensor, x_rec: torch.Tensor,
               z_test: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Four panels: data, samples, reconstructions (a line from each x to G(E(x))), codes by component."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    colors = np.array(COLORS)[y_test.cpu().numpy()]
    x, s, r, z = (t.detach().cpu().numpy() for t in (x_test, samples, x_rec, z_test))
    axes[0].scatter(x[:, 0], x[:, 1], s=4, c=colors)
    axes[0].set_title("data (test)")
    toy_samples(axes[1], s)
    axes[1].set_title("samples G(z)")
    toy_reconstructions(axes[2], x, r, colors)
    axes[2].set_title("reconstructions x -> G(E(x))")
    axes[3].scatter(z[:, 0], z[:, 1], s=4, c=colors)
    axes[3].set_title("codes E(x) by component")
    for ax in axes[:3]:
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
    for ax in axes:
        ax.set_aspect("equal", adjustable="box")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def toy_samples(ax, s: np.ndarray) -> None:
    ax.scatter(s[:, 0], s[:, 1], s=2, c="k", alpha=0.5)


def toy_reconstructions(ax, x: np.ndarray, r: np.ndarray, colors) -> None:
    """A grey line from each point to its reconstruction (one collection: a line object per point is slow)."""
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(np.stack([x, r], axis=1), colors="0.6", linewidths=0.4))
    ax.scatter(x[:, 0], x[:, 1], s=4, c=colors)
    ax.scatter(r[:, 0], r[:, 1], s=3, c="k", marker="x", lw=0.5)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    arr = (images.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy()
    return arr.transpose(0, 2, 3, 1)


def grid(images: torch.Tensor, nrow: int, pad: int = 2) -> Image.Image:
    """Tile (N, C, H, W) images in [0, 1] into rows of nrow, with a white margin between them."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    rows = -(-n // nrow)
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = arr[i]
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 10) -> Path:
    img = grid(images, nrow)
    return write_atomic(path, lambda f: img.save(f, format="PNG"), "picture")


def reconstruction_rows(x: torch.Tensor, x_rec: torch.Tensor, nrow: int = 10) -> torch.Tensor:
    """Interleave pairs of rows as the paper's figures: two rows of originals, then their two rows of
    reconstructions, and so on. A last block short of 2 * nrow images (a small test split) is padded with blank
    images to whole rows, so that each reconstruction stays under its original."""
    if len(x) != len(x_rec) or not len(x):
        raise ValueError(f"need as many reconstructions as originals (at least one), got {len(x)} and {len(x_rec)}")
    block, parts = 2 * nrow, []
    for i in range(0, len(x), block):
        a, b = x[i:i + block], x_rec[i:i + block]
        blank = a.new_zeros((-len(a) % nrow, *a.shape[1:]))
        parts += [a, blank, b, blank]
    return torch.cat(parts)


def save_reconstruction_grid(x: torch.Tensor, x_rec: torch.Tensor, path: str | Path, nrow: int = 10) -> Path:
    return save_grid(reconstruction_rows(x, x_rec, nrow), path, nrow)


# ---------------------------------------------------------------- learning curves

CURVE_PANELS = (  # (title, metrics.jsonl keys drawn in it, log scale): probe rows and training rows
    ("inception score (probe; dashed: weight average)", ("probe_is", "probe_is_ema"), False),
    ("test MSE (probe; dashed: weight average)", ("probe_mse", "probe_mse_ema"), True),
    ("class coverage H(p(y)) and ambiguity E H(p(y|x))", ("probe_coverage", "probe_ambiguity"), False),
    ("critic logits: encoder pairs, decoder pairs", ("logit_q", "logit_p"), False),
)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The rows of a run's metrics.jsonl (a torn last line of a running or killed run is skipped)."""
    rows = []
    path = Path(run_dir) / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return [r for r in rows if "event" not in r]


def curves(runs: list[str | Path], path: str | Path, labels: list[str] | None = None) -> Path:
    """Learning curves of one or more runs against epochs, one colour per run: the probe's IS, test MSE, class
    coverage (solid) and ambiguity (dashed), and the critic's mean logits on encoder (solid) and decoder (dashed)
    pairs. Panels with nothing to draw say so."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 3.6))
    labels = labels or [Path(r).name for r in runs]
    for i, (run, label) in enumerate(zip(runs, labels)):
        rows = read_metrics(run)
        color = f"C{i % 10}"
        for ax, (_, keys, _log) in zip(axes, CURVE_PANELS):
            for key, style in zip(keys, ("-", "--")):
                pts = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), style, color=color, lw=1.2, label=label if style == "-" else None,
                            marker="o" if len(pts) < 12 else None, ms=3)
    for ax, (title, _keys, log) in zip(axes, CURVE_PANELS):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        if not ax.lines:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="0.5")
        elif log:
            ax.set_yscale("log")
    if len(runs) > 1 or labels != [Path(r).name for r in runs]:
        # in the first panel that drew a run (the probe panels stay empty where no classifier scores)
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
                break
    fig.tight_layout()
    return save_figure(fig, path)


def panels(rows: list[list[tuple[str | Path, str]]], path: str | Path, title: str = "") -> Path:
    """Pictures in a grid under their labels, one row per model and one column per lambda, as the paper's
    figures set them beside each other; rows: lists of (picture file, label)."""
    if not rows or not all(rows):
        raise ValueError("need at least one picture in every row")
    plt = _plt()
    ncol = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(3.0 * ncol, 3.3 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        for ax in ax_row:
            ax.axis("off")
        for ax, (picture, label) in zip(ax_row, row):
            img = Image.open(picture)
            ax.imshow(np.asarray(img), cmap="gray" if img.mode == "L" else None, interpolation="nearest")
            ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
