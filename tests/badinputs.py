"""A generated corpus of awkward inputs for stage 1 (frames), written into a folder.

``make_bad_corpus(folder, good_frames)`` writes the files and returns ``{name: expected}`` where ``name``
is the path relative to ``folder`` (posix) and ``expected`` is ``"ok"`` or the reason code the frame must
be rejected with (``reason.split(":")[0]``). Expectations hold whatever else is in the folder (e.g. the
good frames of a sample drive): rejected items with bad GPS carry no time, so they cannot be interpolated,
and items that must be interpolated bring their own fixed neighbours.

``SKIPPED`` (filled by the last call) lists items not produced on this machine, with the reason.
Only PIL (and pillow-heif for HEIC) are used; EXIF is written with ``PIL.Image.Exif``.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, TiffImagePlugin

R = TiffImagePlugin.IFDRational
JST = timezone(timedelta(hours=9))
SKIPPED: dict[str, str] = {}

# GPS IFD tags
_LAT_REF, _LAT, _LON_REF, _LON, _TIME, _SPEED_REF, _SPEED, _DIR_REF, _DIR, _DATE = 1, 2, 3, 4, 7, 12, 13, 16, 17, 29
# Exif IFD tags
_DTO, _OFFSET_ORIG = 0x9003, 0x9011


def _dms(value: float) -> tuple:
    v = abs(value)
    d = int(v)
    m = int((v - d) * 60)
    s = round(((v - d) * 60 - m) * 60 * 10000)
    return (R(d, 1), R(m, 1), R(s, 10000))


def make_exif(*, lat: float | None = None, lon: float | None = None, lat_dms: tuple | None = None,
              lon_dms: tuple | None = None, lat_ref: str | None = None, lon_ref: str | None = None,
              gps_utc: datetime | None = None, gps_date: str | None = None, local: datetime | None = None,
              offset: str | None = None, heading: float | None = None, speed_kmh: float | None = None,
              orientation: int | None = None, make: str = "PatrolTest", model: str = "Corpus 1") -> Image.Exif:
    """An ``Image.Exif`` with the given GPS / time fields (any may be left out)."""
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    if orientation is not None:
        exif[0x0112] = orientation
    ex = exif.get_ifd(0x8769)
    if local is not None:
        ex[_DTO] = local.strftime("%Y:%m:%d %H:%M:%S")
    if offset is not None:
        ex[_OFFSET_ORIG] = offset
    gps = exif.get_ifd(0x8825)
    if lat is not None or lat_dms is not None:
        gps[_LAT_REF] = lat_ref if lat_ref is not None else ("N" if (lat or 0) >= 0 else "S")
        gps[_LAT] = lat_dms if lat_dms is not None else _dms(lat)
    if lon is not None or lon_dms is not None:
        gps[_LON_REF] = lon_ref if lon_ref is not None else ("E" if (lon or 0) >= 0 else "W")
        gps[_LON] = lon_dms if lon_dms is not None else _dms(lon)
    if gps_utc is not None:
        gps_utc = gps_utc.astimezone(timezone.utc)
        gps[_TIME] = (R(gps_utc.hour, 1), R(gps_utc.minute, 1), R(gps_utc.second, 1))
        gps[_DATE] = gps_date if gps_date is not None else gps_utc.strftime("%Y:%m:%d")
    if heading is not None:
        gps[_DIR_REF] = "T"
        gps[_DIR] = R(round(heading * 100), 100)
    if speed_kmh is not None:
        gps[_SPEED_REF] = "K"
        gps[_SPEED] = R(round(speed_kmh * 100), 100)
    return exif


def dms_rationals(value: float) -> tuple:
    """``value`` (degrees, sign dropped) as the three EXIF rationals a camera writes (seconds to 1/10000)."""
    return _dms(value)


def rewrite_gps(src: Path, dst: Path, edit, exif_edit=None) -> Path:
    """A copy of the JPEG ``src`` whose GPS IFD ``edit(gps)`` changed in place (a dict of tag -> value, as
    ``Image.Exif.get_ifd(0x8825)`` gives it), and its Exif IFD ``exif_edit(ifd)`` when given (FocalLength 0x920A,
    FocalLengthIn35mmFilm 0xA405, ...): only the EXIF APP1 segment is rebuilt, every other byte (the image data) is
    copied as is, so detection sees the same pixels."""
    data = Path(src).read_bytes()
    assert data[2:4] == b"\xff\xe1" and data[6:12] == b"Exif\x00\x00", src
    seg_len = int.from_bytes(data[4:6], "big")
    exif = Image.open(src).getexif()
    gps = dict(exif.get_ifd(0x8825))
    new = Image.Exif()
    for k, v in exif.items():
        if k not in (0x8825, 0x8769):
            new[k] = v
    ifd = dict(exif.get_ifd(0x8769))
    if exif_edit is not None:
        exif_edit(ifd)
    new.get_ifd(0x8769).update(ifd)
    edit(gps)
    new.get_ifd(0x8825).update(gps)
    payload = new.tobytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + data[4 + seg_len:])
    return dst


def write_jpeg(path: Path, img: Image.Image, exif: Image.Exif | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, **({"exif": exif} if exif is not None else {}))
    path.write_bytes(buf.getvalue())
    return path


def patch_sof_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the width/height in the first SOF marker of a JPEG (a 'decompression bomb' header)."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError("bad marker")
        m = data[i + 1]
        seglen = int.from_bytes(data[i + 2:i + 4], "big")
        if m in (0xC0, 0xC1, 0xC2):
            b = bytearray(data)
            b[i + 5:i + 7] = height.to_bytes(2, "big")
            b[i + 7:i + 9] = width.to_bytes(2, "big")
            return bytes(b)
        i += 2 + seglen
    raise ValueError("no SOF marker")


def corrupt_scans(jpeg: bytes) -> dict[str, bytes]:
    """Decodable JPEGs with damaged image data, headers and end marker intact (so the header scan accepts them):
    what a flaky SD card or a bad copy leaves. libjpeg warns "Corrupt JPEG data: ..." and still returns an image."""
    i = 2
    while jpeg[i + 1] != 0xDA:  # walk the marker segments to the start of scan
        i += 2 + int.from_bytes(jpeg[i + 2:i + 4], "big")
    start = i + 2 + int.from_bytes(jpeg[i + 2:i + 4], "big")
    mid = start + (len(jpeg) - start) // 2
    return {
        "corrupt_garbage_mid_scan.jpg": jpeg[:mid] + bytes([0x12, 0x34, 0x56]) * 50 + jpeg[mid:],
        "corrupt_zeroed_mid_scan.jpg": jpeg[:mid] + bytes(200) + jpeg[mid + 200:],
        "corrupt_scan_cut_short.jpg": jpeg[:mid] + b"\xff\xd9",
    }


def _base(good_frames: list[Path]) -> tuple[Image.Image, float, float, datetime]:
    """Pixels, a position and a time taken from the first good frame (or made up)."""
    img = None
    lat, lon, t = 36.6869430, 137.2362980, datetime(2026, 11, 20, 9, 0, 0, tzinfo=JST)
    for p in good_frames:
        try:
            with Image.open(p) as im:
                img = im.convert("RGB")
            img.info.clear()  # no EXIF/ICC carried over into files that must have none
            from detector.frames import read_exif

            info = read_exif(p)
            if info.lat is not None and info.lon is not None:
                lat, lon = info.lat, info.lon
            if info.time is not None:
                t = info.time.astimezone(JST)
            break
        except Exception:
            continue
    if img is None:
        img = Image.effect_noise((320, 240), 40).convert("RGB")
    return img, lat, lon, t


def make_bad_corpus(folder: Path, good_frames: list[Path]) -> dict[str, str]:
    """Write the corpus into ``folder``; return ``{relative name: "ok" | reason code}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    SKIPPED.clear()
    img, lat, lon, t0 = _base(list(good_frames))
    src_bytes = None
    for p in good_frames:
        try:
            src_bytes = Path(p).read_bytes()
            if src_bytes[:3] == b"\xff\xd8\xff":
                break
        except OSError:
            continue
    if not src_bytes or src_bytes[:3] != b"\xff\xd8\xff":
        buf = io.BytesIO()
        img.save(buf, "JPEG", exif=make_exif(lat=lat, lon=lon, gps_utc=t0, local=t0, offset="+09:00"))
        src_bytes = buf.getvalue()
    exp: dict[str, str] = {}

    def good_exif(t: datetime, **kw) -> Image.Exif:
        args = dict(lat=lat, lon=lon, gps_utc=t, local=t.astimezone(JST), offset="+09:00", heading=180.0,
                    speed_kmh=30.0)
        args.update(kw)
        return make_exif(**args)

    # --- files that are not (whole) images
    (folder / "empty.jpg").write_bytes(b"")
    exp["empty.jpg"] = "empty_file"
    (folder / "zeros.jpg").write_bytes(bytes(4096))
    exp["zeros.jpg"] = "not_an_image"
    (folder / "text.jpg").write_text("this is not a photo\n", encoding="utf-8")
    exp["text.jpg"] = "not_an_image"
    (folder / "truncated.jpg").write_bytes(src_bytes[: len(src_bytes) // 2])
    exp["truncated.jpg"] = "truncated"
    (folder / "header_only.jpg").write_bytes(src_bytes[:40])
    exp["header_only.jpg"] = "truncated"
    (folder / "bad_marker.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                                            + b"\x12\x34" * 64)
    exp["bad_marker.jpg"] = "corrupt"
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    exp["Thumbs.db"] = "not_an_image"
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    exp[".DS_Store"] = "not_an_image"
    (folder / "desktop.ini").write_text("[.ShellClassInfo]\r\n", encoding="utf-8")
    exp["desktop.ini"] = "not_an_image"
    buf = io.BytesIO()
    img.resize((64, 48)).save(buf, "GIF")
    (folder / "animation.gif").write_bytes(buf.getvalue())
    exp["animation.gif"] = "unsupported_format"

    # --- decompression bomb: a small JPEG whose header declares 60000 x 60000
    (folder / "huge_declared.jpg").write_bytes(patch_sof_size(src_bytes, 60000, 60000))
    exp["huge_declared.jpg"] = "too_large"
    write_jpeg(folder / "tiny.jpg", img.resize((16, 12)), good_exif(t0 + timedelta(seconds=300)))
    exp["tiny.jpg"] = "too_small"

    # --- formats without EXIF: no time and no position
    img.resize((160, 120)).save(folder / "no_exif.png")
    exp["no_exif.png"] = "no_gps_fix"
    write_jpeg(folder / "no_exif.jpg", img)
    exp["no_exif.jpg"] = "no_gps_fix"
    try:
        import pillow_heif

        pillow_heif.from_pillow(img.resize((160, 120))).save(str(folder / "no_exif.heic"))
        exp["no_exif.heic"] = "no_gps_fix"
    except Exception as e:  # HEVC encoder missing in this build
        SKIPPED["no_exif.heic"] = f"HEIC encoding unavailable: {e}"
        (folder / "no_exif.heic").unlink(missing_ok=True)

    # --- unusable GPS (no time, so nothing can rescue them by interpolation)
    write_jpeg(folder / "gps_zero_denominator.jpg", img,
               make_exif(lat_dms=(R(0, 0), R(0, 0), R(0, 0)), lat_ref="N", lon=lon))
    exp["gps_zero_denominator.jpg"] = "bad_gps"
    write_jpeg(folder / "gps_lat_over_90.jpg", img, make_exif(lat_dms=(R(91, 1), R(0, 1), R(0, 1)), lat_ref="N", lon=lon))
    exp["gps_lat_over_90.jpg"] = "bad_gps"
    write_jpeg(folder / "gps_null_island.jpg", img,
               make_exif(lat_dms=(R(0, 1), R(0, 1), R(0, 1)), lat_ref="N", lon_dms=(R(0, 1), R(0, 1), R(0, 1)), lon_ref="E"))
    exp["gps_null_island.jpg"] = "bad_gps"
    write_jpeg(folder / "gps_no_ref.jpg", img, make_exif(lat=lat, lon=lon, lat_ref="", lon_ref=""))
    exp["gps_no_ref.jpg"] = "bad_gps"
    write_jpeg(folder / "no_time_no_gps.jpg", img, make_exif())
    exp["no_time_no_gps.jpg"] = "no_gps_fix"
    far = datetime(2001, 1, 1, 12, 0, 0, tzinfo=JST)
    write_jpeg(folder / "time_but_no_gps.jpg", img, make_exif(local=far, offset="+09:00"))
    exp["time_but_no_gps.jpg"] = "no_gps_fix"

    # --- usable oddities
    write_jpeg(folder / "south_west.jpg", img, good_exif(t0 + timedelta(seconds=400), lat=-34.6037, lon=-58.3816))
    exp["south_west.jpg"] = "ok"
    tb = t0 + timedelta(seconds=500)
    write_jpeg(folder / "backwards_1.jpg", img, good_exif(tb + timedelta(seconds=10)))
    write_jpeg(folder / "backwards_2.jpg", img, good_exif(tb))  # later name, earlier time
    exp["backwards_1.jpg"] = exp["backwards_2.jpg"] = "ok"
    td = t0 + timedelta(seconds=600)
    write_jpeg(folder / "dup_time_1.jpg", img, good_exif(td))
    write_jpeg(folder / "dup_time_2.jpg", img, good_exif(td))
    exp["dup_time_1.jpg"] = exp["dup_time_2.jpg"] = "ok"
    tg = t0 + timedelta(seconds=700)
    write_jpeg(folder / "gps_date_day_off.jpg", img,
               good_exif(tg, gps_date=(tg.astimezone(timezone.utc) + timedelta(days=1)).strftime("%Y:%m:%d")))
    exp["gps_date_day_off.jpg"] = "ok"
    tc = t0 + timedelta(seconds=800)
    write_jpeg(folder / "clock_no_offset.jpg", img, make_exif(lat=lat, lon=lon, local=tc.astimezone(JST)))
    exp["clock_no_offset.jpg"] = "ok"
    ti = t0 + timedelta(seconds=900)
    write_jpeg(folder / "lost_fix_before.jpg", img, good_exif(ti, lat=lat, lon=lon))
    write_jpeg(folder / "lost_fix.jpg", img, make_exif(local=(ti + timedelta(seconds=1)).astimezone(JST), offset="+09:00"))
    write_jpeg(folder / "lost_fix_after.jpg", img, good_exif(ti + timedelta(seconds=2), lat=lat + 0.0002, lon=lon))
    exp["lost_fix_before.jpg"] = exp["lost_fix.jpg"] = exp["lost_fix_after.jpg"] = "ok"
    write_jpeg(folder / "rotated_6.jpg", img.resize((320, 240)), good_exif(t0 + timedelta(seconds=1000), orientation=6))
    exp["rotated_6.jpg"] = "ok"
    (folder / "renamed_jpeg.dat").write_bytes(
        _with_exif_bytes(img, good_exif(t0 + timedelta(seconds=1100))))
    exp["renamed_jpeg.dat"] = "ok"
    write_jpeg(folder / "名前 with space ＃1.jpg", img, good_exif(t0 + timedelta(seconds=1200)))
    exp["名前 with space ＃1.jpg"] = "ok"
    write_jpeg(folder / "nested" / "deeper" / "frame.jpg", img, good_exif(t0 + timedelta(seconds=1300)))
    exp["nested/deeper/frame.jpg"] = "ok"

    # --- a symlink loop (a folder link back to the drive folder)
    try:
        os.symlink("..", folder / "nested" / "loop", target_is_directory=True)
        exp["nested/loop"] = "symlink_loop"
    except (OSError, NotImplementedError) as e:
        SKIPPED["nested/loop"] = f"symlinks unavailable: {e}"

    # --- an unreadable file (root reads everything, so only when not root)
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        p = write_jpeg(folder / "locked.jpg", img, good_exif(t0 + timedelta(seconds=1400)))
        p.chmod(0)
        exp["locked.jpg"] = "unreadable"
    else:
        SKIPPED["locked.jpg"] = "running as root: permissions do not stop reads"
    return exp


def _with_exif_bytes(img: Image.Image, exif: Image.Exif) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, exif=exif)
    return buf.getvalue()
