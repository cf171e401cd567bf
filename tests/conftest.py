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


class Devtools:
    """A page in headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands
    in on fd 3, answers out on fd 4, each JSON message ended by a NUL; no socket, no package): for what the page's own
    script (in_phone's probes) cannot do, trusted input: a Tab that moves the focus, an Enter or a Space that presses
    a button, the mouse wheel or a finger dragged on the map's boxes (Chromium's own scrolling), at a viewport of any
    size (a phone's 360 px, no frame). ``with Devtools() as dt: dt.open(url, 360, 640, touch=True); dt.eval(js)``."""

    def __init__(self, timeout: float = 60):
        import fcntl
        import subprocess
        import tempfile

        from test_report import CHROMIUM_FLAGS, chromium_bin

        self.timeout, self._id, self._buf, self.session = timeout, 0, b"", None
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        # the pipes' ends above fd 9, so that the child's dup2 onto 3 and 4 never overwrites one it still needs
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in os.pipe() + os.pipe()]
        in_r, self._w, self._r, out_w = ends
        self._log = open(Path(self._profile.name) / "stderr.txt", "wb")

        def fds():
            os.dup2(in_r, 3)
            os.dup2(out_w, 4)

        self.proc = subprocess.Popen([chromium_bin(), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}",
                                      "--remote-debugging-pipe", "about:blank"], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, pass_fds=(3, 4), preexec_fn=fds)
        os.close(in_r)
        os.close(out_w)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import subprocess

        try:  # closed as a user closes it (its helper processes too), killed where it does not answer
            self.call("Browser.close", session=False)
            self.proc.wait(10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        self._log.close()
        self._profile.cleanup()

    def call(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        """One command (to the open page's session unless ``session`` is False); its result, events skipped."""
        import json
        import select
        import time

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") == self._id:
                    if "error" in m:
                        raise AssertionError(f"{method}: {m['error']}")
                    return m["result"]
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise AssertionError(f"Chromium gave no answer to {method} within {self.timeout} s")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise AssertionError(f"Chromium closed the pipe at {method}: "
                                     + (Path(self._profile.name) / "stderr.txt").read_text(errors="replace")[-2000:])
            self._buf += chunk

    def open(self, url: str, width: int, height: int, touch: bool = False, ready: str = "true"):
        """``url`` in a new page of ``width`` × ``height`` CSS px (``touch``: a phone's, a touch screen's), once
        loaded and ``ready`` (JS) is true."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": touch})
        self.call("Emulation.setFocusEmulationEnabled", {"enabled": True})
        if touch:
            self.call("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        self.call("Page.navigate", {"url": url})
        self.until(f"document.readyState === 'complete' && ({ready})")

    def eval(self, expr: str):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise AssertionError(f"{expr[:200]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def until(self, expr: str, seconds: float = 20):
        """``expr``'s value once truthy (polled every 50 ms of real time), else its last value after ``seconds``."""
        return self.eval(f"""new Promise(function (done) {{ var end = Date.now() + {seconds * 1000};
          (function poll() {{ var v = ({expr}); if (v || Date.now() > end) done(v); else setTimeout(poll, 50); }})();
          }})""")

    KEYS = {"Tab": ("Tab", 9, ""), "Enter": ("Enter", 13, "\r"), " ": ("Space", 32, " ")}

    def key(self, key: str, shift: bool = False):
        """A key pressed and released, as on a keyboard (Tab, Enter, " ")."""
        code, vk, text = self.KEYS[key]
        base = {"key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": 8 if shift else 0}
        self.call("Input.dispatchKeyEvent", {"type": "keyDown", **base, **({"text": text} if text else {})})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    def wheel(self, x: float, y: float, dy: float):
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        self.call("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": dy})

    def drag(self, x: float, y: float, dy: float, steps: int = 8):
        """A finger put down at (x, y), moved ``dy`` px down (up: negative) in ``steps`` moves and lifted."""
        self.call("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for i in range(1, steps + 1):
            self.call("Input.dispatchTouchEvent", {"type": "touchMove",
                                                   "touchPoints": [{"x": x, "y": y + dy * i / steps}]})
        self.call("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
