"""What a Windows PC does differently, simulated on Linux for the tests (we cannot run Windows here).

``windows()`` makes this process behave like CPython on Windows where patrol depends on it:

* no ``os.fchmod`` (absent on Windows);
* ``import fcntl`` fails; ``detector.atomic`` gets ``FakeMsvcrt`` for msvcrt: ``locking(fd, mode, nbytes)`` on the
  bytes from the file position, like the real one, failing with EACCES when another process holds them (built on
  POSIX byte-range locks, which are per process, as Windows' are per handle: tests take the lock in two processes).
  Not as ``sys.modules["msvcrt"]``: the standard library (subprocess, …) takes an importable msvcrt for Windows;
* a file held open by another program (Excel, a photo viewer): its name, or the end of its path
  (``crops/C-0003.jpg``), in ``PATROL_TEST_OPEN_IN_EXCEL`` (comma-separated). Windows then refuses to replace it
  (``os.replace``/``os.rename`` onto it or from it), to delete it (``os.unlink``/``os.remove``, ``Path.unlink``) and
  to open it for writing, each with PermissionError 13, "The process cannot access the file because it is being
  used by another process" (WinError 32); reading it works (Excel and viewers share it for reading). ``held_open``
  does the same inside a test process, through pytest's monkeypatch.

Run the CLI so: ``python -c "import winsim; winsim.windows(); import cli; cli.main()" ARGS`` with tests/ on
PYTHONPATH (``cli_argv``).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


class FakeMsvcrt:
    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self, fcntl_module):
        self._fcntl = fcntl_module

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        f = self._fcntl
        start = os.lseek(fd, 0, os.SEEK_CUR)
        if mode == self.LK_UNLCK:
            f.lockf(fd, f.LOCK_UN, nbytes, start, os.SEEK_SET)
            return
        try:
            f.lockf(fd, f.LOCK_EX | f.LOCK_NB, nbytes, start, os.SEEK_SET)
        except (BlockingIOError, PermissionError):
            raise PermissionError(errno.EACCES, "Permission denied") from None


def windows(open_in_excel: str | None = None) -> None:
    import fcntl

    if hasattr(os, "fchmod"):
        del os.fchmod
    from detector import atomic

    fake = FakeMsvcrt(fcntl)
    atomic._msvcrt = lambda: fake
    sys.modules["fcntl"] = None  # type: ignore[assignment]  # import fcntl -> ImportError
    held = [n for n in (open_in_excel or os.environ.get("PATROL_TEST_OPEN_IN_EXCEL", "")).split(",") if n]
    if held:
        _hold(held, setattr)


def held_open(monkeypatch, *names: str) -> None:
    """``names`` (file names or path ends) held open by another program, as ``windows`` does, for this test."""
    _hold(list(names), monkeypatch.setattr)


def _is_held(path, held: list[str]) -> bool:
    if isinstance(path, int):
        return False
    p = os.fsdecode(os.fspath(path)).replace("\\", "/")
    return any(p == n or p.endswith("/" + n.lstrip("/")) for n in held)


def _refused(path) -> PermissionError:
    return PermissionError(errno.EACCES, "The process cannot access the file because it is being used by another "
                                         "process", os.fsdecode(os.fspath(path)))


def _hold(held: list[str], setattr_) -> None:
    """Install the refusals of a file held open (see the module doc) with ``setattr_(obj, name, value)``."""
    import builtins
    import io

    real_replace, real_rename, real_unlink, real_remove, real_open = (os.replace, os.rename, os.unlink, os.remove,
                                                                      io.open)

    def two(real):
        def move(src, dst, *a, **k):
            for x in (dst, src):
                if _is_held(x, held):
                    raise _refused(x)
            return real(src, dst, *a, **k)
        return move

    def one(real):
        def unlink(path, *a, **k):
            if _is_held(path, held):
                raise _refused(path)
            return real(path, *a, **k)
        return unlink

    def open_(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and _is_held(file, held):
            raise _refused(file)
        return real_open(file, mode, *a, **k)

    setattr_(os, "replace", two(real_replace))
    setattr_(os, "rename", two(real_rename))
    setattr_(os, "unlink", one(real_unlink))
    setattr_(os, "remove", one(real_remove))
    setattr_(io, "open", open_)
    setattr_(builtins, "open", open_)


def cli_argv(*args) -> list[str]:
    """The command line that runs ``patrol ARGS`` in a simulated Windows Python."""
    code = (f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(ROOT)!r}]; import winsim; winsim.windows(); "
            "import cli; cli.main()")
    return [sys.executable, "-c", code, *map(str, args)]
