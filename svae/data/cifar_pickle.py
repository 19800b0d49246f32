"""CIFAR-10's python batches, from cifar-10-batches-py/ or straight from the .tar.gz, through a numpy-only unpickler."""
from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ._checks import DataError, check_images, check_labels, one_line

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
RAW_HINT = "cifar-10-python.tar.gz or its extracted cifar-10-batches-py/ folder"  # for the error messages


def present(folder: Path) -> bool:
    """Whether any batch file or the archive is there (auto then reads them, or says which are missing)."""
    return any((d / b).is_file() for d in (folder / CIFAR_DIR, folder) for b in CIFAR_BATCHES) \
        or (folder / CIFAR_ARCHIVE).is_file()


def plan(folder: Path) -> tuple[list[Path], Callable[[], dict]]:
    """The files the arrays depend on (the cache key) and a function that decodes them."""
    paths = _find(folder)
    return paths, lambda: _read(paths)


def _find(folder: Path) -> list[Path]:
    """The six batch files (in cifar-10-batches-py/ or data_dir itself), else [the .tar.gz archive]."""
    for d in (folder / CIFAR_DIR, folder):
        batches = [d / b for b in CIFAR_BATCHES if (d / b).is_file()]
        if batches:
            missing = [b for b in CIFAR_BATCHES if not (d / b).is_file()]
            if missing:
                raise DataError(f"{d}: missing CIFAR-10 batch file(s) {', '.join(missing)}")
            return batches
    if (folder / CIFAR_ARCHIVE).is_file():
        return [folder / CIFAR_ARCHIVE]
    raise DataError(f"{folder}: no CIFAR-10 files (expected {RAW_HINT})")


def _read(paths: list[Path]) -> dict:
    blobs = _archive(paths[0]) if len(paths) == 1 else [(str(p), _read_bytes(p)) for p in paths]
    parts = [_batch(_unpickle(data, where), where) for where, data in blobs]
    train, test = parts[:5], parts[5]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return {"x_train": x_train, "y_train": y_train, "x_test": test[0], "y_test": test[1],
            "label_names": np.array(CIFAR10_CLASSES)}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from None


def _archive(path: Path) -> list[tuple[str, bytes]]:
    """The six batches straight from the .tar.gz (nothing is extracted, so member paths cannot escape)."""
    wanted = {f"{CIFAR_DIR}/{b}": b for b in CIFAR_BATCHES}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r|gz") as tar:  # stream mode: one pass, no backward seeks in the gzip
            for member in tar:
                key = member.name.removeprefix("./")
                if key in wanted and member.isfile():
                    found[wanted[key]] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable .tar.gz archive ({one_line(e)})") from None
    missing = [b for b in CIFAR_BATCHES if b not in found]
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(f'{CIFAR_DIR}/{b}' for b in missing)}")
    return [(f"{path}:{CIFAR_DIR}/{b}", found[b]) for b in CIFAR_BATCHES]


# The official batches are Python 2 pickles of a dict of byte strings, lists and numpy arrays. Unpickling
# can call any global the file names (os.system, ...), so only the three numpy callables that rebuild an
# array are resolvable; anything else is refused before it is called.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # the name numpy 1.x (and the batches) use
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2.x's name
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _Refused(pickle.UnpicklingError):
    pass


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _unpickle(data: bytes, where: str):
    try:
        # encoding="bytes": Python 2 str objects (keys and the raw array data) stay bytes, as numpy expects.
        return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except _Refused as e:
        raise DataError(f"{where}: refused to unpickle the global {e}; a CIFAR-10 batch needs only numpy "
                        f"arrays (untrusted file?)") from None
    except Exception as e:  # malformed pickles fail in many ways (EOFError, KeyError, TypeError, ...)
        raise DataError(f"{where}: not a valid CIFAR-10 pickle ({e.__class__.__name__}: {one_line(e)})") from None


def _batch(d: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch dict: b'data' uint8 (N, 3072) rows of 1024 R, 1024 G, 1024 B values; b'labels' N ints."""
    if not isinstance(d, dict):
        raise DataError(f"{where}: holds a {type(d).__name__}, expected a dict with b'data' and b'labels'")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {tuple(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: b'data' is {got}, expected a uint8 array (N, 3072)")
    if labels is None:
        raise DataError(f"{where}: no b'labels' entry")
    x = check_images(data.reshape(-1, 3, 32, 32), where, "b'data'", "cifar10")  # rows are already channel-major
    return x, check_labels(np.asarray(labels), where, "b'labels'", len(x))
