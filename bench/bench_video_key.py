"""Benchmark the reuse key of a video's frames (``detector.video.fingerprint``: the size and a sha1 of the first and
last 4 MB) on a large file, against two ways of also looking at its middle: a sha1 of 16 blocks of 64 KB spread
over it (a cheap sample), and a sha1 of the whole file (``full_sha1``, what a video whose decoding stopped early
is checked by on a rerun). Each is timed warm (the file in the page cache, as right after decoding it) and cold
(the file dropped from the page cache with posix_fadvise, this file only: as on a rerun days later), and the reads
and bytes each one asks for are counted, from which the time over a NAS share is worked out (--nas-mbps,
--nas-ms per read request: an SMB/NFS share over 1 Gbit/s Ethernet reads ~110 MB/s, a request ~0.5-2 ms).

    .venv/bin/python bench/bench_video_key.py [--size-mb 1024] [--work /tmp/patrol-bench-key] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.video import _HASH_BYTES, fingerprint, full_sha1  # noqa: E402

BLOCK, N_BLOCKS = 64 * 1024, 16


def spread(path: Path) -> list:
    """fingerprint + a sha1 of N_BLOCKS blocks of BLOCK bytes spread evenly between the two ends it reads."""
    key = fingerprint(path)
    size = key[0]
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        lo, hi = _HASH_BYTES, max(_HASH_BYTES, size - _HASH_BYTES - BLOCK)
        for i in range(N_BLOCKS):
            fh.seek(lo + (hi - lo) * (i + 1) // (N_BLOCKS + 1))
            h.update(fh.read(BLOCK))
    return key + [h.hexdigest()]


def requests(scheme: str, size: int) -> tuple[int, int]:
    """(read requests, bytes) a scheme asks of the file system; a NAS client reads at most 1 MB per request (SMB2
    MaxReadSize / NFS rsize as usually negotiated), pipelined for a long sequential read."""
    ends = min(size, 2 * _HASH_BYTES)
    if scheme == "ends":
        return 2, ends
    if scheme == "spread":
        return 2 + N_BLOCKS, ends + N_BLOCKS * BLOCK
    return 1, size


def drop(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--work", default="/tmp/patrol-bench-key")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nas-mbps", type=float, default=110.0, help="NAS read speed, MB/s")
    ap.add_argument("--nas-ms", type=float, default=1.0, help="NAS round trip per read request, ms")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"video_{a.size_mb}MB.mp4"
    if not path.is_file() or path.stat().st_size != a.size_mb * 2**20:
        t = time.perf_counter()
        with open(path, "wb") as fh:  # the content does not matter to a hash: incompressible bytes, written once
            for _ in range(a.size_mb):
                fh.write(os.urandom(2**20))
        print(f"wrote {path} ({a.size_mb} MB) in {time.perf_counter() - t:.1f} s")
    size = path.stat().st_size
    schemes = {"ends": fingerprint, "spread": spread, "full": full_sha1}
    print(f"{'key':8} {'bytes read':>11} {'reads':>6} {'warm ms':>9} {'cold ms':>9} {'NAS ms (model)':>15}")
    for name, fn in schemes.items():
        fn(path)
        warm = min(_timed(fn, path) for _ in range(a.repeat))
        cold = []
        for _ in range(a.repeat):
            drop(path)
            cold.append(_timed(fn, path))
        n, nbytes = requests(name, size)
        nas = nbytes / (a.nas_mbps * 1e6) * 1e3 + n * a.nas_ms
        print(f"{name:8} {nbytes / 2**20:9.1f} MB {n:6d} {warm * 1e3:9.1f} {min(cold) * 1e3:9.1f} {nas:15.1f}")


def _timed(fn, path: Path) -> float:
    t = time.perf_counter()
    fn(path)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
