"""Atomic file output: write to a temp file in the same folder, fsync, then rename over the target.

A reader (or a run killed with kill -9) never sees a half-written output file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are shared files
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask is process-wide and not thread-safe


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_write(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)


def atomic_replace_file(tmp_path: str | Path, path: str | Path) -> None:
    """Move a fully written temp file (e.g. written by a library) into place atomically."""
    os.replace(tmp_path, path)
    _fsync_dir(Path(path).parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def keep_only_photos(folder: str | Path, keep: set[str]) -> None:
    """Remove the ``*.jpg`` files of ``folder`` whose names are not in ``keep`` (a photo folder holding exactly the
    photos of the rows written beside it)."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob("*.jpg"):
            if p.name not in keep:
                p.unlink(missing_ok=True)


def safe_child(out_dir: str | Path, name: str) -> Path:
    """Path for ``name`` inside ``out_dir`` that can never escape it (no ``..``, no absolute paths, no separators)."""
    base = Path(out_dir).resolve()
    clean = "".join(c if (c.isalnum() or c in "-_.() ") else "_" for c in Path(str(name).replace("\\", "/")).name)
    clean = clean.lstrip(".") or "file"
    p = (base / clean).resolve()
    if p.parent != base:
        raise ValueError(f"refusing path outside {base}: {name!r}")
    return p


_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}  # flock on a file system without locks


class FileLock:
    """An exclusive lock held through a ``with`` block: ``flock`` on ``path`` (created with its folder), released by
    the OS even when the holder is killed with kill -9, so a stale lock never blocks anyone.

    When another process holds it, ``busy(pid)`` is called first (``pid``: the holder's, as it wrote it into the
    file, or None): it returns to wait for the holder, or raises to refuse. Used for one run at a time per OUT
    folder (``pipeline.OutLock``: waits) and one training per run folder (``train.train``: refuses).

    On a file system that cannot lock (ENOLCK, EOPNOTSUPP: some SMB/NFS mounts without a lock service) the block
    runs unlocked, with one note on stderr naming the folder."""

    def __init__(self, path: str | Path, busy=None):
        self.path = Path(path)
        self.busy = busy

    def holder(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def __enter__(self) -> "FileLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        self._locked = True
        try:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.busy is not None:
                    self.busy(self.holder())
                fcntl.flock(self._fh, fcntl.LOCK_EX)
            except OSError as e:
                if e.errno not in _NO_LOCKS:
                    raise
                import sys

                self._locked = False
                print(f"note: {self.path.parent}: this file system cannot lock files ({e.strerror or e}); two "
                      "commands into this folder at once are not kept apart", file=sys.stderr)
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(f"{os.getpid()}\n")
            self._fh.flush()
        except BaseException:
            self._fh.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._locked:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
