"""`patrol` — the road-damage patrol command line (thin: argument parsing, progress, summaries).

Exit codes: 0 ok · 1 unexpected internal error · 2 usage / general error (also: an output file held open by
Excel) · 3 bad input file ·
4 bad config · 5 weights missing or unloadable · 6 registry (store) problem · 130 interrupted.
Add --debug anywhere on the command line for the full traceback.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from detector.errors import plural, shell_word

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Road-damage patrol: dashboard-phone frames in, repair candidates on the city's road network out.")
console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)
DEBUG = False


_CONFIG_HELP = "municipality YAML (default configs/default.yaml)"
_WEIGHTS_HELP = ".onnx or .pt (default: the config's detect.weights, else the shipped model)"
_ROADS_HELP = "road network: GeoJSON, GeoPackage, Shapefile, FlatGeobuf or OSM (.osm.pbf/.osm/.osm.gz)"
_STORE_HELP = "merge the candidates into this registry (GeoPackage; created if missing)"
_AREA_HELP = ("only this district: a file of polygons (GeoJSON, GeoPackage, Shapefile .shp/.zip; any CRS): the "
              "damages inside them; segments, due and the html map's network: the segments that cross them, whole")
_AREA_WHERE_HELP = ("FIELD=VALUE: only the polygons of --area whose FIELD is VALUE (e.g. 名称=北部土木事務所); a "
                    "damage in several polygons of the file (an overlap, a shared edge) counts in the one it lies "
                    "deepest in")
_AREA_GAP_HELP = ("metres: a damage in no polygon of --area counts in the nearest within this (a gap between two "
                  "districts, a district drawn short of its roads); default 0")
_REGISTRY_HELP = "the registry (GeoPackage) that run/locate --store wrote"
_TRACK_HELP = ("GPS track file (GPX, NMEA 0183, CSV/TSV, KML/KMZ), repeatable: positions for frames without their own GPS fix, "
               "in every drive (a track file inside a drive folder is found without this, for its folder)")


def _show_version(value: bool) -> None:
    if value:
        from detector import __version__

        console.print(f"patrol {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                      help="print patrol's version (patrol 0.12.0) and exit")) -> None:
    """Road-damage patrol: dashboard-phone frames in, repair candidates on the city's road network out."""


def _config(path: Optional[Path]):
    from detector.config import DEFAULT_CONFIG, load_config

    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    return load_config(path)


def _thresholds_check(config: Optional[Path], cfg, weights: Optional[Path] = None) -> tuple[Optional[int], list[str]]:
    """Thresholds hold for the image size and the model they were tuned for: (the size they were tuned at, if known;
    a warning when the config now runs the model at another size — a deliberate detect.imgsz, tuned at that size, is
    quiet — and one when it runs another model than the one they were tuned for: ``weights``, else detect.weights,
    else the shipped model, told apart by content, so a copy or a move is the same model)."""
    from detector.errors import ModelError
    from detector.infer import looks_like_weights, resolve_weights
    from detector.tune import thresholds_tuned_at

    tuned = thresholds_tuned_at(config)
    if tuned is None:
        return None, []
    size, where = tuned.imgsz, tuned.path
    warnings = []
    if size != cfg.detect.imgsz:
        warnings.append(f"{where}: its thresholds were chosen by patrol tune at {size} px, but the model now runs at "
                        f"{cfg.detect.imgsz} px (detect.imgsz{f' of {config}' if config else ''}): tune them at this "
                        f"size (patrol tune DATA_YAML --config {config or where}), or set detect.imgsz: {size}")
    if tuned.sha256:
        try:
            w = resolve_weights(cfg, weights)
        except ModelError:
            w = None  # named by the command that loads it (a resumed run may not need it)
        # not a model at all: its own error says so when it is loaded, one line (no warning about it first)
        if w is not None and looks_like_weights(w):
            warnings += _model_check(tuned, Path(w), weights, cfg, config)
    return size, warnings


def _model_check(tuned, w: Path, weights: Optional[Path], cfg, config: Optional[Path]) -> list[str]:
    """Warnings when the model file ``w`` (the one inference uses) is not one the thresholds were tuned for.

    The stamp records the file tuned with and, since it records twins, the sha256 of its twin beside it then (the
    .pt and the .onnx exported from it are one model: thresholds tuned with either hold for the other). ``w`` is
    quiet when its content is one of those recorded and its twin on disk, if recorded, still is what was recorded;
    a stamp without a recorded twin (older ones: configs/default.yaml's) takes the twin on disk as it is, as
    before. Else a warning naming the file and what to do: tune for this model, or — when the twins on disk no
    longer match each other's recorded hashes (a .pt retrained beside the stale .onnx that was tuned, or the
    other way) — export the .onnx from the .pt again and tune."""
    from detector.tune import model_sha256, twin_of

    sha = model_sha256(w)
    if sha is None:
        return []

    def same(s, recorded):
        return s is not None and recorded is not None and s == recorded[: len(s)]

    twin = twin_of(w)
    twin_sha = model_sha256(twin) if twin.is_file() else None
    where = tuned.path
    src = "--weights" if weights else "detect.weights" if cfg.detect.weights else "the shipped model"
    how = f"patrol tune DATA_YAML --config {config or 'CITY.yaml'}{f' --weights {weights}' if weights else ''}"
    then = "" if config else ", then pass --config CITY.yaml"  # not into the shipped configs/default.yaml
    was = f"{tuned.model} [sha256:{tuned.sha256}]" + (f" and its twin {tuned.twin} [sha256:{tuned.twin_sha256}]"
                                                      if tuned.twin_sha256 else "")
    pt, onnx = (w, twin) if w.suffix.lower() == ".pt" else (twin, w)
    export = f"export {onnx.name} from {pt.name} again (patrol train and average-weights do so unless --no-onnx)"
    # an ONNX export of one .pt differs byte for byte each time (measured: two exports of weights/rdd-yolo.pt)
    reexported = f"if {onnx.name} was exported again from {pt.name} (each ONNX export differs byte for byte)"
    if same(sha, tuned.sha256) or same(sha, tuned.twin_sha256):
        other = tuned.twin_sha256 if same(sha, tuned.sha256) else tuned.sha256
        if tuned.twin_sha256 is None or twin_sha is None or same(twin_sha, other):
            return []  # the model tuned for; its twin as it was (or gone, or never recorded)
        head = (f"{where}: its thresholds were chosen by patrol tune for {was}; {w} ({src}) is still that model, but "
                f"{twin} beside it has changed since [sha256:{twin_sha}]")
        if twin == onnx:  # the .pt run is the one tuned; only its .onnx is new: exported again, or another model's
            return [f"{head}: {reexported}, the thresholds hold for both — tune again to record the new pair ({how}"
                    f"{then}); else {onnx.name} is no longer {pt.name}'s export — {export}"]
        return [f"{head}, so the two are no longer the pair tuned for: if {pt.name} was retrained, {onnx.name} is "
                f"stale — {export}; then tune the thresholds again ({how}{then})"]
    if tuned.twin_sha256 is None and same(twin_sha, tuned.sha256):
        return []  # a stamp without the twin's hash: the twin beside the tuned file counts as the same model
    if same(twin_sha, tuned.sha256) or same(twin_sha, tuned.twin_sha256):
        # the file run is new beside the twin tuned for: a .pt retrained (or averaged with --no-onnx) beside its
        # stale .onnx, or an .onnx replaced beside the .pt
        head = (f"{where}: its thresholds were chosen by patrol tune for {was}, but {w} ({src}) has changed since "
                f"[sha256:{sha}] and {twin} beside it has not")
        if w == onnx:  # the .pt tuned (or its twin) unchanged: this .onnx exported from it again, or another model
            return [f"{head}: {reexported}, it is still the model tuned for — tune again to record it ({how}{then}); "
                    f"else it is another model: tune the thresholds for it"]
        return [f"{head}, so the two are no longer a pair: if {pt.name} was retrained, {onnx.name} is stale — "
                f"{export}; then tune the thresholds for the new model ({how}{then})"]
    return [f"{where}: its thresholds were chosen by patrol tune for {was}, but the model is now {w} [sha256:{sha}] "
            f"({src}): tune them for this model ({how}{then})"]


def _warn_thresholds(config: Optional[Path], cfg, weights: Optional[Path] = None) -> tuple[Optional[int], list[str]]:
    """``_thresholds_check``, its warnings printed on stderr (eval; run and detect also put them in the summary)."""
    size, msgs = _thresholds_check(config, cfg, weights)
    for msg in msgs:
        err_console.print(f"warning: {msg}", soft_wrap=True, markup=False, highlight=False)
    return size, msgs


def _open_store(path: Path, cfg=None):
    """An existing registry (commands that read or edit one must not create an empty one by accident)."""
    from detector.errors import StoreError
    from detector.store import Store

    if not path.is_file():
        raise StoreError("registry not found (create one with patrol run/locate --store)", path)
    if path.stat().st_size == 0:  # (SQLite would take it for a new database: it became an empty registry)
        raise StoreError("an empty file (0 bytes), not a registry: a copy that failed, or the wrong file? (create one "
                         "with patrol run/locate --store)", path)
    return Store.for_config(path, cfg or _config(None))


def _day_option(text: Optional[str], cfg, field: str, ahead: bool = False):
    """A date option (``--since``, ``--until``) read as a crew's dates are (README: Dates a crew writes; a year left
    out: the latest such day not after today on the config's clock), a time as its day; None when not given; exit 2
    naming the option. ``ahead`` (a day planned for: the due export's ``--at``): a day without a year is the nearest
    such day, up to half a year ahead (``12/7`` typed on 11/28 is this 7 December, not last year's)."""
    if not text:
        return None
    from detector.errors import UsageError
    from detector.store import _parse_when

    today = cfg.today()
    try:
        d = _parse_when(text, today=today + timedelta(days=182) if ahead else today)
    except ValueError as e:
        raise UsageError(f"{e} (YYYY-MM-DD, 2026/1/5, 2026年1月5日, 令和8年1月5日, 11/26: see README, "
                         "Dates a crew writes)", field=field) from None
    return d.date() if isinstance(d, datetime) else d


def _status_option(values: Optional[List[str]]) -> Optional[list[str]]:
    """``--status`` (repeatable or comma-separated: ``--status new,confirmed --status 補修予定``) as its list of words,
    None when not given (each command its own default: export every status, the segments export the open ones)."""
    import re
    import unicodedata

    # NFKC: typed with the Japanese IME on, ``ｎｅｗ，ｃｏｎｆｉｒｍｅｄ`` or ``新規、確認済み`` is the same list
    return [s for v in (values or []) for s in re.split(r"[,、]", unicodedata.normalize("NFKC", v)) if s] or None


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False,
                    disable=not err_console.is_terminal and os.environ.get("PATROL_PROGRESS") != "1")


def _track_rows(t: Table, tracks) -> None:
    """The summary's rows of the track files (run, detect, label-set): each one's frames placed, or why not used."""
    for i, u in enumerate(tracks):  # the path shown normalised (--track rt/../x.gpx: …/x.gpx), the record's as given
        what = (f"not used ({u.problem})" if u.problem else
                f"{u.kind.upper()}, {u.points} points: {u.placed} frame{'s' if u.placed != 1 else ''} placed")
        t.add_row("tracks" if i == 0 else "", f"{os.path.normpath(u.path)}: {what}")


def _print_summary(s, title: str) -> None:
    t = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")  # long paths wrap whole at the terminal's width (80 in a log), never cut with "…"
    if s.frames_total:
        rej = ", ".join(f"{k} {v}" for k, v in s.rejected_reasons.items())
        t.add_row("frames", f"{s.frames_ok} used, {s.frames_rejected} rejected" + (f" ({rej})" if rej else "")
                  + (f", {s.frames_interpolated} placed by interpolation" if s.frames_interpolated else "")
                  + (f", {s.frames_from_track} placed from track files" if s.frames_from_track else "")
                  + (f", {s.frames_rear} of a rear camera" if s.frames_rear else "")
                  # (detected all the same; with --store no unseen pass of a damage: the passed unseen row)
                  + (f"; {sum(s.poor_look.values())} too dark, glared or blurred to show the road" if s.poor_look
                     else ""))
    from detector.locate import rear_heading_notes

    for i, note in enumerate(rear_heading_notes(s.rear_heading)[0]):
        t.add_row("rear camera" if i == 0 else "", note)
    _track_rows(t, s.tracks)
    for i, u in enumerate(s.videos):
        what = (f"not used ({u.problem})" if u.problem else
                f"{u.frames} frame{'s' if u.frames != 1 else ''} from {u.duration_s:.0f} s"
                + (" (taken before, reused)" if u.reused else "") + f", start {u.start} ({u.time_source})")
        t.add_row("videos" if i == 0 else "", f"{os.path.normpath(u.path)}: {what}")
    if s.sightings is None:
        t.add_row("hits", f"{s.hits}" + (f" ({s.hits_unlocated} without position)" if s.hits_unlocated else ""))
    else:  # every hit accounted for: hits = sightings + the rest
        rest = [said for n, said in (
            (s.hits_same_frame, plural(s.hits_same_frame, "more box", "more boxes")
                                + " of a damage in a frame already counted"),
            (s.hits_weak, f"{s.hits_weak} in single low-confidence sightings, not kept"),
            (s.hits_unplaced, f"{s.hits_unplaced} without position")) if n]
        t.add_row("hits", f"{s.hits} = {plural(s.sightings, 'sighting')} of {plural(s.candidates, 'candidate')} "
                          "(one per damage and frame)"
                  + "".join(f" + {r}" for r in rest))
    if s.detect_fps:
        t.add_row("speed", f"{s.detect_fps:.1f} frames/s detection")
    if s.candidates is not None:
        t.add_row("candidates", str(s.candidates))
    if s.new is not None:
        t.add_row("registry", f"{s.new} new, {s.seen_again} seen again" + (f", {s.reopened} reopened" if s.reopened else "")
                  + (f", {s.unchanged} already there (this drive was merged before)" if s.unchanged else "")
                  + (f" (run {s.run_id})" if s.run_id else ""))
        if s.passed_unseen is not None:  # (a merge without frames: where the car drove is not known)
            ring = s.unseen_ring_passes  # config store.unseen_ring_passes: report.html's dotted ring
            twice = sum(s.passed_unseen_n.get(c, 0) >= ring for c in s.passed_unseen)
            t.add_row("passed unseen", f"{plural(len(s.passed_unseen), 'known damage')} driven past without a sighting (未検出通過)"
                      + (f", {twice} of them now on {ring} or more drives since last seen" if twice else "")
                      + ("; frames too dark, glared or blurred to show the road, no unseen pass: "
                         + ", ".join(f"{d} {n}" for d, n in s.poor_look.items()) if s.poor_look else ""))
    if s.skipped_stages:
        t.add_row("skipped", ", ".join(s.skipped_stages) + " (inputs unchanged)")
    for w in s.warnings:
        t.add_row("[yellow]warning[/yellow]", w)
    if s.weights:
        t.add_row("model", str(s.weights))
    width = max([12, *map(len, s.outputs)])  # patrol_log_xlsx
    for i, (k, p) in enumerate(s.outputs.items()):
        t.add_row("outputs" if i == 0 else "", f"{k:<{width}} {p}")
    stages = ", ".join(f"{k} {v:.1f}" for k, v in s.stage_seconds.items())
    t.add_row("time", f"{s.seconds:.1f} s" + (f" ({stages})" if stages else ""))
    console.print(t)


_INSPECTOR_HELP = "巡回者: written on every drive's row of patrol_log.csv/.xlsx (instead of the config's patrol_log.inspector)"
_VEHICLE_HELP = "車両: written on every drive's row of patrol_log.csv/.xlsx (instead of the config's patrol_log.vehicle)"


def _patrol_log_fields(cfg, inspector: Optional[str], vehicle: Optional[str]):
    """The config with --inspector / --vehicle in its patrol_log section (only the patrol log reads it)."""
    if inspector is not None:
        cfg.patrol_log.inspector = inspector.strip() or None
    if vehicle is not None:
        cfg.patrol_log.vehicle = vehicle.strip() or None
    return cfg


@app.command()
def run(
    drives: List[Path] = typer.Argument(..., help="drive folders (several = several passes over the same roads)"),
    roads: Path = typer.Option(..., "--roads", help=_ROADS_HELP),
    out: Path = typer.Option(..., "--out", help="run folder for all outputs"),
    config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    weights: Optional[Path] = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    store: Optional[Path] = typer.Option(None, "--store", help=_STORE_HELP),
    no_report: bool = typer.Option(False, "--no-report", help="skip segments.geojson and report.html"),
    track: Optional[List[Path]] = typer.Option(None, "--track", help=_TRACK_HELP),
    inspector: Optional[str] = typer.Option(None, "--inspector", help=_INSPECTOR_HELP),
    vehicle: Optional[str] = typer.Option(None, "--vehicle", help=_VEHICLE_HELP),
):
    """Frames -> detections -> located -> candidates -> exports, resumable, over OUT."""
    from detector.pipeline import run_pipeline

    cfg = _patrol_log_fields(_config(config), inspector, vehicle)
    warned = _warn_thresholds(config, cfg, weights)[1]  # now, and in the summary (and summary.json) for a scheduled job
    with _progress() as progress:
        s = run_pipeline(drives, roads, out, cfg, weights=weights, store=store, progress=progress, report=not no_report,
                         tracks=track or (), warnings=warned)
    _print_summary(s, f"patrol run: {', '.join(s.drives)}")


@app.command()
def detect(
    images: Path = typer.Argument(..., help="folder of images (EXIF optional)"),
    out: Path = typer.Option(..., "--out", help="folder for detections.csv and frames.csv"),
    weights: Optional[Path] = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    conf: Optional[float] = typer.Option(None, "--conf", min=0.0, max=1.0, help="one threshold for all classes instead of the tuned ones"),
    config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    track: Optional[List[Path]] = typer.Option(None, "--track", help=_TRACK_HELP),
):
    """Detection only: writes OUT/detections.csv (lat/lon/time empty where the image has none)."""
    from detector.pipeline import detect_only

    cfg = _config(config)
    if conf is not None:
        for spec in cfg.classes.values():
            spec.threshold = conf
    warned = [] if conf is not None else _warn_thresholds(config, cfg, weights)[1]  # --conf: not the tuned ones
    with _progress() as progress:
        s = detect_only(images, out, cfg, weights=weights, progress=progress, tracks=track or (), warnings=warned)
    _print_summary(s, f"patrol detect: {images}")


@app.command()
def locate(
    detections: List[Path] = typer.Argument(..., help="detections.csv files (one per pass)"),
    roads: Path = typer.Option(..., "--roads", help=_ROADS_HELP),
    out: Path = typer.Option(..., "--out", help="folder for candidates.geojson and repair_list.csv"),
    config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    store: Optional[Path] = typer.Option(None, "--store", help=_STORE_HELP),
    inspector: Optional[str] = typer.Option(None, "--inspector", help=_INSPECTOR_HELP),
    vehicle: Optional[str] = typer.Option(None, "--vehicle", help=_VEHICLE_HELP),
):
    """Locate and deduplicate from detections files (no images needed)."""
    from detector.pipeline import locate_only

    cfg = _patrol_log_fields(_config(config), inspector, vehicle)
    s = locate_only(detections, roads, out, cfg, store=store)
    _print_summary(s, "patrol locate")


@app.command()
def train(
    data_yaml: Path = typer.Argument(..., help="YOLO data.yaml (train/val folders, names D00 D10 D20 D40)"),
    with_: Optional[List[Path]] = typer.Option(None, "--with", help="another data.yaml (repeatable), e.g. RDD's, whose train split trains together with DATA_YAML's photos (so the model keeps what it learnt); val stays DATA_YAML's; images are named city_… and <its folder>_… (--oversample city=3)"),
    with_val: bool = typer.Option(False, "--with-val", help="also validate on the --with data sets' val splits (default: DATA_YAML's val only: best.pt is chosen on the city's roads)"),
    model: Optional[Path] = typer.Option(None, "--model", help="initial weights (.pt) or model .yaml (default: the shipped model, i.e. fine-tune it); nothing is downloaded"),
    epochs: int = typer.Option(100, "--epochs", min=1, help="epochs to train (--hours overrides)"),
    imgsz: int = typer.Option(640, "--imgsz", min=32, help="training image size in pixels"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, 0, 0,1 … (default: GPU if present)"),
    out: Path = typer.Option(Path("runs/train"), "--out", help="folder of training runs (this one goes to OUT/NAME)"),
    name: str = typer.Option("rdd", "--name", help="run name: an interrupted run of this name resumes, a finished one is refused"),
    batch: int = typer.Option(16, "--batch", min=1, help="images per training batch"),
    hours: Optional[float] = typer.Option(None, "--hours", help="time budget; overrides --epochs"),
    oversample: Optional[List[str]] = typer.Option(None, "--oversample", help="KEY=N, repeatable: list train images whose name starts with KEY (e.g. Japan_, or city for the city's photos with --with) or that contain class KEY (e.g. D40) N times"),
    lr0: Optional[float] = typer.Option(None, "--lr0", help="initial learning rate (uses --optimizer, AdamW unless given)"),
    optimizer: str = typer.Option("auto", "--optimizer", help="auto | SGD | AdamW | …"),
    cache: str = typer.Option("none", "--cache", help="none | ram | disk: decoded-image cache"),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="data-loader workers (default: min(8, cores))"),
    val: bool = typer.Option(True, "--val/--no-val", help="validate after every epoch (--no-val: only after the last, which is then best.pt)"),
    export: bool = typer.Option(True, "--export/--no-export", help="export best.onnx after training"),
    hyp: Optional[List[str]] = typer.Option(None, "--hyp", help="KEY=VALUE or a YAML file of them, repeatable: other ultralytics training arguments, e.g. --hyp mixup=0.15 --hyp scale=0.7 --hyp multi_scale=0.3 --hyp save_period=10"),
    unchecked_ok: bool = typer.Option(False, "--unchecked-ok", help="train although more than half of a patrol label-set's label files are as it wrote them (boxes unchanged, not marked verified in LabelImg): only if you checked them and the model's boxes were right"),
):
    """Train (or resume an interrupted run in OUT/NAME), then export ONNX next to best.pt."""
    from detector.extras import EXPORT_MODULES, TORCH_MODULES, require_torch

    require_torch("patrol train", EXPORT_MODULES if export else TORCH_MODULES)  # before anything else is checked
    from detector.train import parse_hyp, parse_oversample
    from detector.train import train as _train

    if model is None:
        from detector.config import DEFAULT_WEIGHTS_PT

        model = DEFAULT_WEIGHTS_PT
    if cache not in ("none", "ram", "disk"):
        raise typer.BadParameter("--cache must be none, ram or disk")
    extra: dict = parse_hyp(hyp)
    if lr0 is not None:
        extra["lr0"] = lr0
        extra["optimizer"] = "AdamW" if optimizer == "auto" else optimizer
    elif optimizer != "auto":
        extra["optimizer"] = optimizer
    best = _train(data_yaml, model, out=out, name=name, epochs=epochs, imgsz=imgsz, batch=batch, device=device,
                  time_hours=hours, workers=workers, cache=False if cache == "none" else cache,
                  oversample=parse_oversample(oversample), val=val, export=export, extra=extra or None,
                  with_=with_ or None, with_val=with_val, unchecked_ok=unchecked_ok)
    console.print(f"best weights: {best}" + (f"\nONNX: {best.with_suffix('.onnx')}" if export else ""))
    # eval, tune and run use a model at the config's detect.imgsz, not at the size it was trained at: say what to set
    from detector.train import config_weights_line, trained_imgsz

    size = trained_imgsz(best, imgsz)
    use = best.with_suffix(".onnx") if export else best
    console.print(f"trained at {size} px. For your city config: {config_weights_line(use, size)}. "
                  f"Eval, tune and run use a model at detect.imgsz, {_config(None).detect.imgsz} unless set; a smaller "
                  "size is faster and may score as well: compare with patrol eval; then patrol tune at that size",
                  soft_wrap=True, markup=False, highlight=False)


@app.command("average-weights")
def average_weights(
    checkpoints: List[Path] = typer.Argument(..., help="two or more .pt checkpoints of one architecture (e.g. runs fine-tuned from one start)"),
    out: Path = typer.Option(..., "--out", help="the averaged .pt"),
    weight: Optional[List[float]] = typer.Option(None, "--weight", help="one per checkpoint, in order (default: equal)"),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="also export OUT's .onnx next to it"),
    imgsz: int = typer.Option(640, "--imgsz", min=32, help="image size of the ONNX export's metadata (the input is dynamic)"),
):
    """Average checkpoints into one model (a "model soup"); then tune and evaluate it like any other."""
    from detector.extras import EXPORT_MODULES, TORCH_MODULES, require_torch

    require_torch("patrol average-weights", EXPORT_MODULES if onnx else TORCH_MODULES)
    from detector.train import average_weights as _average, export_onnx

    path = _average(checkpoints, out, weight)
    console.print(f"averaged {len(checkpoints)} checkpoints: {path}")
    if onnx:
        console.print(f"ONNX: {export_onnx(path, imgsz=imgsz)}")


def _check_split(split: str) -> None:
    if split not in ("train", "val", "test"):
        raise typer.BadParameter(f"{split!r}: use train, val or test", param_hint="--split")


@app.command("eval")
def eval_(
    source: Path = typer.Argument(..., help="data.yaml or an images folder with a sibling labels folder"),
    weights: Optional[Path] = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    split: str = typer.Option("val", "--split", help="val | test | train (ignored for an images folder)"),
    config: Optional[Path] = typer.Option(None, "--config", help="municipality YAML: thresholds, detect.weights and imgsz "
                                                                 "(default configs/default.yaml)"),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON file (default: ./eval-<data set>-<split>.json, or for an images folder ./eval-<data set>-<folder>-folder.json; -<prefix> added)"),
    prefix: Optional[List[str]] = typer.Option(None, "--prefix", help="only images whose file name starts with this (repeatable), e.g. Japan_"),
    errors: Optional[Path] = typer.Option(None, "--errors", help="folder: each photo with a mistake drawn (<stem>.jpg), "
                                          "errors.csv (one row per mistake, worst photos first) and index.html; a new "
                                          "or empty folder, or one an earlier --errors wrote (its files replaced)"),
):
    """F1 (IoU>0.5, right class, ≤5 boxes an image), precision, recall, mAP50 per class and per source."""
    from detector.evaluate import default_eval_json, evaluate, format_table, predict_split, replaced_model, write_eval_json
    from detector.infer import resolve_weights

    _check_split(split)
    cfg = _config(config)
    w = resolve_weights(cfg, weights)  # --weights, else the config's detect.weights, else the shipped model
    if errors is not None:
        from detector.evalerrors import check_dir

        check_dir(errors)  # before the predictions: a folder of other files is refused at once
    tuned_at = _warn_thresholds(config, cfg, weights)[0]
    preds = predict_split(source, w, cfg, split, prefixes=prefix or None) if errors is not None else None
    res = evaluate(source, w, cfg, split=split, prefixes=prefix or None, preds=preds)
    if tuned_at is not None:
        res = {**res, "thresholds_tuned_at": tuned_at}
    console.print(format_table(res))
    path = out or default_eval_json(source, split, prefix)  # ./eval-<data set>-<split or folder>[-<prefix>].json
    held = replaced_model(path, res)  # comparing models: the first one's scores must not vanish without a word
    write_eval_json(res, path)
    if held:
        err_console.print(f"note: {path} held the scores of another model, {held}; replaced by these (pass --out "
                          "to keep each model's)", soft_wrap=True, markup=False, highlight=False)
    console.print(f"weights: {w} at {cfg.detect.imgsz} px\nwritten: {path}")
    if errors is not None:
        from detector.evalerrors import write_errors

        summ = write_errors(preds, res["thresholds"], errors, cfg, res["max_boxes"], res["iou"],
                            title=f"patrol eval {source} · {res['split']} · F1 {res['f1']:.3f}")
        for problem in summ.failed:
            err_console.print(f"warning: {problem}; not drawn", soft_wrap=True, markup=False, highlight=False)
        console.print(f"errors: {errors}: {plural(summ.n_images, 'photo')} with mistakes ({summ.n_drawn} drawn), "
                      f"{summ.n_fp} false alarms, {summ.n_duplicate} duplicates, {summ.n_fn} missed, "
                      f"{summ.n_wrong_class} wrong class, {summ.n_misplaced} misplaced "
                      f"(= the FP {res['fp']} and FN {res['fn']} above, a wrong class or a misplaced box counting as "
                      f"one of each, a duplicate as one FP); {errors / 'errors.csv'}, {errors / 'index.html'}"
                      + (f"; {plural(summ.replaced, 'file')} of the earlier run replaced" if summ.replaced else ""),
                      soft_wrap=True, markup=False, highlight=False)


@app.command()
def tune(
    data_yaml: Path = typer.Argument(..., help="YOLO data.yaml of labelled images"),
    config: Path = typer.Option(..., "--config", help="municipality YAML to write the thresholds into"),
    weights: Optional[Path] = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    split: str = typer.Option("val", "--split", help="the split of DATA_YAML to tune on: val | test | train"),
    prefix: Optional[List[str]] = typer.Option(None, "--prefix", help="tune only on images whose file name starts with this (repeatable), e.g. Japan_ for a Japanese city"),
):
    """Pick per-class thresholds that maximise F1 and write them into CONFIG (nothing else changes).

    Tuned on DATA_YAML's split with --weights, else CONFIG's detect.weights, else the shipped model."""
    from detector.config import load_config
    from detector.infer import resolve_weights
    from detector.tune import tune as _tune

    _check_split(split)
    cfg = load_config(config if config.exists() else None)
    old = cfg.thresholds()
    w = resolve_weights(cfg, weights)
    res = _tune(data_yaml, w, config, split=split, cfg=cfg, prefixes=prefix or None)
    only = f", {' '.join(prefix)} only" if prefix else ""
    # a line of its own: as the table's title it was wrapped to the width of the three columns, paths cut apart
    console.print(f"patrol tune: {w} at {cfg.detect.imgsz} px on {data_yaml} ({split}{only})", soft_wrap=True)
    t = Table(box=None, pad_edge=False)
    for col in ("class", "threshold", "was", "boxes"):
        t.add_column(col)

    def thr(v: float) -> str:  # two decimals (the grid's step), more only where a hand-set value has them
        return f"{v:.2f}" if abs(round(v, 2) - v) < 5e-5 else f"{round(v, 4)}"

    for c in old:
        t.add_row(c, thr(res[c]), thr(old[c]), str(res["n_boxes"][c])
                  + ("  (kept: no labelled box of this class)" if c in res["kept"] else ""))
    console.print(t)
    console.print(f"F1 {res['f1_before']:.3f} → {res['f1_after']:.3f}\nwritten: {config}")
    from detector.tune import MIN_BOXES

    for c, n in res["few"].items():  # a threshold chosen on a handful of boxes: the user should know before a run
        boxes = f"only {n} labelled box{'es' if n > 1 else ''} in the {split} split"
        more = f"label more photos with {c} (at least {MIN_BOXES} boxes)"
        if round(float(old[c]), 4) == round(float(res[c]), 4):  # kept: nothing in the config to set back
            msg = (f"{boxes}: its threshold {thr(old[c])} was kept (none on the grid scores better on them), which "
                   f"confirms little; {more} and tune again")
        else:
            msg = (f"{boxes}, so its threshold {thr(old[c])} → {thr(res[c])} rests on chance; {more}, or set "
                   f"classes.{c}.threshold in {config} back to {thr(old[c])} by hand")
        err_console.print(f"warning: {c}: {msg}", soft_wrap=True, markup=False, highlight=False)
    if not res["layout_kept"]:
        console.print(f"[yellow]note:[/yellow] {config}'s classes are not in block style, so the file was rewritten "
                      "as a whole: values kept, comments lost")


@app.command("label-set")
def label_set(
    drives: List[Path] = typer.Argument(..., help="drive folders (photos or videos, as patrol run reads them)"),
    out: Path = typer.Option(..., "--out", help="folder for the label set (new, empty, or an earlier label-set's)"),
    n: int = typer.Option(200, "--n", min=1, help="how many frames to choose"),
    config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP + ": its tuned thresholds"),
    weights: Optional[Path] = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    track: Optional[List[Path]] = typer.Option(None, "--track", help=_TRACK_HELP),
):
    """Choose the frames worth labelling (the model's borderline calls first, some clear hits, a few empty
    frames, spread along the drives) and write them with pre-labels for LabelImg (Pascal VOC) and a data.yaml."""
    from detector.infer import resolve_weights
    from detector.labelset import (MIN_GAP_S, REASONS, SPLIT_GAP_M, SPLIT_GAP_S, VAL_SHARE, check_dir,
                                   make_label_set)
    from detector.pipeline import WORK

    cfg = _config(config)
    w = resolve_weights(cfg, weights)
    check_dir(out)  # before anything is read: a folder of other files is refused at once
    _warn_thresholds(config, cfg, weights)
    with _progress() as progress:
        s = make_label_set(drives, out, cfg, w, n=n, progress=progress, config=config, tracks=track or ())
    t = Table(title=f"patrol label-set: {', '.join(str(d) for d in drives)}", show_header=False,
              title_justify="left", box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    rej = Counter(r.split(":")[0] for _, r in s.rejected)
    t.add_row("frames", f"{s.frames_ok} read, {len(s.rejected)} rejected"
              + (f" ({', '.join(f'{k} {v}' for k, v in rej.most_common())})" if rej else "")
              + (f", {s.frames_from_track} placed from track files" if s.frames_from_track else "")
              + f"; {s.frames_placed} with a position"
              + (f"; {s.poor_look} too dark, glared or blurred to show the road (frames.csv's look: chosen only "
                 "where others run short)" if s.poor_look else ""))
    for i, (name, reason) in enumerate(s.rejected[:10]):
        t.add_row("rejected" if i == 0 else "", f"{name}: {reason}")
    if len(s.rejected) > 10:
        t.add_row("", f"… and {len(s.rejected) - 10} more (every file's status and reason in {out / 'frames.csv'})")
    _track_rows(t, s.tracks)
    for i, u in enumerate(s.videos):
        t.add_row("videos" if i == 0 else "", f"{os.path.normpath(u.path)}: "
                  + (f"not used ({u.problem})" if u.problem else f"{plural(u.frames, 'frame')} from {u.duration_s:.0f} s"))
    avail = ", ".join(f"{k} {s.available[k]}" for k in REASONS if s.available[k])
    t.add_row("chosen", f"{sum(s.chosen.values())}: "
              + ", ".join(f"{k} {s.chosen[k]}" for k in REASONS if s.chosen[k])
              + f" (of {avail})"
              + (f"; {s.chosen_poor} of them too dark, glared or blurred" if s.chosen_poor else ""))
    t.add_row("spread", f"at least {s.gap_s:g} s apart in a drive"
              + (f" and {s.gap_m:g} m apart" if s.frames_placed else "")
              + (" (halved until enough frames were found)" if s.gap_s < MIN_GAP_S else "")
              + ("" if s.frames_placed else "; not by place: no frame has a position"))
    n_val = sum(p.split == "val" for p in s.picks)
    t.add_row("split", f"{len(s.picks) - n_val} train, {n_val} val: "
              + ((f"val is whole stretches of the drives, every val frame at least {SPLIT_GAP_M:g} m from every train "
                  f"frame ({SPLIT_GAP_S:g} s in a drive where one has no position)" if s.frames_placed else
                  f"val is whole stretches of each drive by time (no frame has a position: see the warning), every "
                  f"val frame at least {SPLIT_GAP_S:g} s from every train frame of its drive") if s.val_apart else
                 "warning: no stretch of the drives could be kept apart for val (drives of one frame): the last "
                 "frame is val, and may show what a train frame shows")
              + (f"; {len(s.picks)} of --n {n}: the other frames lie within the gap of a val frame or on a val "
                 f"stretch beyond val's {VAL_SHARE:.0%} of the picks (in neither split)"
                 if len(s.picks) < min(n, s.frames_ok) else ""))
    for wn in s.warnings:
        t.add_row("[yellow]warning[/yellow]", wn)
    t.add_row("model", f"{w} at {cfg.detect.imgsz} px")
    t.add_row("written", f"{out} (images/, annotations/xmls/, data.yaml, train.txt, val.txt, label-set.csv, "
              "label-set.json, README.txt, frames.csv)"
              + (f"; {plural(s.replaced, 'file')} of the earlier label-set replaced" if s.replaced else ""))
    t.add_row("next", f"1. LabelImg: Open Dir {out / 'images'}, Change Save Dir {out / 'annotations' / 'xmls'}, "
              "format PascalVOC; check, fix and save every photo (one without damage saved with no box); press Space on "
              "one whose boxes are right as they are (train refuses a set more than half of whose label files are "
              "unchanged and not so verified)")
    t.add_row("", f"2. patrol train {out / 'data.yaml'} --with <RDD data.yaml> (your photos with the ones the "
              "model learnt from; train.txt / val.txt: the split above)")
    cfg_name = config if config else "<your city's config>"
    t.add_row("", f"3. put the detect: line train prints at its end into {cfg_name}, then patrol tune "
              f"{out / 'data.yaml'} --config {cfg_name} (without that line tune tunes the shipped model; steps in "
              f"{out / 'README.txt'}, its paths relative to the folder: it may be copied elsewhere)")
    t.add_row("time", f"{s.seconds:.1f} s (prediction {s.predict_seconds:.1f} s: {s.predicted} frames predicted, "
              f"{s.from_cache} taken from the cache of earlier label-sets in {out / WORK}"
              + (f"; its {s.cache_dropped} stale lines dropped" if s.cache_dropped else "") + ")")
    console.print(t)


_STAMP_CONFIG_HELP = "municipality YAML whose timezone stamps the change (default configs/default.yaml: Asia/Tokyo)"


@app.command()
def status(
    store: Path = typer.Argument(..., help=_REGISTRY_HELP),
    candidate_ids: List[str] = typer.Argument(..., metavar="ID [ID ...]", help="registry id, e.g. R-000012; several "
                                              "(R-000024 R-000025, or a jobs list's candidate_ids R-000024;R-000025): "
                                              "each set in turn; or a repair job's id, e.g. 工区-003 (its damages as "
                                              "the latest jobs list naming each gave them: with --set, its open ones)"),
    set_: Optional[str] = typer.Option(None, "--set", help="confirmed | scheduled | repaired | not_an_issue (or 確認済み, 補修予定, 補修済み, 対象外); new and reopened are set by patrol; without it: show the damage's status and passes, or the job's damages"),
    note: Optional[str] = typer.Option(None, "--note", help="note (status_note); without --note the candidate keeps "
                                                            "its note; the history keeps every note (a job's "
                                                            "damages: the job's id before it, 工区-003: note)"),
    who: Optional[str] = typer.Option(None, "--who", help="who checked (checked_by; kept in the history)"),
    when: Optional[str] = typer.Option(None, "--at", help="when it happened, default now: the repair date with --set "
                                                        "repaired (2026-11-23, 2026/11/23 14:30, 令和8年11月23日, "
                                                        "11/23; README: Dates a crew writes)"),
    config: Optional[Path] = typer.Option(None, "--config", help=_STAMP_CONFIG_HELP),
):
    """Change registry candidates' status (history is kept); without --set, show each and the drives past it. A
    repair job's id (工区-003): its damages shown, or its open ones set."""
    from detector.errors import PatrolError, UsageError
    from detector.jobs import parse_job_id

    # r-000012 is R-000012, as merge and the crew's list read it; a jobs list's R-000024;R-000025 is two; once each
    ids = list(dict.fromkeys(c.strip().upper() for a in candidate_ids for c in a.replace(",", ";").split(";")
                             if c.strip()))
    if not ids:
        raise UsageError("give a registry id (R-000012)", field="ID")
    jobs = [parse_job_id(c) for c in ids]
    if any(jobs):  # repair jobs (工区-003): their damages by the registry's job record
        if not all(jobs):
            raise UsageError("give repair job ids (工区-003) or damage ids (R-000024), not both (a job's damages are "
                             "set where open; a damage id is set as given)", field="ID")
        _status_jobs(store, list(dict.fromkeys(jobs)), set_, note, who, when, config)
        return
    if set_ is None:
        if note is not None or who is not None or when is not None:
            raise UsageError("--note, --who and --at go with --set STATUS (without --set: the damage is shown)",
                             field="--set")
        with _open_store(store, _config(config)) as st:
            for k, cid in enumerate(ids):
                if k:
                    console.print("")
                _show_damage(st, cid)
        return
    if len(ids) == 1:
        _set_one(store, ids[0], set_, note, who, when, config)
        return
    # several: each set in turn (its own change, as `patrol status` of each), one refused (unknown, merged, a transition
    # not allowed) named and the others still set; exit 2 where any was refused
    failed, had = _set_each(store, ids, set_, note, who, when, config)
    done = len(ids) - len(failed) - had
    console.print(f"{done} of {len(ids)} damages set to {set_}"
                  + (f" ({had} {'was' if had == 1 else 'were'} {set_} already)" if had else "")
                  + (f"; not set: {', '.join(failed)}" if failed else ""),
                  markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise PatrolError(f"{len(failed)} of {len(ids)} not set (above): {', '.join(failed)}", store)


def _change_time(when: Optional[str], cfg) -> object:
    """``patrol status --at``: the time of the change as the store takes it (None or '': now), read as the import
    reads a crew's 確認日; a date in the future or one that cannot be read: UsageError naming --at."""
    if when is None or not when.strip():
        return when
    from detector.errors import UsageError
    from detector.store import FutureDateError, parse_change_time

    try:  # a change is not dated in the future (a typed 2027 for 2026)
        return parse_change_time(when, cfg.now())
    except FutureDateError as e:
        raise UsageError(str(e), field="--at") from None
    except ValueError as e:
        raise UsageError(f"{e} (README: Dates a crew writes)", field="--at") from None


def _set_each(store: Path, ids: list, set_: str, note, who, when, config, job: str | None = None
              ) -> tuple[list[str], int]:
    """``_set_one`` of each id in turn (its own change, as `patrol status` of each): (the ids refused — unknown,
    merged, a transition the life cycle does not allow — each named on stderr, the others still set; how many had
    that status already and were left as they were). The command's own mistake (its --at, an unknown status) ends it:
    none would be set. ``job``: the repair job they are set as (``_set_one``)."""
    from detector.errors import UsageError

    failed, had = [], 0
    for cid in ids:
        try:
            had += not _set_one(store, cid, set_, note, who, when, config, job=job)
        except UsageError as e:
            if e.field == "--at" or "unknown status" in e.reason:
                raise
            err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
            failed.append(cid)
    return failed, had


def _set_one(store: Path, candidate_id: str, set_: str, note, who, when, config, job: str | None = None) -> bool:
    """``patrol status STORE ID --set S`` of one damage: its change and its line (and a repair a sighting held);
    whether its status changed (False: it had that status already). ``job`` (``patrol status STORE 工区-003 --set
    S``): the history row's note names it (``store.job_note``)."""
    from detector.store import status_label

    def n_history(st) -> int:  # a note or checker kept with the status a damage has adds a history row
        return st.con.execute("SELECT COUNT(*) FROM status_history WHERE candidate_id=?", (candidate_id,)).fetchone()[0]

    cfg = _config(config)
    stamp = _change_time(when, cfg)  # read once, here; the store takes it as read
    with _open_store(store, cfg) as st:
        before, rows = st.status_of(candidate_id), n_history(st)
        seen: list = []  # a repair dated before a sighting held: recorded and reopened at once
        changed = st.set_status(candidate_id, set_, note=note, who=who, when=stamp, seen=seen, job=job)
        (now, at) = st.con.execute("SELECT status, repaired_at FROM candidates WHERE candidate_id=?",
                                   (candidate_id,)).fetchone()
        kept = n_history(st) > rows
        converted = st.conversion_notice()
    # what the registry now holds, as the exports label it: not what was typed (補修予定 is stored as scheduled)
    if changed:
        done = "repaired" if seen else now  # the repair recorded, then reopened (the line below says why)
        msg = f"{candidate_id}: {before} -> {status_label(done)}" + (f", repaired at {at}" if done == "repaired" else "")
    else:
        msg = f"{candidate_id}: already {status_label(now)}, status unchanged" + (
            "; note kept" if kept else "; nothing new" if note or who else "")
    console.print(msg, markup=False, highlight=False, soft_wrap=True)
    for s in seen:
        console.print(s.message, markup=False, highlight=False, soft_wrap=True)
    if converted:
        err_console.print(f"warning: {converted}", markup=False, highlight=False, soft_wrap=True)
    return bool(changed)


def _unknown_job(st, job_id: str) -> str:
    """Why ``job_id`` names no job of the registry ``st``, with the nearest ids it holds (by number)."""
    from detector.jobs import ID_PREFIX, nearest_ids

    held = st.held_jobs()
    if not len(held):
        return (f"{job_id}: no such repair job: no jobs list was exported from this registry (patrol export "
                f"{st.path_word} --format jobs --roads ROADS --out 補修工区.xlsx gives the ids)")
    near = nearest_ids(int(job_id[len(ID_PREFIX):]), held["number"])
    return (f"{job_id}: no such repair job in the registry; nearest: {', '.join(near)} (its jobs lists gave "
            f"{held['job_id'].iloc[0]} … {held['job_id'].iloc[-1]})")


def _status_jobs(store: Path, job_ids: list[str], set_, note, who, when, config) -> None:
    """``patrol status STORE 工区-003 [--set S]``: each job's damages (as the latest jobs list naming each gave them:
    ``Store.job_record``), with their status and when the job was first and last listed; with ``--set``, those of
    them still open set in turn (``_set_one``, as several ids are: one the life cycle refuses named, the others set),
    those not open (repaired, not an issue; merged into another) skipped, each said with why. Exit 2 where one was
    refused, or where a job had none open and none already had the status asked for (nothing done: the wrong job?)."""
    from detector.errors import PatrolError, UsageError
    from detector.store import CREW_STATUSES_TEXT, OPEN_STATUSES, STATUSES, normalize_status, status_label

    if set_ is None and (note is not None or who is not None or when is not None):
        raise UsageError("--note, --who and --at go with --set STATUS (without --set: the job is shown)",
                         field="--set")
    cfg = _config(config)
    target = None
    if set_ is not None:  # the command's own mistakes, before any damage is set: none would be
        target = normalize_status(set_)
        if target not in STATUSES:
            raise UsageError(f"unknown status {set_!r}; expected {CREW_STATUSES_TEXT}", field="--set")
        _change_time(when, cfg)
    shown: list[tuple[dict, list[tuple]]] = []
    with _open_store(store, cfg) as st:
        for job in job_ids:
            rec = st.job_record(job)
            if rec is None:
                raise UsageError(_unknown_job(st, job), st.path)
            rows = []
            got = st.job_damage_rows(rec["damages"])
            for r in got.astype(object).where(got.notna(), None).to_dict("records"):
                merged = st.merged_text(r["candidate_id"]) if r["merged_into"] else None
                final = st.final_target(r["candidate_id"]) if r["merged_into"] else None
                rows.append((r, merged, final, st._local(r["repaired_at"]) if r["repaired_at"] else None))
            rec["first"], rec["last"] = st._local(rec["first_exported"]), st._local(rec["last_exported"])
            shown.append((rec, rows))
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    failed: list[str] = []
    for k, (rec, rows) in enumerate(shown):
        if k:
            console.print("")
        job = rec["job_id"]
        n_open = sum(1 for r, merged, *_ in rows if merged is None and r["status"] in OPEN_STATUSES)
        say(f"{job}: {plural(len(rows), 'damage')} ({n_open} open) by the latest jobs list naming each; first "
            f"listed {rec['first']}, last listed {rec['last']}")
        if set_ is None:
            for r, merged, _, repaired in rows:
                if merged is not None:
                    say(f"  {merged}")
                    continue
                say(f"  {r['candidate_id']}  {status_label(r['status'])}"
                    + (f", repaired at {repaired}" if r["status"] == "repaired" and repaired else "")
                    + f"  {r['class']}" + (f"  '{r['status_note']}'" if r["status_note"] else ""))
            if rec["elsewhere"]:
                say("  earlier lists gave it also: " + ", ".join(f"{c} (now {j})" for c, j in
                                                                 rec["elsewhere"].items()))
            continue
        todo, skipped, already = [], [], 0
        for r, merged, final, _ in rows:
            cid, now = r["candidate_id"], r["status"]
            if merged is not None:
                skipped.append(cid)
                say(f"{cid}: merged into {final} (its status is {final}'s): skipped")
            elif now not in OPEN_STATUSES:
                skipped.append(cid)
                already += now == target
                say(f"{cid}: {'already ' if now == target else ''}{status_label(now)}, not open: skipped")
            else:
                todo.append(cid)
        # (had: a job set to scheduled again); each change's history note names the job (工区-003[: the --note])
        not_set, had = _set_each(store, todo, set_, note, who, when, config, job=job)
        say(f"{job}: " + (f"{len(todo) - len(not_set) - had} of {plural(len(todo), 'open damage')} set to {set_}"
                          + (f" ({had} {'was' if had == 1 else 'were'} {set_} already)" if had else "") if todo
                          else f"no open damage to set to {set_}")
            + (f"; skipped (not open): {', '.join(skipped)}" if skipped else "")
            + (f"; not set: {', '.join(not_set)}" if not_set else ""))
        failed += not_set
        if not todo and not already:
            err_console.print(f"error: {job}: none of its {plural(len(rows), 'damage')} is open: none set to {set_}",
                              markup=False, highlight=False, soft_wrap=True)
            failed.append(job)
    if failed:
        raise PatrolError(f"not set (above): {', '.join(failed)}", store)


def _show_damage(st, candidate_id: str) -> None:
    """``patrol status STORE ID`` without --set: the damage's status, its history (every change in the order recorded: when,
    from -> to, who, note, source) and its passes' counts and each pass (latest first), with its look where its frames
    could not show the road (README passes)."""
    from detector.errors import UsageError
    from detector.store import status_label

    if (merged := st.merged_text(candidate_id)) is not None:
        console.print(merged, markup=False, highlight=False, soft_wrap=True)
        return
    q = st.states([candidate_id])
    if not len(q):
        raise UsageError(f"{candidate_id}: no such candidate in the registry", st.path)
    r = q.iloc[0]
    # the note of the status it has: a reopened damage's is the reopen's reason, not the repair's note it keeps
    note = st.status_note_now(candidate_id)
    console.print(f"{candidate_id}: {status_label(r['status'])}" + (f" ({note})" if note else ""),
                  markup=False, highlight=False, soft_wrap=True)
    # the audit trail: every change, by whom or by what (patrol's own: "patrol (run …)", "patrol (the merge of …)")
    hist = st.history(candidate_id)
    console.print(f"history (状態履歴): {len(hist)} change{'s' if len(hist) != 1 else ''}", markup=False,
                  highlight=False, soft_wrap=True)
    # an empty cell is None, or NaN once another row of the column holds text (pandas): never printed as "nan"
    hist = hist.astype(object).where(hist.notna(), None)
    for h in hist.itertuples(index=False):
        at = str(h.at or "")[:16].replace("T", " ")
        move = f"{h.from_status} -> {h.to_status}" if h.from_status and h.from_status != h.to_status else h.to_status
        # a creation row (the damage found: new) an older patrol wrote names no one: the run made it
        who = h.who or (f"patrol (run {h.run_id})" if h.run_id else "")
        parts = [f"  {at}  {move}", f"by {who}" if who else "", f"'{h.note}'" if h.note else "",
                 f"[{h.source}]" if h.source else ""]
        console.print("  ".join(x for x in parts if x), markup=False, highlight=False, soft_wrap=True)
    _show_sizes(st, candidate_id)
    if r["n_passes"] is None:
        return  # (a registry of schema 3 read as it is: no passes kept)
    console.print(f"passes: {r['n_passes']} (通過回数), {r['n_unseen']} unseen since its last sighting (未検出通過), "
                  f"{r['n_poor_look']} in frames too dark, glared or blurred, not counted unseen (撮影不良通過)",
                  markup=False, highlight=False, soft_wrap=True)
    for drive, at, dist, sighted, look in st.passes_of(candidate_id):
        what = "seen" if sighted else f"not seen: {look}" if look else "not seen"
        at = str(at)[:16].replace("T", " ") if at else "time unknown"  # (as the history's times: to the minute)
        console.print(f"  {at}  {drive}  " + (f"{dist:.1f} m  " if dist is not None else "") + what,
                      markup=False, highlight=False, soft_wrap=True)


def _show_sizes(st, candidate_id: str) -> None:
    """``patrol status STORE ID``: the damage's est. area as each drive saw it (``Store.drive_areas``, oldest first;
    "compared" on the two ``Store.growth`` compares; "before the repair" on those a damage seen after its latest
    repair no longer compares) and whether it has grown since first seen (悪化, README
    Worsening)."""
    import math

    from detector.errors import plural

    per = st.drive_areas(candidate_id)
    if not len(per):
        return  # (no size estimate: a camera without its field of view known, or a run without one)
    rule = st.growth_rule
    per = per.sort_values(["t", "drive"], kind="mergesort", na_position="last")
    since = st.since_repair(per)  # (a damage seen after its latest repair: the drives after it only)
    ok = per[since & (per["n"] >= rule.min_sightings)]
    (rep_at,) = st.con.execute("SELECT repaired_at FROM candidates WHERE candidate_id=?", (candidate_id,)).fetchone()
    after = f" after its repair of {rep_at}" if not since.all() else ""
    compared = {ok["drive"].iloc[0], ok["drive"].iloc[-1]} if len(ok) > 1 else set()
    g = st.growth(rule, candidate_id)  # (its own sightings: not the whole registry's)
    row = g.loc[candidate_id] if candidate_id in g.index else None
    if row is not None and row["growth"] is not None:
        head = (f"size (推定面積): {'grown (悪化)' if row['grown'] else 'not grown'} ×{row['growth']:.2f}, "
                f"{row['area_first_m2']:.2f} -> {row['area_last_m2']:.2f} m² (the first and the latest drive{after} that "
                f"saw it in {plural(rule.min_sightings, 'frame')} or more; grown: ×{rule.ratio:g} and "
                f"+{rule.min_m2:g} m² or more)")
    else:
        head = (f"size (推定面積): no two drives{after} to compare (a drive compared saw it in "
                f"{plural(rule.min_sightings, 'frame')} or more)")
    console.print(head, markup=False, highlight=False, soft_wrap=True)
    for d, now in zip(per.itertuples(index=False), since):
        at = (datetime.fromtimestamp(d.t, st.tz).strftime("%Y-%m-%d %H:%M")  # (as the passes': to the minute)
              if isinstance(d.t, float) and math.isfinite(d.t) else "time unknown")
        console.print(f"  {at}  {d.drive}  {d.area:.2f} m²  ({plural(int(d.n), 'frame')})"
                      + ("  compared" if d.drive in compared else "" if now else "  before the repair (補修前)"),
                      markup=False, highlight=False, soft_wrap=True)


@app.command()
def merge(
    store: Path = typer.Argument(..., help=_REGISTRY_HELP),
    candidate_id: str = typer.Argument(..., metavar="ID", help="the registry id that goes, e.g. R-000031"),
    into: Optional[str] = typer.Option(None, "--into", metavar="TARGET_ID", help="the registry id that stays, e.g. "
                                                                               "R-000012: it keeps its class and status (a repaired one "
                                                                               "that ID was seen after: reopened)"),
    undo: bool = typer.Option(False, "--undo", help="undo ID's merge: ID is its own damage again, its sightings back "
                                                    "(those later runs added stay TARGET_ID's)"),
    force: bool = typer.Option(False, "--force", help="merge two damages further apart than 4 × "
                                                      "store.match_distance_m (at least 100 m), refused without it"),
    note: Optional[str] = typer.Option(None, "--note", help="why (kept in both damages' history)"),
    who: Optional[str] = typer.Option(None, "--who", help="who decided (kept in the history)"),
    config: Optional[Path] = typer.Option(None, "--config", help=_STAMP_CONFIG_HELP + "; store.pass_radius_m and "
                                                                 "locate.heading_tolerance_deg for the passes"),
):
    """Two registry candidates are one damage: ID's sightings become TARGET_ID's (ID kept as a record, history kept);
    --undo gives them back."""
    from detector.errors import UsageError

    if undo == (into is not None):
        raise UsageError("patrol merge REGISTRY ID: give --into TARGET_ID (merge ID into it) or --undo (undo ID's "
                         "merge), " + ("not both" if undo else "one of them"))
    cfg = _config(config)
    with _open_store(store, cfg) as st:
        if undo:
            res = st.unmerge_candidate(candidate_id, note=note, who=who, cfg=cfg)
        else:
            res = st.merge_candidates(candidate_id, into, note=note, who=who, cfg=cfg, force=force)
        converted = st.conversion_notice()
    console.print(res.message, markup=False, highlight=False, soft_wrap=True)
    for line in res.notes:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    if converted:
        err_console.print(f"warning: {converted}", markup=False, highlight=False, soft_wrap=True)


@app.command("import-verification")
def import_verification(
    store: Path = typer.Argument(..., help=_REGISTRY_HELP),
    file: Path = typer.Argument(..., help="the list the crew filled in: CSV (UTF-8 or Shift_JIS) or Excel's Unicode text (UTF-16, tab-separated), the .xlsx of `patrol export --format xlsx`, the photo ledger (写真台帳) of `--format ledger`, or the repair jobs list (補修工区) of `--format jobs` (csv, xlsx: a row for every damage of its job)"),
    undo: bool = typer.Option(False, "--undo", help="take back the latest import of FILE (by its name; the file "
                                                    "itself is not read): every damage it changed gets back its status, "
                                                    "note, checker and dates; one changed since is left and named"),
    note: Optional[str] = typer.Option(None, "--note", help="with --undo: why (kept in the history)"),
    who: Optional[str] = typer.Option(None, "--who", help="with --undo: who decided (kept in the history)"),
    config: Optional[Path] = typer.Option(None, "--config", help=_STAMP_CONFIG_HELP),
):
    """Take back a field crew's repair list: status, note, issue type, who, when; --undo takes the latest import
    of FILE back."""
    from detector.errors import UsageError

    if not undo and (note is not None or who is not None):
        raise UsageError("patrol import-verification: --note and --who go with --undo (an import takes the notes and "
                         "checkers the crew wrote in the list)")
    if undo:
        with _open_store(store, _config(config)) as st:
            res = st.undo_import(file, note=note, who=who)
            converted = st.conversion_notice()
        if converted:
            err_console.print(f"warning: {converted}", markup=False, highlight=False, soft_wrap=True)
        for line in res.notes:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        # the damages changed since the import, left as they are: the office decides (as for held rows: exit 0)
        for line in res.left_lines:
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(res.message, markup=False, highlight=False, soft_wrap=True)
        return
    with _open_store(store, _config(config)) as st:
        rep = st.import_verification(file)
        converted = st.conversion_notice()
    from detector.store import status_label

    if converted:
        err_console.print(f"warning: {converted}", markup=False, highlight=False, soft_wrap=True)
    for note in rep.notes:  # (a ledger's blocks deleted: nothing of them imported)
        err_console.print(f"warning: {file}: {note}", markup=False, highlight=False, soft_wrap=True)

    if rep.jobs is not None:  # a jobs list (補修工区): each row applied to its job's damages, counted below by damage
        done = {line for line, *_ in rep.changes}
        console.print(f"jobs list: {len(done)} of {plural(len(rep.jobs), 'job')} applied, to "
                      f"{plural(len(rep.applied), 'damage')} (of {sum(map(len, rep.jobs.values()))} in the list)",
                      markup=False, highlight=False)
    # a jobs list's rows whose 状態 is blank (as exported where a job's damages' statuses differ, and nothing else
    # written on them): their damages left as they are, counted so that the counts add up to the list's damages
    blank = [line for line in rep.skipped if rep.jobs and line in rep.jobs]
    left = (f", left blank {sum(len(rep.jobs[line]) for line in blank)} (in {plural(len(blank), 'job')} of mixed "
            "status, 状態 empty: left as they are)") if blank else ""
    console.print(f"applied {len(rep.applied)}, notes {len(rep.noted)}, unchanged {len(rep.unchanged)}, "
                  f"outdated {len(rep.outdated)}, not applied {len(rep.unmatched)}, held {len(rep.held)}{left}",
                  markup=False, highlight=False, soft_wrap=True)
    # the changes applied, by the statuses stored (a crew's 予定 or 補修予定 is scheduled (補修予定))
    groups: dict[tuple[str, str], list[str]] = {}
    for _, cid, was, to in rep.changes:
        groups.setdefault((was, to), []).append(cid)
    for (was, to), cids in groups.items():
        shown = ", ".join(cids[:10]) + (f" … ({len(cids) - 10} more)" if len(cids) > 10 else "")
        console.print(f"  {was} -> {status_label(to)}: {len(cids)} ({shown})", markup=False, highlight=False,
                      soft_wrap=True)
    for row_no, what in rep.merged:  # (rows of a damage merged into another: taken as that one's, classified below)
        console.print(f"{file}: {rep.at(row_no)}: {what}", markup=False, highlight=False, soft_wrap=True)
    # (seen after: a repair dated before a sighting; repair date kept: a crew's repair of a damage repaired already)
    for row_no, what in sorted(rep.outdated + rep.newer + rep.seen_after + rep.repair_date_kept):
        console.print(f"{file}: {rep.at(row_no)}: {what}", markup=False, highlight=False, soft_wrap=True)
    # rows the registry changed after the list was exported, whose crew wrote another status: the office decides
    for row_no, what in rep.held:
        err_console.print(f"{file}: {rep.at(row_no)}: {what}", markup=False, highlight=False, soft_wrap=True)
    for row_no, reason in rep.unmatched:
        err_console.print(f"{file}: {rep.at(row_no)}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if rep.unmatched:  # a script (or a scheduled task) importing lists must see that rows were refused: exit 3
        n = len(rep.unmatched)
        unit = "block" if rep.what == "ledger" else "row"
        err_console.print(f"error: {file}: {n} {unit}{'s' if n > 1 else ''} not applied (above): correct "
                          f"{'them' if n > 1 else 'it'} in the {rep.what} and import it again (the {unit}s applied "
                          "stay applied; importing them again changes nothing)", markup=False, highlight=False,
                          soft_wrap=True)
        raise typer.Exit(3)


@app.command("import-reports")
def import_reports(
    store: Path = typer.Argument(..., help=_REGISTRY_HELP),
    file: Path = typer.Argument(..., help="citizen reports (住民通報) as a city exports them: CSV (UTF-8 or "
                                          "Shift_JIS) or .xlsx, with a report id, latitude and longitude (My City "
                                          "Report, ちばレポ, a city's own form)"),
    column: Optional[List[str]] = typer.Option(None, "--column", metavar="KEY=NAME", help="the file's heading of a "
                                               "field, repeatable: id, time, lat, lon, category, text, url, status "
                                               "(e.g. --column time=受付日時; default: found by common names)"),
    category: Optional[List[str]] = typer.Option(None, "--category", metavar="TEXT", help="only the reports whose "
                                                 "category holds this text, repeatable (e.g. --category 道路: a My "
                                                 "City Report export also lists parks, litter …; default: all)"),
    source: Optional[str] = typer.Option(None, "--source", metavar="NAME", help="the system the reports come from "
                                         "(e.g. --source MCR, --source 市フォーム): each source's report ids are its "
                                         "own, two sources' same id two reports; give the same name with every "
                                         "export of a system (default: none, one source for a city with one system)"),
    config: Optional[Path] = typer.Option(None, "--config", help=_STAMP_CONFIG_HELP + "; reports.radius_m"),
):
    """Take in citizen reports (住民通報): kept in the registry by their source and report id (a re-import adds
    nothing, a changed report is updated), each matched to the nearest damage the patrol found, or not yet seen."""
    from detector.citizen import MATCH_LABELS, match_reports, only_categories, parse_columns, read_reports
    from detector.textio import CODEC_LABELS

    cfg = _config(config)
    overrides = parse_columns(column)  # refused before the file is read
    got = read_reports(file, cfg.tz, overrides)  # before the registry is opened: a bad file changes nothing
    left_out = only_categories(got, category) if category else None  # another department's (parks, litter …)
    r = cfg.reports.radius_m  # (one setting: the exports match with it too)
    source = (source or "").strip()
    with _open_store(store, cfg) as st:
        new, updated, same = st.import_reports(got.rows, file.name, source)
        elsewhere = st.reports_elsewhere(got.rows["report_id"], source)
        targets = st.report_targets()
        converted = st.conversion_notice()
    if converted:
        err_console.print(f"warning: {converted}", markup=False, highlight=False, soft_wrap=True)
    for line, why in got.rejected:  # each bad row by its line: the good rows are taken all the same
        err_console.print(f"warning: {file}: line {line}: {why}, not imported", markup=False, highlight=False,
                          soft_wrap=True)
    for line, note in got.notes:
        err_console.print(f"note: {file}: line {line}: {note}", markup=False, highlight=False, soft_wrap=True)
    if left_out is not None and len(left_out):
        kinds = ", ".join(f"{k} {v}" for k, v in left_out.head(8).items()) + (" …" if len(left_out) > 8 else "")
        err_console.print(f"note: {file}: {plural(int(left_out.sum()), 'report')} of other categories left out "
                          f"(--category {' '.join(category)}): {kinds}", markup=False, highlight=False, soft_wrap=True)
    for src, ids in elsewhere.items():  # the same ids of another source: other reports, kept apart (or the same
        # reports, imported once without --source and once with it)
        err_console.print(f"note: {file}: {plural(len(ids), 'report id')} also held from "
                          f"{'source ' + repr(src) if src else 'the reports imported without --source'} "
                          f"({', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}): kept apart as "
                          f"{'source ' + repr(source) if source else 'no source'}'s", markup=False, highlight=False,
                          soft_wrap=True)
    m = match_reports(got.rows, targets, r)
    if len(targets) and len(m):  # far from every damage of the registry: another city's, or a wrong position
        lat, lon = targets["lat"].to_numpy(float), targets["lon"].to_numpy(float)
        pad = 0.01  # about 1 km
        away = ~((m["lat"] >= lat.min() - pad) & (m["lat"] <= lat.max() + pad) & (m["lon"] >= lon.min() - pad)
                 & (m["lon"] <= lon.max() + pad))
        if away.any():
            ids = list(m["report_id"][away])
            err_console.print(f"note: {file}: {plural(len(ids), 'report')} more than 1 km outside the registry's "
                              f"damages' area ({', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}): kept, not yet "
                              "seen", markup=False, highlight=False, soft_wrap=True)
    seen = m["candidate_id"].notna()
    used = ", ".join(f"{k} {v!r}" for k, v in got.columns.items())
    console.print(f"{file.name}: {plural(got.n_read, 'row')} read ({CODEC_LABELS.get(got.codec, got.codec)}; {used})"
                  + (f"; source {source}" if source else ""),
                  markup=False, highlight=False, soft_wrap=True)
    console.print(f"new {len(new)}, updated {len(updated)}, unchanged {len(same)}, rejected {len(got.rejected)}",
                  markup=False, highlight=False, soft_wrap=True)
    for rid, fields in updated[:10]:
        console.print(f"  updated {rid}: {', '.join(fields)}", markup=False, highlight=False, soft_wrap=True)
    if len(updated) > 10:
        console.print(f"  … ({len(updated) - 10} more updated)", markup=False, highlight=False)
    other = int((m["match"] == MATCH_LABELS[2]).sum())  # none of the kind the report says within the radius
    console.print(f"matched to a damage within {r:g} m: {int(seen.sum())} (of "
                  f"{plural(int(m.loc[seen, 'candidate_id'].nunique()), 'damage')}"
                  + (f"; {other} to a damage of another kind than the report says (別種)" if other else "")
                  + f"); not yet seen by a patrol (未確認): {int((~seen).sum())}", markup=False, highlight=False,
                  soft_wrap=True)
    console.print(f"the list: patrol export {shell_word(store)} --format reports --out reports.xlsx", markup=False,
                  highlight=False, soft_wrap=True)
    if got.rejected:  # as import-verification: a script (a scheduled task) must see that rows were refused: exit 3
        n = len(got.rejected)
        err_console.print(f"error: {file}: {plural(n, 'row')} not imported (above): correct {'them' if n > 1 else 'it'} "
                          "in the file and import it again (the rows imported stay; importing them again changes "
                          "nothing)", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(3)


@app.command()
def export(
    store: Path = typer.Argument(..., help=_REGISTRY_HELP),
    format: str = typer.Option(..., "--format", help="geojson | gpkg | shp | csv | xlsx | kml | html: the damages; "
                                                     "ledger: the photo ledger (写真台帳), an .xlsx with each "
                                                     "damage's photo beside its particulars, 3 a page "
                                                     "(import-verification takes it back filled in); "
                                                     "segments: the condition of the road network (per segment and "
                                                     "bin, with the estimated crack rate and 診断区分) from every drive "
                                                     "the registry holds, needs --roads; due: "
                                                     "the network's segments on a patrol cycle (config survey:; "
                                                     "zero-length ones left out) with their last patrol and when the "
                                                     "next is due, most overdue first, needs --roads; reports: "
                                                     "the citizen reports (住民通報, import-reports) with the "
                                                     "damage each is of, or 未確認 (not yet seen); jobs: repair jobs "
                                                     "(補修工区), the open damages within jobs.gap_m of each other on "
                                                     "one road bundled, most severe first, needs --roads"),
    out: Path = typer.Option(..., "--out", help="the file to write (shp: X.shp, or X.zip for the files zipped; "
                                                "ledger: X.xlsx; reports: X.csv or X.xlsx; due, jobs: X.csv, X.xlsx, X.geojson, X.json or X.gpkg; "
                                                "segments: X.geojson, X.json, X.gpkg, X.csv or X.xlsx)"),
    status_: Optional[List[str]] = typer.Option(None, "--status", help="only these statuses (repeatable or comma-separated; open, 未対応: "
                                                                          "new, confirmed, scheduled, reopened)"),
    since: Optional[str] = typer.Option(None, "--since", help="only candidates seen on or after this date (YYYY-MM-DD, 2026/1/5, 2026年1月5日, 令和8年1月5日, 11/26; README: Dates a crew writes); segments: and only the frames taken since"),
    roads: Optional[Path] = typer.Option(None, "--roads", help="the road network: required when the config keeps "
                                                              "road fields (roads.keep_fields, copied from it) and for "
                                                              "segments; the HTML report draws it"),
    config: Optional[Path] = typer.Option(None, "--config", help="municipality YAML: class names, timezone of the dates, "
                                                                 "roads.* for --roads (default configs/default.yaml)"),
    crs: Optional[str] = typer.Option(None, "--crs", help="gpkg, shp: geometry in this projected CRS; csv, xlsx: x, y "
                                                          "columns in it and a crs column naming it (e.g. EPSG:6675, "
                                                          "JGD2011 plane rectangular VII); geojson, kml and html stay "
                                                          "WGS 84"),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="shp: the .dbf's text, cp932 (Shift_JIS, "
                                                                    "default) or utf-8"),
    max_mb: Optional[float] = typer.Option(None, "--max-mb", help="html: fit the file to this many MB (10^6 bytes) "
                                                                   "for a mail: smaller photos, then the least urgent "
                                                                   "damages' photos left out; a mail carries a file "
                                                                   "~4/3 its size: 7 for a 10 MB limit"),
    at: Optional[str] = typer.Option(None, "--at", help="due: the day planned for (default today on the config's "
                                                        "clock; patrols after it are not counted); YYYY-MM-DD, "
                                                        "2026/1/5, 令和8年1月5日 …"),
    area: Optional[Path] = typer.Option(None, "--area", help=_AREA_HELP),
    area_where: Optional[str] = typer.Option(None, "--area-where", help=_AREA_WHERE_HELP),
    area_gap: Optional[float] = typer.Option(None, "--area-gap", help=_AREA_GAP_HELP),
):
    """Export the registry for GIS, Excel, Google Earth or a browser."""
    from detector.errors import PatrolError
    from detector.gis import export_options
    from detector.report import (EXPORT_FORMATS, PHOTO_FORMATS, check_max_mb, export as _export, photo_folder,
                                 thumb_cache_path)
    format = format.strip().lower()
    _refuse_out_over_inputs(out, {"the registry": store, "the road network (--roads)": roads,
                                  "the district file (--area)": area, "the config (--config)": config})
    if format == "reports":
        return _export_reports(store, out, config, status_=status_, since=since, roads=roads, crs=crs,
                               encoding=encoding, max_mb=max_mb, at=at, area=area, area_where=area_where,
                               area_gap=area_gap)
    if format == "due":
        return _export_due(store, out, roads, config, at, area, area_where, status_=status_, since=since, crs=crs,
                           encoding=encoding, max_mb=max_mb, area_gap=area_gap)
    if format == "jobs":
        return _export_jobs(store, out, roads, config, status_, area, area_where, since=since, crs=crs,
                            encoding=encoding, max_mb=max_mb, at=at, area_gap=area_gap)
    if format not in EXPORT_FORMATS:
        raise PatrolError(f"unknown format {format!r}; choose one of "
                          f"{', '.join(EXPORT_FORMATS + ('due', 'jobs', 'reports'))}",
                          field="--format")
    if at is not None:
        from detector.errors import UsageError

        raise UsageError(f"is not for --format {format} (--at is the day --format due plans for)", None, "--at")
    if format == "segments":
        return _export_segments(store, out, status_, since, roads, config, crs=crs, encoding=encoding, max_mb=max_mb,
                                area=area, area_where=area_where, area_gap=area_gap)
    if format == "ledger":  # refused before the registry is read: --out not .xlsx, --crs, --encoding, --max-mb
        from detector.ledger import check_options

        check_options(out, crs, encoding, max_mb)
    target, encoding = export_options(format, out, crs, encoding)  # refused before the registry is read
    check_max_mb(format, max_mb)
    statuses = _status_option(status_)
    cfg = _config(config)
    since_d = _day_option(since, cfg, "--since")  # the dates a crew's checked_at takes; a time: its day
    district = _area_option(area, area_where, cfg, area_gap)  # a bad file or --area-where: refused before any work
    from detector.roads import join_fields, load_roads, require_network

    net = load_roads(roads, cfg) if roads is not None else None
    require_network(net, cfg)  # roads.keep_fields without --roads: refused before any work
    shown = district.clip(net, roads) if district is not None and net is not None else net  # the map's network
    roads_gdf = shown.gdf.to_crs(4326) if shown is not None else None
    seg = due = matched = None
    with _open_store(store, cfg) as st:
        df = st.query(status=statuses, since=since_d, lists=False)  # the complete lists: its observations
        if st.has_reports():  # citizen reports (住民通報): matched now, to the damages as they are now
            from detector.citizen import add_report_columns, registry_matches

            matched = registry_matches(st, cfg)[0]
            df = add_report_columns(df, matched)
        from detector.jobs import add_job_column

        # each open damage's repair job, by the latest jobs list naming it (read only; no record: no column)
        df = add_job_column(df, st.damage_jobs())
        registry = st.identity()  # the html's crew entries follow the damages of this registry, report to report
        held = st.held_jobs() if format == "html" and net is not None else None  # the jobs layer's ids (read only)
        if format == "html" and net is not None:  # the map's road-condition layer: --format segments' rows
            from detector.segments import registry_condition

            seg, _, frames, _ = registry_condition(st, net, cfg, since=since_d)  # (damages placed anew: as there)
            if district is not None:  # the area's segments, whole (their damages placed on the whole network)
                seg = seg[seg["segment_id"].isin(set(shown.ids))].reset_index(drop=True)
            # and its patrol-due layer: --format due's rows on the day the map is made, from every drive (not --since:
            # its frames then read again; due_table leaves out the frames after that day itself)
            from detector.due import due_table

            today = cfg.today()
            due = due_table(shown, frames if since_d is None else st.survey_frames(), cfg, today)
    in_area = ""
    area_notes: list[str] = []
    whole = df  # (the map's repair jobs layer: the whole city's jobs, their parts in the area)
    if district is not None:  # the damages of the area, by their position (each of one polygon of its file)
        n_all = len(df)
        df = df[district.inside(df, area_notes)].reset_index(drop=True)
        in_area = "; " + district.said(len(df), n_all)
    if format == "html" and matched is not None:  # the map's 住民通報 layer: the reports of the damages it shows, and
        # those not yet seen by a patrol (in the area, with --area)
        unseen = matched["candidate_id"].isna()
        if district is not None:
            unseen &= district.inside(matched)
        matched = matched[unseen | matched["candidate_id"].isin(set(df["candidate_id"]))].reset_index(drop=True)
    jobs = None
    if format == "html" and net is not None:  # the map's repair jobs layer: --format jobs' rows of its open damages
        # (with --area: those in it, on the whole network, as --format jobs --area bundles them)
        from detector.jobs import area_jobs, job_table
        from detector.segments import condition_statuses

        # (its ids the jobs lists' recorded ones; a job no list named yet: the id the next list would give it, marked
        # so in its popup; nothing recorded: an html export only reads)
        if district is None:
            jobs = job_table(df[df["status"].astype(str).isin(condition_statuses())], net, cfg, held)
        else:  # (the area's parts of the whole city's jobs, with their ids, as --format jobs --area gives them)
            city = whole[whole["status"].astype(str).isin(condition_statuses())].reset_index(drop=True)
            jobs = area_jobs(city, district.inside(city, []), net, cfg, held)
    df, note = join_fields(df, net, cfg, roads)  # the network as it is now, by segment_id (README: kept road fields)
    df.attrs["registry"] = registry
    notes: list[str] = (list(net.read_warnings) if net is not None else []) + ([note] if note else [])
    said: list[str] = []
    _export(df, format, out, cfg, roads_wgs84=roads_gdf, segments=seg, crs=target, encoding=encoding, notes=notes,
            max_mb=max_mb, said=said, thumb_cache=thumb_cache_path(store) if format == "html" else None, due=due,
            reports=matched if format == "html" else None, jobs=jobs)
    for msg in said:  # --max-mb: what it did to fit
        console.print(msg, soft_wrap=True, markup=False, highlight=False)
    for msg in notes:
        err_console.print(f"warning: {msg}", soft_wrap=True, markup=False, highlight=False)
    for msg in area_notes:  # damages in no district of the file, across a gap, on a shared edge
        err_console.print(f"note: {msg}", soft_wrap=True, markup=False, highlight=False)
    console.print(f"{plural(len(df), 'damage')} → {out}" + (f" ({target.to_string()})" if target is not None else "")
                  + (f" ({encoding or 'cp932'})" if format == "shp" else "") + in_area, soft_wrap=True, markup=False,
                  highlight=False)
    if format in PHOTO_FORMATS and (folder := photo_folder(out)).is_dir():  # copy it along with the file
        console.print(f"{plural(sum(1 for _ in folder.glob('*.jpg')), 'photo')} → {folder}")


def _export_reports(store: Path, out: Path, config: Optional[Path], **other) -> None:
    """``patrol export --format reports``: every citizen report the registry holds (import-reports) with the damage
    it is of (the nearest of the kind it says within ``reports.radius_m``, else the nearest: its id, distance, class,
    status; the report's kind and ``match``), or 未確認: not yet seen by a patrol, those first (README: Citizen
    reports)."""
    from detector.citizen import REPORT_FILES, UNSEEN, export_table, registry_matches, write_export
    from detector.errors import UsageError

    for key, v in other.items():
        if v is not None:
            flag = {"status_": "--status", "max_mb": "--max-mb", "area_where": "--area-where",
                    "area_gap": "--area-gap"}.get(key, f"--{key}")
            raise UsageError("is not for --format reports (every report held, by its own position: --config's "
                             "reports.radius_m is the one setting)", None, flag)
    if Path(out).suffix.lower() not in REPORT_FILES:
        raise UsageError(f"{Path(out).name}: --format reports writes X.csv or X.xlsx", None, "--out")
    cfg = _config(config)
    with _open_store(store, cfg) as st:
        matched, targets = registry_matches(st, cfg)
    rows = export_table(matched, targets, cfg)
    write_export(rows, out, cfg)
    unseen = int((rows["patrol"] == UNSEEN).sum()) if len(rows) else 0
    console.print(f"{plural(len(rows), 'report')} ({len(rows) - unseen} matched to a damage within "
                  f"{cfg.reports.radius_m:g} m, {unseen} not yet seen by a patrol) → {out}", soft_wrap=True,
                  markup=False, highlight=False)


def _refuse_out_over_inputs(out: Optional[Path], inputs: dict) -> None:
    """An ``--out`` that is one of the command's own input files (``inputs``: what the message calls it -> its path)
    is refused (exit 2) before anything is read or written: `patrol export registry.gpkg --format gpkg --out
    registry.gpkg` replaced the registry with a 31-row layer (every damage's history, status and photo gone), and
    `--out roads.gpkg` the city's network the same way. The same file by its path resolved (a relative or a linked
    path too), and where both exist by ``os.path.samefile`` (a hard link, another spelling of a Windows drive's
    path)."""
    if out is None:
        return
    from detector.errors import UsageError

    def same(a: Path, b: Path) -> bool:
        try:
            if a.exists() and b.exists():
                return os.path.samefile(a, b)
            return a.resolve() == b.resolve()
        except OSError:
            return False

    for what, path in inputs.items():
        if path is not None and same(Path(out), Path(path)):
            lost = " (every damage, its history and photos lost)" if what == "the registry" else ""
            raise UsageError(f"{Path(out).name} is {what} this command reads: writing it would replace it{lost}; "
                             f"name another file", None, "--out")


def _area_option(area: Optional[Path], where: Optional[str], cfg=None, gap: Optional[float] = None):
    """``--area FILE [--area-where FIELD=VALUE] [--area-gap METRES]``: the district (``detector.area.Area``) or None;
    how its file was read (a guessed .dbf encoding) said on stderr."""
    if area is None:
        for flag, v, why in (("--area-where", where, "the polygons it picks from"),
                             ("--area-gap", gap, "the polygons whose gaps it closes")):
            if v is not None:
                from detector.errors import UsageError

                raise UsageError(f"needs --area FILE ({why})", None, flag)
        return None
    from detector.area import load_area

    district = load_area(area, where, cfg, gap)
    for msg in district.warnings:
        err_console.print(f"warning: {msg}", soft_wrap=True, markup=False, highlight=False)
    return district


def _export_segments(store: Path, out: Path, status_, since: Optional[str], roads: Optional[Path],
                     config: Optional[Path], crs=None, encoding=None, max_mb=None, area=None, area_where=None,
                     area_gap=None) -> None:
    """``patrol export --format segments``: segments.geojson of the whole registry (README: The condition of the
    network). The damages: the registry's own (not those merged into another), open ones unless ``--status`` says;
    the survey: every positioned frame of every drive held whose look was good (a frame too dark, glared or blurred
    showed nothing), those taken since ``--since`` (and the damages seen since) with it."""
    from detector.errors import UsageError
    from detector.segments import (SEGMENT_FILES, SEGMENT_TABLE_FILES, condition_statuses, registry_condition,
                                   write_segments, write_segments_table)

    for flag, v, why in (("--crs", crs, "its GeoJSON is WGS 84, its GeoPackage in the road network's CRS"),
                         ("--encoding", encoding, "its GeoJSON and GeoPackage are UTF-8; --encoding is the Shapefile's"),
                         ("--max-mb", max_mb, "no photos to make smaller: --max-mb fits the html map for a mail"),
                         ("--area-gap", area_gap, "its rows are the segments crossing --area, whole, with every damage "
                                                  "on them; --area-gap is where a damage in no polygon counts")):
        if v is not None:
            raise UsageError(f"is not for --format segments ({why})", None, flag)
    if roads is None:
        raise UsageError("--format segments needs the road network (--roads ROADS): the condition is per segment of "
                         "it", None, "--roads")
    if Path(out).suffix.lower() not in {**SEGMENT_FILES, **SEGMENT_TABLE_FILES}:
        raise UsageError(f"{Path(out).name}: --format segments writes X.geojson, X.json, X.gpkg, X.csv or X.xlsx",
                         None, "--out")
    statuses = condition_statuses(_status_option(status_))  # the open ones unless --status says (a run's too)
    cfg = _config(config)
    since_d = _day_option(since, cfg, "--since")
    district = _area_option(area, area_where, cfg)
    from detector.roads import load_roads

    net = load_roads(roads, cfg)
    in_area = ""
    if district is not None:
        kept = set(district.clip(net, roads).ids)  # checked before the registry is read
    with _open_store(store, cfg) as st:
        seg, df, frames, placed = registry_condition(st, net, cfg, statuses, since_d)  # also the html's layer
    if district is not None:  # the area's segments, whole, with the damages placed on them (on the whole network)
        n_seg, n_dmg = int((seg["level"] == "segment").sum()), len(df)
        seg = seg[seg["segment_id"].isin(kept)].reset_index(drop=True)
        df = df[df["segment_id"].isin(kept)].reset_index(drop=True)
        in_area = (f"; {district.said(int((seg['level'] == 'segment').sum()), n_seg, 'segment')}, {len(df)} of "
                   f"{plural(n_dmg, 'damage')} on them")
    t = frames["t"].dropna()
    when = (lambda v: datetime.fromtimestamp(float(v), cfg.tz).isoformat(timespec="seconds"))
    meta = {"registry": Path(store).name, "statuses": sorted(set(df["status"])) if len(df) else [],
            "status_filter": statuses, "since": since_d.isoformat() if since_d else None,
            "first_frame": when(t.min()) if len(t) else None, "last_frame": when(t.max()) if len(t) else None,
            "frames": int(len(frames)), "drives": int(frames["drive"].nunique()), "damages": int(len(df)),
            "survey_width_m": float(cfg.segments.survey_width_m),  # the crack rate's area: surveyed_m × this
            "generated": cfg.now().isoformat(timespec="seconds")}
    if district is not None:
        meta["area"] = {"file": district.path.name, "where": area_where, "name": district.label}
    from detector import qgisstyle

    if Path(out).suffix.lower() in SEGMENT_TABLE_FILES:  # the same rows without their lines (the 100 m table)
        write_segments_table(seg, out, cfg, meta)
    else:
        write_segments(seg, out, meta, style=lambda g, layer: qgisstyle.condition(g, layer, cfg))
    for msg in net.read_warnings:
        err_console.print(f"warning: {msg}", soft_wrap=True, markup=False, highlight=False)
    if placed:
        err_console.print(f"note: {plural(placed, 'damage')} placed on the network anew (their stored segment is not in "
                          f"{Path(roads).name})", soft_wrap=True, markup=False, highlight=False)
    n_seg = int((seg["level"] == "segment").sum())
    n_cov = int(((seg["level"] == "segment") & (seg["surveyed_m"] > 0)).sum())
    # the statuses counted named: 29 damages of a registry of 30 (one not an issue) is the open ones, not a loss
    console.print(f"{plural(len(df), 'damage')} ({'/'.join(statuses)}), {plural(len(frames), 'frame')} of "
                  f"{plural(meta['drives'], 'drive')} → "
                  f"{plural(n_seg, 'segment')} "
                  f"({n_cov} surveyed) → {out}{in_area}", soft_wrap=True, markup=False, highlight=False)


def _export_due(store: Path, out: Path, roads: Optional[Path], config: Optional[Path], at: Optional[str],
                area: Optional[Path] = None, area_where: Optional[str] = None, **other) -> None:
    """``patrol export --format due``: the network's segments on a patrol cycle (those of no length left out), when
    each was last patrolled (a day whose frames of good look covered ``segments.min_coverage`` of it, as the segments
    export rates it) and when the next patrol is due by ``survey.every_days`` (README: Roads due for a patrol)."""
    from detector.due import DUE_FILES, due_table, write
    from detector.errors import UsageError

    why = {"status_": ("--status", "it counts patrols, not damages"),
           "since": ("--since", "every drive held counts; --at is the day it plans for"),
           "crs": ("--crs", "its GeoPackage is in the road network's CRS, its GeoJSON WGS 84"),
           "encoding": ("--encoding", "its files are UTF-8; --encoding is the Shapefile's"),
           "max_mb": ("--max-mb", "no photos: --max-mb fits the html map for a mail"),
           "area_gap": ("--area-gap", "its rows are the segments crossing --area, whole; --area-gap is where a damage "
                                      "in no polygon counts")}
    for key, v in other.items():
        if v is not None:
            raise UsageError(f"is not for --format due ({why[key][1]})", None, why[key][0])
    if roads is None:
        raise UsageError("--format due needs the road network (--roads ROADS): it lists every segment of it", None,
                         "--roads")
    if Path(out).suffix.lower() not in DUE_FILES:
        raise UsageError(f"{Path(out).name}: --format due writes X.csv, X.xlsx, X.geojson, X.json or X.gpkg", None,
                         "--out")
    cfg = _config(config)
    at_d = _day_option(at, cfg, "--at", ahead=True) or cfg.today()
    district = _area_option(area, area_where, cfg)
    from detector.roads import load_roads

    net = load_roads(roads, cfg)
    in_area = ""
    if district is not None:  # the area's segments, whole (each one's patrols are its own)
        n_all = len(net)
        net = district.clip(net, roads)
        in_area = "; " + district.said(len(net), n_all, "segment")
    with _open_store(store, cfg) as st:
        frames = st.survey_frames(until=at_d)  # the frames the segments export counts: positioned, of good look
    d = due_table(net, frames, cfg, at_d)
    t = d.table
    due = d.due
    meta = {"registry": Path(store).name, "at": at_d.isoformat(), "every_days": cfg.survey.every_days,
            "by": cfg.survey.by.model_dump() if cfg.survey.by is not None else None,
            "min_coverage": cfg.segments.min_coverage, "frames": int(len(frames)),
            "drives": int(frames["drive"].nunique()), "segments": int(len(t)), "due": int(due.sum()),
            "never_surveyed": int(t["never_surveyed"].sum()), "off_cycle": d.off_cycle, "no_length": d.no_length,
            "generated": cfg.now().isoformat(timespec="seconds")}
    if district is not None:
        meta["area"] = {"file": district.path.name, "where": area_where, "name": district.label}
    write(d, out, cfg, meta)
    for msg in list(net.read_warnings) + d.notes:
        err_console.print(f"warning: {msg}", soft_wrap=True, markup=False, highlight=False)
    km = (lambda m: f"{m / 1000:.1f}")
    console.print(f"{due.sum()} of {plural(len(t), 'segment')} ({km(t['length_m'][due].sum())} of "
                  f"{km(t['length_m'].sum())} km) due on {at_d.isoformat()}, {meta['never_surveyed']} never surveyed"
                  + (f"; {plural(d.off_cycle, 'segment')} ({km(d.off_cycle_m)} km) on no patrol cycle left out"
                     if d.off_cycle else "")
                  + (f"; {plural(d.no_length, 'segment')} of no length (two equal points, which no drive covers) "
                     "left out" if d.no_length else "") + f" → {out}{in_area}", soft_wrap=True, markup=False,
                  highlight=False)


def _export_jobs(store: Path, out: Path, roads: Optional[Path], config: Optional[Path], status_,
                 area: Optional[Path] = None, area_where: Optional[str] = None, area_gap: Optional[float] = None,
                 **other) -> None:
    """``patrol export --format jobs``: repair jobs (補修工区), the registry's damages (the open ones unless
    ``--status`` says; in ``--area``) within ``jobs.gap_m`` of each other on one road bundled, one row per job, most
    severe first, each job's id kept from list to list: recorded in the registry before the list is written
    (``Store.record_jobs``; README: Repair jobs, job ids are kept)."""
    from detector.errors import UsageError
    from detector.jobs import JOB_FILES, area_jobs, job_table, write
    from detector.segments import condition_statuses

    why = {"since": ("--since", "a job is every damage of the stretch still to repair, whenever it was seen"),
           "crs": ("--crs", "its GeoPackage is in the road network's CRS, its GeoJSON WGS 84"),
           "encoding": ("--encoding", "its files are UTF-8; --encoding is the Shapefile's"),
           "max_mb": ("--max-mb", "no photos: --max-mb fits the html map for a mail"),
           "at": ("--at", "--at is the day --format due plans for")}
    for key, v in other.items():
        if v is not None:
            raise UsageError(f"is not for --format jobs ({why[key][1]})", None, why[key][0])
    if roads is None:
        raise UsageError("--format jobs needs the road network (--roads ROADS): a job is the damages of one road", None,
                         "--roads")
    if Path(out).suffix.lower() not in JOB_FILES:
        raise UsageError(f"{Path(out).name}: --format jobs writes X.csv, X.xlsx, X.geojson, X.json or X.gpkg", None,
                         "--out")
    statuses = condition_statuses(_status_option(status_))  # the open ones unless --status says
    cfg = _config(config)
    district = _area_option(area, area_where, cfg, area_gap)
    from detector.roads import load_roads

    net = load_roads(roads, cfg)
    with _open_store(store, cfg) as st:
        df = st.query(status=statuses, lists=False, growth=False)  # (an unknown status: exit 2; no 悪化 in jobs)
        if st.has_reports():  # citizen reports (住民通報): matched now, to the damages as they are now
            from detector.citizen import add_report_columns, registry_matches

            df = add_report_columns(df, registry_matches(st, cfg)[0])
        in_area = ""
        area_notes: list[str] = []
        if district is not None:  # the damages of the area, by their position (as the lists), each in its part of
            # the whole city's job, whose id it has (jobs.area_jobs; README: job ids are kept)
            inside = district.inside(df, area_notes)
            in_area = "; " + district.said(int(inside.sum()), len(df))
            jobs = area_jobs(df, inside, net, cfg)
        else:
            jobs = job_table(df, net, cfg)
        # the ids: matched to the jobs the registry's lists handed out, and recorded before the list is written (a
        # list whose ids were not kept is not written; README: job ids are kept)
        kept, new = st.record_jobs(jobs)
    t = jobs.table
    meta = {"registry": Path(store).name, "status_filter": statuses, "gap_m": jobs.gap_m,
            "damages": jobs.n_damages, "jobs": int(len(t)), "generated": cfg.now().isoformat(timespec="seconds")}
    if jobs.road_field:  # a network naming no road: the kept field that told the roads apart
        meta["road_field"] = jobs.road_field
    if district is not None:
        meta["area"] = {"file": district.path.name, "where": area_where, "name": district.label,
                        **({"gap_m": district.gap_m} if district.gap_m else {})}
    write(jobs, out, cfg, meta, statuses)
    for msg in list(net.read_warnings) + jobs.notes:
        err_console.print(f"warning: {msg}", soft_wrap=True, markup=False, highlight=False)
    if jobs.placed:
        err_console.print(f"note: {plural(jobs.placed, 'damage')} placed on the network anew (their stored segment is "
                          f"not in {Path(roads).name})", soft_wrap=True, markup=False, highlight=False)
    for msg in area_notes:  # damages in no district of the file, across a gap, on a shared edge
        err_console.print(f"note: {msg}", soft_wrap=True, markup=False, highlight=False)
    fresh = t["job_id"][jobs.fresh].tolist()
    shown = ", ".join(fresh[:3]) + (" …" if len(fresh) > 3 else "")
    console.print(f"job ids: {kept} kept from earlier lists, {new} new" + (f" ({shown})" if new else "")
                  + f", recorded in {Path(store).name}", soft_wrap=True, markup=False, highlight=False)
    multi = int((t["n_damages"] > 1).sum())
    cost = (f", repair cost est. {int(t['cost'].sum()):,} {jobs.currency}".rstrip() if "cost" in t.columns else "")
    console.print(f"{plural(jobs.n_damages, 'damage')} ({'/'.join(statuses)}) → {plural(len(t), 'repair job')} "
                  f"({multi} of more than one damage; within {jobs.gap_m:g} m on one road), "
                  f"{jobs.area_m2:.1f} m²{cost} → {out}{in_area}", soft_wrap=True, markup=False,
                  highlight=False)


@app.command()
def stats(
    store: Path = typer.Argument(..., help=_REGISTRY_HELP),
    by: str = typer.Option("month", "--by", help="month | week | year: calendar months, ISO weeks (Monday to Sunday) "
                                                 "or years, in the config's timezone"),
    since: Optional[str] = typer.Option(None, "--since", help="first day counted (default: the registry's first "
                                                              "record); YYYY-MM-DD, 2026/1/5, 令和8年1月5日 …"),
    until: Optional[str] = typer.Option(None, "--until", help="last day counted (default: today)"),
    group: Optional[str] = typer.Option(None, "--group", help="split by a kept road field (roads.keep_fields, e.g. "
                                                              "管理事務所; needs --roads) or road_name"),
    config: Optional[Path] = typer.Option(None, "--config", help="municipality YAML: timezone of the periods, class "
                                                                 "names, roads.* for --roads (default "
                                                                 "configs/default.yaml)"),
    roads: Optional[Path] = typer.Option(None, "--roads", help="the road network: required with --group of a kept "
                                                              "road field (copied from it by segment_id)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the table: FILE.csv (UTF-8 with BOM) or FILE.xlsx"),
    area: Optional[Path] = typer.Option(None, "--area", help=_AREA_HELP),
    area_where: Optional[str] = typer.Option(None, "--area-where", help=_AREA_WHERE_HELP),
    area_gap: Optional[float] = typer.Option(None, "--area-gap", help=_AREA_GAP_HELP),
):
    """The registry's figures per month, week or year: damages found, repaired, not an issue, reopened, open at the
    period's end, days to repair (median, 90th percentile), the backlog's and the repairs' estimated area (and cost,
    with the config's repair_cost)."""
    from detector.errors import UsageError
    from detector.export import road_columns
    from detector.stats import NO_GROUP, PERIODS, compute, read_registry, write

    by = by.strip().lower()
    if by not in PERIODS:
        raise UsageError(f"unknown period {by!r}; choose one of {', '.join(PERIODS)}", field="--by")
    if out is not None and out.suffix.lower() not in (".csv", ".xlsx"):
        raise UsageError(f"{out}: --out must end in .csv or .xlsx", field="--out")
    _refuse_out_over_inputs(out, {"the registry": store, "the road network (--roads)": roads,
                                  "the district file (--area)": area, "the config (--config)": config})
    cfg = _config(config)
    today = cfg.today()
    days = {name: _day_option(text, cfg, name) for name, text in (("--since", since), ("--until", until))}
    if days.get("--until") and days["--until"] > today:  # a month not over yet has no end-of-month backlog
        err_console.print(f"note: --until {days['--until']} is after today ({today}): the periods from today on count "
                          "the registry as it is now (their backlog is today's, not their end's)",
                          markup=False, highlight=False, soft_wrap=True)
    kept = road_columns(cfg)
    if group is not None and group not in kept + ["road_name"]:
        raise UsageError(f"cannot group by {group!r}: give road_name or a kept road field (roads.keep_fields: "
                         f"{', '.join(kept) or 'none in this config'})", field="--group")
    district = _area_option(area, area_where, cfg, area_gap)  # a bad file or --area-where: refused before any work
    net = notes = None
    if group is not None and group != "road_name":
        from detector.roads import load_roads, require_network

        net = load_roads(roads, cfg) if roads is not None else None
        require_network(net, cfg)  # a kept field without --roads: refused before any work
    with _open_store(store, cfg) as st:
        cands, hist, seen = read_registry(st)
    notes = []
    in_area = None
    area_notes: list[str] = []
    if district is not None:  # the damages of the area, by their position; their history with them
        n_all = len(cands)
        cands = cands[district.inside(cands, area_notes)].reset_index(drop=True)
        ids = set(cands["candidate_id"])
        hist = hist[hist["candidate_id"].isin(ids)].reset_index(drop=True)
        seen = seen[seen["candidate_id"].isin(ids)].reset_index(drop=True)
        in_area = district.said(len(cands), n_all)
    if group is not None:
        if group != "road_name":
            from detector.roads import join_fields

            cands, note = join_fields(cands, net, cfg, roads)  # as export attaches them: the network as it is now
            notes = list(net.read_warnings) + ([note] if note else [])
        cands["group"] = [str(v) if v is not None and v == v and str(v) != "" else NO_GROUP for v in cands[group]]
    res = compute(cands, hist, cfg, by=by, since=days.get("--since"), until=days.get("--until"), group=group,
                  today=today, seen=seen)
    for msg in notes:
        err_console.print(f"warning: {msg}", soft_wrap=True, markup=False, highlight=False)
    for msg in area_notes:  # damages in no district of the file (the districts' figures short), on a shared edge
        err_console.print(f"note: {msg}", soft_wrap=True, markup=False, highlight=False)
    title = (f"registry figures by {by}" + (f" (all {group})" if group else "")
             + (f" in area {district.label}" if district is not None else ""))
    # the backlog's area at each period's end and the repairs' area in it (and their cost, with the city's unit
    # prices) beside the counts. Where they do not fit the console in one table, even with the headings broken
    # between words (a cost column in 90 columns), a second table gives them: no number is cut (rich would cut the
    # widest column)
    priced = res.open_now_cost is not None
    cur = f" {res.currency}" if res.currency else ""
    counts = [("period", None), ("found", None), ("repaired", None), ("not an issue", "not_an_issue"),
              ("reopened", None), ("open", None)]
    sizes = [("open m²", "open_area_m2"), *([(f"open cost{cur}", "open_cost")] if priced else []),
             ("repaired m²", "repaired_area_m2"), *([(f"repaired cost{cur}", "repaired_cost")] if priced else [])]
    days_cols = [("days med", "days_median"), ("days p90", "days_p90")]

    def cell(r, col: str) -> str:
        v = getattr(r, col)
        if col.startswith("days_"):
            return "" if v != v else f"{v:.1f}"
        return f"{v:,.1f}" if col.endswith("_m2") else f"{v:,}" if col.endswith("_cost") else str(v)

    def table(title: str, cols: list[tuple[str, str | None]]) -> tuple[Table, bool]:
        """The table of these columns, each as wide as its longest value or heading word where the headings on one
        line do not fit the console; whether it fits."""
        heads = [h for h, _ in cols]
        rows = [[cell(r, c or h) for h, c in cols] for r in res.totals.itertuples(index=False)]
        widths = _fit_columns(heads, rows, console.width)
        t = Table(title=title, title_justify="left")
        for head, w in zip(heads, widths or [None] * len(heads)):
            t.add_column(head, justify="left" if head == "period" else "right", width=w)
        for row in rows:
            t.add_row(*row)
        return t, widths != []

    t, fits = table(title, [*counts, *sizes, *days_cols])
    if fits:
        console.print(t)
    else:
        console.print(table(title, [*counts, *days_cols])[0])
        console.print(table(f"estimated area{' and cost' if priced else ''} by {by}: open at the period's end, "
                            "repaired in it", [("period", None), ("open", None), *sizes[:len(sizes) // 2],
                                               ("repaired", None), *sizes[len(sizes) // 2:]])[0])
    span = f"{res.totals['period'].iloc[0]} – {res.totals['period'].iloc[-1]}"
    med = (f"median days to repair {res.days_median:.1f} days ({res.n_repairs} repair{'s' if res.n_repairs != 1 else ''}"
           f", {span})" if res.days_median is not None else f"no repairs ({span})")  # (was "… none repaired (0 repairs")
    # the backlog's size (補修対象面積) and, with the city's unit prices, its cost (概算補修費)
    size = f", {res.open_now_area_m2:,.1f} m²" + (f" ({res.open_now_no_estimate} without a size estimate)"
                                                  if res.open_now_no_estimate else "")
    if res.open_now_cost is not None:
        size += f", repair cost est. {res.open_now_cost:,}" + (f" {res.currency}" if res.currency else "")
    console.print(f"open now {res.open_now}{size}; {med}" + (f"; {in_area}" if in_area else ""), markup=False,
                  highlight=False, soft_wrap=True)
    if out is not None:
        write(res, out, cfg)
        console.print(f"{plural(len(res.table), 'row')} → {out}", markup=False, highlight=False)


def _fit_columns(heads: list[str], rows: list[list[str]], width: int) -> list[int | None] | list:
    """Column widths for a rich table of ``rows`` under ``heads`` in ``width`` cells: None each where the headings fit
    on one line; else each as wide as its longest value or heading word, the room left to the headings of the most
    lines (broken between words); [] where even that is wider than ``width`` (rich would cut a number)."""
    from rich.cells import cell_len

    longest = [max([cell_len(row[k]) for row in rows] or [0]) for k in range(len(heads))]
    whole = [max(cell_len(h), n) for h, n in zip(heads, longest)]  # the heading on one line
    if sum(whole) + 3 * len(heads) + 1 <= width:
        return [None] * len(heads)
    widths = [max(n, *map(cell_len, h.split())) for h, n in zip(heads, longest)]
    room = width - (sum(widths) + 3 * len(heads) + 1)
    if room < 0:
        return []

    def lines(h: str, w: int) -> int:  # the heading's lines in w cells, broken between words
        n, used = 1, -1
        for word in map(cell_len, h.split()):
            n, used = (n, used + 1 + word) if used + 1 + word <= w else (n + 1, word)
        return n

    while room > 0:  # the room left: to the heading of the most lines, as little as takes one off
        k = max(range(len(heads)), key=lambda k: lines(heads[k], widths[k]))
        more = next((w for w in range(widths[k] + 1, whole[k] + 1)
                     if lines(heads[k], w) < lines(heads[k], widths[k])), None)
        if more is None or more - widths[k] > room:
            break
        room -= more - widths[k]
        widths[k] = more
    return widths


def _console_never_fails() -> None:
    """stdout that cannot encode every character (a Japanese Windows PC writes a redirected log or a scheduled job's
    output in cp932, which lacks e.g. 🚗, 𠮷, — or ≤) shows those as \\U escapes instead of a UnicodeEncodeError
    ending the command after its work is done (a drive or folder name is printed in the summary). stderr does so
    already (Python's default there)."""
    for stream in (sys.stdout, sys.stderr):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if not enc.startswith("utf") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or replaced stream: leave it
                pass


def main(argv: Optional[list[str]] = None) -> None:
    global DEBUG
    _console_never_fails()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in argv:
        argv.remove("--debug")
        DEBUG = True
    DEBUG = DEBUG or os.environ.get("PATROL_DEBUG") == "1"
    from detector.errors import PatrolError

    try:
        rc = app(args=argv, standalone_mode=False)
    except PatrolError as e:
        if DEBUG:  # the traceback too, but the same exit code: scripts must not change behaviour under --debug
            import traceback

            traceback.print_exc()
        err_console.print(f"[red]error:[/red] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted; run the same command again to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:
        # usage errors from typer's (vendored) click: they know how to show themselves
        if type(e).__name__ == "Abort":
            sys.exit(130)
        if hasattr(e, "show") and hasattr(e, "exit_code") and type(e).__module__.split(".")[-2:-1] in (["_click"], ["click"]):
            e.show()
            sys.exit(e.exit_code or 2)
        if DEBUG:
            raise
        err_console.print(f"[red]internal error:[/red] {type(e).__name__}: {escape(str(e))} (run with --debug for the "
                          "traceback)")
        sys.exit(1)
    # typer >= 0.16 turns Ctrl-C (and typer.Exit) into a returned exit code when not in standalone mode
    if isinstance(rc, int) and not isinstance(rc, bool) and rc:
        if rc == 130:
            err_console.print("interrupted; run the same command again to resume")
        sys.exit(rc)

if __name__ == "__main__":
    main()
