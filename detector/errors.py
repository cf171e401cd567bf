"""User-facing errors: one line naming the file and the reason; the CLI prints them without a traceback."""

from __future__ import annotations

import os
import re
from pathlib import Path


def plural(n: int, word: str, many: str | None = None) -> str:
    """A count in a message: ``1 sighting``, ``2 sightings`` (``many``: the plural where it is not ``word`` + s)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


#: what a shell reads as one plain word (any letter or digit, Japanese too): a path of only these is shown as it is
_PLAIN_WORD = re.compile(r"[\w@%+=:,./-]+")
_PLAIN_WORD_WINDOWS = re.compile(r"[\w@%+=:,./\\-]+")  # (cmd and PowerShell: \ is the path separator)


def shell_word(text: str | Path) -> str:
    """A path (or word) as a message shows it in a command line to copy: ``registry.gpkg`` as it is; quoted where a
    shell would split or read it (a space, ``$``, ``'``, ``&``, ``(``…): ``'my registry.gpkg'`` (POSIX shells;
    ``'`` as ``'\\''``), ``"C:\\road data\\registry.gpkg"`` on Windows (cmd and PowerShell both read it)."""
    s = str(text)
    if os.name == "nt":
        return s if _PLAIN_WORD_WINDOWS.fullmatch(s) else f'"{s}"'
    return s if _PLAIN_WORD.fullmatch(s) else "'" + s.replace("'", "'\\''") + "'"


class PatrolError(Exception):
    """An error the user can act on. ``str(err)`` is a single line: ``<file>: <field>: <reason>``."""

    exit_code = 2

    def __init__(self, reason: str, path: str | Path | None = None, field: str | None = None):
        self.reason = " ".join(str(reason).split())  # keep it on one line
        self.path = str(path) if path is not None else None
        self.field = field
        parts = [p for p in (self.path, self.field, self.reason) if p]
        super().__init__(": ".join(parts))


class UsageError(PatrolError):
    """A command asked for something that cannot be done: an unknown status or candidate id, a status change
    the workflow does not allow (exit 2, like other usage errors)."""

    exit_code = 2


class InputError(PatrolError):
    """Bad input file (roads, detections CSV, images folder)."""

    exit_code = 3


class ConfigError(PatrolError):
    """Invalid municipality config."""

    exit_code = 4


class ModelError(PatrolError):
    """Weights missing or unloadable."""

    exit_code = 5


class StoreError(PatrolError):
    """Registry (store) problem."""

    exit_code = 6


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of an input file; a missing or unreadable one is an InputError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, expected a file", path) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from None
