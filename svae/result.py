"""The evaluation of a run as a typed record: what run.evaluate writes to RUN_DIR/eval.json and report, sweeps and
studies read back.

The fields every reader uses are typed; the rest of a scorer's keys (class shares, the classifier's provenance,
in-domain FID; docs/evaluation.md lists them) stay in `raw`, in the order they were written, so that a file goes
back to disk as it came. An eval.json of an older svae loads too: a key it lacks reads as None.
"""
from __future__ import annotations

import datetime
import json
import platform
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .atomic import write_text
from .rundir import RunError

FILE = "eval.json"


def machine() -> dict[str, Any]:
    """What a figure was measured on, the one description eval.json and `svae bench` both record: Python, torch and
    svae versions, `cpu` (the architecture, as eval.json has always written it), `cpu_model` (/proc/cpuinfo's model
    name, as `svae bench` shows it), torch threads, the date, and the GPU's name when CUDA is there."""
    import torch  # here, not at the top: report and study read eval.json without torch

    from . import __version__

    cpu = platform.processor() or platform.machine()
    cpu_model = cpu
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"python": platform.python_version(), "torch": torch.__version__, "svae": __version__, "cpu": cpu,
            "cpu_model": cpu_model, "threads": torch.get_num_threads(), "date": datetime.date.today().isoformat()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


@dataclass(frozen=True)
class SampleScore:
    """The IS a table shows for a run: svae's classifier or Inception-v3, else the in-domain stand-in, else none."""

    mean: float | None
    std: float | None
    kind: str  # "is" (Inception or the dataset's own classifier), "indomain", or "" (no score)
    label: str  # what a plot's axis calls it


@dataclass(frozen=True)
class EvalResult:
    preset: str = ""
    model: str = ""  # objective.kind
    lam: float = 0.0
    seed: int = 0
    is_mean: float | None = None
    is_std: float | None = None
    is_classifier: str | None = None
    is_note: str | None = None
    is_indomain_mean: float | None = None
    is_indomain_std: float | None = None
    mse: float | None = None
    mse_random: float | None = None
    mse_range: str | None = None  # the pixel range of image MSEs; None for the toy's points
    rec_accuracy: float | None = None
    steps: int | None = None
    seconds: float | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # every key, in written order

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        typed = {f.name: d[f.name] for f in fields(cls) if f.name != "raw" and d.get(f.name) is not None}
        return cls(**typed, raw=dict(d))

    @classmethod
    def load(cls, path: str | Path) -> "EvalResult":
        """RUN_DIR/eval.json (or the file itself); RunError when it cannot be read."""
        path = Path(path)
        path = path / FILE if path.is_dir() else path
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RunError(f"{path}: unreadable ({e})") from None
        if not isinstance(d, dict):
            raise RunError(f"{path}: unreadable (expected a JSON object)")
        return cls.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def save(self, path: str | Path) -> Path:
        write_text(path, json.dumps(self.raw, indent=2) + "\n", "evaluation")
        return Path(path)

    def get(self, key: str, default: Any = None) -> Any:
        """Any key of the file, typed or not (class shares, classifier provenance, ...)."""
        return self.raw.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    @property
    def is_toy(self) -> bool:
        """The toy's MSE is a squared distance per point (eval.json says so with its per-coordinate value)."""
        return "mse_per_coord" in self.raw

    def sample_score(self) -> SampleScore:
        """The one place that decides which IS stands for a run: the IS proper, else the in-domain IS."""
        if self.is_mean is not None:
            label = "IS" if self.is_classifier != "inception-v3" else "Inception score"
            return SampleScore(self.is_mean, self.is_std, "is", label)
        if self.is_indomain_mean is not None:
            return SampleScore(self.is_indomain_mean, self.is_indomain_std, "indomain",
                               "IS (in-domain classifier, not Inception)")
        return SampleScore(None, None, "", "")
