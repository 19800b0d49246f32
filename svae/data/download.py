"""Fetch the official MNIST and CIFAR-10 files into a data folder, md5-verified, with urllib only."""
from __future__ import annotations

import hashlib
import http.client
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable

from ..files import file_digest
from ..atomic import write_atomic
from ..datasets import DATASETS
from ._checks import DataError

# The md5s the datasets' own pages (and torchvision) publish for the distribution files.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "cifar10": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
}
# Tried in order; yann.lecun.com is left out because it now often refuses downloads.
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}
CHUNK = 1 << 20

Opener = Callable[..., BinaryIO]  # called as opener(url, timeout=...): urllib.request.urlopen or a test's fake


class _ChecksumError(Exception):
    pass


def fetch(name: str, data_dir: str | Path, *, opener: Opener | None = None,
          mirrors: tuple[str, ...] | list[str] | None = None, timeout: float = 60.0) -> list[Path]:
    """Make sure data_dir holds the dataset's official files, downloading the missing or damaged ones.

    A file already there with the right md5 is kept without any network access. Each download goes to a
    temporary file that is renamed only after its md5 matches. mirrors: URL prefixes (a file:// URL works);
    opener(url, timeout=...) returns a readable binary stream (default urllib.request.urlopen).
    """
    folder = Path(data_dir)
    if name == "celeba":
        raise DataError(f"{folder}: CelebA has no stable direct download, so --download cannot fetch it; get "
                        f"img_align_celeba.zip, list_eval_partition.txt and list_attr_celeba.txt from "
                        f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, unzip the images into "
                        f"{folder / 'img_align_celeba'}/ (or put celeba64.npz in {folder}) and run again with "
                        f"--data-dir {folder} and without --download")
    if name not in CHECKSUMS:
        raise DataError(f"no download known for dataset {name!r}; expected one of {', '.join(CHECKSUMS)}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{folder}: cannot create the data folder ({e})") from None
    opener = opener or urllib.request.urlopen
    paths = []
    for fname, md5 in CHECKSUMS[name].items():
        target = folder / fname
        if not (target.is_file() and file_digest(target, "md5") == md5):
            _fetch_file(name, fname, md5, target, tuple(mirrors or MIRRORS[name]), opener, timeout)
        paths.append(target)
    return paths


def _fetch_file(name: str, fname: str, md5: str, target: Path, mirrors: tuple[str, ...],
                opener: Opener, timeout: float) -> None:
    bad_checksum, failure = None, "no mirror given"
    for base in mirrors:
        url = base.rstrip("/") + "/" + fname
        try:
            _download(url, md5, target, opener, timeout)
            return
        except _ChecksumError as e:  # a damaged copy on one mirror: another may be fine
            bad_checksum = f"{url}: md5 {e}, expected {md5}"
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
            failure = f"{url}: {' '.join(str(e).split()) or e.__class__.__name__}"
    if bad_checksum:
        raise DataError(f"{target}: download failed its checksum ({bad_checksum}); the partial file was deleted")
    wanted = ", ".join(CHECKSUMS[name])
    raise DataError(f"{target.parent}: could not download {fname} ({failure}); offline? put {wanted} (or "
                    f"{DATASETS[name].npz}) there by hand and run again with --data-dir {target.parent} "
                    "and without --download")


def _download(url: str, md5: str, target: Path, opener: Opener, timeout: float) -> None:
    from tqdm import tqdm

    digest = hashlib.md5(usedforsecurity=False)  # md5 is what the datasets publish; it checks integrity only

    def fetch(out) -> None:
        with opener(url, timeout=timeout) as response:
            size = getattr(response, "headers", {}).get("Content-Length")
            with tqdm(total=int(size) if size else None, unit="B", unit_scale=True, desc=target.name,
                      disable=None) as bar:  # disable=None: quiet when not a terminal
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise _ChecksumError(digest.hexdigest())

    write_atomic(target, fetch, "download")  # only a verified file ever carries the real name
