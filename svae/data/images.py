"""Real image datasets (MNIST, CIFAR-10, CelebA) as uint8 channels-first tensors, from .npz, raw files or a download."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import struct
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct


class DataError(ValueError):
    """A dataset file is missing or malformed; the one-line message names the file and what was expected."""


DATASETS = ("mnist", "cifar10", "celeba")
SOURCES = ("auto", "npz", "raw", "download")
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "celeba": (3, 64, 64)}  # (C, H, W)
NPZ_FILES = {"mnist": "mnist.npz", "cifar10": "cifar10.npz", "celeba": "celeba64.npz"}
RAW_FILES = {  # what the error messages tell people to put in the data folder
    "mnist": "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
             "(.gz or not)",
    "cifar10": "cifar-10-python.tar.gz or its extracted cifar-10-batches-py/ folder",
    "celeba": "img_align_celeba/*.jpg, plus list_eval_partition.txt and list_attr_celeba.txt if available",
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CACHE_VERSION = 1  # bump when decoding changes, so old caches stop matching


@dataclass
class ImageSplits:
    """Train and test images, uint8 (N, C, H, W), with their labels.

    y_* are int64 class indices (N,) for MNIST and CIFAR-10. For CelebA they are the 40 attributes as int8
    (N, 40) in {-1, +1}, or None when the files carry no attributes. label_names names the classes or the
    attribute columns; source is what was read ("npz" or "raw").
    """
    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor | None
    label_names: tuple[str, ...] = ()
    source: str = ""


def default_cache_dir() -> Path:
    """$SVAE_CACHE/data if that variable is set, else ~/.cache/svae/data."""
    root = os.environ.get("SVAE_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "svae") / "data"


def load_images(name: str, data_dir: str | Path | None, source: str = "auto", *,
                cache_dir: str | Path | None = None, cache: bool = True,
                opener: Callable | None = None) -> ImageSplits:
    """Load a real image dataset; raise DataError (one line, naming the file) when the files are not usable.

    source: "npz" (the shared mnist.npz / cifar10.npz / celeba64.npz), "raw" (the standard distribution files),
    "download" (fetch the raw files into data_dir first, checksum-verified; opener is handed to the fetcher),
    or "auto" (npz if present, else raw). Decoded arrays are cached under cache_dir (default_cache_dir() when
    None), keyed by the source files' paths, sizes and modification times; cache=False skips the cache.
    """
    if name not in DATASETS:
        raise DataError(f"unknown image dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; expected one of {', '.join(SOURCES)}")
    folder = _data_folder(name, data_dir, create=source == "download")
    if source == "download":
        from . import download  # imported only when asked for: the one module that touches the network
        download.fetch(name, folder, opener=opener)
        source = "raw"
    elif source == "auto":
        source = _auto_source(name, folder)
    inputs, decode = _plan(name, source, folder)
    if cache:
        cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        arrays = _cached(f"{name}-{source}", folder, inputs, decode, cache_dir)
    else:
        arrays = decode()
    return _to_splits(arrays, source)


# ---------------------------------------------------------------- folder, source choice and the cache


def _data_folder(name: str, data_dir: str | Path | None, create: bool) -> Path:
    hint = f"{NPZ_FILES[name]} or {RAW_FILES[name]}"
    if data_dir is None or str(data_dir) == "":
        raise DataError(f"data.data_dir is not set: {name} needs a folder holding {hint}")
    folder = Path(data_dir).expanduser()
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"{folder}: cannot create the data folder ({_one_line(e)})") from None
    if not folder.exists():
        raise DataError(f"{folder}: data folder does not exist (expected {hint} there)")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (data.data_dir must be the folder holding {hint})")
    if not create and not any(folder.iterdir()):
        raise DataError(f"{folder}: data folder is empty (expected {hint})")
    return folder


def _auto_source(name: str, folder: Path) -> str:
    if (folder / NPZ_FILES[name]).exists():
        return "npz"
    if _raw_present(name, folder):
        return "raw"
    fetch = "" if name == "celeba" else "; or use --download (data.source=download) to fetch the raw files"
    raise DataError(f"{folder}: no {name} data found; put {NPZ_FILES[name]} there for source npz, "
                    f"or for source raw {RAW_FILES[name]}{fetch}")


def _plan(name: str, source: str, folder: Path) -> tuple[list[Path], Callable[[], dict]]:
    """The files the result depends on (the cache key) and a function that decodes them into arrays."""
    if source == "npz":
        path = folder / NPZ_FILES[name]
        if not path.is_file():
            raise DataError(f"{path}: file not found (source npz reads {NPZ_FILES[name]} from data.data_dir)")
        return [path], lambda: _read_npz(name, path)
    if name == "mnist":
        files = _find_mnist(folder)
        return list(files.values()), lambda: _read_mnist(files)
    if name == "cifar10":
        paths = _find_cifar(folder)
        return paths, lambda: _read_cifar(paths)
    img_dir, partition, attr = _find_celeba(folder)
    return [p for p in (img_dir, partition, attr) if p], lambda: _read_celeba(img_dir, partition, attr)


def _cached(kind: str, folder: Path, inputs: list[Path], decode: Callable[[], dict], cache_dir: Path) -> dict:
    """Decoded arrays from cache_dir if the inputs are unchanged, else decode them and store the result.

    The cache file is {name}-{source}-{hash of the data folder}-{hash of the inputs' paths, sizes and mtimes}.npz,
    an uncompressed npz (fast to read). Changed inputs give a new name, and the stale file is removed.
    """
    stem = f"{kind}-{_digest([str(folder.resolve())])}"
    state = _digest([CACHE_VERSION] + [[str(p.resolve()), *_file_state(p)] for p in inputs])
    path = cache_dir / f"{stem}-{state}.npz"
    arrays = _read_cache(path)
    if arrays is not None:
        return arrays
    arrays = decode()
    _write_cache(path, arrays, stale=[p for p in cache_dir.glob(f"{stem}-*.npz") if p != path])
    return arrays


def _file_state(path: Path) -> list:
    st = path.stat()
    if path.is_dir():  # an image folder: its listing stands in for 200k stat calls
        names = sorted(os.listdir(path))
        return [st.st_mtime_ns, len(names), _digest(names)]
    return [st.st_size, st.st_mtime_ns]


def _digest(items: list) -> str:
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def _read_cache(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            d = np.load(f, allow_pickle=False)
            arrays = {k: d[k] for k in d.files}
        if {"x_train", "x_test"} <= arrays.keys():
            return arrays
    except Exception:  # the cache is ours and disposable: any damage just means decoding again
        pass
    path.unlink(missing_ok=True)
    return None


def _write_cache(path: Path, arrays: dict, stale: list[Path]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash or a concurrent run never leaves a half-written cache under the real name.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache folder may be shared
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for p in stale:
            p.unlink(missing_ok=True)
    except OSError as e:  # a read-only or full disk costs speed next time, not this run
        warnings.warn(f"could not write the data cache {path}: {_one_line(e)}", stacklevel=3)


def _to_splits(a: dict, source: str) -> ImageSplits:
    def tensor(key: str) -> torch.Tensor | None:
        return torch.from_numpy(a[key]) if key in a else None
    names = tuple(str(s) for s in a["label_names"]) if "label_names" in a else ()
    return ImageSplits(tensor("x_train"), tensor("y_train"), tensor("x_test"), tensor("y_test"), names, source)


# ---------------------------------------------------------------- checks shared by every format


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or e.__class__.__name__


def _images(x: np.ndarray, where: str, what: str, name: str) -> np.ndarray:
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


def _labels(y: np.ndarray, where: str, what: str, n: int, classes: int = 10) -> np.ndarray:
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise DataError(f"{where}: {what} has dtype {y.dtype} and shape {tuple(y.shape)}, expected integer labels (N,)")
    if len(y) != n:
        raise DataError(f"{where}: {what} has {len(y)} labels for {n} images")
    if y.min() < 0 or y.max() >= classes:
        raise DataError(f"{where}: {what} has labels outside 0..{classes - 1} ({y.min()}..{y.max()})")
    return y.astype(np.int64)


def _attributes(a: np.ndarray, where: str, what: str, n: int) -> np.ndarray:
    if a.dtype.kind not in "iu" or a.shape != (n, 40) or not np.isin(a, (-1, 1)).all():
        raise DataError(f"{where}: {what} has dtype {a.dtype} and shape {tuple(a.shape)}, "
                        f"expected ({n}, 40) attributes in {{-1, +1}}")
    return a.astype(np.int8)


def _holdout(n: int, where: str) -> int:
    """Size of the held-out test split when the files define none: the last 10% (at least one image)."""
    if n < 2:
        raise DataError(f"{where}: {n} image(s), need at least 2 to hold out a test split")
    return max(1, n // 10)


# ---------------------------------------------------------------- source "npz": the shared archives


def _read_npz(name: str, path: Path) -> dict:
    needed = ("x",) if name == "celeba" else ("x_train", "y_train", "x_test", "y_test")
    optional = ("attr", "attr_names") if name == "celeba" else ()
    try:
        # Our own handle: np.load leaks the one it opens when the zip is bad. allow_pickle=False: data never runs code.
        with path.open("rb") as f:
            d = np.load(f, allow_pickle=False)
            if not isinstance(d, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: holds a single array, expected an .npz archive with {', '.join(needed)}")
            missing = [k for k in needed if k not in d.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} (has {', '.join(d.files) or 'none'})")
            # Member access decompresses (LZMA in the shared files), so corrupt data surfaces here too.
            arr = {k: d[k] for k in needed + optional if k in d.files}
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, lzma.LZMAError, zlib.error,
            RuntimeError, NotImplementedError) as e:
        raise DataError(f"{path}: not a readable .npz archive ({_one_line(e)})") from None
    where = str(path)
    if name != "celeba":
        out = {}
        for split in ("train", "test"):
            x = _images(arr[f"x_{split}"], where, f"x_{split}", name)
            out[f"x_{split}"] = x
            out[f"y_{split}"] = _labels(arr[f"y_{split}"], where, f"y_{split}", len(x))
        if name == "cifar10":
            out["label_names"] = np.array(CIFAR10_CLASSES)
        else:
            out["label_names"] = np.array([str(i) for i in range(10)])
        return out
    # celeba64.npz: one array of training-partition faces; the last 10% become the test split.
    x = _images(arr["x"], where, "x", name)
    n_test = _holdout(len(x), where)
    out = {"x_train": x[:-n_test], "x_test": x[-n_test:]}
    if "attr" in arr:
        attr = _attributes(arr["attr"], where, "attr", len(x))
        out["y_train"], out["y_test"] = attr[:-n_test], attr[-n_test:]
        names = arr.get("attr_names")
        if names is not None:
            if names.dtype.kind != "U" or names.shape != (40,):
                raise DataError(f"{path}: attr_names has dtype {names.dtype} and shape {names.shape}, "
                                f"expected 40 strings")
            out["label_names"] = names
    return out


# ---------------------------------------------------------------- source "raw": MNIST idx files


MNIST_IDX = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _mnist_path(folder: Path, base: str) -> Path | None:
    # data_dir itself, or torchvision's layout (root/MNIST/raw) so an existing torchvision download works.
    for d in (folder, folder / "MNIST" / "raw"):
        for fname in (base, base + ".gz"):
            if (d / fname).is_file():
                return d / fname
    return None


def _find_mnist(folder: Path) -> dict[str, Path]:
    files = {key: _mnist_path(folder, base) for key, base in MNIST_IDX.items()}
    missing = [MNIST_IDX[k] + "[.gz]" for k, p in files.items() if p is None]
    if missing:
        raise DataError(f"{folder}: missing MNIST file(s) {', '.join(missing)} (source raw needs all four)")
    return files


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (LeCun's format): magic 0x0000 08 <ndim>, ndim big-endian uint32 sizes, then the bytes."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a truncated gzip is an EOFError
        kind = "gzip" if path.suffix == ".gz" else "idx"
        raise DataError(f"{path}: not a readable {kind} file ({_one_line(e)})") from None
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


def _read_mnist(files: dict[str, Path]) -> dict:
    out = {}
    for split in ("train", "test"):
        xp, yp = files[f"x_{split}"], files[f"y_{split}"]
        x = _images(_read_idx(xp, 3), str(xp), "images", "mnist")
        y = _read_idx(yp, 1)
        if len(y) != len(x):
            raise DataError(f"{yp}: {len(y)} labels, but {xp.name} holds {len(x)} images")
        out[f"x_{split}"], out[f"y_{split}"] = x, _labels(y, str(yp), "labels", len(x))
    out["label_names"] = np.array([str(i) for i in range(10)])
    return out


# ---------------------------------------------------------------- source "raw": CIFAR-10 python pickles


CIFAR_DIR = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def _find_cifar(folder: Path) -> list[Path]:
    """The six batch files (in cifar-10-batches-py/ or data_dir itself), else [the .tar.gz archive]."""
    for d in (folder / CIFAR_DIR, folder):
        present = [d / b for b in CIFAR_BATCHES if (d / b).is_file()]
        if present:
            missing = [b for b in CIFAR_BATCHES if not (d / b).is_file()]
            if missing:
                raise DataError(f"{d}: missing CIFAR-10 batch file(s) {', '.join(missing)}")
            return present
    if (folder / CIFAR_ARCHIVE).is_file():
        return [folder / CIFAR_ARCHIVE]
    raise DataError(f"{folder}: no CIFAR-10 files (expected {RAW_FILES['cifar10']})")


def _read_cifar(paths: list[Path]) -> dict:
    blobs = _cifar_archive(paths[0]) if len(paths) == 1 else [(str(p), _read_bytes(p)) for p in paths]
    parts = [_cifar_batch(_unpickle(data, where), where) for where, data in blobs]
    train, test = parts[:5], parts[5]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return {"x_train": x_train, "y_train": y_train, "x_test": test[0], "y_test": test[1],
            "label_names": np.array(CIFAR10_CLASSES)}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({_one_line(e)})") from None


def _cifar_archive(path: Path) -> list[tuple[str, bytes]]:
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
        raise DataError(f"{path}: not a readable .tar.gz archive ({_one_line(e)})") from None
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
        raise DataError(f"{where}: not a valid CIFAR-10 pickle ({e.__class__.__name__}: {_one_line(e)})") from None


def _cifar_batch(d: object, where: str) -> tuple[np.ndarray, np.ndarray]:
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
    x = _images(data.reshape(-1, 3, 32, 32), where, "b'data'", "cifar10")  # rows are already channel-major
    return x, _labels(np.asarray(labels), where, "b'labels'", len(x))


# ---------------------------------------------------------------- source "raw": CelebA aligned JPEGs


CELEBA_DIR = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_ATTR = "list_attr_celeba.txt"
CELEBA_BOX = (19, 39, 159, 179)  # DCGAN-style 140x140 centre crop of the aligned 178x218 image
CELEBA_SIZE = (178, 218)


def _find_celeba(folder: Path) -> tuple[Path, Path | None, Path | None]:
    # data_dir itself, or torchvision's layout (root/celeba/...).
    for d in (folder, folder / "celeba"):
        if (d / CELEBA_DIR).is_dir():
            partition, attr = d / CELEBA_PARTITION, d / CELEBA_ATTR
            return d / CELEBA_DIR, partition if partition.is_file() else None, attr if attr.is_file() else None
    zipped = " (unzip img_align_celeba.zip there)" if (folder / "img_align_celeba.zip").exists() else ""
    raise DataError(f"{folder}: no {CELEBA_DIR}/ folder{zipped}; expected {RAW_FILES['celeba']}")


def _celeba_jpegs(img_dir: Path) -> list[str]:
    names = sorted(n for n in os.listdir(img_dir) if n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        raise DataError(f"{img_dir}: no .jpg images")
    return names


def _celeba_image(path: Path) -> np.ndarray:
    """One aligned face: the centre crop resized to 64x64 (Pillow bicubic), uint8 (3, 64, 64)."""
    from PIL import Image  # Pillow is needed only here

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")  # decodes the whole file: truncated JPEGs fail here
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: unreadable image ({_one_line(e)})") from None
    w, h = im.size
    # Scaled copies (e.g. half-size 89x109) get the same box scaled; other shapes are not CelebA-aligned.
    if abs(w * CELEBA_SIZE[1] - h * CELEBA_SIZE[0]) > max(w, h):
        raise DataError(f"{path}: {w}x{h} image, expected the aligned CelebA size 178x218 (or a scaled copy)")
    sx, sy = w / CELEBA_SIZE[0], h / CELEBA_SIZE[1]
    left, top, right, bottom = CELEBA_BOX
    small = im.resize((64, 64), Image.BICUBIC, box=(left * sx, top * sy, right * sx, bottom * sy))
    return np.asarray(small).transpose(2, 0, 1)


def _read_table(path: Path, width: int, skip: int) -> tuple[list[str], dict[str, list[int]]]:
    """Rows '<image>.jpg v1 .. v_width' after skip header lines; returns the header lines' words and the rows."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({_one_line(e)})") from None
    if len(lines) < skip:
        raise DataError(f"{path}: truncated header ({len(lines)} lines)")
    rows = {}
    for i, line in enumerate(lines[skip:], skip + 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != width + 1:
                raise ValueError
            rows[parts[0]] = [int(v) for v in parts[1:]]
        except ValueError:
            raise DataError(f"{path}: line {i}: expected '<image>.jpg' and {width} integers") from None
    return " ".join(lines[:skip]).split(), rows


def _lookup(rows: dict[str, list[int]], names: list[str], path: Path) -> np.ndarray:
    missing = [n for n in names if n not in rows]
    if missing:
        raise DataError(f"{path}: no entry for {missing[0]} ({len(missing)} image(s) missing)")
    return np.array([rows[n] for n in names])


def _read_celeba(img_dir: Path, partition: Path | None, attr: Path | None) -> dict:
    names = _celeba_jpegs(img_dir)
    n = len(names)
    # The list files are read first, so a bad line fails at once rather than after minutes of decoding.
    # Split: the official partition when given (0 train, 1 val -> train, 2 test). A subset with no
    # test-partition image (e.g. the first few thousand) falls back to holding out the last 10%.
    test = np.zeros(n, bool)
    if partition is not None:
        _, rows = _read_table(partition, 1, 0)
        test = _lookup(rows, names, partition)[:, 0] == 2
        if test.all():
            raise DataError(f"{partition}: every image is in the test partition, none left to train on")
    if not test.any():
        test[n - _holdout(n, str(img_dir)):] = True
    out = {}
    if attr is not None:
        header, rows = _read_table(attr, 40, 2)
        a = _attributes(_lookup(rows, names, attr), str(attr), "attributes", n)
        out["y_train"], out["y_test"] = a[~test], a[test]
        if len(header) == 41:  # line 1 is the image count, line 2 the 40 names
            out["label_names"] = np.array(header[1:])
    x = _decode_celeba(img_dir, names)
    out["x_train"], out["x_test"] = x[~test], x[test]
    return out


def _decode_celeba(img_dir: Path, names: list[str]) -> np.ndarray:
    from tqdm import tqdm

    x = np.empty((len(names), 3, 64, 64), np.uint8)
    # Pillow releases the GIL while decoding and resizing, so threads use every core. Chunks keep the
    # number of pending futures small for the 200k-image folder.
    chunk = 1024
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool, \
            tqdm(total=len(names), desc=f"decoding {img_dir.name}", unit="img", disable=None) as bar:  # quiet off a tty
        for start in range(0, len(names), chunk):
            batch = [img_dir / name for name in names[start:start + chunk]]
            for i, img in enumerate(pool.map(_celeba_image, batch), start):
                x[i] = img
            bar.update(len(batch))
    return x


def _raw_present(name: str, folder: Path) -> bool:
    """Whether any of the dataset's standard files is there (auto then reads them, or says which are missing)."""
    if name == "mnist":
        return any(_mnist_path(folder, base) for base in MNIST_IDX.values())
    if name == "cifar10":
        return any((d / b).is_file() for d in (folder / CIFAR_DIR, folder) for b in CIFAR_BATCHES) \
            or (folder / CIFAR_ARCHIVE).is_file()
    return any((d / CELEBA_DIR).is_dir() for d in (folder, folder / "celeba"))
