"""Shared test fixtures. Data lives in ../shared (read-only) beside the checkout; tests that need it skip
with a clear reason when it is absent. Set PATROL_SHARED to point elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PATROL_SHARED", ROOT.parent / "shared")).resolve()
TOYAMA = SHARED / "sample_drives" / "toyama"
EXIF_DIR = SHARED / "data" / "exif"
RDD = SHARED / "data" / "rdd"
ROADS = SHARED / "data" / "roads"
PRETRAINED = SHARED / "data" / "pretrained"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (clone with ../shared beside the checkout or set PATROL_SHARED)")
    return path


@pytest.fixture
def toyama() -> Path:
    return need(TOYAMA)


@pytest.fixture
def exif_dir() -> Path:
    return need(EXIF_DIR)


@pytest.fixture
def rdd() -> Path:
    return need(RDD)


@pytest.fixture
def roads_dir() -> Path:
    return need(ROADS)


@pytest.fixture
def pretrained() -> Path:
    return need(PRETRAINED)
