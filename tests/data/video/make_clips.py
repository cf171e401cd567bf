#!/usr/bin/env python3
"""Make the codec fixture clips of tests/test_video_codecs.py (run from anywhere; needs ffmpeg + ffprobe on PATH
and numpy; only to MAKE them: the tests read the committed clips with OpenCV's bundled FFmpeg).

Every frame carries its own index: the top band of the upright picture is 16 blocks (the index's bits, most
significant first, white = 1), the band under it the same bits inverted (a frame whose two bands disagree is not
read). Below, a blurred noise texture that scrolls a few pixels a frame (a road passing), so the encoder predicts
motion and B-frames carry real residuals. ``clips.json`` records, per clip, what ffprobe says of it: the codec,
each frame's presentation time (in presentation order, the index drawn in it) and the stream's start time.

Clips (320x240, 600 frames, ~20 s):
  h264_high_bf.mp4   H.264 High, 3 B-frames (pyramid), one key frame every 300 frames, CFR 30 fps
  h264_vfr.mp4       H.264 as a phone writes it: 30 fps with jitter, 24 fps (low light) in the middle, dropped frames
  hevc_hvc1.mp4      HEVC Main (x265, B-frames, 'hvc1' as iPhones tag it), CFR 30 fps
  h264_rot90.mp4     a portrait phone video: the frames stored sideways with a 90 degree display matrix
  h264_offset.mp4    the video track starting 1.5 s into the movie (an empty edit in its edit list)
  h264_trimmed.mp4   h264_high_bf.mp4 cut at 4.3 s without re-encoding: an edit list whose media starts between
                     key frames (the frames from the key frame before are decoded and not shown)
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
W, H, N, BITS = 320, 240, 600, 16


def texture(w: int, h: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (h // 4 + 2, (w + 3 * N) // 4 + 2)).astype(np.float32)
    big = np.kron(big, np.ones((4, 4), np.float32))  # 4x4 cells, then a box blur: a smooth asphalt-like grain
    k = 5
    c = np.cumsum(np.cumsum(np.pad(big, ((k, 0), (k, 0))), 0), 1)
    blur = (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)
    return (60 + 0.5 * blur).astype(np.uint8)


def frame(i: int, w: int, h: int, tex: np.ndarray) -> np.ndarray:
    """The upright gray picture of frame i."""
    img = tex[:h, 3 * i:3 * i + w].copy()
    bw = w // BITS
    for b in range(BITS):
        bit = (i >> (BITS - 1 - b)) & 1
        img[0:bw, b * bw:(b + 1) * bw] = 255 if bit else 0
        img[bw:2 * bw, b * bw:(b + 1) * bw] = 0 if bit else 255
    return img


def encode(name: str, frames, w: int, h: int, args: list[str], vf: str | None = None) -> Path:
    out = HERE / name
    cmd = ["ffmpeg", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{w}x{h}", "-r", "30",
           "-i", "-"] + (["-vf", vf] if vf else []) + args + ["-pix_fmt", "yuv420p", "-an", str(out)]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for img in frames:
        p.stdin.write(np.ascontiguousarray(img).tobytes())
    p.stdin.close()
    if p.wait():
        sys.exit(f"ffmpeg failed for {name}")
    return out


def rot_display(path: Path) -> None:
    """Write a 90 degree clockwise display matrix into the video track's tkhd box (ffmpeg 5's muxer no longer takes
    the ``rotate`` tag; a phone writes this matrix): [0 1 0; -1 0 0; height 0 1] in 16.16 / 2.30 fixed point."""
    data = bytearray(path.read_bytes())
    j = data.find(b"tkhd")
    assert j > 0 and data[j + 4] == 0, "version-0 tkhd expected"
    m = j + 4 + 40  # version/flags, 2 times, track id, reserved, duration, 8 reserved, layer, group, volume, reserved
    assert data[m:m + 36] == struct.pack(">9i", 1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30), "identity matrix expected"
    data[m:m + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, H << 16, 0, 1 << 30)
    path.write_bytes(bytes(data))


def read_index(gray: np.ndarray) -> int | None:
    """The index drawn in an upright gray picture, None where its two bands disagree (not this kind of frame, or
    turned)."""
    bw = gray.shape[1] // BITS
    m = bw // 4
    top = np.array([gray[m:bw - m, b * bw + m:(b + 1) * bw - m].mean() for b in range(BITS)]) > 128
    low = np.array([gray[bw + m:2 * bw - m, b * bw + m:(b + 1) * bw - m].mean() for b in range(BITS)]) > 128
    if not np.all(top != low):
        return None
    return int(sum(int(v) << (BITS - 1 - b) for b, v in enumerate(top)))


def verify(path: Path, w: int, h: int, first: int, n: int) -> None:
    """Decode the clip with ffmpeg (display matrix applied) and check every frame shows its index in order."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray",
                          "-fps_mode", "passthrough", "-"], capture_output=True, check=True).stdout
    got = np.frombuffer(raw, np.uint8)
    assert got.size == n * w * h, (path.name, got.size, n, w, h)
    idx = [read_index(f) for f in got.reshape(n, h, w)]
    assert idx == list(range(first, first + n)), (path.name, idx[:10])


def probe(path: Path) -> dict:
    s = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_format", "-show_frames",
         "-show_entries", "frame=pts_time,best_effort_timestamp_time:stream=codec_name,profile,start_time,"
         "r_frame_rate,avg_frame_rate,nb_frames,has_b_frames:stream_side_data=rotation:format=start_time",
         "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout)
    st = s["streams"][0]
    pts = [float(f.get("pts_time", f.get("best_effort_timestamp_time"))) for f in s["frames"]]
    rot = [d.get("rotation") for d in st.get("side_data_list", []) if "rotation" in d]
    return {"codec": st["codec_name"], "profile": st.get("profile", ""), "has_b_frames": st.get("has_b_frames"),
            "r_frame_rate": st["r_frame_rate"], "avg_frame_rate": st["avg_frame_rate"],
            "start_time": float(st["start_time"]), "format_start_time": float(s["format"]["start_time"]),
            "rotation": rot[0] if rot else 0, "pts": [round(t, 6) for t in pts]}


def main() -> None:
    tex = texture(W, H)
    land = [frame(i, W, H, tex) for i in range(N)]
    x264 = ["-c:v", "libx264", "-profile:v", "high", "-preset", "medium", "-crf", "30", "-bf", "3", "-b-pyramid",
            "normal", "-g", "300", "-keyint_min", "300", "-sc_threshold", "0"]
    encode("h264_high_bf.mp4", land, W, H, x264)
    # a phone's variable frame rate: the times of the frames (setpts: N is the frame's number)
    vfr = ("if(lt(N,240), N/30 + 0.005*sin(1.3*N),"
           " if(lt(N,480), 8 + (N-240)/24 + 0.004*sin(1.3*N),"
           " 18 + (N-480)/30 + floor((N-480)/37)/30 + 0.005*sin(1.3*N)))/TB")
    encode("h264_vfr.mp4", land, W, H, x264 + ["-fps_mode", "passthrough", "-enc_time_base", "1/90000",
                                               "-video_track_timescale", "90000"],
           vf=f"settb=1/90000,setpts='{vfr}'")
    encode("hevc_hvc1.mp4", land, W, H, ["-c:v", "libx265", "-preset", "fast", "-crf", "30", "-tag:v", "hvc1",
                                         "-x265-params", "log-level=error:keyint=300:min-keyint=300:bframes=3:"
                                         "scenecut=0"])
    tex_p = texture(H, W, seed=8)
    # a portrait picture (240 wide, 320 high) stored turned 90 degrees anticlockwise: the display matrix turns it
    # back clockwise (rotate=90, as a phone held upright writes it)
    portrait = [np.rot90(frame(i, H, W, tex_p), 1) for i in range(N)]
    rot_display(encode("h264_rot90.mp4", portrait, W, H, x264))
    encode("h264_offset.mp4", land, W, H, x264 + ["-output_ts_offset", "1.5"])
    trimmed = HERE / "h264_trimmed.mp4"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-ss", "4.3", "-i", str(HERE / "h264_high_bf.mp4"), "-c", "copy",
                    str(trimmed)], check=True)
    names = ["h264_high_bf.mp4", "h264_vfr.mp4", "hevc_hvc1.mp4", "h264_rot90.mp4", "h264_offset.mp4",
             "h264_trimmed.mp4"]
    doc = {n: probe(HERE / n) for n in names}
    for n in names:
        w, h = (H, W) if "rot90" in n else (W, H)
        verify(HERE / n, w, h, N - len(doc[n]["pts"]), len(doc[n]["pts"]))
    (HERE / "clips.json").write_text(json.dumps(doc, indent=0) + "\n")
    for n in names:
        d = doc[n]
        print(f"{n:20s} {(HERE / n).stat().st_size:8d} B  {d['codec']} {d['profile']} frames {len(d['pts'])} "
              f"start {d['start_time']} fmt_start {d['format_start_time']} rot {d['rotation']} "
              f"r {d['r_frame_rate']} avg {d['avg_frame_rate']}")


if __name__ == "__main__":
    main()
