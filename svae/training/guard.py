"""Stopping a run cleanly: SIGINT/SIGTERM finish the step and checkpoint; NaN/inf is caught at the step it appears."""
from __future__ import annotations

import math
import signal
import threading
from typing import Any

import torch

from ..errors import DivergenceError, Interrupted  # noqa: F401  (defined apart from torch, for the command line)


class StopSignals:
    """Within `with`, SIGINT and SIGTERM only set .signum; the loop checks it between steps. A second signal
    raises KeyboardInterrupt at once (a checkpoint being written is then abandoned: its temporary file is
    removed and the previous checkpoint stays). Outside the main thread nothing is installed."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


class FiniteWatch:
    """Per-step finiteness of the logged values and of every parameter, kept on the device.

    Each step adds one small tensor (the step's values and the largest absolute parameter), with no
    host-device synchronisation. check() reads what accumulated; the trainer calls it every step on CPU,
    where reading is free, and on GPU at log steps and before every checkpoint (a checkpoint is therefore
    never written from non-finite state). The error names the first bad step and its values either way.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.params = list(model.parameters())
        self.pending: list[tuple[int, list[str], torch.Tensor]] = []

    def record(self, step: int, out: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            # inf-norm: NaN and inf propagate, and unlike a sum or 2-norm it cannot overflow on finite values
            pmax = _largest_magnitude(self.params)
            vals = torch.stack([v.detach().float().reshape(()) for v in out.values()] + [pmax.float()])
        self.pending.append((step, list(out), vals))

    def check(self) -> DivergenceError | None:
        """The first non-finite step since the last check, as an error to raise (or None); clears the record."""
        if not self.pending:
            return None
        pending, self.pending = self.pending, []
        ok = torch.stack([torch.isfinite(v).all() for _, _, v in pending]).cpu()
        if bool(ok.all()):
            return None
        step, names, vals = pending[int((~ok).nonzero()[0])]
        values = dict(zip(names, vals[:-1].tolist()))
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            what = ", ".join(f"{k}={values[k]}" for k in bad)
        else:
            nets = [n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()]
            what = f"parameters ({', '.join(nets[:3])}{', ...' if len(nets) > 3 else ''})"
        rest = {k: round(v, 6) for k, v in values.items() if k not in bad}
        return DivergenceError(f"training diverged at step {step}: non-finite {what}"
                               + (f"; finite: {rest}" if rest else ""), step, values)


def _largest_magnitude(params: list[torch.Tensor]) -> torch.Tensor:
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6: one fused kernel per device and dtype
        return torch.nn.utils.get_total_norm(params, norm_type=math.inf)
    return torch.stack([torch.linalg.vector_norm(p.detach(), math.inf) for p in params]).max()
