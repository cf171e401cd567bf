"""Where `patrol run` spends its time on a 1080p dashcam video drive, stage by stage. Measured in one run.

The drive: one 30 fps 1920x1080 MPEG-4 video (``mp4v``: what this OpenCV build writes) of the sample drive's pass 1
(the photo taken last before each frame, scaled to 1080p and zoomed in 0.3 % a frame through each second, so no two
frames are alike, as from a moving car; 2:20 of video, 4,200 frames) and the real Kubicka GPX beside it, built once
into --work as the video tests build theirs. ``run_pipeline`` runs it end to end with the shipped ONNX model and the
sample's roads.geojson, timed per stage (the summary's ``stage_seconds``), and inside the stages:

  * frames: the video's decoding (``grab``/``retrieve``); before the run, the frames stage alone decoding every
    frame (before) and passing over the stops by a seek (``video.SKIP_MIN_S``, after), alternately, with the kept
    frames compared byte for byte;
  * detect: decoding the kept frames' JPEGs (on 2 threads beside the model) and the model's ``predict``;
  * crops: reading the best frames, the privacy search (the Haar cascades), the rest of ``make_crop``;
  * exports: the report's thumbnails among them.

Then the per hour of video figures (the stages scaled by 3600 s / the video's length).

Usage: .venv/bin/python bench/bench_video_run.py [--work /tmp/patrol-bench-video-run] [--seconds 140]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TOYAMA = SHARED / "sample_drives" / "toyama"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from timing import Timers, timed_capture  # noqa: E402  (bench/timing.py: this script's folder is on sys.path)

FPS = 30
W, H = 1920, 1080
T0 = datetime(2026, 11, 20, 0, 0, 0, tzinfo=timezone.utc)  # pass 1's first photo, 09:00 JST
MAC_EPOCH = 2082844800


def build_video(path: Path, seconds: float) -> None:
    """The photo taken last before each frame (pass 1), at 1080p, zoomed in 0.3 % a frame through each second;
    mvhd creation time = T0."""
    import cv2

    from detector.config import Config
    from detector.frames import scan_drive

    photos = [f for f in scan_drive(TOYAMA / "toyama-2026-11-p1", Config()) if f.ok]
    ts = np.array([f.time.timestamp() - T0.timestamp() for f in photos])
    tmp = path.with_suffix(".tmp.mp4")
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    cur, src = -1, None
    for k in range(int(seconds * FPS)):
        i = max(0, int(np.searchsorted(ts, k / FPS, side="right") - 1))
        if i != cur:
            src, cur = cv2.resize(cv2.imread(str(photos[i].path)), (W, H), interpolation=cv2.INTER_CUBIC), i
        z = 1.0 - 0.003 * (k % FPS)
        ch, cw = int(H * z), int(W * z)
        y0, x0 = (H - ch) // 2, (W - cw) // 2
        out.write(cv2.resize(src[y0:y0 + ch, x0:x0 + cw], (W, H), interpolation=cv2.INTER_LINEAR))
    out.release()
    data = bytearray(tmp.read_bytes())
    j = data.find(b"mvhd")
    data[j + 8:j + 12] = (int(T0.timestamp()) + MAC_EPOCH).to_bytes(4, "big")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, path)


def patch(timers: Timers, detector):
    """Timed wrappers on what the stages call; returns an undo function."""
    import cv2

    import detector.crops as crops
    import detector.frames as frames

    saved = []

    def put(mod, name, label):
        saved.append((mod, name, getattr(mod, name)))
        setattr(mod, name, timers.wrap(label, getattr(mod, name)))

    real_cap = cv2.VideoCapture
    saved.append((cv2, "VideoCapture", real_cap))
    cv2.VideoCapture = timed_capture(timers, real_cap, "frames: video decode (grab)", "frames: video decode (retrieve)")
    put(frames, "load_image", "frame JPEG decode (load_image)")
    put(crops, "make_crop", "crops: make_crop")
    put(crops, "find_privacy_regions", "crops: privacy search (cascades)")
    put(crops, "thumbnail", "exports: report thumbnail")
    saved.append((detector, "predict", detector.predict))
    detector.predict = timers.wrap("detect: model predict", detector.predict)

    def undo():
        for mod, name, fn in reversed(saved):
            setattr(mod, name, fn)
    return undo


def gaps(index: Path, fps: float, min_s: float) -> tuple[int, int]:
    """(frames decoded between kept frames more than ``min_s`` apart, all frames): what decoding only near the kept
    frames (a seek over each such gap, ~16 frames + a GOP decoded after it) could at most leave out."""
    import json

    doc = json.loads(index.read_text(encoding="utf-8"))
    t = [f["t"] for f in doc["frames"]] + [doc["duration_s"]]
    return sum(int((b - a) * fps) for a, b in zip(t, t[1:]) if b - a > min_s), int(doc["decoded"])


def frames_before_after(drive: Path, work: Path, cfg, rounds: int = 2) -> None:
    """The frames stage (``frames.scan`` of the drive) decoding every frame (``video.SKIP_MIN_S = None``, before)
    and passing over the stretches where no frame can be kept by a seek (after), alternately ``rounds`` times;
    CPU and wall seconds, the frames passed over, and whether the kept frames' names and bytes are the same."""
    import hashlib

    import detector.video as video
    from detector.frames import scan

    real, got = video.extract, []

    def extract(*a, **k):
        got.append(real(*a, **k))
        return got[-1]

    video.extract = extract
    res: dict = defaultdict(list)
    saved = video.SKIP_MIN_S
    try:
        for _ in range(rounds):
            for label, skip in (("before", None), ("after", saved)):
                video.SKIP_MIN_S = skip
                vd = work / f"frames-{label}"
                shutil.rmtree(vd, ignore_errors=True)
                t, c = time.perf_counter(), time.process_time()
                sc = scan(drive, cfg, video_dir=vd)
                res[label].append((time.process_time() - c, time.perf_counter() - t, got[-1].skipped,
                                   hashlib.sha1(b"".join(f.name.encode() + Path(f.path).read_bytes()
                                                         for f in sc.frames if "@" in f.name)).hexdigest()))
    finally:
        video.SKIP_MIN_S, video.extract = saved, real
    b, a = res["before"], res["after"]
    cb, ca = min(r[0] for r in b), min(r[0] for r in a)
    wb, wa = min(r[1] for r in b), min(r[1] for r in a)
    same = len({r[3] for r in b + a}) == 1
    print(f"frames stage, best of {rounds}: decoding every frame {cb:.1f} s CPU / {wb:.1f} s wall; passing over "
          f"{a[0][2]} of {got[-1].decoded} frames by seeking {ca:.1f} s CPU / {wa:.1f} s wall: CPU x{cb / ca:.2f}, "
          f"wall x{wb / wa:.2f}; kept frames (names and bytes) {'the same' if same else 'DIFFER'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/patrol-bench-video-run")
    ap.add_argument("--seconds", type=float, default=140.0)
    a = ap.parse_args()
    import cv2

    import detector.pipeline as pipeline
    from detector.config import load_config
    from detector.infer import load_detector, resolve_weights
    from test_tracks import kubicka_points, write_gpx

    if not TOYAMA.is_dir():
        sys.exit(f"no sample drive at {TOYAMA}")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    video = work / f"v{W}x{H}-{a.seconds:g}s.mp4"
    if not video.exists():
        t = time.perf_counter()
        build_video(video, a.seconds)
        print(f"built {video.name} in {time.perf_counter() - t:.0f} s")
    drive = work / "drive"
    shutil.rmtree(drive, ignore_errors=True)
    drive.mkdir()
    os.link(video, drive / "20261120_090000.mp4")
    write_gpx(drive / "log.gpx", kubicka_points(T0))
    cfg = load_config(ROOT / "configs" / "toyama-city.yaml")
    frames_before_after(drive, work, cfg)
    weights = resolve_weights(cfg, None)
    det = load_detector(weights, cfg)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    timers = Timers()
    undo = patch(timers, det)
    cpu: dict[str, float] = {}
    real_lap = pipeline.RunSummary.lap
    mark = [time.process_time()]

    def lap(self, stage, since):  # the process's CPU seconds per stage beside the summary's wall seconds
        now = time.process_time()
        cpu[stage] = now - mark[0]
        mark[0] = now
        return real_lap(self, stage, since)

    pipeline.RunSummary.lap = lap
    try:
        t, c = time.perf_counter(), time.process_time()
        s = pipeline.run_pipeline([drive], TOYAMA / "roads.geojson", out, cfg, weights=weights, detector=det)
        wall, total_cpu = time.perf_counter() - t, time.process_time() - c
    finally:
        undo()
        pipeline.RunSummary.lap = real_lap
    per_hour = 3600.0 / a.seconds
    print(f"OpenCV {cv2.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {video.name} "
          f"{video.stat().st_size / 2**20:.0f} MB mp4v, {a.seconds:g} s at {FPS} fps; detect.imgsz {cfg.detect.imgsz}, "
          f"privacy.detect_max_side {cfg.privacy.detect_max_side}")
    print(f"{s.frames_ok} frames kept, {s.hits} hits, {s.candidates} candidates "
          f"({s.candidates / max(1, s.frames_ok):.2f} a frame); {wall:.1f} s wall, {total_cpu:.1f} s CPU")
    print(f"{'stage':<8} {'wall s':>8} {'CPU s':>8} {'CPU share':>9}   per hour of video: {'wall min':>8} {'CPU min':>8}")
    for k, v in s.stage_seconds.items():
        u = cpu.get(k, 0.0)
        print(f"{k:<8} {v:8.1f} {u:8.1f} {u / total_cpu:8.0%}    {'':18} {v * per_hour / 60:8.1f} {u * per_hour / 60:8.1f}")
    print("inside the stages (seconds in the call, summed over the threads that made it; with other load they "
          "include waiting):")
    for k in sorted(timers.s):
        print(f"  {k:<38} {timers.s[k]:7.1f} s  {timers.n[k]:6d} calls  {1000 * timers.s[k] / timers.n[k]:8.1f} ms a call")
    n = max(1, s.candidates or 0)
    crop_cpu = cpu.get("crops", 0.0)
    print(f"crops: {crop_cpu / n:.2f} CPU s a candidate, the privacy search {timers.s['crops: privacy search (cascades)'] / max(1e-9, timers.s['crops: make_crop']):.1%} "
          f"of make_crop, reading the frame {timers.s['frame JPEG decode (load_image)'] / max(1, timers.n['frame JPEG decode (load_image)']) * n / max(1e-9, timers.s['crops: make_crop']):.1%}")
    idx = next((out / "frames").rglob("index.json"))
    skippable, decoded = gaps(idx, FPS, 2.0)
    print(f"frames: {decoded} decoded, {s.frames_ok} kept; {skippable} ({skippable / decoded:.0%}) lie between kept "
          "frames more than 2 s apart (stops)")
    hour_cands = n / a.seconds * 3600
    print(f"an hour of this video: ~{s.frames_ok * per_hour:,.0f} kept frames, ~{hour_cands:,.0f} candidates; crops "
          f"{crop_cpu * per_hour / 60:.1f} CPU-min (README's estimate: ~27 CPU-min for ~950 candidates, "
          f"x{crop_cpu * per_hour / 60 / 27:.2f})")


if __name__ == "__main__":
    main()
