"""Municipality configuration: one pydantic-validated YAML per municipality.

``load_config(path)`` deep-merges the file over ``configs/default.yaml`` semantics (the defaults below),
loads YAML safely and fails fast with the file, the field and the reason.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from . import CLASS_IDS
from .errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARE = Path("share") / "road-patrol"  # where a wheel installs configs/ and weights/ (pyproject's data-files)


def now(tz: tzinfo | None = None) -> datetime:
    """Now on ``tz``'s clock (a config's :attr:`Config.tz`, the municipality's: its staff read the dates), aware;
    without a zone, the machine's own. The one clock patrol reads for "now" and "today" (a run's and a change's time,
    the day a due list or a map is for, what "in the future" means for a crew's date): a test pins them all with
    ``monkeypatch.setattr(detector.config, "now", ...)`` (each caller looks it up here when it runs)."""
    return datetime.now(tz) if tz is not None else datetime.now(timezone.utc).astimezone()


def today(tz: tzinfo | None = None) -> date:
    """Today's date on ``tz``'s clock (:func:`now`)."""
    return now(tz).date()


def _shipped_root() -> Path:
    """The folder holding configs/ and weights/: the checkout itself (a clone, pip install -e), else — patrol
    installed from its wheel, the code in site-packages — ``<prefix>/share/road-patrol`` where pip put the
    wheel's data files (the venv's or Python's prefix; the user base after pip install --user)."""
    if (PROJECT_ROOT / "configs" / "default.yaml").is_file():
        return PROJECT_ROOT
    import site
    import sys
    import sysconfig

    for base in (sysconfig.get_path("data"), sys.prefix, getattr(site, "USER_BASE", None)):
        if base and (Path(base) / SHARE / "configs" / "default.yaml").is_file():
            return Path(base) / SHARE
    return PROJECT_ROOT  # neither: the 'no model found' message names the checkout's weights/


SHIPPED_ROOT = _shipped_root()
DEFAULT_CONFIG = SHIPPED_ROOT / "configs" / "default.yaml"
DEFAULT_WEIGHTS_ONNX = SHIPPED_ROOT / "weights" / "rdd-yolo.onnx"
DEFAULT_WEIGHTS_PT = SHIPPED_ROOT / "weights" / "rdd-yolo.pt"


def _check_class_ids(ids) -> None:
    unknown = set(ids) - set(CLASS_IDS)
    if unknown:
        raise ValueError(f"unknown class ids {sorted(unknown)}; known: {list(CLASS_IDS)}")


_NUMERIC = {int, float, float | None, list[float], dict[str, float], dict[str, int]}


def _halfwidth(v: Any) -> Any:
    """Full-width (全角) digits, point, minus and spaces as a Japanese IME types them (１．４, －５) -> ASCII (NFKC)."""
    if isinstance(v, str):
        return unicodedata.normalize("NFKC", v).strip()
    if isinstance(v, list):
        return [_halfwidth(x) for x in v]
    if isinstance(v, dict):
        return {k: _halfwidth(x) for k, x in v.items()}
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_in_full_width(cls, v: Any, info: ValidationInfo) -> Any:
        # numeric settings only: names (municipality, class names, id/name fields) keep what was written
        return _halfwidth(v) if cls.model_fields[info.field_name].annotation in _NUMERIC else v


class ClassSpec(_Strict):
    name_en: str
    name_ja: str
    threshold: float = Field(0.25, ge=0.0, le=1.0, description="confidence threshold for this class")
    severity_weight: float = Field(1.0, ge=0.0, description="relative urgency of this damage type")


def _default_classes() -> dict[str, ClassSpec]:
    return {
        "D00": ClassSpec(name_en="longitudinal crack", name_ja="縦ひび割れ", threshold=0.25, severity_weight=1.0),
        "D10": ClassSpec(name_en="transverse crack", name_ja="横ひび割れ", threshold=0.25, severity_weight=1.0),
        "D20": ClassSpec(name_en="alligator crack", name_ja="亀甲状ひび割れ", threshold=0.25, severity_weight=2.0),
        "D40": ClassSpec(name_en="pothole", name_ja="ポットホール", threshold=0.25, severity_weight=3.0),
    }


class DetectSpec(_Strict):
    weights: str | None = Field(None, description="path to .pt or .onnx, relative to the config file; default: the shipped model in weights/")
    imgsz: int = Field(640, ge=32, le=4096)
    batch: int = Field(8, ge=1, le=256)
    iou: float = Field(0.5, gt=0.0, le=1.0)
    max_det: int = Field(100, ge=1, le=1000)
    device: str = "cpu"

    @field_validator("imgsz")
    @classmethod
    def _mult32(cls, v: int) -> int:
        if v % 32:
            raise ValueError("must be a multiple of 32")
        return v


class FramesSpec(_Strict):
    extensions: list[str] = Field(default_factory=lambda: [".jpg", ".jpeg", ".heic", ".heif", ".png"])
    interpolate_max_gap_s: float = Field(5.0, gt=0, description="place a frame without fix between fixes at most this far apart in time")
    max_image_pixels: int = Field(80_000_000, gt=0, description="reject images declaring more pixels (decompression bombs)")
    min_image_side: int = Field(32, ge=1)
    track_max_gap_s: float = Field(
        10.0, gt=0, le=3600, allow_inf_nan=False,
        description="a frame is placed from a track file (GPX/NMEA) between two track points at most this far apart in time")
    camera_clock_offset_s: float = Field(
        0.0, ge=-366 * 86400, le=366 * 86400, allow_inf_nan=False,
        description="camera clock minus GPS time, in seconds (+12: the camera shows 09:00:12 at 09:00:00); taken off "
                    "every camera-clock frame time (not GPS times); exiftool's -geosync is the same with the other sign")
    video_every_m: float = Field(
        5.0, gt=0, le=1000, allow_inf_nan=False,
        description="a video gives a frame each time the vehicle has moved this far (positions from the track files)")
    video_stopped_every_s: float = Field(
        10.0, gt=0, le=3600, allow_inf_nan=False,
        description="while the vehicle moves less than video_every_m (stopped at a light), or where no track places "
                    "the video, one frame every this many seconds")
    ignore: list[str] = Field(
        default_factory=list,
        description="files of a drive not to use, as glob patterns on the name within the drive (* ? [abc]; case "
                    "ignored; a pattern matches the whole name or its end after a /): [\"Parking/*\"] for parking-mode "
                    "clips, a thumbnails folder, a rear camera not wanted (to use one: rear); a frames.csv row "
                    "'ignored' each")

    rear: list[str] = Field(
        default_factory=list,
        description="frames of a rear camera (a two-channel dashcam's rear videos or photos), as glob patterns on the "
                    "name within the drive, with the rules of ignore: [\"*_R.MP4\", \"Movie/R/*\"]; their damages are "
                    "placed behind the vehicle (camera.rear: its mounting); a file matching ignore too is ignored")

    # a frame's look (detector/look.py, measured in the detect stage; frames.csv brightness, clipped, sharpness,
    # look): a frame below these could not have shown a damage, and is no unseen pass of one (the registry's passes).
    # Defaults from bench/bench_look.py on real frames (README, Frames: look)
    look_min_brightness: float = Field(
        40.0, ge=0, le=255, allow_inf_nan=False,
        description="a frame darker than this (mean grey level 0-255 of the whole picture) is 'dark' (night, dusk, a "
                    "tunnel): not a look at the road; 0 = never")
    look_max_clipped: float = Field(
        0.3, ge=0, le=1, allow_inf_nan=False,
        description="a frame with more than this share of burnt-out pixels (grey 250 or more) is 'glare' (into a "
                    "low sun, a washed-out lens): not a look at the road; 1 = never")
    look_min_sharpness: float = Field(
        4.5, ge=0, allow_inf_nan=False,
        description="a frame less sharp than this (mean absolute second difference of a 256 px grey copy along its "
                    "blurrier axis, grey levels) is 'blurred' "
                    "(motion blur, a wiper, a wet or fogged lens): not a look at the road; 0 = never")

    @field_validator("ignore", "rear", mode="before")
    @classmethod
    def _one_pattern(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v  # ignore: "*_R.MP4"

    @field_validator("ignore", "rear")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        out = []
        for pat in v:
            p = pat.strip().replace("\\", "/")  # a Windows path as typed: Rear\*.MP4
            while p.startswith("./"):
                p = p[2:]
            p = p.lstrip("/")
            if not p:
                raise ValueError(f"empty pattern {pat!r}")
            out.append(p + "*" if p.endswith("/") else p)  # Rear/: everything in it
        return out


#: camera.hfov_deg's (and camera.rear.hfov_deg's) open range, degrees: also the range of a field of view read from a
#: photo's EXIF focal length (``frames.hfov_from_focal35``, locate's per-frame field of view); one outside is not used
HFOV_RANGE = (10.0, 170.0)


class RearCameraSpec(_Strict):
    """The rear camera's mounting (``camera.rear``), for the frames that ``frames.rear`` names; a setting left out
    (None) is the front camera's."""
    height_m: float | None = Field(None, gt=0.2, lt=5.0, description="lens height above the road (a rear window: often higher)")
    pitch_deg: float | None = Field(None, ge=-10.0, le=60.0, description="downward tilt of the optical axis, looking back")
    hfov_deg: float | None = Field(None, gt=HFOV_RANGE[0], lt=HFOV_RANGE[1], description=(
        "field of view across the long side of the upright frame (as camera.hfov_deg)"))
    max_distance_m: float | None = Field(None, gt=1.0, description="cap on the distance behind a hit can be placed")


class CameraSpec(_Strict):
    height_m: float = Field(1.3, gt=0.2, lt=5.0, description="lens height above the road")
    pitch_deg: float = Field(8.0, ge=-10.0, le=60.0, description="downward tilt of the optical axis")
    hfov_deg: float = Field(66.0, gt=HFOV_RANGE[0], lt=HFOV_RANGE[1], description=(
        "field of view across the long side of the upright frame (EXIF orientation applied, a portrait video turned "
        "upright): the horizontal FOV of the phone held landscape; a portrait frame of the same phone uses it for "
        "its height, so one setting serves both"))
    hfov_from_exif: bool = Field(True, description=(
        "use each photo's own field of view from its EXIF focal length (FocalLengthIn35mmFilm, digital zoom applied; "
        "frames.csv hfov_deg) over hfov_deg (and camera.rear's): a phone on its ultra-wide or tele lens, a dashcam; "
        "false: hfov_deg for every frame (phones that write a wrong focal length)"))
    max_distance_m: float = Field(30.0, gt=1.0, description="cap on the distance ahead a hit can be placed")
    rear: RearCameraSpec | None = Field(
        None, description="the rear camera's mounting (frames.rear), each setting left out as the front camera's")

    def of(self, camera: str) -> "CameraSpec":
        """The mounting of ``camera`` ("front" | "rear"): the rear one is this one with ``rear``'s settings over it."""
        if camera != "rear" or self.rear is None:
            return self
        over = {k: v for k, v in self.rear.model_dump().items() if v is not None}
        return self.model_copy(update={**over, "rear": None})


def _checked_crs(v: str | None, metric: bool) -> str | None:
    """A CRS setting checked when the config loads (exit 4 naming the config, not the roads file it is used on):
    known to PROJ, and for ``metric`` a projected CRS in metres (every distance of the config is metres)."""
    if v is None:
        return v
    from pyproj import CRS

    try:
        crs = CRS.from_user_input(v)
    except Exception as e:  # noqa: BLE001 - pyproj's CRSError and friends
        raise ValueError(f"unknown CRS {v!r} (e.g. EPSG:6675): {' '.join(str(e).split())}") from None
    if metric:
        from .gis import not_metres

        if crs.is_geographic or not crs.is_projected:
            raise ValueError(f"{v!r} ({crs.name}) is not a projected CRS: give one in metres, e.g. your plane "
                             "rectangular zone EPSG:6675, or leave it out (the UTM zone of the network)")
        if unit := not_metres(crs):
            raise ValueError(f"{v!r} ({crs.name}) is in {unit}: every distance of the config is metres; give a "
                             "CRS in metres, e.g. EPSG:6675")
    return v


class LocateSpec(_Strict):
    max_snap_m: float = Field(25.0, gt=0, description="hits farther than this from any road are left unsnapped")
    heading_tolerance_deg: float = Field(60.0, gt=0, le=180.0)
    heading_weight_m: float = Field(10.0, ge=0, description="metres of distance penalty per unit (1-cos) heading misfit")
    place_ahead: bool = Field(True, description="place the damage ahead of the camera from its box and the camera mounting")
    crs: str | None = Field(None, description="metric CRS for the network; default: the UTM zone of its centre")
    method: Literal["nearest", "heading", "hmm"] = Field(
        "hmm", description="segment choice: nearest road, heading-aware nearest, or heading-aware HMM/Viterbi over the frames of a drive")
    candidates: int = Field(8, ge=1, le=64, description="road candidates kept per frame")
    switch_m: float = Field(5.0, ge=0, description="HMM: cost (m) of moving to a connected segment between frames")
    jump_m: float = Field(40.0, ge=0, description="HMM: cost (m) of moving to a segment not connected to the previous one")
    route_weight: float = Field(1.0, ge=0, description="HMM: cost per metre of |travelled along road - straight fix distance|")
    max_gap_s: float = Field(30.0, gt=0, description="HMM: frames further apart in time start a new chain")

    @field_validator("crs")
    @classmethod
    def _metric_crs(cls, v: str | None) -> str | None:
        return _checked_crs(v, metric=True)


class DedupeSpec(_Strict):
    distance_m: float = Field(15.0, gt=0, description="sightings of one class closer than this along the road are one damage")
    max_extent_m: float = Field(30.0, gt=0, description="a candidate spans at most this along the road (a long chain of sightings is split)")
    far_m: float = Field(10.0, gt=0, description="hits placed farther from their camera than this are weak evidence (position error grows with distance squared)")
    link_s: float = Field(3.0, ge=0, description="a candidate made only of far hits joins a same-class candidate of the same drive and camera seen within this many seconds")
    cross_drive: bool = True
    single_sighting_min_conf: float = Field(
        0.3, ge=0.0, le=1.0,
        description="a damage seen in one frame only (at 1 Hz a real one is usually in 2-3) needs this confidence "
                    "to become a candidate; 0 keeps every sighting")


class RoadsSpec(_Strict):
    id_field: str | None = Field(None, description="the network's own segment id column; default: first of segment_id/id/osm_id/fid")
    name_field: str | None = Field(None, description="road name column; default: first of name/name_ja/road_name")
    layer: str | None = None
    crs: str | None = Field(None, description="CRS of a roads file that names none (a Shapefile without .prj, a "
                                              "GeoJSON in projected metres), e.g. EPSG:6675; ignored when the file has one")
    encoding: str | None = Field(None, description="text encoding of a Shapefile's .dbf that names none (no .cpg, no "
                                                   "language driver id), e.g. cp932 or utf-8; default: UTF-8 or "
                                                   "Shift_JIS (cp932), whichever its text decodes in")
    keep_fields: list[str] = Field(
        default_factory=list,
        description="the network's own columns (路線番号, 道路種別, 管理事務所, width, an OSM tag) copied from the segment "
                    "each candidate is placed on into every output, after road_name, under the network's name; one "
                    "named like a patrol column gets road_ in front (class -> road_class)")

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, v: str | None) -> str | None:
        return _checked_crs(v, metric=False)  # a roads file may be in lat/lon of another datum (EPSG:4301)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        import codecs

        if v is None:
            return v
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown text encoding {v!r} (cp932, utf-8, euc-jp, latin-1 …)") from None
        return v

    @field_validator("keep_fields", mode="before")
    @classmethod
    def _one_field(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v  # keep_fields: 管理事務所

    @field_validator("keep_fields")
    @classmethod
    def _kept_names(cls, v: list[str]) -> list[str]:
        from .export import road_field_names

        road_field_names(v)  # ValueError: an empty name, one given twice, a clash left after the road_ prefix
        return v


def bin_level(size: float) -> str:
    """The ``level`` of a ``segments.bins_m`` length in segments.geojson: ``bin20``, ``bin12.5``."""
    return f"bin{int(size)}" if float(size).is_integer() else f"bin{size:g}"


class SegmentsSpec(_Strict):
    bins_m: list[float] = Field(default_factory=lambda: [20.0, 100.0])
    weights: dict[str, float] = Field(
        default_factory=lambda: {"D00": 1.0, "D10": 1.0, "D20": 3.0, "D40": 5.0},
        description="damage index weight per class (index = weighted count per 100 m surveyed)")
    thresholds: list[float] = Field(
        default_factory=lambda: [2.0, 5.0, 10.0, 20.0],
        description="damage index upper bounds of condition classes 1..4 (above the last: 5)")
    coverage_radius_m: float = Field(15.0, gt=0, description="road within this of an ok frame position counts as surveyed")
    min_coverage: float = Field(0.5, gt=0, le=1.0, description="a segment/bin is valid when this share of it was surveyed")
    survey_width_m: float = Field(
        3.0, gt=0, le=20.0, description="the width of road (m) the camera surveys along a segment: the crack rate "
        "(ひび割れ率) is the damages' crack area over surveyed_m × this; 3.0, one lane of a municipal road (道路構造令: "
        "2.75-3.5 m), as 舗装点検要領 rates each lane")

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if len(v) != 4 or any(b <= a for a, b in zip(v, v[1:])) or v[0] < 0:
            raise ValueError("need 4 increasing non-negative bounds (classes 1..4; above the last is 5)")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        _check_class_ids(v)
        if any(w < 0 for w in v.values()):
            raise ValueError("weights must not be negative")
        return v

    @field_validator("bins_m")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if not v or any(b <= 0 for b in v):
            raise ValueError("bins must be positive lengths in metres")
        levels = [bin_level(b) for b in v]
        if dup := sorted({lv for lv in levels if levels.count(lv) > 1}):
            raise ValueError(f"{', '.join(lv[3:] + ' m' for lv in dup)} given twice (each length is one level of "
                             "segments.geojson)")
        return v


class SurveyBySpec(_Strict):
    """A patrol frequency per value of one road field (道路種別 幹線 every 7 days, 生活道路 every 30)."""
    field: str = Field(..., description="a kept road field (roads.keep_fields, as written there) or road_name")
    every_days: dict[str, int | None] = Field(
        default_factory=dict, description="the field's value -> days between patrols (null: on no patrol cycle, left "
        "out of the list); other values: survey.every_days")

    @field_validator("every_days", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        # YAML reads `1: 7` as a number; a road field's value is matched as its text (an integer field: 1 -> "1")
        return {_value_key(k): x for k, x in v.items()} if isinstance(v, dict) else v

    @field_validator("every_days")
    @classmethod
    def _positive_days(cls, v: dict[str, int | None]) -> dict[str, int | None]:
        if bad := [k for k, d in v.items() if d is not None and d < 1]:
            raise ValueError(f"{', '.join(map(repr, bad))}: every_days must be a whole number of days, at least 1 "
                             "(or null: on no patrol cycle)")
        return v


def _value_key(v: Any) -> str:
    """A road field's value as ``survey.by.every_days`` matches it: its text, an integral float as an integer
    (``3.0`` -> ``"3"``: a Shapefile's numbers read as floats), true/false lower case; None for a gap."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


class SurveySpec(_Strict):
    """How often each road is patrolled (道路パトロールの巡回頻度): ``patrol export --format due``."""
    every_days: int | None = Field(30, ge=1, description="days between patrols of a segment (its field's value not in "
                                   "by); null: only the roads by lists are on a patrol cycle, the others left out")
    by: SurveyBySpec | None = Field(None, description="a frequency per value of a road field")


class StoreSpec(_Strict):
    match_distance_m: float = Field(
        25.0, gt=0, description="a run candidate within this of a registry candidate of its class (along the road, "
        "else on the ground) is that damage seen again; wider than dedupe.distance_m because each week's GPS has its "
        "own offset")
    absorb_fragments: bool = Field(
        True, description="a run candidate left over after one-to-one matching but within match_distance_m of a registry "
        "candidate matched in the same merge joins it (a damage the run split in pieces) instead of becoming a duplicate")
    busy_timeout_s: float = Field(120.0, ge=1.0, description="how long a merge waits for another process holding the registry")
    pass_radius_m: float = Field(
        15.0, gt=0, le=100.0, description="a frame within this of a registry damage, heading along a direction the "
        "damage was seen from, passed it (the registry's passes: a drive past a damage without a sighting); as "
        "segments.coverage_radius_m: half the spacing of 1 fps frames at 50 km/h (7 m) + the damage's offset across "
        "the road (up to 4 m) + GPS error (5 m)")
    unseen_ring_passes: int = Field(
        2, ge=1, le=100, description="report.html (a run with --store, patrol export --format html) draws a damage "
        "still open that the registry's drives passed this many times or more since its last sighting without seeing "
        "it (n_unseen) as a dotted hollow ring, and its legend says so: the damages to check before a crew goes out")
    grown_ratio: float = Field(
        1.5, gt=1.0, le=100.0, description="a damage has grown (悪化, the lists' grown) when its estimated area as its "
        "latest drive saw it is at least this many times the area its first drive saw (each drive's median, "
        "Store.growth) and grown_min_m2 larger: the sample's two passes of unchanged damages gave ratios 0.84-2.06, "
        "the 2.06 of a 0.09 m² crack")
    grown_min_m2: float = Field(
        0.25, ge=0.0, le=1000.0, description="and the area at least this many m² larger (the sample's unchanged "
        "damages: +0.86 m² the most, at a ratio of 1.15; +0.09 m² the most at a ratio of 1.3 or more)")
    grown_min_sightings: int = Field(
        2, ge=1, le=100, description="the drives compared are the first and the latest that saw the damage in this "
        "many frames with a size estimate or more (one frame's estimate from a moving phone is the least sure)")


class ReportsSpec(_Strict):
    """Citizen reports (住民通報: My City Report, a city's own form) read by ``patrol import-reports``."""
    radius_m: float = Field(
        20.0, gt=0, le=200.0, description="a citizen report matches the nearest registry damage within this (m, on "
        "the ground): a resident's phone GPS (5-10 m off, more under buildings) + the patrol's own GPS (5 m) + "
        "where on the damage each stood")


class JobsSpec(_Strict):
    """Repair jobs (補修工区, まとめて発注): ``patrol export --format jobs`` (README: Repair jobs)."""
    gap_m: float = Field(
        50.0, description="two open damages on one road within this many metres of each other (on the ground) are "
        "one repair job, and so on along the road (single linkage): one visit of a unit-price contractor (単価契約)")

    @field_validator("gap_m")
    @classmethod
    def _gap(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{v:g} is not a distance: give more than 0 m (e.g. 50)")
        return v


class RepairCostSpec(_Strict):
    """Unit prices of a repair (補修単価) for ``patrol stats``' cost estimate (概算補修費): the city's own, none shipped."""
    per_m2: dict[str, float] = Field(
        ..., description="the price of a square metre of repair per class (D00 D10 D20 D40, each; 0: a class not "
        "priced), in currency; a damage costs its estimated area (est_width_m × est_length_m) × its class's price")
    minimum: float | None = Field(
        None, description="the least one repair costs (mobilisation, a crew's call-out): each damage costs at least "
        "this; a damage without a size estimate costs this (null: such a damage is left out of the cost, counted in "
        "no_estimate)")
    currency: str = Field("円", description="the prices' currency, written in the cost columns' headings")

    @field_validator("per_m2")
    @classmethod
    def _prices(cls, v: dict[str, float]) -> dict[str, float]:
        _check_class_ids(v)
        if missing := [c for c in CLASS_IDS if c not in v]:
            raise ValueError(f"no price for {', '.join(missing)}: give every class its price per m² (0: not priced)")
        for k, p in v.items():
            if not math.isfinite(p) or p < 0:
                raise ValueError(f"{k}: {p:g} is not a price: give 0 or more per m²")
        return v

    @field_validator("minimum")
    @classmethod
    def _minimum(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v < 0):
            raise ValueError(f"{v:g} is not a price: give 0 or more (null: no minimum)")
        return v

    @field_validator("currency", mode="before")
    @classmethod
    def _currency_text(cls, v: Any) -> Any:
        return "" if v is None else str(v).strip() if isinstance(v, str) else v


class PrivacySpec(_Strict):
    blur_faces: bool = True
    blur_plates: bool = True
    blur_outside_box: bool = Field(False, description="conservative: blur all of a crop except the damage box (catches what the face/plate detectors miss)")
    detect_max_side: int = Field(960, ge=160, le=8192, description="the region searched for faces/plates is downscaled to this longest side")


class PatrolLogSpec(_Strict):
    """What patrol_log.csv/.xlsx prefill for the person filing it (blank when unset; a run's --inspector / --vehicle
    override them)."""
    inspector: str | None = Field(None, description="巡回者: who patrols, written on every drive's row")
    vehicle: str | None = Field(None, description="車両: the patrol vehicle (e.g. its number plate or fleet number)")

    @field_validator("inspector", "vehicle", mode="before")
    @classmethod
    def _number_as_text(cls, v: Any) -> Any:
        # `vehicle: 1234` (a fleet number written without quotes) is a YAML number: the text it was written as
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


#: the placeholders ``export.map_url`` may hold: the damage's latitude and longitude (WGS 84 degrees, 7 decimals) and
#: its id (``R-000012``, URL-encoded)
MAP_URL_FIELDS = ("lat", "lon", "id")
#: 地理院地図 (GSI Maps, the Geospatial Information Authority of Japan's web map) at zoom 18 centred on the damage:
#: ``export.map_url``'s default
GSI_MAP_URL = "https://maps.gsi.go.jp/#18/{lat}/{lon}/"


def check_map_url(v: str | None) -> str | None:
    """``export.map_url`` checked when the config loads (exit 4 naming the setting): None (or blank) for no link, else
    an http(s) address with ``{lat}`` and ``{lon}`` (and optionally ``{id}``), no other ``{...}`` (a literal brace:
    ``{{``), no spaces: the link a desktop PC's Excel opens in the browser (a ``geo:`` link it cannot)."""
    import string
    from urllib.parse import urlsplit

    if v is None or not v.strip():
        return None
    v = v.strip()
    try:
        parts = list(string.Formatter().parse(v))
    except ValueError as e:
        raise ValueError(f"{v!r}: {e} (a literal brace is written twice: {{{{ or }}}})") from None
    named = [name for _, name, *_ in parts if name is not None]
    if bad := [n for n in named if n not in MAP_URL_FIELDS]:
        raise ValueError(f"{v!r}: unknown placeholder {', '.join('{' + n + '}' for n in bad)}; use {{lat}} "
                         f"{{lon}} and optionally {{id}}, e.g. {GSI_MAP_URL}")
    if bad := [f"{{{n}{'!' + c if c else ''}{':' + s if s else ''}}}" for _, n, s, c in parts if n and (s or c)]:
        raise ValueError(f"{v!r}: {', '.join(bad)}: write the placeholder bare ({{lat}}: 7 decimals)")
    if missing := [n for n in ("lat", "lon") if n not in named]:
        raise ValueError(f"{v!r} has no {' or '.join('{' + n + '}' for n in missing)}: every damage would link to "
                         f"the same place; e.g. {GSI_MAP_URL}")
    sample = v.format(lat="36.7", lon="137.2", id="R-000001")
    url = urlsplit(sample)
    if url.scheme.lower() not in ("http", "https") or not url.netloc:
        raise ValueError(f"{v!r} is not an http(s) address: give a web map's, e.g. {GSI_MAP_URL} (null: no link)")
    if any(ch.isspace() or ord(ch) < 0x20 or ch in '"<>\\' for ch in sample):
        raise ValueError(f"{v!r} holds a space, quote, angle bracket or backslash: encode it (%20) or leave it out")
    return v


class ExportSpec(_Strict):
    """The lists', the photo ledger's and report.html's popups' link to a web map at each damage (repair_list.csv,
    patrol export's csv, xlsx, ledger and html)."""
    map_url: str | None = Field(
        GSI_MAP_URL, description="a web map's address with {lat} {lon} (and optionally {id}) filled in for each "
        "damage: the lists' map column (地図), the photo ledger's 地図 link and report.html's popups; null: no link "
        "(the column empty, the ledger's link a geo: link for a phone's map app, the popups' geo: link only)")

    @field_validator("map_url")
    @classmethod
    def _map_url(cls, v: str | None) -> str | None:
        return check_map_url(v)


def header_town(cfg) -> str:
    """The town's name for a printed page's header: the config's ``municipality``, or "" where it is the default
    config's placeholder ``default`` (no --config: the header leaves the name out rather than print "default")."""
    who = str(getattr(cfg, "municipality", "") or "").strip() if cfg is not None else ""
    return "" if who == "default" else who


class Config(_Strict):
    municipality: str = "default"
    timezone: str = Field("Asia/Tokyo", description="used when a frame has neither GPS time nor an EXIF offset")
    classes: dict[str, ClassSpec] = Field(default_factory=_default_classes)
    detect: DetectSpec = Field(default_factory=DetectSpec)
    frames: FramesSpec = Field(default_factory=FramesSpec)
    camera: CameraSpec | None = Field(default_factory=CameraSpec)
    locate: LocateSpec = Field(default_factory=LocateSpec)
    dedupe: DedupeSpec = Field(default_factory=DedupeSpec)
    roads: RoadsSpec = Field(default_factory=RoadsSpec)
    segments: SegmentsSpec = Field(default_factory=SegmentsSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    reports: ReportsSpec = Field(default_factory=ReportsSpec)
    repair_cost: RepairCostSpec | None = Field(
        None, description="unit prices for patrol stats' cost estimate (概算補修費); null: no cost columns")
    privacy: PrivacySpec = Field(default_factory=PrivacySpec)
    patrol_log: PatrolLogSpec = Field(default_factory=PatrolLogSpec)
    survey: SurveySpec = Field(default_factory=SurveySpec)
    jobs: JobsSpec = Field(default_factory=JobsSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)

    @field_validator("classes", mode="before")
    @classmethod
    def _class_ids_first(cls, v: Any) -> Any:
        # before the specs are validated: a mistyped id (D50, d40) was refused as `classes.D50.name_en: Field
        # required`, as if the user had to describe a new class
        if isinstance(v, dict):
            _check_class_ids(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _classes_known(self) -> "Config":
        try:
            _check_class_ids(self.classes)
        except ValueError as e:
            raise ValueError(f"classes: {e}") from None
        missing = set(CLASS_IDS) - set(self.classes)
        if missing:
            raise ValueError(f"classes: missing class ids {sorted(missing)}")
        return self

    @model_validator(mode="after")
    def _distances_agree(self) -> "Config":
        d, ext, match = self.dedupe.distance_m, self.dedupe.max_extent_m, self.store.match_distance_m
        if d > ext:  # along the road a chain is cut at max_extent_m, so distance_m would hold only off the road
            raise ValueError(f"dedupe.distance_m: {d:g} m is more than dedupe.max_extent_m ({ext:g} m), the longest a "
                             "candidate may be; lower distance_m or raise max_extent_m")
        if match < d:  # sightings one run joins would stay apart in the registry: duplicate ids week after week
            raise ValueError(f"store.match_distance_m: {match:g} m is less than dedupe.distance_m ({d:g} m): a damage "
                             "seen again in a later run would get a new registry id; raise match_distance_m")
        return self

    @model_validator(mode="after")
    def _survey_field_kept(self) -> "Config":
        by = self.survey.by
        if by is None or by.field == "road_name":
            return self
        from .export import road_field_names

        kept = road_field_names(self.roads.keep_fields)
        if not any(by.field in pair for pair in kept):  # as written in keep_fields, or its output name (road_class)
            raise ValueError(f"survey.by.field: {by.field!r} is not a kept road field; give road_name or one of "
                             f"roads.keep_fields ({', '.join(self.roads.keep_fields) or 'none in this config'})")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def now(self) -> datetime:
        """Now on the municipality's clock (module :func:`now`)."""
        return now(self.tz)

    def today(self) -> date:
        """Today on the municipality's clock (module :func:`today`)."""
        return today(self.tz)

    def thresholds(self) -> dict[str, float]:
        return {k: v.threshold for k, v in self.classes.items()}

    def class_name(self, cls_id: str, lang: str = "en") -> str:
        spec = self.classes.get(cls_id)
        if spec is None:
            return cls_id
        return spec.name_ja if lang == "ja" else spec.name_en


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping: YAML would keep only the last, so a
    second ``roads:`` section added at the end of a file silently drops everything the first one set."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` may be overridden by the mapping's own keys
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in seen
        except TypeError:
            continue  # unhashable: construct_mapping below says so
        if dup:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (YAML would keep only the last one; merge the two)",
                key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


_IME_SLIPS = (  # a Japanese IME's full-width space or colon where YAML needs ASCII: the line parses as something else
    (re.compile(r"^[ \t]*\u3000"), "is indented with a full-width space (全角スペース): indent with half-width spaces"),
    (re.compile(r"^[ \t\u3000]*[^\s:#：][^:#：]*："), "has a full-width colon (：) after its name: type a half-width ':'"),
    (re.compile(r"^[ \t]*[^\s:#][^:#]*:\u3000"),
     "has a full-width space (全角スペース) after its colon: type a half-width space"),
)


def _ime_hint(text: str) -> str:
    """``; line N …`` for the first line holding a full-width space or colon where YAML needs an ASCII one (YAML then
    reads a setting as text or as a top-level key, and the error alone does not show why), else ``""``."""
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip(" \t\u3000").startswith("#"):
            continue
        for pattern, why in _IME_SLIPS:
            if pattern.match(line):
                return f"; line {n} {why}"
    return ""


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", path) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e}", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError("not UTF-8 text (Shift_JIS?); save the file as UTF-8", path, f"line {line}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = str(getattr(e, "problem", None) or e)
        if "'\\t'" in problem:  # PyYAML: found character '\t' that cannot start any token
            problem += " (a tab: indent with spaces)"
        raise ConfigError(f"invalid YAML: {problem}{_ime_hint(text)}", path, where) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        # `timezone： Asia/Tokyo` alone (or under comments) is one string, not a mapping: say why
        raise ConfigError(f"top level must be a mapping of settings{_ime_hint(text)}", path)
    return data


def load_config(path: str | Path | None = None) -> Config:
    """Load a municipality config. Missing fields fall back to configs/default.yaml, then the built-in defaults.

    Classes given partially (e.g. only ``threshold``) are merged over the default class spec.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data = read_yaml(path)
    defaults = Config().model_dump()
    # a municipality file says only what differs from the project's configs/default.yaml (which carries the
    # tuned thresholds of the shipped model), not from the bare built-in defaults
    if DEFAULT_CONFIG.is_file() and (path is None or path.resolve() != DEFAULT_CONFIG.resolve()):
        defaults = _deep_merge(defaults, read_yaml(DEFAULT_CONFIG))
    merged = _deep_merge(defaults, data)
    if data.get("camera", "missing") is None:
        merged["camera"] = None
    # a relative detect.weights is relative to the config file that names it, not to wherever patrol runs
    det = data.get("detect")
    w = det.get("weights") if isinstance(det, dict) else None
    if path is not None and isinstance(w, str) and w.strip():
        wp = Path(w.strip()).expanduser()
        merged["detect"]["weights"] = str(wp if wp.is_absolute() else (path.parent / wp).resolve())
    try:
        return Config.model_validate(merged)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")  # pydantic's prefixes
        if err.get("input", "") is None:  # `roads:` with nothing under it (YAML null), not "a valid dictionary"
            msg = ("empty section: remove it (the defaults apply) or give its settings, indented under it"
                   if err["type"] in ("model_type", "dict_type") else
                   "no value: remove the line (the default applies) or give a value")
        elif err["type"] == "extra_forbidden":
            # `camera:` then `height_m:` not indented: an empty camera section (mounting unknown) and a stray key
            home = len(err["loc"]) == 1 and next(
                (k for k, v in defaults.items() if isinstance(v, dict) and err["loc"][0] in v), None)
            msg = f"not a top-level setting: indent it under {home}:" if home else "unknown setting (see configs/default.yaml)"
        if path is not None:
            msg += _ime_hint(_read_text(path))
        raise ConfigError(msg, path or "<defaults>", field) from None


def config_fingerprint(cfg: Config) -> dict[str, Any]:
    return cfg.model_dump(mode="json")
