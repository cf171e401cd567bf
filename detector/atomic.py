"""Atomic file output: write to a temp file in the same folder, fsync, then rename over the target.

A reader (or a run killed with kill -9) never sees a half-written output file.

Portable to Windows: no ``os.fchmod`` there (the temp file keeps its default permissions), ``FileLock`` locks with
``msvcrt.locking`` where there is no ``fcntl``, and a target another program holds open (Excel keeps its file
locked; Windows then refuses the rename with PermissionError, WinError 5 or 32) is ``OutputInUseError``: one line
naming the file, exit 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

from .errors import PatrolError


class OutputInUseError(PatrolError):
    """An output file could not be replaced or removed: on Windows, because another program (Excel, a browser, a
    photo viewer) holds it open; elsewhere, because its folder is not writable. Exit 2 (a usage situation: close it
    and run again). ``verb`` is "replace" or "remove", ``program`` who probably holds it (``held_by``)."""

    exit_code = 2

    def __init__(self, reason: str, path: str | Path | None = None, field: str | None = None,
                 verb: str = "replace", program: str = ""):
        super().__init__(reason, path, field)
        self.verb, self.program = verb, program


_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
#: a Shapefile's files and the indexes GIS keep beside it (``gis._SHP_SIDECARS``, ``gis._STALE_INDEXES``)
_SHAPEFILE_SUFFIXES = {".shp", ".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".fix", ".atx", ".ain", ".aih"}


def held_by(path: str | Path) -> str:
    """Who probably holds ``path`` open on Windows, for the message: a photo viewer for an image, else Excel or a
    browser (QGIS for a GeoPackage)."""
    suffix = Path(path).suffix.lower()
    if suffix in _PHOTO_SUFFIXES:
        return "a photo viewer"
    if suffix == ".gpkg":
        return "QGIS, Excel"
    if suffix in _SHAPEFILE_SUFFIXES:
        return "QGIS, ArcGIS, Excel"
    if suffix in (".yaml", ".yml", ".json"):
        return "an editor"
    return "Excel, a browser"


def in_use(path: str | Path, err: OSError, verb: str = "replace") -> OutputInUseError:
    """The one-line error for a file Windows would not let us ``verb`` (replace or remove)."""
    program = held_by(path)
    what = "photo" if Path(path).suffix.lower() in _PHOTO_SUFFIXES else "file"
    old = "old " if verb == "remove" else ""
    reason = err.strerror or str(err)
    return OutputInUseError(f"cannot {verb} this {old}{what} ({reason}): it is probably open in {program} or another "
                            "program; close it and run the same command again", path, verb=verb, program=program)


#: waits between tries of a refused rename: on Windows a virus scanner or the search indexer holds a fresh file for
#: a moment, which a second try outlasts; Excel holds it until closed, and the last try ends in OutputInUseError
_REPLACE_RETRY_S = (0.05, 0.1, 0.25, 0.5)


def replace_output(tmp: str | Path, path: str | Path) -> None:
    """``os.replace(tmp, path)``; a target that stays locked is OutputInUseError naming it (``tmp`` is left for the
    caller to remove)."""
    _move(tmp, path, path)


def _move(src: str | Path, dst: str | Path, named: str | Path, verb: str = "replace") -> None:
    """``os.replace(src, dst)``, tried again while refused for a moment; OutputInUseError naming ``named`` (the file
    another program holds) when it stays refused."""
    for wait in (*_REPLACE_RETRY_S, None):
        try:
            os.replace(src, dst)
            return
        except PermissionError as e:
            if wait is None:
                raise in_use(named, e, verb) from None
            time.sleep(wait)


def replace_together(pairs: list[tuple[Path, Path]], remove: list[Path] = (), what: str = "") -> None:
    """Move each fully written ``src`` onto its ``dst`` as one change, all or nothing (a Shapefile's .shp .shx .dbf
    .prj .cpg: a new .shp beside an old .dbf would show other damages' attributes at the points). Windows refuses to
    rename a file another program holds open (QGIS holds a layer's .dbf, Excel a .dbf it shows), so every existing
    ``dst`` and every existing file of ``remove`` (stale indexes) is first moved aside into a hidden folder beside
    them; one that cannot be (after the retries of a moment's refusal) puts back those moved already and raises
    OutputInUseError naming it: no target changed. Then the new files are moved in (the targets are gone, so
    nothing holds them) and the old ones deleted. Should a move in fail all the same, the new files placed are taken
    out and the old put back. A reader opening the set during the switch finds files missing, never a mixed set.
    ``what``: the set's name for the messages ("reg.shp")."""
    pairs = [(Path(s), Path(d)) for s, d in pairs]
    olds = [d for _, d in pairs] + [Path(r) for r in remove]
    if not olds:
        return
    folder = olds[0].parent
    aside = Path(tempfile.mkdtemp(prefix=f".{olds[0].stem}.old.", dir=folder))
    moved: list[tuple[Path, Path]] = []  # (target, where it is now)
    placed: list[Path] = []

    def put_back() -> list[str]:
        lost = []
        for p in placed:
            with contextlib.suppress(OSError):
                os.unlink(p)
        for target, old in reversed(moved):
            try:
                _move(old, target, target)
            except (OSError, PatrolError):
                lost.append(f"{target.name} as {old}")
        return lost

    def undo(e: BaseException, name: Path, doing: str) -> None:
        """Put the old set back after ``e``; raise what says so (the original error when all went back)."""
        lost = put_back()
        if lost:
            why = e.reason if isinstance(e, PatrolError) else (getattr(e, "strerror", None) or str(e))
            raise PatrolError(f"could not {doing} ({why}) nor put the old files back: they are kept as "
                              f"{', '.join(lost)}", name) from None
        if isinstance(e, OutputInUseError):
            raise OutputInUseError(f"{e.reason} (none of {what or name.name}'s files was changed)", name,
                                   verb=e.verb, program=e.program) from None
        raise e

    try:
        for k, target in enumerate(olds):
            if not os.path.lexists(target):
                continue
            old = aside / f"{k}{target.suffix}"
            try:
                _move(target, old, target, "replace" if k < len(pairs) else "remove")
            except BaseException as e:  # OutputInUseError (held open), another OSError, Ctrl-C
                undo(e, target, f"move {target.name} aside")
            moved.append((target, old))
        for src, dst in pairs:
            try:
                _move(src, dst, dst)
            except BaseException as e:
                undo(e, dst, f"write {dst.name}")
            placed.append(dst)
    except BaseException:
        if not any(aside.iterdir()):
            shutil.rmtree(aside, ignore_errors=True)
        raise
    _fsync_dir(folder)
    shutil.rmtree(aside, ignore_errors=True)  # the old files (a deleted file still open elsewhere goes when closed)


def remove_output(path: str | Path) -> None:
    """``os.unlink(path)`` (gone already is fine); a file that stays locked (a photo viewer holds it: Windows refuses
    to delete an open file) is OutputInUseError naming it."""
    for wait in (*_REPLACE_RETRY_S, None):
        try:
            os.unlink(path)
            return
        except FileNotFoundError:
            return
        except PermissionError as e:
            if wait is None:
                raise in_use(path, e, "remove") from None
            time.sleep(wait)


def _same_bytes(path: Path, tmp: str) -> bool:
    """Does ``path`` hold exactly what ``tmp`` holds? (read only when the sizes agree)"""
    try:
        if os.path.getsize(path) != os.path.getsize(tmp):
            return False
        with open(path, "rb") as a, open(tmp, "rb") as b:
            while True:
                x, y = a.read(1 << 20), b.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None,
                 durable: bool = True) -> Iterator[IO]:
    """Write ``path`` through a temp file renamed over it: readers see the old file or the new one, never half of
    one. ``durable``: fsync the file and its folder before and after the rename (False: the caller makes a batch
    durable at once, :func:`sync_batch`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # not on Windows, where mkstemp's file is not private anyway
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are shared files
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if _same_bytes(path, tmp):
            # unchanged (a rerun): nothing to replace, so a file open in Excel or a viewer meanwhile is no error
            os.unlink(tmp)
            return
        replace_output(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    if not hasattr(os, "fchmod"):
        return 0
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask is process-wide and not thread-safe


class BusyOutputs:
    """Writes several independent output files: one another program holds open (``OutputInUseError``) does not
    stop the others. ``check()`` afterwards raises one error naming every file that could not be replaced or
    removed. ``add`` may be called from several threads."""

    MAX_NAMED = 5  # files named in the one line; the rest are counted

    def __init__(self):
        self.errors: list[OutputInUseError] = []

    def add(self, e: OutputInUseError) -> None:
        self.errors.append(e)

    @property
    def paths(self) -> set[str]:
        """The files that could not be replaced or removed (each still holds what it held before)."""
        return {e.path for e in self.errors if e.path}

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        try:
            yield
        except OutputInUseError as e:
            self.add(e)

    def check(self) -> None:
        if not self.errors:
            return
        errors = list({e.path: e for e in self.errors}.values())
        e = errors[0]
        if len(errors) == 1:
            raise OutputInUseError(f"{e.reason} (the other outputs are written)", e.path, verb=e.verb,
                                   program=e.program)
        verbs = " or ".join(v for v in ("replace", "remove") if any(x.verb == v for x in errors))
        programs = []
        for x in errors:
            for p in (x.program or held_by(x.path)).split(", "):
                if p not in programs:
                    programs.append(p)
        names = [x.path for x in errors[:self.MAX_NAMED]]
        more = f" and {len(errors) - len(names)} more" if len(errors) > len(names) else ""
        raise OutputInUseError(f"cannot {verbs} these files: they are probably open in {', '.join(programs)} or "
                               "another program; close them and run the same command again (the other outputs are "
                               "written)", ", ".join(names) + more)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    with atomic_write(path, "wb", durable=durable) as fh:
        fh.write(data)


def can_sync_batch() -> bool:
    """Whether :func:`sync_batch` can make a batch of files durable at once (POSIX ``sync()``; Windows has none:
    there each file keeps its own fsync)."""
    return hasattr(os, "sync")


def sync_batch() -> None:
    """Make the files written with ``durable=False`` durable at once: one ``sync()`` of the file systems (POSIX)
    where an fsync of each file and its folder costs a journal commit each (2,000 photos of an export: 14.8 s
    against 0.4 s on ext4). Only where :func:`can_sync_batch`."""
    os.sync()


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_write(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)


def atomic_replace_file(tmp_path: str | Path, path: str | Path) -> None:
    """Move a fully written temp file (e.g. written by a library) into place atomically."""
    replace_output(tmp_path, path)
    _fsync_dir(Path(path).parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def holds(path: str | Path, data: bytes) -> bool:
    """Does ``path`` hold exactly ``data``? (read only when the size agrees; False when it cannot be read)"""
    path = Path(path)
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def write_photo(path: str | Path, data: bytes, durable: bool = True) -> bool:
    """A photo (a crop, a video frame) written atomically, unless ``path`` holds these bytes already: a photo open in
    a viewer (Windows refuses to replace it) is no error when it would not change. True when it was written.
    ``durable=False`` for a batch made durable at once by :func:`sync_batch`."""
    if holds(path, data):
        return False
    atomic_write_bytes(path, data, durable=durable)
    return True


def keep_only_photos(folder: str | Path, keep: set[str], busy: BusyOutputs | None = None, ours=None) -> None:
    """Remove the ``*.jpg`` files of ``folder`` whose names are not in ``keep`` (a photo folder holding exactly the
    photos of the rows written beside it). One held open (a photo viewer, on Windows) stays: every other is
    removed, then OutputInUseError names it (with ``busy``, it is noted there instead). ``ours`` (a compiled
    pattern): only names it matches whole are removed, any other file (one a user put there) stays."""
    folder = Path(folder)
    own = busy is None
    busy = BusyOutputs() if own else busy
    if folder.is_dir():
        for p in sorted(folder.glob("*.jpg")):
            if p.name not in keep and (ours is None or ours.fullmatch(p.name)):
                with busy.write():
                    remove_output(p)
    if own:
        busy.check()


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
#: the byte ``msvcrt.locking`` locks on Windows: far past the pid written at the start, so that ``holder()`` can read
#: the pid while the lock is held (Windows byte-range locks are mandatory: a locked byte cannot be read by others)
_WIN_LOCK_BYTE = 1 << 30
_WIN_WAIT_S = 0.2  # msvcrt has no blocking lock that waits longer than 10 s: poll


def _msvcrt():
    import msvcrt  # Windows only (a function of its own: the tests put a simulation here)

    return msvcrt


def _lock_api():
    """("flock", fcntl) on Linux and macOS, ("msvcrt", msvcrt) on Windows, (None, None) where neither exists."""
    try:
        import fcntl

        return "flock", fcntl
    except ImportError:
        pass
    try:
        return "msvcrt", _msvcrt()
    except ImportError:
        return None, None


def _try_lock(kind: str, api, fh) -> bool:
    """Take the lock without waiting: True, or False when another process holds it. OSError: cannot lock here."""
    if kind == "flock":
        try:
            api.flock(fh, api.LOCK_EX | api.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    fd = fh.fileno()
    os.lseek(fd, _WIN_LOCK_BYTE, os.SEEK_SET)  # msvcrt.locking locks from the file position
    try:
        api.locking(fd, api.LK_NBLCK, 1)
    except OSError as e:
        if e.errno in (errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK), errno.EDEADLK):
            return False  # "locking violation": held by another process
        raise
    os.lseek(fd, 0, os.SEEK_SET)  # back where the file object believes it is (it caches the position)
    return True


class FileLock:
    """An exclusive lock held through a ``with`` block: ``flock`` on ``path`` (created with its folder), released by
    the OS even when the holder is killed with kill -9, so a stale lock never blocks anyone. On Windows (no
    ``fcntl``) ``msvcrt.locking`` on one byte of the file, also released by the OS when the holder dies.

    When another process holds it, ``busy(pid)`` is called first (``pid``: the holder's, as it wrote it into the
    file, or None): it returns to wait for the holder, or raises to refuse. Used for one run at a time per OUT
    folder (``pipeline.OutLock``: waits) and one training per run folder (``train.train``: refuses).

    On a file system that cannot lock (ENOLCK, EOPNOTSUPP: some SMB/NFS mounts without a lock service), or a Python
    with neither ``fcntl`` nor ``msvcrt``, the block runs unlocked, with one note on stderr naming the folder."""

    def __init__(self, path: str | Path, busy=None):
        self.path = Path(path)
        self.busy = busy

    def holder(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _unlocked(self, why: str) -> None:
        import sys

        self._locked = False
        print(f"note: {self.path.parent}: this file system cannot lock files ({why}); two "
              "commands into this folder at once are not kept apart", file=sys.stderr)

    def __enter__(self) -> "FileLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        self._kind, self._api = _lock_api()
        self._locked = True
        try:
            if self._kind is None:
                self._unlocked("no fcntl or msvcrt in this Python")
            else:
                try:
                    if not _try_lock(self._kind, self._api, self._fh):
                        if self.busy is not None:
                            self.busy(self.holder())
                        if self._kind == "flock":
                            self._api.flock(self._fh, self._api.LOCK_EX)
                        else:
                            while not _try_lock(self._kind, self._api, self._fh):
                                time.sleep(_WIN_WAIT_S)
                except OSError as e:
                    if e.errno not in _NO_LOCKS:
                        raise
                    self._unlocked(e.strerror or str(e))
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(f"{os.getpid()}\n")
            self._fh.flush()
        except BaseException:
            self._fh.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._locked and self._kind == "flock":
                self._api.flock(self._fh, self._api.LOCK_UN)
            elif self._locked:
                self._fh.flush()
                os.lseek(self._fh.fileno(), _WIN_LOCK_BYTE, os.SEEK_SET)
                with contextlib.suppress(OSError):  # closing the file releases it too
                    self._api.locking(self._fh.fileno(), self._api.LK_UNLCK, 1)
        finally:
            self._fh.close()


def own_folder(folder: str | Path, marker: str, option: str, earlier: str) -> bool:
    """An output folder a command fills with many files (``patrol eval --errors``, ``patrol label-set --out``):
    True where it is an earlier one of that command's (``marker``, the csv it writes last, is there), False where it
    is new or empty; a file, an unreadable folder or a folder of other files is a UsageError (exit 2) naming
    ``option``, so that nobody's folder is written into. ``earlier`` names the command in the message."""
    from .errors import UsageError

    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise UsageError("is a file, not a folder", d, option)
    if not d.is_dir():
        return False
    if (d / marker).is_file():
        return True
    try:
        other = next(iter(os.scandir(d)), None)
    except OSError as e:
        raise UsageError(f"cannot read: {e.strerror or e}", d, option) from None
    if other is not None:
        raise UsageError(f"holds other files (e.g. {other.name}) and no {marker} of an earlier {earlier}: give a new "
                         "or empty folder", d, option)
    return False
