"""Real-image loading: npz / raw / download sources, the cache, and every error path, on tiny files made here."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_data_dir
import torch
from PIL import Image

from svae.config import DataConfig
from svae.data import celeba_jpeg, download, images, load_dataset
from svae.data.images import DataError, ImageSplits, load_images

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder, so nothing touches ~/.cache."""
    monkeypatch.setenv("SVAE_CACHE", str(tmp_path / "svae-cache"))
    monkeypatch.delenv("SVAE_DATA", raising=False)


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "svae-cache" / "decoded").glob("*.npz"))


# ---------------------------------------------------------------- helpers that write tiny datasets


def mnist_arrays(n_train=20, n_test=10):
    return (RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), RNG.integers(0, 10, n_train, dtype=np.uint8),
            RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), RNG.integers(0, 10, n_test, dtype=np.uint8))


def cifar_arrays(n_train=20, n_test=10):
    return (RNG.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), RNG.integers(0, 10, n_train, dtype=np.uint8),
            RNG.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), RNG.integers(0, 10, n_test, dtype=np.uint8))


def write_npz(path: Path, arrays, compressed=False, **overrides):
    d = dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays))
    d.update(overrides)
    d = {k: v for k, v in d.items() if v is not None}
    (np.savez_compressed if compressed else np.savez)(path, **d)
    return path


def idx_bytes(a: np.ndarray) -> bytes:
    return bytes((0, 0, 8, a.ndim)) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def write_idx(folder: Path, arrays, gz=True):
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, a in zip(names, arrays):
        data = idx_bytes(a)
        path = folder / (fname + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        paths.append(path)
    return paths


def cifar_batch(x: np.ndarray, y: np.ndarray) -> dict:
    """The official batch layout: b'data' (N, 3072) rows of R, G, B planes; b'labels' a list of ints."""
    return {b"batch_label": b"testing batch", b"data": x.transpose(0, 3, 1, 2).reshape(len(x), 3072),
            b"labels": [int(v) for v in y], b"filenames": [b"img%d.png" % i for i in range(len(x))]}


def py2_pickle(d: dict) -> bytes:
    """A protocol-2 pickle as Python 2 cPickle and numpy 1.x wrote the official batches (str as BINSTRING,
    arrays via numpy.core.multiarray._reconstruct): Python 3 cannot produce this byte form itself."""
    def s(b: bytes) -> bytes:
        return b"T" + struct.pack("<I", len(b)) + b

    def ints(v) -> bytes:
        return b"".join(b"J" + struct.pack("<i", int(i)) for i in v)

    def array(a: np.ndarray) -> bytes:
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
                + b"(K\x01(" + ints(a.shape) + b"t" + b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"
                + b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
                + b"\x89" + s(a.tobytes()) + b"tb")

    out = b"\x80\x02}("
    for k, v in d.items():
        out += s(k)
        if isinstance(v, np.ndarray):
            out += array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            out += b"](" + b"".join(s(b) for b in v) + b"e"
        elif isinstance(v, list):
            out += b"](" + ints(v) + b"e"
        else:
            out += s(v)
    return out + b"u."


def write_cifar_batches(folder: Path, arrays, per_batch=4, dumps=lambda d: pickle.dumps(d, protocol=4)):
    """Five training batches of per_batch images and a test batch, as the files of cifar-10-batches-py."""
    x_tr, y_tr, x_te, y_te = arrays
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        (folder / f"data_batch_{i + 1}").write_bytes(dumps(cifar_batch(x_tr[part], y_tr[part])))
    (folder / "test_batch").write_bytes(dumps(cifar_batch(x_te, y_te)))
    return folder


def write_celeba(folder: Path, n=12, size=(178, 218), partition=None, attr=True):
    img_dir = folder / "img_align_celeba"
    img_dir.mkdir(parents=True)
    for i in range(1, n + 1):
        # A smooth gradient plus the index: distinct, compressible faces of the right size.
        yy, xx = np.mgrid[0:size[1], 0:size[0]]
        rgb = np.stack([(xx + 10 * i) % 256, (yy + 5 * i) % 256, (xx + yy) % 256], -1).astype(np.uint8)
        Image.fromarray(rgb).save(img_dir / f"{i:06d}.jpg", quality=95)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    if partition is not None:
        (folder / "list_eval_partition.txt").write_text("".join(f"{nm} {p}\n" for nm, p in zip(names, partition)))
    attrs = None
    if attr:
        attrs = RNG.choice([-1, 1], (n, 40))
        header = f"{n}\n" + " ".join(f"Attr_{j}" for j in range(40)) + "\n"
        rows = "".join(f"{nm} " + " ".join(f"{v:2d}" for v in row) + "\n" for nm, row in zip(names, attrs))
        (folder / "list_attr_celeba.txt").write_text(header + rows)
    return img_dir, names, attrs


def celeba_reference(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        small = im.convert("RGB").resize((64, 64), Image.BICUBIC, box=(19, 39, 159, 179))
    return np.asarray(small).transpose(2, 0, 1)


def check_layout(s: ImageSplits, chw, n_train, n_test):
    assert s.x_train.shape == (n_train, *chw) and s.x_test.shape == (n_test, *chw)
    assert s.x_train.dtype == torch.uint8 and s.x_test.dtype == torch.uint8
    assert s.x_train.is_contiguous()


# ---------------------------------------------------------------- source npz


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_mnist_round_trip(tmp_path, compressed):
    arrays = mnist_arrays()
    write_npz(tmp_path / "mnist.npz", arrays, compressed=compressed)
    s = load_images("mnist", tmp_path, "npz")
    check_layout(s, (1, 28, 28), 20, 10)
    assert s.y_train.dtype == torch.int64 and s.y_train.shape == (20,)
    assert np.array_equal(s.x_train[:, 0].numpy(), arrays[0]) and np.array_equal(s.x_test[:, 0].numpy(), arrays[2])
    assert np.array_equal(s.y_train.numpy(), arrays[1]) and np.array_equal(s.y_test.numpy(), arrays[3])
    assert s.source == "npz" and s.label_names == tuple("0123456789")


def test_npz_cifar_channels_first(tmp_path):
    arrays = cifar_arrays()
    write_npz(tmp_path / "cifar10.npz", arrays, compressed=True, class_names=np.array(images.CIFAR10_CLASSES))
    s = load_images("cifar10", tmp_path)  # auto finds the npz
    check_layout(s, (3, 32, 32), 20, 10)
    assert np.array_equal(s.x_train.numpy(), arrays[0].transpose(0, 3, 1, 2))
    assert np.array_equal(s.x_test.numpy(), arrays[2].transpose(0, 3, 1, 2))
    assert s.x_train[3, 2, 5, 7] == arrays[0][3, 5, 7, 2]  # channel 2 = blue at row 5, column 7
    assert np.array_equal(s.y_test.numpy(), arrays[3]) and s.label_names[0] == "airplane"


def test_npz_celeba_holds_out_last_tenth(tmp_path):
    x = RNG.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
    attr = RNG.choice(np.array([-1, 1], np.int8), (30, 40))
    names = np.array([f"Attr_{j}" for j in range(40)])
    np.savez(tmp_path / "celeba64.npz", x=x, attr=attr, attr_names=names, image_id=np.arange(1, 31, dtype=np.int32))
    s = load_images("celeba", tmp_path, "npz")
    check_layout(s, (3, 64, 64), 27, 3)
    assert np.array_equal(s.x_test.numpy(), x[27:].transpose(0, 3, 1, 2))
    assert np.array_equal(s.x_train.numpy(), x[:27].transpose(0, 3, 1, 2))
    assert s.y_train.dtype == torch.int8 and s.y_train.shape == (27, 40)
    assert np.array_equal(s.y_test.numpy(), attr[27:]) and s.label_names == tuple(names)


def test_npz_celeba_without_attributes(tmp_path):
    np.savez(tmp_path / "celeba64.npz", x=RNG.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8))
    s = load_images("celeba", tmp_path, "npz")
    assert len(s.x_train) == 9 and len(s.x_test) == 1
    assert s.y_train is None and s.y_test is None and s.label_names == ()


# ---------------------------------------------------------------- the cache


def test_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    path = write_npz(data / "mnist.npz", mnist_arrays())
    first = load_images("mnist", data, "npz")
    assert len(cache_files(tmp_path)) == 1  # under $SVAE_CACHE/decoded

    def boom(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images, "_read_npz", boom)
    second = load_images("mnist", data, "npz")
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)
    assert second.label_names == first.label_names
    # A changed source file (new mtime) no longer matches the cache: it is decoded again.
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        load_images("mnist", data, "npz")


def test_cache_replaces_stale_entry_and_survives_corruption(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    arrays = mnist_arrays()
    path = write_npz(data / "mnist.npz", arrays)
    load_images("mnist", data, "npz")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    load_images("mnist", data, "npz")
    [entry] = cache_files(tmp_path)  # the stale entry was removed
    entry.write_bytes(b"PK\x03\x04 garbage")  # a damaged cache is ours to redo, not the user's error
    s = load_images("mnist", data, "npz")
    assert np.array_equal(s.x_train[:, 0].numpy(), arrays[0])


def test_cache_dir_argument_and_cache_off(tmp_path):
    write_npz(tmp_path / "mnist.npz", mnist_arrays())
    load_images("mnist", tmp_path, "npz", cache_dir=tmp_path / "mine")
    assert len(list((tmp_path / "mine").glob("mnist-npz-*.npz"))) == 1
    load_images("mnist", tmp_path, "npz", cache=False)
    assert cache_files(tmp_path) == []


def test_the_first_load_announces_its_cache_once_and_the_variable_turns_it_off(tmp_path, monkeypatch, capsys):
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    write_npz(small / "mnist.npz", mnist_arrays())
    write_npz(big / "mnist.npz", mnist_arrays(n_train=1400))  # a cache file of 1.1 MB: worth a line
    load_images("mnist", small, "npz")
    assert len(cache_files(tmp_path)) == 1 and capsys.readouterr().err == ""  # 24 kB: not worth a line
    load_images("mnist", big, "npz")
    err = capsys.readouterr().err
    [entry] = [p for p in cache_files(tmp_path) if str(p) in err]
    assert "1.1 MB" in err and "SVAE_DATA_CACHE=0" in err and len(err.splitlines()) == 1
    load_images("mnist", big, "npz")
    assert capsys.readouterr().err == ""  # read from the cache: nothing more to say
    entry.unlink()
    monkeypatch.setenv("SVAE_DATA_CACHE", "0")
    load_images("mnist", big, "npz")
    assert len(cache_files(tmp_path)) == 1 and capsys.readouterr().err == ""


# ---------------------------------------------------------------- the default data folder


def test_without_a_data_dir_the_default_folder_is_read(tmp_path, monkeypatch):
    default = tmp_path / "svae-cache" / "data"  # $SVAE_CACHE/data when $SVAE_DATA is not set
    default.mkdir(parents=True)
    write_npz(default / "mnist.npz", mnist_arrays())
    assert len(load_images("mnist", None).x_train) == 20
    mine = tmp_path / "mine"
    mine.mkdir()
    write_npz(mine / "mnist.npz", mnist_arrays(n_train=7))
    monkeypatch.setenv("SVAE_DATA", str(mine))
    assert len(load_images("mnist", None).x_train) == 7


def test_download_without_a_data_dir_fills_the_default_folder(tmp_path, monkeypatch):
    server, files = mnist_server(tmp_path, monkeypatch)
    monkeypatch.setitem(download.MIRRORS, "mnist", (server.as_uri() + "/",))
    s = load_images("mnist", None, "download")
    assert len(s.x_train) == 20 and sorted(os.listdir(tmp_path / "svae-cache" / "data")) == sorted(files)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "celeba"])
def test_no_data_messages_speak_command_line_words(tmp_path, name):
    """Missing data says --data-dir and --download (never config keys or internal source names)."""
    messages = []
    for folder in (None, tmp_path / "nope"):
        with pytest.raises(DataError) as e:
            load_images(name, folder)
        messages.append(str(e.value))
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(DataError) as e:
        load_images(name, tmp_path)
    messages.append(str(e.value))
    assert "(the default data folder; $SVAE_DATA sets another)" in messages[0]
    for msg in messages:
        assert "--data-dir" in msg and ("--download" in msg) == (name != "celeba") and "\n" not in msg
        assert not any(word in msg for word in ("data.data_dir", "data.source", "source raw", "source npz", "shared"))


# ---------------------------------------------------------------- source raw: MNIST idx


@pytest.mark.parametrize("gz", [True, False])
def test_raw_mnist_idx(tmp_path, gz):
    arrays = mnist_arrays()
    write_idx(tmp_path, arrays, gz=gz)
    s = load_images("mnist", tmp_path)  # auto: no npz, the idx files are there
    assert s.source == "raw"
    check_layout(s, (1, 28, 28), 20, 10)
    for got, want in zip((s.x_train[:, 0], s.y_train, s.x_test[:, 0], s.y_test), arrays):
        assert np.array_equal(got.numpy(), want)
    assert s.y_train.dtype == torch.int64


def test_raw_mnist_torchvision_layout(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw", mnist_arrays())
    assert len(load_images("mnist", tmp_path, "raw").x_train) == 20


def test_auto_prefers_npz(tmp_path):
    write_idx(tmp_path, mnist_arrays(8, 4))
    write_npz(tmp_path / "mnist.npz", mnist_arrays())
    s = load_images("mnist", tmp_path)
    assert s.source == "npz" and len(s.x_train) == 20
    assert len(load_images("mnist", tmp_path, "raw").x_train) == 8


def test_idx_errors(tmp_path):
    arrays = mnist_arrays()
    paths = write_idx(tmp_path, arrays, gz=False)
    good = paths[0].read_bytes()

    def expect(path: Path, content: bytes, match: str):
        path.write_bytes(content)
        with pytest.raises(DataError, match=match) as e:
            load_images("mnist", tmp_path, "raw", cache=False)
        assert str(path) in str(e.value) and "\n" not in str(e.value)

    expect(paths[0], b"\x00\x00\x08\x01" + good[4:], "magic")  # a labels magic on the images file
    expect(paths[0], good[:-100], "data bytes")  # truncated
    expect(paths[0], good + b"\0" * 784, "data bytes")  # too long for the header
    expect(paths[0], b"\x00\x00\x08", "magic")
    paths[0].write_bytes(good)
    expect(paths[1], idx_bytes(arrays[1][:19]), "19 labels")  # count mismatch
    expect(paths[1], idx_bytes(np.full(20, 10, np.uint8)), "outside 0..9")
    paths[1].write_bytes(idx_bytes(arrays[1]))
    expect(paths[0], idx_bytes(RNG.integers(0, 256, (20, 28, 27), dtype=np.uint8)), "shape")
    paths[0].unlink()
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_images("mnist", tmp_path, "raw", cache=False)


def test_gzip_errors(tmp_path):
    paths = write_idx(tmp_path, mnist_arrays(), gz=True)
    good = paths[2].read_bytes()
    for content in (b"not gzip at all", good[: len(good) // 2]):  # bad header; truncated stream
        paths[2].write_bytes(content)
        with pytest.raises(DataError, match="gzip") as e:
            load_images("mnist", tmp_path, "raw", cache=False)
        assert str(paths[2]) in str(e.value)


# ---------------------------------------------------------------- source raw: CIFAR-10 pickles


def test_raw_cifar_batches_folder(tmp_path):
    arrays = cifar_arrays(20, 6)
    write_cifar_batches(tmp_path / "cifar-10-batches-py", arrays)
    s = load_images("cifar10", tmp_path)
    assert s.source == "raw"
    check_layout(s, (3, 32, 32), 20, 6)
    assert np.array_equal(s.x_train.numpy(), arrays[0].transpose(0, 3, 1, 2))
    assert np.array_equal(s.y_train.numpy(), arrays[1]) and np.array_equal(s.y_test.numpy(), arrays[3])


def test_raw_cifar_python2_pickles_directly_in_data_dir(tmp_path):
    arrays = cifar_arrays(20, 6)
    write_cifar_batches(tmp_path, arrays, dumps=py2_pickle)  # the byte form of the official files
    s = load_images("cifar10", tmp_path, "raw")
    assert np.array_equal(s.x_test.numpy(), arrays[2].transpose(0, 3, 1, 2))
    assert np.array_equal(s.y_train.numpy(), arrays[1])


def test_raw_cifar_tar_gz(tmp_path):
    arrays = cifar_arrays(20, 6)
    src = write_cifar_batches(tmp_path / "build" / "cifar-10-batches-py", arrays, dumps=py2_pickle)
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    s = load_images("cifar10", data)
    assert np.array_equal(s.x_train.numpy(), arrays[0].transpose(0, 3, 1, 2))
    assert np.array_equal(s.y_test.numpy(), arrays[3])


class _Evil:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec"])
def test_malicious_pickle_is_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "os.system":
        evil = _Evil(os.system, f"touch {marker}")
    else:
        evil = _Evil(exec, f"open({str(marker)!r}, 'w').close()")
    folder = write_cifar_batches(tmp_path / "cifar-10-batches-py", cifar_arrays(20, 6))
    batch = folder / "data_batch_3"
    batch.write_bytes(pickle.dumps({b"data": evil, b"labels": [0]}, protocol=2))
    with pytest.raises(DataError, match="refused to unpickle") as e:
        load_images("cifar10", tmp_path, "raw")
    assert str(batch) in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [
    (b"\x80\x04 this is not a pickle", "not a valid CIFAR-10 pickle"),
    (pickle.dumps([1, 2, 3]), "expected a dict"),
    (pickle.dumps({b"labels": [0, 1]}), "b'data'"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), "uint8"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "1 labels for 2 images"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "labels"),
])
def test_bad_cifar_batches(tmp_path, content, match):
    folder = write_cifar_batches(tmp_path / "cifar-10-batches-py", cifar_arrays(20, 6))
    (folder / "test_batch").write_bytes(content)
    with pytest.raises(DataError, match=match) as e:
        load_images("cifar10", tmp_path, "raw")
    assert str(folder / "test_batch") in str(e.value)


def test_cifar_missing_batch_and_bad_archive(tmp_path):
    folder = write_cifar_batches(tmp_path / "cifar-10-batches-py", cifar_arrays(20, 6))
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4"):
        load_images("cifar10", tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "cifar-10-python.tar.gz").write_bytes(gzip.compress(b"not a tar archive" * 100)[:-20])
    with pytest.raises(DataError, match="cifar-10-python.tar.gz: not a readable"):
        load_images("cifar10", other)
    with tarfile.open(other / "cifar-10-python.tar.gz", "w:gz") as tar:  # a valid archive without the batches
        info = tarfile.TarInfo("readme.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(DataError, match="archive lacks"):
        load_images("cifar10", other)


# ---------------------------------------------------------------- source raw: CelebA JPEGs


def test_raw_celeba_default_split_and_attributes(tmp_path):
    img_dir, names, attrs = write_celeba(tmp_path, n=12)
    s = load_images("celeba", tmp_path)
    assert s.source == "raw"
    check_layout(s, (3, 64, 64), 11, 1)  # 12 // 10 = 1 held out: the last image
    assert np.array_equal(s.x_test[0].numpy(), celeba_reference(img_dir / names[-1]))
    assert np.array_equal(s.x_train[0].numpy(), celeba_reference(img_dir / names[0]))
    assert s.y_train.dtype == torch.int8 and np.array_equal(s.y_test.numpy(), attrs[-1:])
    assert s.label_names == tuple(f"Attr_{j}" for j in range(40))


def test_raw_celeba_partition_file(tmp_path):
    partition = [0, 2, 1, 0, 2, 0, 0, 1]
    img_dir, names, attrs = write_celeba(tmp_path, n=8, partition=partition)
    s = load_images("celeba", tmp_path, "raw")
    test = np.array(partition) == 2
    check_layout(s, (3, 64, 64), 6, 2)  # val (1) counts as train
    assert np.array_equal(s.x_test[1].numpy(), celeba_reference(img_dir / names[4]))
    assert np.array_equal(s.y_train.numpy(), attrs[~test]) and np.array_equal(s.y_test.numpy(), attrs[test])


def test_raw_celeba_training_subset_falls_back_to_last_tenth(tmp_path):
    write_celeba(tmp_path, n=10, partition=[0] * 10, attr=False)
    s = load_images("celeba", tmp_path, "raw")
    assert len(s.x_train) == 9 and len(s.x_test) == 1 and s.y_train is None


def test_raw_celeba_half_size_copy_matches_box(tmp_path):
    img_dir, names, _ = write_celeba(tmp_path, n=3, size=(89, 109), attr=False)
    s = load_images("celeba", tmp_path, "raw")
    with Image.open(img_dir / names[0]) as im:
        want = im.convert("RGB").resize((64, 64), Image.BICUBIC, box=(9.5, 19.5, 79.5, 89.5))
    assert np.array_equal(s.x_train[0].numpy(), np.asarray(want).transpose(2, 0, 1))


def test_raw_celeba_cache_skips_decoding(tmp_path, monkeypatch):
    write_celeba(tmp_path / "data", n=5)
    first = load_images("celeba", tmp_path / "data")

    def boom(path):
        raise AssertionError("decoded again")

    monkeypatch.setattr(celeba_jpeg, "_celeba_image", boom)
    second = load_images("celeba", tmp_path / "data")
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)


def test_raw_celeba_errors(tmp_path):
    img_dir, names, _ = write_celeba(tmp_path, n=4, partition=[0, 0, 0, 2])
    bad = img_dir / names[1]
    good = bad.read_bytes()
    for content in (b"not a jpeg", good[: len(good) // 3]):  # unidentifiable; truncated
        bad.write_bytes(content)
        with pytest.raises(DataError, match="unreadable image") as e:
            load_images("celeba", tmp_path, cache=False)
        assert str(bad) in str(e.value)
    Image.new("RGB", (64, 64)).save(bad)
    with pytest.raises(DataError, match="178x218"):
        load_images("celeba", tmp_path, cache=False)
    Image.new("RGB", (178, 218)).save(bad)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n")
    with pytest.raises(DataError, match="list_eval_partition.txt: no entry for 000003.jpg"):
        load_images("celeba", tmp_path, cache=False)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0 extra\n")
    with pytest.raises(DataError, match="line 1"):
        load_images("celeba", tmp_path, cache=False)
    (tmp_path / "list_eval_partition.txt").unlink()
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_text(attr.read_text().replace(" 1", " 3", 1))
    with pytest.raises(DataError, match="list_attr_celeba.txt.*-1, \\+1"):
        load_images("celeba", tmp_path, cache=False)
    for p in img_dir.iterdir():
        p.unlink()
    with pytest.raises(DataError, match="no .jpg images"):
        load_images("celeba", tmp_path, cache=False)


# ---------------------------------------------------------------- npz errors


@pytest.mark.parametrize("case, match", [
    ("float", "dtype float32, expected uint8"),
    ("rgb_mnist", r"shape \(20, 28, 28, 3\)"),
    ("missing", "missing array.*y_test"),
    ("count", "9 labels for 10 images"),
    ("range", "outside 0..9"),
    ("float_labels", "integer labels"),
    ("empty", "no images"),
    ("object", "not a readable .npz"),
])
def test_npz_content_errors(tmp_path, case, match):
    x_tr, y_tr, x_te, y_te = mnist_arrays()
    over = {
        "float": dict(x_train=x_tr.astype(np.float32)),
        "rgb_mnist": dict(x_train=np.repeat(x_tr[..., None], 3, -1)),
        "missing": dict(y_test=None),
        "count": dict(y_test=y_te[:9]),
        "range": dict(y_train=y_tr + 10),
        "float_labels": dict(y_train=y_tr.astype(np.float64)),
        "empty": dict(x_test=x_te[:0], y_test=y_te[:0]),
        "object": dict(y_test=np.array([1, "a"], dtype=object)),  # a pickled member: allow_pickle=False refuses
    }[case]
    path = write_npz(tmp_path / "mnist.npz", (x_tr, y_tr, x_te, y_te), **over)
    with pytest.raises(DataError, match=match) as e:
        load_images("mnist", tmp_path, "npz")
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_npz_file_errors(tmp_path):
    path = write_npz(tmp_path / "cifar10.npz", cifar_arrays(), compressed=True)
    good = path.read_bytes()
    for content in (b"", b"definitely not a zip", good[: len(good) // 2], good[:-30]):
        path.write_bytes(content)
        with pytest.raises(DataError, match="not a readable .npz") as e:
            load_images("cifar10", tmp_path, "npz", cache=False)
        assert str(path) in str(e.value)
    # A damaged member (flipped bytes in the compressed data) is caught when that array is decoded.
    damaged = bytearray(good)
    damaged[len(good) // 2: len(good) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="cifar10.npz"):
        load_images("cifar10", tmp_path, "npz", cache=False)
    np.save(tmp_path / "single.npy", np.zeros(3))
    os.replace(tmp_path / "single.npy", path)
    with pytest.raises(DataError, match="single array"):
        load_images("cifar10", tmp_path, "npz", cache=False)
    celeba = tmp_path / "celeba64.npz"
    np.savez(celeba, x=RNG.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8), attr=np.zeros((5, 40), np.int8))
    with pytest.raises(DataError, match="attr"):
        load_images("celeba", tmp_path, "npz", cache=False)
    np.savez(celeba, x=RNG.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="at least 2"):
        load_images("celeba", tmp_path, "npz", cache=False)


# ---------------------------------------------------------------- folder, name and source errors


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder") as e:
        load_images("mnist", tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_images("cifar10", empty)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        load_images("mnist", tmp_path / "file.txt")
    with pytest.raises(DataError, match="mnist.npz: file not found"):
        load_images("mnist", tmp_path, "npz")
    with pytest.raises(DataError, match="unknown image dataset"):
        load_images("toy", tmp_path)
    with pytest.raises(DataError, match="unknown data source"):
        load_images("mnist", tmp_path, "ftp")


@pytest.mark.parametrize("name, raw_hint", [("mnist", "t10k-labels-idx1-ubyte"), ("cifar10", "cifar-10-python.tar.gz"),
                                            ("celeba", "img_align_celeba")])
def test_auto_lists_both_options(tmp_path, name, raw_hint):
    (tmp_path / "unrelated.txt").write_text("x")
    with pytest.raises(DataError) as e:
        load_images(name, tmp_path)
    msg = str(e.value)
    assert images.NPZ_FILES[name] in msg and raw_hint in msg and str(tmp_path) in msg
    assert ("download" in msg) == (name != "celeba")


# ---------------------------------------------------------------- source download


class FakeOpener:
    """Serves bytes by file name, or raises: the network as tests see it."""

    def __init__(self, files: dict[str, bytes] | None = None, fail: Exception | None = None):
        self.files, self.fail, self.urls = files or {}, fail, []

    def __call__(self, url: str, timeout: float):
        self.urls.append(url)
        if self.fail is not None:
            raise self.fail
        return io.BytesIO(self.files[url.rsplit("/", 1)[1]])


def mnist_server(tmp_path: Path, monkeypatch) -> tuple[Path, dict[str, bytes]]:
    """Tiny gzipped idx files in a folder, with download.CHECKSUMS pointed at their md5s."""
    paths = write_idx(tmp_path / "server", mnist_arrays())
    files = {p.name: p.read_bytes() for p in paths}
    monkeypatch.setitem(download.CHECKSUMS, "mnist", {k: hashlib.md5(v).hexdigest() for k, v in files.items()})
    return tmp_path / "server", files


def test_download_from_file_url(tmp_path, monkeypatch):
    server, files = mnist_server(tmp_path, monkeypatch)
    data = tmp_path / "data"
    paths = download.fetch("mnist", data, mirrors=[server.as_uri() + "/"])  # real urllib, no network
    assert sorted(p.name for p in paths) == sorted(files) and sorted(os.listdir(data)) == sorted(files)
    s = load_images("mnist", data, "raw")
    assert len(s.x_train) == 20 and len(s.x_test) == 10


def test_download_source_end_to_end_and_no_refetch(tmp_path, monkeypatch):
    _, files = mnist_server(tmp_path, monkeypatch)
    opener = FakeOpener(files)
    s = load_images("mnist", tmp_path / "new" / "data", "download", opener=opener)  # the folder is created
    assert len(s.x_train) == 20 and len(opener.urls) == 4
    assert opener.urls[0].startswith(download.MIRRORS["mnist"][0])
    # Verified files already there: no network at all the second time.
    s = load_images("mnist", tmp_path / "new" / "data", "download", opener=FakeOpener(fail=AssertionError("net")))
    assert len(s.x_test) == 10


def test_download_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    _, files = mnist_server(tmp_path, monkeypatch)
    name = "train-labels-idx1-ubyte.gz"
    files[name] = files[name][:-1] + b"X"
    data = tmp_path / "data"
    with pytest.raises(DataError, match="checksum") as e:
        download.fetch("mnist", data, opener=FakeOpener(files))
    assert str(data / name) in str(e.value)
    assert name not in os.listdir(data) and not [p for p in os.listdir(data) if p.endswith(".part")]


def test_download_replaces_a_damaged_file(tmp_path, monkeypatch):
    _, files = mnist_server(tmp_path, monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    (data / "t10k-images-idx3-ubyte.gz").write_bytes(b"half a download")
    opener = FakeOpener(files)
    download.fetch("mnist", data, opener=opener)
    assert (data / "t10k-images-idx3-ubyte.gz").read_bytes() == files["t10k-images-idx3-ubyte.gz"]


def test_download_falls_back_to_next_mirror(tmp_path, monkeypatch):
    server, files = mnist_server(tmp_path, monkeypatch)
    mirrors = [(tmp_path / "missing-mirror").as_uri() + "/", server.as_uri() + "/"]
    download.fetch("mnist", tmp_path / "data", mirrors=mirrors)
    assert sorted(os.listdir(tmp_path / "data")) == sorted(files)


def test_download_offline_says_where_to_put_files(tmp_path):
    data = tmp_path / "data"
    opener = FakeOpener(fail=urllib.error.URLError("Temporary failure in name resolution"))
    with pytest.raises(DataError) as e:
        load_images("cifar10", data, "download", opener=opener)
    msg = str(e.value)
    assert "cifar-10-python.tar.gz" in msg and str(data) in msg and "cifar10.npz" in msg and "offline" in msg
    assert "--data-dir" in msg and "source" not in msg and "shared" not in msg
    assert "\n" not in msg and os.listdir(data) == []


def test_download_celeba_explains_manual_steps(tmp_path):
    with pytest.raises(DataError, match="img_align_celeba") as e:
        load_images("celeba", tmp_path / "data", "download", opener=FakeOpener(fail=AssertionError("net")))
    assert "--data-dir" in str(e.value) and "source" not in str(e.value)


# ---------------------------------------------------------------- the real shared MNIST (slow)


@pytest.mark.slow
def test_real_mnist_npz():
    folder = shared_data_dir()
    if not (folder / "mnist.npz").is_file():
        pytest.skip(f"no mnist.npz in {folder} (set SVAE_SHARED_DATA to the folder holding it)")
    s = load_images("mnist", folder, "npz")
    check_layout(s, (1, 28, 28), 60000, 10000)
    assert torch.bincount(s.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(s.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(s.x_train.float().mean().item() / 255 - 0.1307) < 1e-3


def test_data_limit_keeps_the_first_training_images_and_their_labels_and_the_whole_test_split(tmp_path):
    """data.limit (quick runs on a slice of a real dataset): the first N training images, labels alike."""
    arrays = mnist_arrays()
    write_npz(tmp_path / "mnist.npz", arrays)
    full = load_dataset(DataConfig("mnist", data_dir=str(tmp_path)))
    part = load_dataset(DataConfig("mnist", data_dir=str(tmp_path), limit=7))
    assert len(full.x_train) == 20 and len(part.x_train) == 7 and len(part.y_train) == 7
    assert torch.equal(part.x_train, full.x_train[:7]) and torch.equal(part.y_train, full.y_train[:7])
    assert torch.equal(part.x_test, full.x_test)
