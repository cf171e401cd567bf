"""Benchmark taking frames from dashcam video: a synthetic drive video of a few minutes (the sample drive's photos,
scaled to 1280x720 / 1920x1080 and slowly zoomed every frame so that no two frames are alike, as from a moving
car) with the real Kubicka GPX beside it, through ``detector.frames.scan`` as ``patrol run`` calls it. Prints the
decoded frames/s, the frames kept, the seconds per minute of video and the share of the time in decoding (grab +
retrieve), JPEG encoding, writing the files, the track lookups (``Track.place``) and the distance test; a bare
``grab()`` loop over the same file gives the decoder's own speed; the reuse of a second run.

The videos are written once into --work (kept for the next run): MPEG-4 Part 2 (``mp4v``, what this OpenCV build
writes: its FFmpeg has no H.264 encoder) and, when an ffmpeg binary is found (--ffmpeg, ``imageio_ffmpeg``, or
``ffmpeg`` on PATH), H.264 (libx264, what dashcams write) at a dashcam's bit rate (8 Mbit/s at 720p, 16 at 1080p).

    .venv/bin/python bench/bench_video.py [--minutes 3] [--sizes 1280x720,1920x1080] [--codecs mp4v,h264]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from detector.config import Config  # noqa: E402
from timing import Timers, timed_capture  # noqa: E402  (bench/timing.py: this script's folder is on sys.path)

FPS = 30
T0 = datetime(2026, 11, 20, 0, 0, 0, tzinfo=timezone.utc)  # 09:00 JST; the video's name says 20261120_090000
BITRATE = {720: "8M", 1080: "16M"}


def find_ffmpeg(given: str | None) -> str | None:
    if given:
        return given
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return shutil.which("ffmpeg")


def build_video(path: Path, photos: list[Path], w: int, h: int, seconds: float) -> None:
    """mp4v at FPS: photo k for second k (cycled), each frame a crop zooming in 1 % more (a car driving on)."""
    import cv2

    tmp = path.with_suffix(".tmp.mp4")
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    if not out.isOpened():
        sys.exit(f"cv2.VideoWriter cannot write mp4v {w}x{h}")
    src = None
    for k in range(int(seconds * FPS)):
        s, f = divmod(k, FPS)
        if f == 0:
            img = cv2.imread(str(photos[s % len(photos)]))
            src = cv2.resize(img, (w, int(round(img.shape[0] * w / img.shape[1]))), interpolation=cv2.INTER_CUBIC)
        z = 1.0 - 0.01 * f  # zoom in through the second
        ch, cw = int(h * z), int(w * z)
        y0, x0 = (src.shape[0] - ch) // 2, (w - cw) // 2
        out.write(cv2.resize(src[max(0, y0):max(0, y0) + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR))
    out.release()
    os.replace(tmp, path)


def transcode_h264(ffmpeg: str, src: Path, dst: Path, h: int) -> None:
    tmp = dst.with_suffix(".tmp.mp4")
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(src), "-c:v", "libx264", "-preset", "veryfast",
                    "-b:v", BITRATE.get(h, "12M"), "-g", str(FPS), "-pix_fmt", "yuv420p", "-an", str(tmp)],
                   check=True)
    os.replace(tmp, dst)


def instrumented(timers: Timers):
    """Patch cv2.VideoCapture (grab, retrieve), cv2.imencode, Path.write_bytes, detector.geo.distance_bearing and
    Track.place with timed wrappers; returns an undo function."""
    import cv2

    import detector.geo as geo
    import detector.tracks as tracks

    real_cap, real_enc, real_db = cv2.VideoCapture, cv2.imencode, geo.distance_bearing
    real_place, real_write = tracks.Track.place, Path.write_bytes

    cv2.VideoCapture = timed_capture(timers, real_cap, "decode (grab)", "decode (retrieve)")
    cv2.imencode = timers.wrap("JPEG encode", real_enc)
    geo.distance_bearing = timers.wrap("distance test", real_db)
    tracks.Track.place = timers.wrap("track lookup", real_place)
    Path.write_bytes = timers.wrap("file write", real_write)

    def undo():
        cv2.VideoCapture, cv2.imencode, geo.distance_bearing = real_cap, real_enc, real_db
        tracks.Track.place, Path.write_bytes = real_place, real_write
    return undo


def bare_decode(path: Path) -> tuple[int, float]:
    import cv2

    t = time.perf_counter()
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n, time.perf_counter() - t


def run_one(video: Path, gpx: Path, work: Path, cfg: Config, label: str, minutes: float) -> dict:
    from detector.frames import scan

    drive = work / f"drive-{label}"
    shutil.rmtree(drive, ignore_errors=True)
    drive.mkdir(parents=True)
    try:
        os.link(video, drive / "20261120_090000.mp4")
    except OSError:
        shutil.copy(video, drive / "20261120_090000.mp4")
    shutil.copy(gpx, drive / "log.gpx")
    vdir = work / f"frames-{label}"
    shutil.rmtree(vdir, ignore_errors=True)
    n_bare, s_bare = bare_decode(video)

    timers = Timers()
    undo = instrumented(timers)
    try:
        t = time.perf_counter()
        sc = scan(drive, cfg, video_dir=vdir)
        wall = time.perf_counter() - t
    finally:
        undo()
    t = time.perf_counter()
    again = scan(drive, cfg, video_dir=vdir)
    reuse = time.perf_counter() - t
    u = sc.videos[0]
    assert not u.problem, u.problem
    assert again.videos[0].reused
    decoded = timers.n["decode (grab)"] - 1  # the last grab() finds the end
    parts = {k: v for k, v in sorted(timers.s.items(), key=lambda kv: -kv[1])}
    other = wall - sum(parts.values())
    placed = sum(f.ok for f in sc.frames if "@" in f.name)
    row = {"video": label, "size_mb": round(video.stat().st_size / 2**20, 1), "minutes": minutes,
           "decoded": decoded, "kept": u.frames, "placed": placed, "wall_s": round(wall, 2),
           "fps": round(decoded / wall, 1), "s_per_min": round(wall / minutes, 2),
           "hour_min": round(wall / minutes, 1), "bare_decode_fps": round(n_bare / s_bare, 1),
           "reuse_s": round(reuse, 3),
           "share": {**{k: round(v / wall, 3) for k, v in parts.items()}, "rest (loop, scan)": round(other / wall, 3)},
           "calls": dict(timers.n)}
    print(f"\n{label}: {row['size_mb']} MB, {decoded} frames decoded, {u.frames} kept ({placed} placed by the track)")
    print(f"  {wall:.1f} s = {row['fps']} decoded frames/s, {row['s_per_min']} s per minute of video -> an hour of "
          f"video {row['hour_min']} min; bare grab() loop {row['bare_decode_fps']} frames/s; reuse {reuse:.2f} s")
    for k, v in row["share"].items():
        print(f"    {k:<20} {v * 100:5.1f} %  ({timers.n.get(k, 0)} calls, {v * wall:.2f} s)")
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--sizes", default="1280x720")
    ap.add_argument("--codecs", default="mp4v,h264")
    ap.add_argument("--every-m", type=float, default=5.0)
    ap.add_argument("--ffmpeg", default=None, help="an ffmpeg with libx264 for the H.264 videos")
    ap.add_argument("--work", default="/tmp/patrol-bench-video")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--json", default=None, help="write the rows here")
    a = ap.parse_args()
    import cv2

    from test_tracks import kubicka_points, write_gpx

    cv2.setNumThreads(max(1, os.cpu_count() or 1))
    photos = [p for p in sorted((Path(a.shared) / "sample_drives" / "toyama" / "toyama-2026-11-p1").glob("*.jpg"))
              if cv2.imread(str(p)) is not None]  # the sample drive holds a few broken files on purpose
    if not photos:
        sys.exit(f"no sample photos under {a.shared}")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    pts = kubicka_points(T0)  # point 100 at the video's start; 833 s of track after it
    if a.minutes * 60 > pts[-1, 0] - T0.timestamp():
        sys.exit(f"--minutes at most {(pts[-1, 0] - T0.timestamp()) / 60:.1f} (the Kubicka track's length)")
    gpx = write_gpx(work / "log.gpx", pts)
    ffmpeg = find_ffmpeg(a.ffmpeg) if "h264" in a.codecs else None
    cfg = Config()
    cfg = cfg.model_copy(update={"frames": cfg.frames.model_copy(update={"video_every_m": a.every_m})})
    print(f"OpenCV {cv2.__version__}, {os.cpu_count()} CPUs, ffmpeg for H.264: {ffmpeg or 'none'}; "
          f"{a.minutes} min at {FPS} fps, frames.video_every_m {a.every_m}")
    rows = []
    for size in a.sizes.split(","):
        w, h = map(int, size.lower().split("x"))
        base = work / f"v{w}x{h}-{a.minutes:g}min-mp4v.mp4"
        if not base.exists():
            t = time.perf_counter()
            build_video(base, photos, w, h, a.minutes * 60)
            print(f"built {base.name} in {time.perf_counter() - t:.0f} s")
        for codec in a.codecs.split(","):
            video = base
            if codec == "h264":
                if not ffmpeg:
                    print("no ffmpeg binary: H.264 skipped (pip install imageio-ffmpeg, or --ffmpeg PATH)")
                    continue
                video = work / f"v{w}x{h}-{a.minutes:g}min-h264.mp4"
                if not video.exists():
                    t = time.perf_counter()
                    transcode_h264(ffmpeg, base, video, h)
                    print(f"built {video.name} in {time.perf_counter() - t:.0f} s")
            rows.append(run_one(video, gpx, work, cfg, f"{w}x{h} {codec}", a.minutes))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
