"""The optional ``torch`` extra: what needs it, and one clear line when it is not installed.

``pip install road-patrol`` (the light install, ~0.6 GB) runs everything a road department does every week —
``patrol run``/``detect``/``locate``, the registry commands, ``eval`` and ``tune`` with the ONNX model — on ONNX
Runtime, without torch. Training, averaging checkpoints, exporting ONNX and running a ``.pt`` model need torch and
ultralytics (``road-patrol[torch]``, several GB). Those paths call :func:`require_torch` first, so that a light
install says what is missing and the exact command to add it instead of a ModuleNotFoundError."""

from __future__ import annotations

import sys

from .errors import UsageError

DIST = "road-patrol"
#: the modules of the torch extra, by the feature that needs them (ONNX export also needs onnx and onnxslim)
TORCH_MODULES = ("torch", "ultralytics")
EXPORT_MODULES = TORCH_MODULES + ("onnx", "onnxslim")


def install_command() -> str:
    """The exact command that adds the torch extra to this installation: this interpreter's pip; the checkout's
    path (editable) when patrol runs from a source tree (a clone, pip install -e), the distribution name when it
    runs from an installed wheel."""
    from .config import PROJECT_ROOT

    py = f'"{sys.executable}"' if " " in sys.executable else sys.executable
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return f'{py} -m pip install -e "{PROJECT_ROOT}[torch]"'
    return f'{py} -m pip install "{DIST}[torch]"'


def missing_modules(modules: tuple[str, ...] = TORCH_MODULES) -> list[str]:
    """The name of each of ``modules`` that cannot be imported here (absent, or a broken install: a
    torch whose DLLs fail to load raises OSError on Windows)."""
    import importlib
    import os

    os.environ.setdefault("YOLO_OFFLINE", "1")  # as detector.train and infer set it before ultralytics loads
    missing = []
    for m in modules:
        try:
            importlib.import_module(m)
        except (ImportError, OSError) as e:
            absent = isinstance(e, ModuleNotFoundError) and e.name == m
            missing.append(m if absent else f"{m} (installed but broken: {type(e).__name__}: {e})")
    return missing


def require_torch(what: str, modules: tuple[str, ...] = TORCH_MODULES) -> None:
    """Raise UsageError (exit 2, one line) when ``what`` (e.g. ``patrol train``) cannot run because the torch
    extra is missing here; return quietly when it is installed."""
    missing = missing_modules(modules)
    if missing:
        raise UsageError(f"{what} needs the optional torch extra (missing here: {', '.join(missing)}); install it "
                         f"with: {install_command()} (several GB; on a PC without internet: README, 'Installing on a "
                         "PC without internet')")
