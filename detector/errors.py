"""User-facing errors: one line naming the file and the reason; the CLI prints them without a traceback."""

from __future__ import annotations

from pathlib import Path


class PatrolError(Exception):
    """An error the user can act on. ``str(err)`` is a single line: ``<file>: <field>: <reason>``."""

    exit_code = 2

    def __init__(self, reason: str, path: str | Path | None = None, field: str | None = None):
        self.reason = " ".join(str(reason).split())  # keep it on one line
        self.path = str(path) if path is not None else None
        self.field = field
        parts = [p for p in (self.path, self.field, self.reason) if p]
        super().__init__(": ".join(parts))


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
