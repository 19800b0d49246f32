"""Checkpoints: written atomically (temporary file, fsync, rename), read with weights_only=True."""
from __future__ import annotations

import os
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import fsync_dir, write_atomic
from .config import Config, ConfigError
from .errors import SvaeError


class CheckpointError(SvaeError, RuntimeError):
    """A checkpoint is missing, unreadable, unsafe or cannot be written; the message names the file."""


STEP_FILE = re.compile(r"step_(\d+)\.pt")


def run_checkpoint(run_dir: str | Path) -> Path:
    """checkpoints/last.pt of a run directory, or a CheckpointError saying what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoint (expected {path}); train first or check the path")
    return path


def step_checkpoints(folder: str | Path) -> list[Path]:
    """The step_XXXXXXXX.pt copies of a checkpoint folder, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("step_*.pt") if (m := STEP_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict[str, Any], path: str | Path, keep: int = 0) -> Path:
    """Write state to path without ever leaving a half-written file under that name.

    With keep > 0 the newest `keep` checkpoints also stay as step_XXXXXXXX.pt beside it. The step copy is a
    hard link to the file just written (no second write, no extra disk while it is the newest); where links
    are not supported it is copied. A write that fails (a full disk) raises WriteError naming the file
    and the cause; the previous file under that name is untouched and no temporary file is left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(".*.tmp"):  # left by a writer that was killed; one writer per run directory
        stale.unlink(missing_ok=True)
    write_atomic(path, lambda f: torch.save(state, f), "checkpoint")
    if keep > 0:
        step_path = path.with_name(f"step_{int(state['step']):08d}.pt")
        _link_or_copy(path, step_path)
        for old in step_checkpoints(path.parent)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(src, tmp)
        os.replace(tmp, dst)  # replaces an older copy of the same step (after a rollback)
        fsync_dir(dst.parent)
        return
    except OSError:
        tmp.unlink(missing_ok=True)

    def copy(f: Any) -> None:
        with open(src, "rb") as s:
            shutil.copyfileobj(s, f)

    write_atomic(dst, copy, "checkpoint")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with weights_only=True: tensors and plain containers only, no code runs."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: refused to load (not a plain-data checkpoint: {first[:200]})") from None
    except Exception as e:  # a damaged file fails in many ways (zip, struct, EOF, ...): all mean unreadable
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {first[:200]})") from None
    if not isinstance(state, dict) or not {"step", "nets", "config"} <= set(state):
        raise CheckpointError(f"{path}: not an svae checkpoint (expected a dict with step, nets and config)")
    for key in ("config", "nets"):
        if not isinstance(state[key], dict):
            raise CheckpointError(f"{path}: damaged checkpoint ({key} is a {type(state[key]).__name__}, "
                                  "expected a mapping)")
    return state


def checkpoint_config(state: dict[str, Any], path: str | Path) -> Config:
    """The configuration a checkpoint was trained with, or a CheckpointError naming the file and the key."""
    try:
        return Config.from_dict(state["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its configuration is not valid ({e})") from None


def load_networks(networks: dict[str, torch.nn.Module], state: dict[str, Any], path: str | Path) -> None:
    """Load state['nets'] into networks; a CheckpointError when the weights do not fit (another configuration)."""
    for name, net in networks.items():
        if name not in state["nets"]:
            raise CheckpointError(f"{path}: no weights for the {name} its configuration builds")
        try:
            net.load_state_dict(state["nets"][name])
        except (RuntimeError, ValueError, TypeError, AttributeError) as e:
            first = " ".join(str(e).split())[:300]
            raise CheckpointError(f"{path}: the {name} weights do not fit its configuration ({first})") from None


def find_checkpoint(run_dir: str | Path, map_location: str | torch.device = "cpu"
                    ) -> tuple[Path, dict[str, Any], list[str]] | None:
    """The newest readable checkpoint of a run directory: last.pt, else the newest step copy that loads.

    Returns (path, state, problems with the newer files that were skipped), or None when the run has no
    checkpoint file at all. Raises CheckpointError when there are checkpoint files but none is readable.
    """
    folder = Path(run_dir) / "checkpoints"
    candidates = [p for p in [folder / "last.pt"] + step_checkpoints(folder)[::-1] if p.is_file()]
    problems = []
    for path in candidates:
        try:
            return path, load_checkpoint(path, map_location), problems
        except CheckpointError as e:
            problems.append(str(e))
    if problems:
        raise CheckpointError(f"{folder}: no readable checkpoint ({'; '.join(problems)})")
    return None


# ---- random number generators: every state in a form weights_only=True loads -----------------------------

def rng_state() -> dict[str, Any]:
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rng_numpy": (np_kind, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss),
                      float(np_gauss)),
        "rng_python": (py_version, list(py_internal), py_gauss),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["rng_torch"].cpu())
    if state.get("rng_cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng_cuda"]])
    if "rng_numpy" in state:  # absent from older checkpoints
        kind, keys, pos, has_gauss, gauss = state["rng_numpy"]
        np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "rng_python" in state:
        version, internal, gauss = state["rng_python"]
        random.setstate((version, tuple(internal), gauss))
