"""The evaluation of a run as a typed record: what run.evaluate writes to RUN_DIR/eval.json and report, sweeps and
studies read back.

The fields every reader uses are typed; the rest of a scorer's keys (class shares, the classifier's provenance,
in-domain FID; docs/evaluation.md lists them) stay in `raw`, in the order they were written, so that a file goes
back to disk as it came. An eval.json of an older svae loads too: a key it lacks reads as None.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .atomic import write_text
from .rundir import RunError

FILE = "eval.json"


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
