"""TensorBoard logging (train.tensorboard, --tensorboard): every metrics.jsonl row as scalars, and the run's grids."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import Config, ConfigError

LOG_DIR = "tensorboard"  # inside the run directory
PICTURES = ("samples.png", "reconstructions.png", "toy.png")  # what run.draw writes


class MetricsSink(Protocol):
    """Another destination of the rows the trainer writes to metrics.jsonl."""

    def write(self, row: dict[str, Any]) -> None: ...


def _writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's module needs the tensorboard package, an optional dependency
        raise ConfigError("train.tensorboard (--tensorboard) needs the tensorboard package: "
                          "pip install tensorboard (or svae[tensorboard])") from None
    return SummaryWriter


def check(cfg: Config) -> None:
    """ConfigError now, before anything is written, when TensorBoard logging is asked for but not installed."""
    if cfg.train.tensorboard:
        _writer_class()


class TensorBoardSink:
    """Writes into RUN_DIR/tensorboard/: rows as scalars at their step (the event files are flushed with every
    row, so a killed run loses nothing that metrics.jsonl has), the evaluation's numbers and pictures at the end."""

    def __init__(self, run_dir: Path, start_step: int = 0):
        # purge_step: a resumed run drops the events logged after its checkpoint, as metrics.jsonl drops its rows
        self.writer = _writer_class()(str(Path(run_dir) / LOG_DIR), purge_step=start_step or None)

    def write(self, row: dict[str, Any]) -> None:
        if "step" not in row:  # not a row of a step (metrics.jsonl's resume drops such rows too): no x value
            return
        step = int(row["step"])
        for key, value in _scalars(row).items():
            if key != "step":
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def write_eval(self, result: dict[str, Any], run_dir: Path) -> None:
        """eval.json's numbers under eval/ and the run's pictures (sample and reconstruction grids)."""
        from PIL import Image

        step = int(result.get("steps", 0))
        for key, value in _scalars(result).items():
            self.writer.add_scalar(f"eval/{key}", value, step)
        for name in PICTURES:
            if (Path(run_dir) / name).is_file():
                with Image.open(Path(run_dir) / name) as im:
                    self.writer.add_image(Path(name).stem, np.asarray(im.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a row (strings, lists, None and flags are not curves)."""
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def open_sink(cfg: Config, run_dir: Path, start_step: int = 0) -> TensorBoardSink | None:
    """The sink a run's configuration asks for, or None."""
    return TensorBoardSink(run_dir, start_step) if cfg.train.tensorboard else None
