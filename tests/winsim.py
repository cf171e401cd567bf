"""What a Windows PC does differently, simulated on Linux for the tests (we cannot run Windows here).

``windows()`` makes this process behave like CPython on Windows where patrol depends on it:

* no ``os.fchmod`` (absent on Windows);
* ``import fcntl`` fails; ``detector.atomic`` gets ``FakeMsvcrt`` for msvcrt: ``locking(fd, mode, nbytes)`` on the
  bytes from the file position, like the real one, failing with EACCES when another process holds them (built on
  POSIX byte-range locks, which are per process, as Windows' are per handle: tests take the lock in two processes).
  Not as ``sys.modules["msvcrt"]``: the standard library (subprocess, …) takes an importable msvcrt for Windows;
* ``os.replace`` onto a file whose name is in ``PATROL_TEST_OPEN_IN_EXCEL`` (comma-separated names) fails with
  PermissionError 13, "The process cannot access the file because it is being used by another process" (WinError
  32), as it does while Excel holds that file open.

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
    held = {n for n in (open_in_excel or os.environ.get("PATROL_TEST_OPEN_IN_EXCEL", "")).split(",") if n}
    if held:
        real = os.replace

        def replace(src, dst, *a, **k):
            if Path(dst).name in held:
                e = PermissionError(errno.EACCES, "The process cannot access the file because it is being used by "
                                                  "another process", str(src), None, str(dst))
                raise e
            return real(src, dst, *a, **k)

        os.replace = replace


def cli_argv(*args) -> list[str]:
    """The command line that runs ``patrol ARGS`` in a simulated Windows Python."""
    code = (f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(ROOT)!r}]; import winsim; winsim.windows(); "
            "import cli; cli.main()")
    return [sys.executable, "-c", code, *map(str, args)]
