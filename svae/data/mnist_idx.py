"""MNIST from its four idx files (LeCun's format, gzipped or not), in data_dir or torchvision's MNIST/raw/."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ._checks import DataError, check_images, check_labels, one_line

MNIST_IDX = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
RAW_HINT = ("train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
            "(.gz or not)")  # what the error messages tell people to put in the data folder


def present(folder: Path) -> bool:
    """Whether any of the four files is there (auto then reads them, or says which are missing)."""
    return any(_mnist_path(folder, base) for base in MNIST_IDX.values())


def plan(folder: Path) -> tuple[list[Path], Callable[[], dict]]:
    """The files the arrays depend on (the cache key) and a function that decodes them."""
    files = _find(folder)
    return list(files.values()), lambda: _read(files)


def _mnist_path(folder: Path, base: str) -> Path | None:
    # data_dir itself, or torchvision's layout (root/MNIST/raw) so an existing torchvision download works.
    for d in (folder, folder / "MNIST" / "raw"):
        for fname in (base, base + ".gz"):
            if (d / fname).is_file():
                return d / fname
    return None


def _find(folder: Path) -> dict[str, Path]:
    files = {key: _mnist_path(folder, base) for key, base in MNIST_IDX.items()}
    missing = [MNIST_IDX[k] + "[.gz]" for k, p in files.items() if p is None]
    if missing:
        raise DataError(f"{folder}: missing MNIST file(s) {', '.join(missing)} (all four are needed)")
    return files


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (LeCun's format): magic 0x0000 08 <ndim>, ndim big-endian uint32 sizes, then the bytes."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a truncated gzip is an EOFError
        kind = "gzip" if path.suffix == ".gz" else "idx"
        raise DataError(f"{path}: not a readable {kind} file ({one_line(e)})") from None
    expected = bytes((0, 0, 8, ndim))
    if raw[:4] != expected:
        raise DataError(f"{path}: bad idx magic number {raw[:4].hex()}, expected {expected.hex()} "
                        f"(unsigned bytes, {ndim} dimension(s))")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated idx header ({len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise DataError(f"{path}: {len(raw) - header} data bytes, but the header's sizes {dims} need {size}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims).copy()


def _read(files: dict[str, Path]) -> dict:
    out = {}
    for split in ("train", "test"):
        xp, yp = files[f"x_{split}"], files[f"y_{split}"]
        x = check_images(_read_idx(xp, 3), str(xp), "images", "mnist")
        y = _read_idx(yp, 1)
        if len(y) != len(x):
            raise DataError(f"{yp}: {len(y)} labels, but {xp.name} holds {len(x)} images")
        out[f"x_{split}"], out[f"y_{split}"] = x, check_labels(y, str(yp), "labels", len(x))
    out["label_names"] = np.array([str(i) for i in range(10)])
    return out
