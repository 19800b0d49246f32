"""write_atomic: every file svae writes goes to a temporary file in its folder, is fsynced, then renamed."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .errors import SvaeError


class WriteError(SvaeError, OSError):
    """A file could not be written (a full disk, a quota, no permission); the message names the file. Also an
    OSError, so callers that tolerate a failed write (the data cache) still catch it."""


class _Sink:
    """The file handed to the writer. It remembers the OSError of a failed write: torch.save reports one as a
    RuntimeError ('unexpected pos ...') that has lost the cause, e.g. 'No space left on device'."""

    def __init__(self, f: BinaryIO):
        self.f, self.error = f, None

    def write(self, b: Any) -> int:
        try:
            return self.f.write(b)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name: str) -> Any:  # flush, tell, seek: what numpy's and zipfile's writers ask for
        return getattr(self.f, name)


def write_atomic(path: str | Path, write: Callable[[Any], None], what: str = "") -> Path:
    """Call write(f) on a temporary file beside path, fsync it and rename it over path.

    Readers (and a run resumed after a kill) see the old file or the new one, never half of one. When the file
    system fails (in write, fsync or rename) the temporary file is removed, the old file is untouched, and
    WriteError says "could not write {what} {path}: {cause}". Other exceptions of write() (a failed download,
    a Ctrl-C) propagate unchanged, also after removing the temporary file."""
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise WriteError(f"could not write {label}: {_reason(e)}") from None
    sink, writing = None, True
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f)
            write(sink)
            writing = False
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the mode open() would
        os.replace(tmp, path)  # atomic on POSIX
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        cause = sink.error if sink is not None and sink.error is not None else None
        if cause is None and isinstance(e, OSError) and not writing:
            cause = e
        if cause is None or not isinstance(e, Exception):
            raise
        raise WriteError(f"could not write {label}: {_reason(cause)}") from None
    fsync_dir(path.parent)
    return path


def write_text(path: str | Path, text: str, what: str = "") -> Path:
    return write_atomic(path, lambda f: f.write(text.encode()), what)


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in folder durable (best effort: some file systems cannot fsync a folder)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; set back at once, at import (before any thread runs)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
