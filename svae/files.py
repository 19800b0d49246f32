"""svae's own files: the one cache root ($SVAE_CACHE), the default data folder ($SVAE_DATA) and file checksums."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "SVAE_CACHE"
DATA_ENV = "SVAE_DATA"


def cache_dir(kind: str) -> Path:
    """$SVAE_CACHE/kind if that variable is set, else ~/.cache/svae/kind. Every folder svae fills on its own
    lives here (kind: data, decoded, classifiers, inception), so one variable moves them all."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "svae") / kind


def data_dir() -> Path:
    """The data folder used when --data-dir is not given: $SVAE_DATA, else the cache root's data/."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_dir("data")


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MB chunks (weights files are ~100 MB)."""
    h = hashlib.new(algorithm, usedforsecurity=False)  # integrity checks only, never security
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
