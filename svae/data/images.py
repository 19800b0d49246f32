"""Real image datasets (MNIST, CIFAR-10, CelebA) as uint8 channels-first tensors, from .npz, raw files or a download."""
from __future__ import annotations

import hashlib
import importlib
import json
import lzma
import os
import sys
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import files
from ..atomic import write_atomic
from ..datasets import DATASETS as _TABLE, IMAGE_DATASETS, SHAPES, SOURCES
from . import download
from ._checks import DataError, check_attributes, check_images, check_labels, holdout_size, one_line
from .cifar_pickle import CIFAR10_CLASSES

# The public names; SHAPES, DataError and CIFAR10_CLASSES live beside the readers and are re-exported here.
__all__ = ["DATASETS", "SOURCES", "SHAPES", "NPZ_FILES", "RAW_FILES", "CIFAR10_CLASSES", "CACHE_VERSION",
           "DataError", "ImageSplits", "default_cache_dir", "load_images"]

DATASETS = IMAGE_DATASETS
NPZ_FILES = {name: _TABLE[name].npz for name in IMAGE_DATASETS}
# source "raw": the reader module the dataset table names, one per format
RAW_READERS = {name: importlib.import_module(f".{_TABLE[name].reader}", __package__) for name in IMAGE_DATASETS}
RAW_FILES = {name: reader.RAW_HINT for name, reader in RAW_READERS.items()}  # what error messages ask for
CACHE_VERSION = 1  # bump when decoding changes, so old caches stop matching
CACHE_ENV = "SVAE_DATA_CACHE"  # 0 turns the decoded-array cache off (it costs 55 MB for MNIST, 2.5 GB for CelebA)
ANNOUNCE_BYTES = 1 << 20  # a new cache file this large is announced; tiny ones (test fixtures, subsets) are not


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
    """Where decoded arrays are cached: the cache root's decoded/ (apart from data/, which holds datasets)."""
    return files.cache_dir("decoded")


def cache_enabled() -> bool:
    """False when $SVAE_DATA_CACHE is 0 (or false, no, off): every load then decodes the files again."""
    return os.environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def load_images(name: str, data_dir: str | Path | None, source: str = "auto", *,
                cache_dir: str | Path | None = None, cache: bool = True,
                opener: Callable | None = None) -> ImageSplits:
    """Load a real image dataset; raise DataError (one line, naming the file) when the files are not usable.

    data_dir None means the default data folder ($SVAE_DATA, else ~/.cache/svae/data).

    source: "npz" (the shared mnist.npz / cifar10.npz / celeba64.npz), "raw" (the standard distribution files),
    "download" (fetch the raw files into data_dir first, checksum-verified; opener is handed to the fetcher),
    or "auto" (npz if present, else raw). Decoded arrays are cached under cache_dir (default_cache_dir() when
    None), keyed by the source files' paths, sizes and modification times; cache=False (or $SVAE_DATA_CACHE=0)
    skips the cache.
    """
    if name not in DATASETS:
        raise DataError(f"unknown image dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; expected one of {', '.join(SOURCES)}")
    folder = _data_folder(name, data_dir, create=source == "download")
    if source == "download":
        download.fetch(name, folder, opener=opener)
        source = "raw"
    elif source == "auto":
        source = _auto_source(name, folder)
    inputs, decode = _plan(name, source, folder)
    if cache and cache_enabled():
        cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        arrays = _cached(name, source, folder, inputs, decode, cache_dir)
    else:
        arrays = decode()
    return _to_splits(arrays, source)


# ---------------------------------------------------------------- folder, source choice and the cache


def _data_folder(name: str, data_dir: str | Path | None, create: bool) -> Path:
    folder = Path(data_dir).expanduser() if data_dir is not None and str(data_dir) else files.data_dir()
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"{folder}: cannot create the data folder ({one_line(e)})") from None
    if not folder.exists():
        raise DataError(f"{_where(folder)}: no such folder; {_how_to_get(name)}")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; --data-dir names the folder holding {NPZ_FILES[name]} "
                        f"or {RAW_FILES[name]}")
    if not create and not any(folder.iterdir()):
        raise DataError(f"{_where(folder)}: the folder is empty; {_how_to_get(name)}")
    return folder


def _where(folder: Path) -> str:
    default = folder == files.data_dir()
    return f"{folder} (the default data folder; $SVAE_DATA sets another)" if default else str(folder)


def _how_to_get(name: str) -> str:
    """What every "no data" message tells people to do, in command-line words."""
    fetch = ", or add --download to fetch the official files into it" if name in download.CHECKSUMS else ""
    return (f"put {NPZ_FILES[name]} or {RAW_FILES[name]} there, or name the folder that holds them with "
            f"--data-dir DIR{fetch}")


def _auto_source(name: str, folder: Path) -> str:
    if (folder / NPZ_FILES[name]).exists():
        return "npz"
    if RAW_READERS[name].present(folder):
        return "raw"
    raise DataError(f"{_where(folder)}: no {name} data found; {_how_to_get(name)}")


def _plan(name: str, source: str, folder: Path) -> tuple[list[Path], Callable[[], dict]]:
    """The files the result depends on (the cache key) and a function that decodes them into arrays."""
    if source == "npz":
        path = folder / NPZ_FILES[name]
        if not path.is_file():
            raise DataError(f"{path}: file not found; put {NPZ_FILES[name]} in the folder --data-dir names")
        return [path], lambda: _read_npz(name, path)
    return RAW_READERS[name].plan(folder)


def _cached(name: str, source: str, folder: Path, inputs: list[Path], decode: Callable[[], dict],
            cache_dir: Path) -> dict:
    """Decoded arrays from cache_dir if the inputs are unchanged, else decode them and store the result.

    The cache file is {name}-{source}-{hash of the data folder}-{hash of the inputs' paths, sizes and mtimes}.npz,
    an uncompressed npz (fast to read). Changed inputs give a new name, and the stale file is removed.
    """
    stem = f"{name}-{source}-{_digest([str(folder.resolve())])}"
    state = _digest([CACHE_VERSION] + [[str(p.resolve()), *_file_state(p)] for p in inputs])
    path = cache_dir / f"{stem}-{state}.npz"
    arrays = _read_cache(path)
    if arrays is not None:
        return arrays
    arrays = decode()
    written = _write_cache(path, arrays, stale=[p for p in cache_dir.glob(f"{stem}-*.npz") if p != path])
    if written and path.stat().st_size >= ANNOUNCE_BYTES:  # said once, when the file appears
        print(f"svae: saved the decoded {name} arrays uncompressed to {path} "
              f"({path.stat().st_size / 1e6:.1f} MB) so that later loads take well under a second; "
              f"{CACHE_ENV}=0 turns this cache off, and the file can be deleted at any time", file=sys.stderr)
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


def _write_cache(path: Path, arrays: dict, stale: list[Path]) -> bool:
    """Whether the cache file was written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a crash or a concurrent run never leaves a half-written cache under the real name
        write_atomic(path, lambda f: np.savez(f, **arrays), "data cache")
        for p in stale:
            p.unlink(missing_ok=True)
        return True
    except OSError as e:  # a read-only or full disk costs speed next time, not this run
        warnings.warn(f"could not write the data cache {path}: {one_line(e)}", stacklevel=3)
        return False


def _to_splits(a: dict, source: str) -> ImageSplits:
    def tensor(key: str) -> torch.Tensor | None:
        return torch.from_numpy(a[key]) if key in a else None
    names = tuple(str(s) for s in a["label_names"]) if "label_names" in a else ()
    return ImageSplits(tensor("x_train"), tensor("y_train"), tensor("x_test"), tensor("y_test"), names, source)


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
        raise DataError(f"{path}: not a readable .npz archive ({one_line(e)})") from None
    where = str(path)
    if name != "celeba":
        out = {}
        for split in ("train", "test"):
            x = check_images(arr[f"x_{split}"], where, f"x_{split}", name)
            out[f"x_{split}"] = x
            out[f"y_{split}"] = check_labels(arr[f"y_{split}"], where, f"y_{split}", len(x))
        if name == "cifar10":
            out["label_names"] = np.array(CIFAR10_CLASSES)
        else:
            out["label_names"] = np.array([str(i) for i in range(10)])
        return out
    # celeba64.npz: one array of training-partition faces; the last 10% become the test split.
    x = check_images(arr["x"], where, "x", name)
    n_test = holdout_size(len(x), where)
    out = {"x_train": x[:-n_test], "x_test": x[-n_test:]}
    if "attr" in arr:
        attr = check_attributes(arr["attr"], where, "attr", len(x))
        out["y_train"], out["y_test"] = attr[:-n_test], attr[-n_test:]
        names = arr.get("attr_names")
        if names is not None:
            if names.dtype.kind != "U" or names.shape != (40,):
                raise DataError(f"{path}: attr_names has dtype {names.dtype} and shape {names.shape}, "
                                f"expected 40 strings")
            out["label_names"] = names
    return out
