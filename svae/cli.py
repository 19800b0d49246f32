"""The `svae` command: parses and validates arguments, then calls the library (no logic of its own)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="svae", description="symmetric VAE and its baselines: train, evaluate, sample")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("presets", help="list the presets with a one-line description each")

    t = sub.add_parser("train", help="train a preset into a run directory, then evaluate it")
    t.add_argument("--preset", required=True, help="a name from `svae presets`")
    t.add_argument("--out", required=True, help="the run directory")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, help="passes over the training data")
    g.add_argument("--steps", type=int, help="number of batches (overrides epochs)")
    t.add_argument("--lam", type=float, help="lambda, the weight of the reconstruction terms")
    t.add_argument("--seed", type=int, help="training seed (initialisation, noise, data order)")
    t.add_argument("--device", help="cpu, cuda, cuda:N")
    t.add_argument("--data-dir", help="folder with the dataset files (MNIST, CIFAR-10, CelebA)")
    t.add_argument("--download", action="store_true", help="download the dataset into --data-dir if missing")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any configuration key, e.g. --set train.lr=1e-4 (repeatable)")
    t.add_argument("--resume", choices=["auto"], help="auto: continue from the run's last checkpoint if any")
    t.add_argument("--force", action="store_true", help="replace an existing run in --out")
    t.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")

    e = sub.add_parser("eval", help="evaluate a run directory; writes and prints DIR/eval.json")
    e.add_argument("run_dir")
    e.add_argument("--device", default="cpu")

    s = sub.add_parser("sample", help="draw samples of a trained run into a .npy file")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True, help="FILE.npy: float32, images (N,C,H,W) in [0,1], toy (N,2)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")

    r = sub.add_parser("reconstruct", help="reconstruct G(E(x)) for the arrays of a .npy file")
    r.add_argument("run_dir")
    r.add_argument("--input", required=True, help="FILE.npy in the array contract (as `sample` writes)")
    r.add_argument("--out", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu")
    return p


def _config_from_args(a: argparse.Namespace):
    from .config import set_value, validate
    from .presets import get_preset

    cfg = get_preset(a.preset)
    if a.epochs is not None:
        cfg.train.epochs, cfg.train.steps = a.epochs, 0
    if a.steps is not None:
        cfg.train.steps = a.steps
    for key, val in (("objective.lam", a.lam), ("train.seed", a.seed), ("train.device", a.device),
                     ("data.data_dir", a.data_dir)):
        if val is not None:
            set_value(cfg, key, val, parse=False)
    if a.download:
        cfg.data.source = "download"
    for item in a.set:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
        key, val = item.split("=", 1)
        set_value(cfg, key.strip(), val.strip(), parse=True)
    return validate(cfg)


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but this machine has no CUDA device; use --device cpu")


def _save_array(path: str, arr: torch.Tensor) -> None:
    if not path.endswith(".npy"):
        raise UsageError(f"--out {path!r}: expected a .npy file name")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr.numpy().astype(np.float32))


def _load_input(path: str, model) -> torch.Tensor:
    from .models import x_shape

    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"--input {path}: not a readable .npy array ({e})") from None
    want = x_shape(model.cfg.model.arch)
    if arr.ndim != len(want) + 1 or tuple(arr.shape[1:]) != want:
        raise UsageError(f"--input {path}: shape {arr.shape}, expected (N, {', '.join(map(str, want))})")
    if not np.issubdtype(arr.dtype, np.floating):
        raise UsageError(f"--input {path}: dtype {arr.dtype}, expected float32 (images in [0, 1])")
    return torch.from_numpy(arr.astype(np.float32))


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .run import RunError

    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (UsageError, ConfigError, RunError, CheckpointError) as e:
        print(f"svae: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as e:  # dataset problems (DataError) and other input checks from the library
        if type(e).__name__ == "DataError":
            print(f"svae: error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


def _dispatch(a: argparse.Namespace) -> int:
    from . import __version__
    from .model import Model
    from .presets import PRESETS
    from . import run

    if a.version:
        print(__version__)
        return 0
    if a.command is None:
        _parser().print_help()
        return EXIT_BAD_INPUT
    if a.command == "presets":
        width = max(map(len, PRESETS))
        for name, cfg in PRESETS.items():
            print(f"{name:<{width}}  {cfg.description}")
        return 0
    if a.command == "train":
        cfg = _config_from_args(a)
        _check_device(cfg.train.device)
        result = run.train(cfg, a.out, resume=a.resume == "auto", force=a.force, run_eval=not a.no_eval)
        print(json.dumps(result, indent=2))
        return 0
    _check_device(a.device)
    if a.command == "eval":
        print(json.dumps(run.evaluate_run(a.run_dir, device=a.device), indent=2))
        return 0
    model = Model.from_run(a.run_dir, a.device)
    if a.command == "sample":
        if a.n <= 0:
            raise UsageError(f"--n must be > 0, got {a.n}")
        torch.manual_seed(a.seed)
        _save_array(a.out, model.sample_array(a.n))
        print(f"wrote {a.n} samples to {a.out}")
        return 0
    if a.command == "reconstruct":
        x = _load_input(a.input, model)
        torch.manual_seed(a.seed)
        _save_array(a.out, model.reconstruct_array(x))
        print(f"wrote {len(x)} reconstructions to {a.out}")
        return 0
    raise UsageError(f"unknown command {a.command!r}")


if __name__ == "__main__":
    sys.exit(main())
