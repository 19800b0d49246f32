"""DataError and the checks every image format shares: pixel layout, labels, attributes, the held-out split, and
the array contract of the command line's .npy files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..datasets import SHAPES
from ..errors import SvaeError


class DataError(SvaeError, ValueError):
    """A dataset file is missing or malformed; the one-line message names the file and what was expected."""



def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or e.__class__.__name__


def check_images(x: np.ndarray, where: str, what: str, name: str) -> np.ndarray:
    """x as contiguous uint8 (N, C, H, W); accepts (N, H, W) for grey, (N, H, W, C) and (N, C, H, W)."""
    c, h, w = SHAPES[name]
    expected = f"(N, {h}, {w}) or (N, 1, {h}, {w})" if c == 1 else f"(N, {h}, {w}, {c}) or (N, {c}, {h}, {w})"
    if x.dtype != np.uint8:
        raise DataError(f"{where}: {what} has dtype {x.dtype}, expected uint8 pixels {expected}")
    if c == 1 and x.shape[1:] == (h, w):
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1:] == (h, w, c):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise DataError(f"{where}: {what} has shape {tuple(x.shape)}, expected {expected}")
    if len(x) == 0:
        raise DataError(f"{where}: {what} holds no images")
    return np.ascontiguousarray(x)


def read_npy(path: str | Path, what: str) -> np.ndarray:
    """The array of a .npy file, read without pickles; a DataError naming the file when it is none."""
    if not Path(path).is_file():
        raise DataError(f"{what} {path}: no such file")
    if Path(path).stat().st_size == 0:
        raise DataError(f"{what} {path}: empty file (0 bytes), expected a .npy array")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # a damaged file fails in many ways (ValueError, EOFError, OSError, zip errors)
        raise DataError(f"{what} {path}: not a readable .npy array ({one_line(e)[:200]})") from None
    if not isinstance(arr, np.ndarray):  # np.load opens an .npz archive as a mapping of arrays
        arr.close()
        raise DataError(f"{what} {path}: an .npz archive, expected one .npy array (np.save, as `svae sample` writes)")
    return arr


def check_array(arr: np.ndarray, where: str, shape: tuple[int, ...] | None, images: bool) -> np.ndarray:
    """The array contract of the command line, as float32: (N, *shape) with N >= 1, finite; images float in
    [0, 1] (uint8 0..255 is taken too), toy points any finite value. `svae score` and `reconstruct` share it."""
    if shape is not None and (arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape):
        raise DataError(f"{where}: shape {arr.shape}, expected (N, {', '.join(map(str, shape))})")
    if arr.ndim == 0 or len(arr) == 0:
        raise DataError(f"{where}: shape {arr.shape} holds no examples")
    if images and arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        what = "float32 images in [0, 1] (or uint8)" if images else "float32"
        raise DataError(f"{where}: dtype {arr.dtype}, expected {what}")
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: holds NaN or infinite values")
    if images and (arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
        raise DataError(f"{where}: values in [{arr.min():.3g}, {arr.max():.3g}], expected [0, 1] "
                        "(scale 0..255 images by 1/255)")
    arr = arr.astype(np.float32, copy=False)
    return np.clip(arr, 0, 1) if images else arr


def check_labels(y: np.ndarray, where: str, what: str, n: int, classes: int = 10) -> np.ndarray:
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise DataError(f"{where}: {what} has dtype {y.dtype} and shape {tuple(y.shape)}, expected integer labels (N,)")
    if len(y) != n:
        raise DataError(f"{where}: {what} has {len(y)} labels for {n} images")
    if y.min() < 0 or y.max() >= classes:
        raise DataError(f"{where}: {what} has labels outside 0..{classes - 1} ({y.min()}..{y.max()})")
    return y.astype(np.int64)


def check_attributes(a: np.ndarray, where: str, what: str, n: int) -> np.ndarray:
    if a.dtype.kind not in "iu" or a.shape != (n, 40) or not np.isin(a, (-1, 1)).all():
        raise DataError(f"{where}: {what} has dtype {a.dtype} and shape {tuple(a.shape)}, "
                        f"expected ({n}, 40) attributes in {{-1, +1}}")
    return a.astype(np.int8)


def holdout_size(n: int, where: str) -> int:
    """Size of the held-out test split when the files define none: the last 10% (at least one image)."""
    if n < 2:
        raise DataError(f"{where}: {n} image(s), need at least 2 to hold out a test split")
    return max(1, n // 10)
