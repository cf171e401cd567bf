"""Timed wrappers the video benchmarks share (bench_video.py, bench_video_run.py): wall time per part, by wrapping
the module attributes the real code path calls."""

from __future__ import annotations

import threading
import time
from collections import defaultdict


class Timers:
    """Seconds per part, summed over threads (a part run on 2 threads can add up to twice the wall time)."""

    def __init__(self):
        self.s: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def wrap(self, name: str, fn):
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                with self.lock:
                    self.s[name] += time.perf_counter() - t
                    self.n[name] += 1
        return timed


def timed_capture(timers: Timers, real_cap, grab: str, retrieve: str):
    """A ``cv2.VideoCapture`` stand-in whose ``grab`` and ``retrieve`` are timed under those names."""

    class Cap:
        def __init__(self, *a):
            self._c = real_cap(*a)
            self.grab = timers.wrap(grab, self._c.grab)
            self.retrieve = timers.wrap(retrieve, self._c.retrieve)

        def __getattr__(self, name):
            return getattr(self._c, name)

    return Cap
