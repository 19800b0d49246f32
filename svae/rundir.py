"""Run directories as svae owns them: which folders may be one, svae's own files in them, and a lock per folder."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Iterator

from . import __version__
from .atomic import write_text
from .errors import SvaeError

try:
    import fcntl
except ImportError:  # not POSIX: the lock falls back to O_EXCL and the owner's pid
    fcntl = None

MARKER = ".svae-run"  # written before anything else: only a folder carrying it is svae's to clear
LOCK = ".svae-lock"  # held (flock) by the one process that writes the run; holds its pid
# Every name svae writes into a run directory: --force removes these and nothing else, and a folder without
# the marker that holds one of them is never written into (it may be a user's config.yaml or samples.png).
OWN_FILES = ("config.yaml", "metrics.jsonl", "eval.json", "toy.png", "samples.png", "reconstructions.png", "curves.png")
# svae's own folders in a run directory and the names it writes there (.tmp: a killed writer's)
OWN_FOLDERS = {"checkpoints": re.compile(r"last\.pt|step_\d+\.pt|\..+\.tmp"),
               "tensorboard": re.compile(r"events\.out\.tfevents\..+")}
OWN_TEMPORARY = re.compile(r"\.(" + "|".join(map(re.escape, OWN_FILES)) + r")\..+\.tmp")


class RunError(SvaeError, RuntimeError):
    """A run directory cannot be used as asked; the message says why and what to do."""


def check_out(out: str | Path) -> Path:
    """--out as a path, refused when it names no folder of its own: empty, the root, home, the current folder."""
    if not str(out).strip():
        raise RunError("--out is empty: name a folder for the run, e.g. --out runs/toy")
    path = Path(out).expanduser()
    where = path.resolve()
    if where == Path(where.anchor):
        raise RunError(f"--out {out}: is the root of the file system; name a folder for the run, e.g. runs/toy")
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError):  # no home folder known: nothing to compare with
        home = None
    if where == home:
        raise RunError(f"--out {out}: is your home folder; name a folder for the run, e.g. ~/runs/toy")
    if where == Path.cwd().resolve():
        raise RunError(f"--out {out}: is the current folder; name a folder for the run, e.g. runs/toy")
    return path


def own_files(folder: Path) -> list[Path]:
    """The files in folder that carry names svae writes (whoever wrote them), checkpoints last."""
    found = [folder / n for n in OWN_FILES if (folder / n).is_file()]
    found += [p for p in folder.glob(".*.tmp") if OWN_TEMPORARY.fullmatch(p.name)]
    for name, own in OWN_FOLDERS.items():
        if (folder / name).is_dir():
            found += sorted(p for p in (folder / name).iterdir() if own.fullmatch(p.name) and p.is_file())
    return found


def has_checkpoint(folder: Path) -> bool:
    return any(p.parent.name == "checkpoints" and p.suffix == ".pt" for p in own_files(folder))


def is_marked(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def mark(folder: Path) -> None:
    """Claim folder as an svae run directory (before svae writes anything else into it)."""
    if not is_marked(folder):
        write_text(folder / MARKER, json.dumps({"svae": __version__, "created": time.time()}) + "\n", "marker")


def clear(folder: Path, marker: bool = False) -> None:
    """Remove svae's own files (and the marker if asked); a user's files beside them stay, and so do
    checkpoints/ and tensorboard/ when they hold anything else."""
    for p in own_files(folder) + ([folder / MARKER] if marker else []):
        p.unlink(missing_ok=True)
    for name in OWN_FOLDERS:
        with contextlib.suppress(OSError):  # not empty: it holds the user's files
            (folder / name).rmdir()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class Lock:
    """One writer per run directory: an flock on DIR/.svae-lock, which holds the owner's pid for the message.

    The kernel drops the lock when its process dies (even by SIGKILL), so a lock file left by a dead process
    is stale by construction and is taken over. Without fcntl (not POSIX), the file is created with O_EXCL
    and a leftover one is stale when the pid in it is no longer running."""

    def __init__(self, folder: Path):
        self.path, self.fd = Path(folder) / LOCK, None

    def acquire(self) -> "Lock":
        for _ in range(10):  # retried only when the file changed under us (its owner removed it meanwhile)
            fd = self._open()
            if fd is None:
                continue
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._busy(fd)
                # the owner unlinks the file when it is done: a lock on an unlinked file would exclude no one
                if not self._same_file(fd):
                    os.close(fd)
                    continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            return self
        raise RunError(f"{self.path}: could not take the lock (it keeps changing); is another svae starting here?")

    def _open(self) -> int | None:
        if fcntl is not None:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid = _read_pid(self.path)
            if pid is not None and pid != os.getpid() and _pid_alive(pid):
                self._busy(None, pid)
            self.path.unlink(missing_ok=True)  # stale: its process is gone
            return None

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _busy(self, fd: int | None, pid: int | None = None) -> None:
        if fd is not None:
            pid = _read_pid(self.path)
            os.close(fd)
        who = f"svae process {pid}" if pid else "another svae process"
        raise RunError(f"{self.path.parent}: in use by {who} (lock {self.path}); wait for it to finish, stop it, "
                       "or use another --out")

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: nobody can take it in between
        os.close(self.fd)
        self.fd = None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def locked(folder: Path, create: bool = True) -> Iterator[Path]:
    """Hold folder's lock within `with`. If it fails, what svae wrote into folder is removed again unless a
    checkpoint exists (nothing is lost; a rerun starts afresh), and so are the folders this call created."""
    created = []
    if create:
        for p in [folder, *folder.parents][::-1]:
            if not p.exists():
                try:
                    p.mkdir()
                except FileExistsError:  # made meanwhile by someone else: not ours to remove
                    continue
                except OSError as e:
                    _remove_empty(created)
                    raise RunError(f"{p}: cannot create the run directory ({e.strerror or e})") from None
                created.append(p)
    lock = Lock(folder)
    try:
        lock.acquire()
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield folder
    except BaseException:
        if is_marked(folder) and not has_checkpoint(folder):
            clear(folder, marker=True)
        lock.release()
        _remove_empty(created)
        raise
    lock.release()


def _remove_empty(folders: list[Path]) -> None:
    for p in reversed(folders):
        try:
            p.rmdir()
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                print(f"svae: warning: could not remove {p}: {e.strerror}", file=sys.stderr)
            return
