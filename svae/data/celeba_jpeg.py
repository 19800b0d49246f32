"""CelebA's aligned JPEGs, centre-cropped to 64x64, split by list_eval_partition.txt, with list_attr_celeba.txt."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from ._checks import DataError, check_attributes, holdout_size, one_line

CELEBA_DIR = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_ATTR = "list_attr_celeba.txt"
CELEBA_BOX = (19, 39, 159, 179)  # DCGAN-style 140x140 centre crop of the aligned 178x218 image
CELEBA_SIZE = (178, 218)
RAW_HINT = "img_align_celeba/*.jpg, plus list_eval_partition.txt and list_attr_celeba.txt if available"


def present(folder: Path) -> bool:
    """Whether the image folder is there (auto then reads it)."""
    return any((d / CELEBA_DIR).is_dir() for d in (folder, folder / "celeba"))


def plan(folder: Path) -> tuple[list[Path], Callable[[], dict]]:
    """The files the arrays depend on (the cache key) and a function that decodes them."""
    img_dir, partition, attr = _find(folder)
    return [p for p in (img_dir, partition, attr) if p], lambda: _read(img_dir, partition, attr)


def _find(folder: Path) -> tuple[Path, Path | None, Path | None]:
    # data_dir itself, or torchvision's layout (root/celeba/...).
    for d in (folder, folder / "celeba"):
        if (d / CELEBA_DIR).is_dir():
            partition, attr = d / CELEBA_PARTITION, d / CELEBA_ATTR
            return d / CELEBA_DIR, partition if partition.is_file() else None, attr if attr.is_file() else None
    zipped = " (unzip img_align_celeba.zip there)" if (folder / "img_align_celeba.zip").exists() else ""
    raise DataError(f"{folder}: no {CELEBA_DIR}/ folder{zipped}; expected {RAW_HINT}")


def _read(img_dir: Path, partition: Path | None, attr: Path | None) -> dict:
    names = _jpegs(img_dir)
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
        test[n - holdout_size(n, str(img_dir)):] = True
    out = {}
    if attr is not None:
        header, rows = _read_table(attr, 40, 2)
        a = check_attributes(_lookup(rows, names, attr), str(attr), "attributes", n)
        out["y_train"], out["y_test"] = a[~test], a[test]
        if len(header) == 41:  # line 1 is the image count, line 2 the 40 names
            out["label_names"] = np.array(header[1:])
    x = _decode(img_dir, names)
    out["x_train"], out["x_test"] = x[~test], x[test]
    return out


def _jpegs(img_dir: Path) -> list[str]:
    names = sorted(n for n in os.listdir(img_dir) if n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        raise DataError(f"{img_dir}: no .jpg images")
    return names


def _read_table(path: Path, width: int, skip: int) -> tuple[list[str], dict[str, list[int]]]:
    """Rows '<image>.jpg v1 .. v_width' after skip header lines; returns the header lines' words and the rows."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from None
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


def _decode(img_dir: Path, names: list[str]) -> np.ndarray:
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


def _celeba_image(path: Path) -> np.ndarray:
    """One aligned face: the centre crop resized to 64x64 (Pillow bicubic), uint8 (3, 64, 64)."""
    from PIL import Image  # Pillow is needed only here

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")  # decodes the whole file: truncated JPEGs fail here
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: unreadable image ({one_line(e)})") from None
    w, h = im.size
    # Scaled copies (e.g. half-size 89x109) get the same box scaled; other shapes are not CelebA-aligned.
    if abs(w * CELEBA_SIZE[1] - h * CELEBA_SIZE[0]) > max(w, h):
        raise DataError(f"{path}: {w}x{h} image, expected the aligned CelebA size 178x218 (or a scaled copy)")
    sx, sy = w / CELEBA_SIZE[0], h / CELEBA_SIZE[1]
    left, top, right, bottom = CELEBA_BOX
    small = im.resize((64, 64), Image.BICUBIC, box=(left * sx, top * sy, right * sx, bottom * sy))
    return np.asarray(small).transpose(2, 0, 1)
