"""SvaeError, the base of every error svae reports to a person: `svae` prints it as one line and exits 2."""
from __future__ import annotations

import signal
from typing import Any


class SvaeError(Exception):
    """Bad input, a run directory that cannot be used, or a failed write; the message names the file or key
    and what to do. ConfigError, DataError, CheckpointError, MetricError, RunError and WriteError derive from it."""


class UsageError(SvaeError):
    """A command-line argument is wrong (a value out of range, a path that cannot be used)."""


class DivergenceError(RuntimeError):
    """A loss or a parameter became NaN or infinite; .step is the step after which it was seen."""

    def __init__(self, message: str, step: int = -1, values: dict[str, float] | None = None):
        super().__init__(message)
        self.step, self.values = step, values or {}


class Interrupted(Exception):
    """Training stopped on a signal after finishing its step; .checkpoint holds the state (None without a run
    directory). The command line exits with 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int, step: int, checkpoint: Any = None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.signame = signal.Signals(signum).name
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"interrupted by {self.signame} at step {step}{where}")


def one_line(text: object) -> str:
    """A message folded onto one line (an OSError's text or a library's message may span several)."""
    return " ".join(str(text).split())
