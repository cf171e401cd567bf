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


#: how long (ms of Chromium's virtual time) in_phone waits for the frame's resize event after a turn: real seconds
#: on a loaded machine (the idle time skipped fast); the probe comes as soon as the event has
TURN_WAIT = 10000


def in_phone(page: Path, fragment: str, expr: str, width: int = 375, height: int = 812, before: str = "",
             after: int = 0, extra: tuple[str, ...] = (), turn: tuple[int, int] | None = None):
    """``expr`` evaluated in ``page`` shown at ``width`` × ``height`` CSS px: in an iframe of that size (headless
    Chromium's window is never narrower than 500 px: a page opened with ``--window-size=390,…`` is laid out 500 px wide), sent to
    the host page (postMessage) and read back from it. ``before`` (JS) runs 2.5 s after the page opened, ``expr``
    ``after`` ms later; ``extra``: more Chromium flags (a user agent); ``turn``: the frame resized to that width ×
    height right after ``before`` (the phone turned between portrait and landscape), ``expr`` then ``after`` ms after
    the frame's resize event (up to TURN_WAIT ms for it). Rewrites ``page`` (give each call its own copy) and writes
    host.html beside it.

    The timers run on Chromium's virtual time (test_report.chromium), which skips idle time, but the frame's resize
    event comes with its next rendered frame, in real time: under load, a probe a fixed time after the turn (before:
    1.5 s) ran before the page had been told of its new size (the popup still sized for the old map)."""
    from test_report import FRAMES, console_errors, probe_of, render

    html = page.read_text(encoding="utf-8")
    budget = 8000
    if not turn:
        script = (f"<script>setTimeout(function () {{ {before}; setTimeout(function () {{ parent.postMessage("
                  f"JSON.stringify({expr}), '*'); }}, {after}); }}, 2500);</script>")
    else:  # probed ``after`` ms after the frame's resize event to the turned size: polled for, not a fixed wait
        script = (f"<script>setTimeout(function () {{ {before}; var seen = false, waited = 0;"
                  f" addEventListener('resize', function () {{ if (innerWidth === {turn[0]} && innerHeight === {turn[1]})"
                  f" seen = true; }}); parent.postMessage({{turn: [{turn[0]}, {turn[1]}]}}, '*');"
                  f" (function wait() {{ if (!seen && (waited += 50) <= {TURN_WAIT}) return setTimeout(wait, 50);"
                  f" setTimeout(function () {{ parent.postMessage(JSON.stringify({{resized: seen, probe: {expr}}}), '*');"
                  f" }}, {after}); }})(); }}, 2500);</script>")
        budget += TURN_WAIT + after
    page.write_text(html.replace("<script", FRAMES + "<script", 1).replace("</body>", script + "</body>"), encoding="utf-8")
    host = page.with_name("host.html")
    host.write_text(f'<!doctype html><html><body style="margin:0"><iframe src="{page.name}{fragment}" width="{width}" '
                    f'height="{height}" style="border:0"></iframe><script>window.addEventListener("message", function (e) '
                    '{ var f = document.querySelector("iframe"); if (e.data && e.data.turn) { f.width = e.data.turn[0]; '
                    'f.height = e.data.turn[1]; return; } document.documentElement.setAttribute("data-probe", e.data); });'
                    '</script></body></html>', encoding="utf-8")
    w, h = (max(width, turn[0]), max(height, turn[1])) if turn else (width, height)
    dom, err = render(host, "", f"--window-size={max(w, 500) + 50},{h + 50}", *extra, budget=budget)
    assert not console_errors(err), console_errors(err)
    p = probe_of(dom)
    if turn:
        assert p["resized"], f"the frame got no resize event to {turn} within {TURN_WAIT} ms (virtual time) of the turn"
        p = p["probe"]
    return p


def print_tools() -> tuple[str, str]:
    """(soffice, pdftotext) for the print checks (a workbook printed by LibreOffice, read back by poppler), or the
    test skipped saying what is missing: both programs, and the Carlito font (Calibri's metrics, the workbooks'
    font) without which LibreOffice lays the page out otherwise."""
    import shutil
    import subprocess

    soffice, pdftotext = shutil.which("soffice") or shutil.which("libreoffice"), shutil.which("pdftotext")
    if not soffice or not pdftotext:
        pytest.skip("LibreOffice (soffice) or poppler's pdftotext not installed: the print check needs both")
    fonts = subprocess.run(["fc-list"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    if "Carlito" not in fonts:
        pytest.skip("font Carlito (Calibri's metrics) not installed: LibreOffice would lay the page out otherwise")
    return soffice, pdftotext
