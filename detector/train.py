"""`patrol train`: ultralytics training that is resumable, offline and uses every CPU core.

Writes ``OUT/<name>/weights/best.pt`` and exports ``best.onnx`` next to it. Never downloads anything:
YOLO_OFFLINE is set, plots (which fetch a font) are off, and ultralytics' AMP self-test (which downloads
yolo26n.pt) is not run: AMP is off on CPU and on elsewhere, as ultralytics itself decides when offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .atomic import FileLock, atomic_write, atomic_write_text
from . import CLASS_IDS
from .errors import InputError, ModelError, UsageError
from .evaluate import dataset_names, read_data_yaml
from .extras import EXPORT_MODULES, TORCH_MODULES, require_torch

os.environ.setdefault("YOLO_OFFLINE", "1")


class DataPlan:
    """A data set checked by :func:`check_data_yaml` and not yet written: per split the usable images, the name
    each gets in the work folder and its renumbered label lines (None: no label file, a background photo)."""

    def __init__(self, data_yaml: Path, oversample: dict[str, int] | None):
        self.data_yaml = data_yaml
        self.oversample = oversample
        self.splits: dict[str, list[tuple[Path, str, list[str] | None]]] = {}
        # with --with: (tag, data yaml) of each data set, the city's first; each image's name is "<tag>_<its name>"
        self.sources: list[tuple[str, Path]] = []
        self.with_val = False
        self.label_files: list[Path] = []  # the label files read (every data set's, every split's)
        # check_unchecked's finding (label-set pre-labels nobody checked) and whether --unchecked-ok was given: kept
        # in data.sources.json, so that a resumed run is checked as its data was when it started
        self.unchecked: list | None = None
        self.unchecked_ok = False

    @property
    def tags(self) -> list[str]:
        return [t for t, _ in self.sources]


# a train split smaller than this, trained on alone, makes the model forget what it learnt from RDD's 2,300 photos
SMALL_TRAIN = 300
CITY_TAG = "city"  # the name prefix of the city's own photos when other data sets train with them (--with)


def check_data_sets(data_yaml: str | Path, with_: list[str | Path] | None = None,
                    oversample: dict[str, int] | None = None, with_val: bool = False) -> DataPlan:
    """Check the city's data yaml and each ``with_`` data yaml (:func:`check_data_yaml`, each with its own names,
    labels and format), writing nothing; the plan trains on every data set's train split, validates on the city's
    val split (``with_val``: and the others' too).

    With ``with_``, every image is named ``<tag>_<its own name>`` in the work folder, ``tag`` being ``city`` for the
    city's data set and the folder name of each other data yaml (``rdd`` for ``rdd/data.yaml``; a number added
    where two would be alike): two data sets' ``0001.jpg`` both train, and ``--oversample city=3`` repeats the
    city's photos (a key also matches an image's own name: ``Japan_=2``). Without ``with_``, a train split of fewer
    than :data:`SMALL_TRAIN` photos gets a warning that the model will forget the rest."""
    import re

    if not with_:
        plan = check_data_yaml(data_yaml, oversample)
        n = len(plan.splits["train"])
        if n < SMALL_TRAIN:
            print(f"warning: only {n} training photos: trained on them alone the model forgets much of what it learnt "
                  "from the 2,300 RDD photos; train on them together with the data it was trained on: add --with "
                  "RDD/data.yaml (RDD2020/RDD2022, YOLO or VOC labels; README: Retraining for a city)", file=sys.stderr)
        return plan
    yamls = [Path(data_yaml).resolve(), *(Path(w).resolve() for w in with_)]
    for i, y in enumerate(yamls[1:], 1):
        if y in yamls[:i]:
            raise UsageError("--with: this data yaml is " + ("the one trained on" if y == yamls[0] else "given twice"),
                             y)
    tags: list[str] = [CITY_TAG]
    for y in yamls[1:]:
        base = re.sub(r"[^0-9a-z]+", "-", y.parent.name.lower()).strip("-") or "with"
        tag, k = base, 2
        while tag in tags:
            tag, k = f"{base}{k}", k + 1
        tags.append(tag)
    plans = [check_data_yaml(y, tag=t, splits=("train", "val") if i == 0 or with_val else ("train",))
             for i, (t, y) in enumerate(zip(tags, yamls))]
    plan = DataPlan(yamls[0], oversample)
    plan.sources = list(zip(tags, yamls))
    plan.with_val = with_val
    plan.label_files = [lab for p in plans for lab in p.label_files]
    for split in ("train", "val"):
        plan.splits[split] = [(img, f"{t}_{name}", lines) for t, p in zip(tags, plans)
                              for img, name, lines in p.splits.get(split, [])]
    if oversample:
        _check_oversample_keys([n for _, n, _ in plan.splits["train"]], oversample, yamls[0], tags)
    parts = []
    for t, y, p in zip(tags, yamls, plans):
        e = p.splits["train"]
        parts.append(f"{t} {len(e)} images, {sum(len(ln) for _, _, ln in e if ln)} boxes ({y})")
    print(f"training on {'; '.join(parts)}: {len(plan.splits['train'])} images in all", file=sys.stderr)
    n_val = len(plan.splits["val"])
    print("validating on " + (f"every data set's val split ({n_val} images)" if with_val else
                               f"the city's val split only ({n_val} images): best.pt is the epoch that scores best "
                               "on the city's roads (--with-val adds the others' val)"), file=sys.stderr)
    return plan


def check_data_yaml(data_yaml: str | Path, oversample: dict[str, int] | None = None, tag: str | None = None,
                    splits: tuple[str, ...] = ("train", "val")) -> DataPlan:
    """Check a YOLO data.yaml and its train and val splits, writing nothing (:func:`resolve_data_yaml` writes).

    Refused (InputError, exit 3) before anything trains, naming the file: a data yaml that is not one, classes that
    are not ours, a missing split, a split none of whose photos has a label file, a label line ultralytics would
    silently drop with its whole image (a class the data yaml does not name, a malformed line, coordinates outside
    0..1); an ``oversample`` key that matches nothing (UsageError, exit 2). An image that cannot be read (not an
    image, truncated, corrupt) is left out with a warning naming it (ultralytics would drop it too, or "restore" a
    truncated JPEG by rewriting the city's file). Label folders and files are found whatever their case
    (:func:`detector.evaluate.label_path_for`); Pascal VOC .xml labels are read as YOLO .txt ones are (a bad one
    refused alike), and with only them the data yaml may leave ``names`` out. ``tag`` names the data set in the
    split counts printed; ``splits``: those checked (a data set trained with the city's, ``--with``, needs no val)."""
    from .evaluate import resolve_split

    data_yaml = Path(data_yaml).resolve()
    if data_yaml.is_dir():
        raise InputError(_folder_advice(data_yaml), data_yaml)
    if not data_yaml.is_file():
        raise InputError("data yaml not found", data_yaml)
    d = read_data_yaml(data_yaml)  # UTF-8, or Shift_JIS from a Japanese Notepad
    if "train" not in d:  # names: may be left out for Pascal VOC labels (they name their classes)
        raise InputError("not a YOLO data yaml (needs train, val, names)", data_yaml)
    if "val" in splits and not d.get("val"):
        raise InputError("no val split: training picks best.pt on it (add val: images/val)", data_yaml, "val")
    ids = dataset_names(d, data_yaml)  # D00.. or their English/Japanese names, any order
    to_ours = {i: CLASS_IDS.index(c) for i, c in enumerate(ids)}
    if ids != list(CLASS_IDS):
        print(f"note: {data_yaml}: classes in the order {', '.join(ids)}; their labels are renumbered to the "
              f"model's order {', '.join(CLASS_IDS)}", file=sys.stderr)
    plan = DataPlan(data_yaml, oversample)
    for split in splits:
        images, _ = resolve_split(data_yaml, split)
        plan.splits[split] = _check_split(images, ids, to_ours, split, data_yaml, tag, plan.label_files)
    if oversample:
        _check_oversample_keys([name for _, name, _ in plan.splits["train"]], oversample, data_yaml)
    return plan


def resolve_data_yaml(
    data_yaml: str | Path,
    work_dir: Path,
    oversample: dict[str, int] | None = None,
    plan: DataPlan | None = None,
    with_: list[str | Path] | None = None,
    with_val: bool = False,
) -> Path:
    """Check a YOLO data.yaml and its train and val splits (:func:`check_data_yaml`, unless its ``plan`` is given),
    then write the dataset ultralytics trains on into ``work_dir``: ``images/<split>/`` of links to the usable
    images (symbolic, else hard links, else copies), ``labels/<split>/`` of their label files with the classes
    renumbered to the model's order (D00, D10, D20, D40), and ``data.resolved.yaml``. Returns its path. Nothing is
    written beside the city's own data (ultralytics' label caches go into ``work_dir``), nor anything at all when
    the check refuses the data.

    ``oversample`` repeats training images: keys are an image-name prefix (``Japan_``) or a class name
    (``D40``), values how many times an image that matches is listed (an image matching several keys takes
    the largest). The train split then becomes a list file, ``train.oversampled.txt`` in ``work_dir``.

    ``with_``: other data yamls whose train splits train with this one's (:func:`check_data_sets`); which were
    used is written to ``data.sources.json`` in ``work_dir`` (a resumed run compares them)."""
    import json
    import shutil

    if plan is None:
        plan = check_data_sets(data_yaml, with_, oversample, with_val)
    work_dir.mkdir(parents=True, exist_ok=True)
    out_d: dict[str, Any] = {"path": str(work_dir.resolve()), "names": dict(enumerate(CLASS_IDS))}
    link = _Linker()
    for split, entries in plan.splits.items():
        for sub in ("images", "labels"):
            shutil.rmtree(work_dir / sub / split, ignore_errors=True)
        _mirror_split(entries, work_dir, split, link)
        out_d[split] = f"images/{split}"
    link.report(work_dir)
    if plan.oversample:
        out_d["train"] = str(write_oversampled_list(work_dir / "images" / "train", plan.oversample, work_dir,
                                                    plan.data_yaml, plan.tags))
    (work_dir / "data.sources.json").write_text(json.dumps(_sources_record(plan), ensure_ascii=False, indent=1),
                                                encoding="utf-8")
    out = work_dir / "data.resolved.yaml"
    out.write_text(yaml.safe_dump(out_d, allow_unicode=True), encoding="utf-8")
    return out


def _folder_advice(folder: Path) -> str:
    """What to pass instead of a dataset folder: its data.yaml, or the one to write for the splits it holds."""
    yamls = sorted(p.name for p in folder.glob("*.y*ml") if p.suffix.lower() in (".yaml", ".yml"))
    if yamls:
        return f"a folder: pass its data yaml ({', '.join(yamls[:3])})"
    splits = {s: f"{d}/{s}" for s in ("train", "val") for d in ("images", "") if (folder / d / s).is_dir()}
    lines = [f"{s}: {splits.get(s, f'images/{s}')}" for s in ("train", "val")]
    need = "" if len(splits) == 2 else (
        "; put the training photos in images/train and the validation photos (say a fifth, other streets than "
        "train's) in images/val, their labels in labels/train and labels/val")
    return (f"a folder, not a data yaml: training needs a train and a val split{need}, and a data.yaml in it saying "
            f"where they are and the classes in your label files' order, e.g. {folder / 'data.yaml'}: "
            f"'{lines[0]}', '{lines[1]}', 'names: [D00, D10, D20, D40]' (README: Retraining for a city)")


def image_problem(path: Path) -> str | None:
    """Why ultralytics cannot train on an image file (header and end marker only, nothing decoded), or None."""
    from .frames import _HeaderProblem, _jpeg_header, _png_header, sniff_format

    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return "empty file"
            head = fh.read(64)
            fmt = sniff_format(head)
            if fmt == "jpeg":
                _jpeg_header(fh, size)
            elif fmt == "png":
                _png_header(head)
            elif fmt in ("", "heif", "avif", "gif"):
                return (f"a {fmt.upper()} image: ultralytics trains on JPEG, PNG, BMP, TIFF or WebP" if fmt
                        else "not an image (by its content)")
    except _HeaderProblem as e:
        return e.reason
    except OSError as e:
        return f"cannot read: {e.strerror or type(e).__name__}"
    return None


class _Linker:
    """Puts a training image into the work folder: a symbolic link, else a hard link, else a copy. Symbolic links
    fail on Windows without Developer Mode (or admin rights) and on some network shares and FAT/exFAT drives; hard
    links fail across drives. ``report`` then says once how the images got there (copies take disk space)."""

    def __init__(self) -> None:
        self.symlink_error: str | None = None  # set once symlinks failed: not tried again
        self.hard = self.copied = self.copied_bytes = 0

    def __call__(self, src: Path, dst: Path) -> None:
        import shutil

        if self.symlink_error is None:
            try:
                os.symlink(src, dst)
                return
            except (OSError, NotImplementedError) as e:
                self.symlink_error = getattr(e, "strerror", None) or str(e) or type(e).__name__
        try:
            os.link(src, dst)
            self.hard += 1
            return
        except OSError:
            pass
        shutil.copyfile(src, dst)
        self.copied += 1
        self.copied_bytes += dst.stat().st_size

    def report(self, work_dir: Path) -> None:
        if self.symlink_error is None:
            return
        how = [f"{n} {what}" for n, what in ((self.hard, "hard-linked"),
                                              (self.copied, f"copied ({self.copied_bytes / 1e6:.0f} MB)")) if n]
        print(f"note: cannot make symbolic links in {work_dir} ({self.symlink_error}); the training images were "
              f"{' and '.join(how)} there instead", file=sys.stderr)


def _check_split(images: list[Path], ids: list[str], to_ours: dict[int, int], split: str,
                 data_yaml: Path, tag: str | None = None, label_files: list[Path] | None = None
                 ) -> list[tuple[Path, str, list[str] | None]]:
    """The split's usable images, each with its name in the work folder and its checked, renumbered label lines
    (None: no label file); prints the warnings and the split's counts. Writes nothing. The label files of the usable
    images are appended to ``label_files``."""
    from .evaluate import VocNotes, label_paths_for, require_labels

    bad: list[str] = []
    voc = VocNotes()
    bad_labels: list[InputError] = []
    used: set[str] = set()
    entries: list[tuple[Path, str, list[str] | None]] = []
    n_boxes = n_empty = 0
    labs = label_paths_for(images)
    require_labels(images, labs, data_yaml, split, ids)  # none at all: every photo would train as background
    for img, lab in zip(images, labs):
        problem = image_problem(img)
        if problem:
            bad.append(f"{img}: {problem}")
            continue
        try:
            xywh, cls = _label_rows(lab, ids, img, voc)
        except InputError as e:
            bad_labels.append(e)
            continue
        name = img.name
        k = 1
        while name.lower() in used:  # the same name in two folders of one split
            name, k = f"{img.stem}-{k}{img.suffix}", k + 1
        used.add(name.lower())
        n_empty += not cls
        lines = None
        if lab.is_file():
            n_boxes += len(cls)
            if label_files is not None:
                label_files.append(lab)
            lines = [f"{to_ours[c]} {' '.join(f'{v:.6g}' for v in row)}" for c, row in zip(cls, xywh)]
        entries.append((img, name, lines))
    voc.report(f"{data_yaml}: {split}")
    if bad_labels:  # every one named, so that a city fixes them in one go
        first = bad_labels[0]
        more = [e.path for e in bad_labels[1:]]
        raise InputError(first.reason + (f" (and {len(more)} more label files: {', '.join(more[:5])}"
                                         + (", …" if len(more) > 5 else "") + ")" if more else ""), first.path)
    for b in bad[:5]:
        print(f"warning: {b}; left out of {split}", file=sys.stderr)
    if len(bad) > 5:
        print(f"warning: {len(bad) - 5} more images of {split} left out (cannot be read)", file=sys.stderr)
    kept = len(images) - len(bad)
    if not kept:
        raise InputError(f"none of the {len(images)} {split} images can be read (e.g. {bad[0]})", data_yaml, split)
    if not any(lines is not None for _, _, lines in entries):
        raise InputError(f"no label files for the {kept} readable {split} images (those with one cannot be read)",
                         data_yaml, split)
    print(f"{tag + ' ' if tag else ''}{split}: {kept} images, {n_boxes} boxes, {n_empty} without a box (background: no damage)"
          + (f", {len(bad)} left out" if bad else ""), file=sys.stderr)
    return entries


def _mirror_split(entries: list[tuple[Path, str, list[str] | None]], work_dir: Path, split: str,
                  link: _Linker | None = None) -> None:
    """Links to the split's checked images and their renumbered labels (:func:`_check_split`) under work_dir."""
    img_dir, lab_dir = work_dir / "images" / split, work_dir / "labels" / split
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    for img, name, lines in entries:
        (link or _Linker())(img.resolve(), img_dir / name)
        if lines is not None:
            (lab_dir / name).with_suffix(".txt").write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")


def _label_rows(lab: Path, ids: list[str], img: Path | None = None,
                notes: Any = None) -> tuple[list[tuple[float, ...]], list[int]]:
    """A label file's boxes as normalised (cx, cy, w, h) rows and data-yaml class indexes; checked by read_labels.
    A Pascal VOC .xml (pixel boxes) is normalised by the size of its photo ``img``."""
    from .evaluate import image_size, read_labels

    w, h = image_size(img) if img is not None and lab.suffix.lower() == ".xml" and lab.is_file() else (1, 1)
    xyxy, names = read_labels(lab, ids, w, h, notes)
    xyxy = xyxy / np.array([w, h, w, h], dtype=np.float64)
    rows = [((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1) for x1, y1, x2, y2 in xyxy.tolist()]
    # read_labels names each box by our class id (the data yaml's class at a YOLO line's index, a VOC object's
    # name); to_ours renumbers by the data yaml's index, so a box's is recovered from our id
    return rows, [ids.index(n) for n in names]


def parse_oversample(items: list[str] | None) -> dict[str, int]:
    """``["Japan_=2", "D40=3"]`` → ``{"Japan_": 2, "D40": 3}``; a bad item raises InputError naming it."""
    out: dict[str, int] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        try:
            n = int(val)
        except ValueError:
            n = 0
        if not sep or not key.strip() or n < 1 or n > 100:
            raise UsageError(f"--oversample wants KEY=N with N in 1..100 (an image prefix or class name), got {item!r}")
        out[key.strip()] = n
    return out


# options `patrol train` sets itself (or that would break resume/offline/output layout): not passable via --hyp
_HYP_RESERVED = frozenset({
    "task", "mode", "model", "data", "epochs", "time", "imgsz", "batch", "device", "project", "name", "exist_ok",
    "resume", "cache", "workers", "val", "plots", "amp", "source", "format", "cfg", "tracker", "save_dir",
})


def parse_hyp(items: list[str] | None) -> dict[str, Any]:
    """``--hyp`` values → ultralytics training arguments, checked before any training starts.

    Each item is ``KEY=VALUE`` (the value read as YAML: ``mixup=0.15``, ``scale=0.7``, ``cos_lr=true``) or the
    path of a YAML file holding such a mapping (a municipality's own augmentation recipe); later items win.
    A key ultralytics does not know, one this command sets itself (use its option), or a value of the wrong
    type raises InputError naming the key (and the file)."""
    if not items:
        return {}
    require_torch("patrol train --hyp")
    from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg

    out: dict[str, Any] = {}
    for item in items or []:
        source: Path | None = None
        key, sep, raw = item.partition("=")
        if sep:
            try:
                pairs = {key.strip(): yaml.safe_load(raw) if raw.strip() else None}
            except yaml.YAMLError as e:
                raise UsageError(f"--hyp {item!r}: value is not valid YAML: {e}") from None
        else:
            source = Path(item)
            if not source.is_file():
                raise InputError("--hyp wants KEY=VALUE or a YAML file of them; file not found", source)
            try:
                pairs = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                raise InputError(f"invalid YAML: {e}", source) from None
            if not isinstance(pairs, dict):
                raise InputError("a --hyp file must hold a mapping of training arguments (KEY: VALUE)", source)
        for k, v in pairs.items():
            k = str(k).strip()
            if k in _HYP_RESERVED:
                raise UsageError(f"--hyp {k}: set by patrol train itself; use its own option (see --help)", source)
            if k not in DEFAULT_CFG_DICT:
                raise UsageError(f"--hyp {k}: not an ultralytics training argument (e.g. mixup, scale, degrees, "
                                 f"lr0, cos_lr, close_mosaic, multi_scale, save_period)", source)
            if v is None:
                raise UsageError(f"--hyp {k}: no value given", source)
            try:
                check_cfg({k: v}, hard=True)
            except (TypeError, ValueError) as e:
                raise UsageError(f"--hyp {k}={v!r}: {e}", source) from None
            out[k] = v
    return out


def _own_name(name: str, tags: list[str] | None) -> str:
    """An image's name in its own data set: its work-folder name less the ``<tag>_`` of :func:`check_data_sets`."""
    for t in tags or []:
        if name.startswith(t + "_"):
            return name[len(t) + 1:]
    return name


def _prefix_matches(name: str, key: str, tags: list[str] | None) -> bool:
    """``--oversample`` prefix ``key`` matches an image by its work-folder name (``city_…``) or its own name; a key
    that is a data set's tag (``city``) matches that data set's images only (not those of a ``city-b`` folder's)."""
    if tags and key in tags:
        return name.startswith(key + "_")
    return name.startswith(key) or _own_name(name, tags).startswith(key)


def _sources_record(plan: DataPlan) -> dict[str, Any]:
    from .labelset import unchecked_prelabels

    found = plan.unchecked if plan.unchecked is not None else unchecked_prelabels(plan.label_files)
    return {"data": str(plan.data_yaml), "with": [str(y) for _, y in plan.sources[1:]], "with_val": plan.with_val,
            # the run's label files that were label-set's unchecked pre-labels when it started (a resume trains on
            # them as they were then: checked again on resume, _check_resumed)
            "unchecked": {"unchecked_ok": plan.unchecked_ok,
                          "sets": [{"folder": str(u.folder), "xmls": str(u.xmls), "names": u.names, "total": u.total}
                                   for u in found]}}


def _check_oversample_keys(image_names: list[str], oversample: dict[str, int], data_yaml: Path,
                           tags: list[str] | None = None) -> None:
    """An ``--oversample`` key that is no class name and starts no train image's name: the option's value, not the
    data, is wrong (as --prefix of eval and tune): UsageError, exit 2."""
    names = list(CLASS_IDS)
    unmatched = [k for k in oversample if k not in names and not any(_prefix_matches(n, k, tags) for n in image_names)]
    if unmatched:
        raise UsageError(f"--oversample key(s) {', '.join(unmatched)} match no class name and no image name "
                         f"prefix (classes: {', '.join(names)})", data_yaml, "train")


def write_oversampled_list(img_dir: Path, oversample: dict[str, int], work_dir: Path, data_yaml: Path,
                           tags: list[str] | None = None) -> Path:
    """Write the train split (the checked images in ``img_dir``) as a list of image paths, each repeated by its
    oversample factor."""
    from .evaluate import _list_images, label_paths_for, read_labels

    images, names = _list_images(img_dir), list(CLASS_IDS)
    by_class = {k: v for k, v in oversample.items() if k in names}
    prefixes = {k: v for k, v in oversample.items() if k not in by_class}
    _check_oversample_keys([p.name for p in images], oversample, data_yaml, tags)
    lines: list[str] = []
    for img, lab in zip(images, label_paths_for(images) if by_class else images):
        n = max([v for k, v in prefixes.items() if _prefix_matches(img.name, k, tags)], default=1)
        if by_class:
            present = set(read_labels(lab, names, 1, 1)[1])
            n = max([n] + [v for c, v in by_class.items() if c in present])
        lines.extend([str(img)] * n)
    out = work_dir / "train.oversampled.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _use_all_cores() -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)


def train(
    data_yaml: str | Path,
    model: str | Path,
    out: str | Path = "runs/train",
    name: str = "rdd",
    epochs: int = 100,
    imgsz: int = 640,
    batch: int = 16,
    device: str | None = None,
    time_hours: float | None = None,
    patience: int = 50,
    workers: int | None = None,
    cache: str | bool = False,
    oversample: dict[str, int] | None = None,
    val: bool = True,
    export: bool = True,
    extra: dict[str, Any] | None = None,
    with_: list[str | Path] | None = None,
    with_val: bool = False,
    unchecked_ok: bool = False,
) -> Path:
    """Train (or resume, if ``OUT/NAME/weights/last.pt`` exists and is unfinished). Returns best.pt.

    ``val=False`` validates only after the last epoch (best.pt is then the last epoch); ``export=False``
    skips the ONNX export (e.g. on a training machine without onnxslim; export later with export_onnx).
    ``with_``: other data yamls (RDD) trained on together with ``data_yaml``'s photos (:func:`check_data_sets`).

    One training at a time per run folder: a second one of the same OUT and NAME, while the first still runs, is
    refused (UsageError, exit 2) before it touches anything (it rebuilt the first's dataset under it and wrote
    into the same weights/ and results.csv). The lock is ``OUT/.NAME-data/train.lock``, released by the OS even
    when the first is killed.

    Label files of a ``patrol label-set`` folder still as it wrote them (:func:`detector.labelset.unchecked_prelabels`:
    boxes unchanged, not marked verified in LabelImg) would teach the model its own guesses: where more than
    :data:`~detector.labelset.UNCHECKED_REFUSE` of a label-set's files are so, training is refused (UsageError,
    exit 2, before anything is written) unless ``unchecked_ok``; fewer get a warning. A resumed run is checked too,
    by the same rule, on its label files as they were when it started (it trains on its copy of them; recorded in
    ``OUT/.NAME-data/data.sources.json``, with ``unchecked_ok``: given at the start, it holds for the resume); a run
    started before that record (patrol 0.8.0) is checked on the label files its data yamls name now."""
    require_torch("patrol train", EXPORT_MODULES if export else TORCH_MODULES)
    out = Path(out).resolve()
    run_dir = out / name

    def busy(pid: int | None) -> None:
        raise UsageError(f"another patrol train{f' (process {pid})' if pid else ''} is training into this folder; "
                         "wait for it to finish (run the same command again afterwards to resume it if it was "
                         "stopped), or pass another --name", run_dir)

    # what can be checked without the run folder is checked before the lock is made, so that a wrong path, option or
    # model leaves nothing behind (not even OUT/.NAME-data/train.lock); where the lock is there already (this run
    # folder was trained into), it is taken first, so that a training running there refuses this one at once
    from contextlib import ExitStack

    import torch

    lock_path = out / f".{name}-data" / "train.lock"
    with ExitStack() as held:
        locked = lock_path.is_file()
        if locked:
            held.enter_context(FileLock(lock_path, busy))
        if device is None:
            device = "0" if torch.cuda.is_available() else "cpu"
        elif str(device).lower() not in ("cpu", "mps") and not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA GPU on this machine (use --device cpu, or leave it out)")
        plan = None
        if not (run_dir / "weights" / "last.pt").is_file():  # a run to resume keeps its own data and model
            _check_initial_model(Path(model))
            plan = check_data_sets(data_yaml, with_, oversample, with_val)
            check_unchecked(plan, unchecked_ok)
        if not locked:
            held.enter_context(FileLock(lock_path, busy))
        return _train_locked(data_yaml, model, out, name, epochs, imgsz, batch, device, time_hours, patience, workers,
                             cache, oversample, val, export, extra, plan, with_, with_val, unchecked_ok)


def check_unchecked(plan: DataPlan, unchecked_ok: bool = False) -> None:
    """Refuse (UsageError) a plan more than UNCHECKED_REFUSE of one label-set's label files of which are as
    ``patrol label-set`` wrote them, unless ``unchecked_ok``; warn about any fewer (or all, with it). The finding
    and ``unchecked_ok`` are kept on the plan (data.sources.json: :func:`_check_resumed`)."""
    from .labelset import unchecked_prelabels

    plan.unchecked = unchecked_prelabels(plan.label_files)
    plan.unchecked_ok = unchecked_ok
    _refuse_or_warn(plan.unchecked, unchecked_ok)


def _refuse_or_warn(found: list, unchecked_ok: bool, resumed: str = "") -> None:
    """The rule of :func:`check_unchecked` on :func:`~detector.labelset.unchecked_prelabels`' ``found``
    (``resumed``: the words that say the run resumed trains on its labels as they were)."""
    from .labelset import UNCHECKED_REFUSE, unchecked_message

    worst = max(found, key=lambda u: u.share, default=None)
    if worst is not None and worst.share > UNCHECKED_REFUSE and not unchecked_ok:
        raise UsageError(("not resumed: " + resumed if resumed else "not trained: ") + unchecked_message(
            worst, "train", refused=True, go_on="and train anew (another --name: the run goes on with its own copy "
            "of the labels), or, if they are right as they are, resume anyway with --unchecked-ok" if resumed else None))
    for u in found:
        print("warning: " + resumed + unchecked_message(u, "train"), file=sys.stderr)


def _check_resumed(record: Path, data_yaml, with_, with_val: bool, unchecked_ok: bool) -> None:
    """A resumed run's unchecked pre-labels, by :func:`check_unchecked`'s rule: those its data.sources.json
    ``record`` kept when it started (it trains on its copy of the labels as they were then), ``unchecked_ok`` given
    now or then; a run started before the record kept them (0.8.0): the label files of its data yamls as they are
    now (the recorded ones, else those of this command), cheaply listed (nothing but the label files is read)."""
    import json

    from .evaluate import label_paths_for, resolve_split
    from .labelset import Unchecked, unchecked_prelabels

    try:
        rec = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rec = {}
    kept = rec.get("unchecked") if isinstance(rec, dict) else None
    if isinstance(kept, dict):
        try:
            found = [Unchecked(Path(u["folder"]), Path(u["xmls"]), [str(n) for n in u["names"]], int(u["total"]))
                     for u in kept.get("sets") or []]
        except (KeyError, TypeError, ValueError):
            found = None
        if found is not None:
            was_ok = bool(kept.get("unchecked_ok"))
            _refuse_or_warn(found, unchecked_ok or was_ok,
                            "the resumed run trains on its labels as they were when it started"
                            + (" with --unchecked-ok" if was_ok else "") + ": ")
            return
    yamls = [Path(rec["data"]) if isinstance(rec, dict) and rec.get("data") else Path(data_yaml)]
    if isinstance(rec, dict) and "with" in rec:
        others, with_val = [Path(w) for w in rec.get("with") or []], bool(rec.get("with_val"))
    else:
        others = [Path(w) for w in with_ or []]
    labels: list[Path] = []
    for i, y in enumerate([*yamls, *others]):
        for split in ("train", "val") if i == 0 or with_val else ("train",):
            try:
                images, _ = resolve_split(y.resolve(), split)
            except InputError as e:  # the data moved since: the run trains on its own copy
                print(f"note: the resumed run's labels are not checked for unchecked pre-labels: {e}", file=sys.stderr)
                return
            labels += [lab for lab in label_paths_for(images) if lab.is_file()]
    _refuse_or_warn(unchecked_prelabels(labels), unchecked_ok,
                    "the resumed run trains on its labels as they were when it started (not recorded: as they are "
                    "now): ")


def _check_initial_model(model: Path) -> None:
    if not model.is_file():
        raise ModelError("initial weights not found (nothing is downloaded; pass a local .pt or .yaml)", model)
    if model.suffix.lower() not in (".pt", ".yaml", ".yml"):
        raise ModelError(f"initial model must be a .pt checkpoint or a model .yaml, got {model.suffix or 'no suffix'!r}",
                         model)


def _train_locked(data_yaml, model, out: Path, name: str, epochs, imgsz, batch, device, time_hours, patience, workers,
                  cache, oversample, val, export, extra, plan: DataPlan | None = None, with_=None,
                  with_val: bool = False, unchecked_ok: bool = False) -> Path:
    from ultralytics import YOLO

    _skip_amp_download()

    run_dir = out / name
    last = run_dir / "weights" / "last.pt"
    ck = _checkpoint(last) if last.is_file() else None  # None: no run yet, or killed before its first checkpoint
    if ck is not None and ck.get("epoch", -1) == -1:  # ultralytics sets epoch=-1 once training ends
        raise UsageError(f"{run_dir} holds a finished training (its best.pt would be overwritten); "
                         "pass another --name, or move that folder away to train again")
    if ck is None and (run_dir / "weights" / "best.pt").is_file():
        raise UsageError(f"{run_dir} holds a best.pt but no checkpoint to resume from (weights/last.pt); pass another "
                         "--name, or move that folder away to train again")
    if ck is not None:
        was = ck.get("train_args") or {}
        asked = {"imgsz": imgsz, "batch": batch}
        if time_hours or was.get("time"):
            asked["time"] = time_hours  # with a time budget ultralytics sets the epochs itself
        else:
            asked["epochs"] = epochs
        differ = [f"{k} {was.get(k)} (asked now {v}: ignored)" for k, v in asked.items() if was.get(k) != v]
        differ += _differing_sources(out / f".{name}-data" / "data.sources.json", with_, with_val)
        _check_resumed(out / f".{name}-data" / "data.sources.json", data_yaml, with_, with_val, unchecked_ok)
        print(f"note: resuming the interrupted training in {run_dir} with its own arguments"
              + (f"; it keeps {', '.join(differ)}" if differ else ""), file=sys.stderr)
        _trim_results(run_dir / "results.csv", int(ck.get("epoch", 0)) + 1)
        yolo = YOLO(str(last))
        _patch_threads(yolo)
        yolo.train(resume=True)
    else:
        model = Path(model)
        _check_initial_model(model)
        if plan is None:  # (a last.pt that is no checkpoint: started afresh, checked as a first start)
            plan = check_data_sets(data_yaml, with_, oversample, with_val)
            check_unchecked(plan, unchecked_ok)
        data = resolve_data_yaml(data_yaml, run_dir.parent / f".{name}-data", oversample=oversample, plan=plan,
                                 with_=with_, with_val=with_val)
        try:
            yolo = YOLO(str(model))
        except Exception as e:  # noqa: BLE001 - whatever unpickling or parsing a foreign file raises
            raise ModelError(f"cannot load the initial model: {type(e).__name__}: {e}", model) from None
        _patch_threads(yolo)
        args = dict(
            data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, device=device, project=str(out), name=name,
            exist_ok=True, patience=patience, plots=False, amp=device != "cpu", seed=0, deterministic=False,
            workers=workers if workers is not None else min(8, os.cpu_count() or 1), cache=cache, verbose=True,
            val=val,
        )
        if time_hours:
            args["time"] = time_hours
        if extra:
            args.update(extra)
        yolo.train(**args)
    best = run_dir / "weights" / "best.pt"
    if not best.is_file():
        best = last
    if export:
        export_onnx(best, imgsz=trained_imgsz(best, imgsz))
    return best


def _differing_sources(record: Path, with_, with_val: bool) -> list[str]:
    """The run's ``--with`` data sets and ``--with-val`` (written by :func:`resolve_data_yaml`) where the resumed
    command asks for others: named in the "ignored now" note (a run from before --with trained on its data alone)."""
    import json

    try:
        was = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        was = {}
    was_with = [str(w) for w in was.get("with") or []]
    asked = [str(Path(w).resolve()) for w in with_ or []]
    out = []
    if was_with != asked:
        out.append(f"--with {', '.join(was_with) or 'none'} (asked now {', '.join(asked) or 'none'}: ignored)")
    if bool(was.get("with_val")) != bool(with_val) and (was_with or asked):
        out.append(f"--with-val {'on' if was.get('with_val') else 'off'} "
                   f"(asked now {'on' if with_val else 'off'}: ignored)")
    return out


def _trim_results(csv_path: Path, epochs_done: int) -> None:
    """Keep the header and the first ``epochs_done`` rows of results.csv: a run stopped after an epoch's row was
    written but before its checkpoint repeats that epoch on resume, and ultralytics appends it a second time."""
    try:
        lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return
    if len(lines) > epochs_done + 1:
        atomic_write_text(csv_path, "".join(lines[:epochs_done + 1]))


def _skip_amp_download() -> None:
    """ultralytics checks AMP on a GPU by downloading yolo26n.pt and comparing its outputs; offline that
    download is retried before ultralytics gives up and keeps AMP on. Decide the same without the attempt."""
    from ultralytics.engine import trainer

    def check_amp(model) -> bool:
        return next(model.parameters()).device.type not in ("cpu", "mps")

    trainer.check_amp = check_amp


def _checkpoint(last: Path) -> dict | None:
    """The run's last.pt, or None when it cannot be read (a run killed while writing its first checkpoint:
    started afresh)."""
    import torch

    try:
        return torch.load(last, map_location="cpu", weights_only=False)
    except Exception:
        return None


def trained_imgsz(pt: Path, default: int) -> int:
    """The image size a checkpoint was trained at (its train_args), else ``default``."""
    import torch

    try:
        ckpt = torch.load(pt, map_location="cpu", weights_only=False)
        return int((ckpt.get("train_args") or {}).get("imgsz", default))
    except Exception:
        return default


def config_weights_line(weights: str | Path, imgsz: int, cwd: str | Path | None = None) -> str:
    """What ``patrol train`` tells the user to put in a city config: ``detect: {weights: W, imgsz: N}`` and what W is
    relative to. A relative ``detect.weights`` is read from the config file's folder (``config.load``), so W is
    relative (to ``cwd``, the current folder) only where the weights lie under it: right as written for a config in
    that folder, with the path from a config one folder down (``configs/city.yaml``: ``../runs/...``, as the README
    shows); weights elsewhere are given absolute, right from any config."""
    cwd = Path(cwd if cwd is not None else os.getcwd()).resolve()
    w = (cwd / weights).resolve()  # a relative one (train's --out runs) is from cwd
    try:
        rel = w.relative_to(cwd).as_posix()
    except ValueError:
        rel = None

    def flow(d: dict) -> str:  # YAML flow style, quoted where a path needs it (a comma, ': ', '#', braces)
        return yaml.safe_dump(d, default_flow_style=True, sort_keys=False, allow_unicode=True, width=1 << 16).strip()

    if rel is None:
        return f"detect: {flow({'weights': str(w), 'imgsz': int(imgsz)})} (an absolute path: right in a config anywhere)"
    return (f"detect: {flow({'weights': rel, 'imgsz': int(imgsz)})} (a relative weights path is read from the config "
            f"file's folder: this is for a config in {cwd}; in a config one folder down, e.g. configs/city.yaml: "
            f"{flow({'weights': '../' + rel})[1:-1]})")


def _patch_threads(yolo) -> None:
    """ultralytics sets torch to one thread on import; give training every core again."""
    _use_all_cores()

    def cb(_trainer):
        _use_all_cores()

    for ev in ("on_pretrain_routine_end", "on_train_epoch_start"):
        yolo.add_callback(ev, cb)


def export_onnx(pt: str | Path, imgsz: int = 640, out: str | Path | None = None) -> Path:
    """Export .pt to ONNX (static batch 1..N dynamic, opset 17, simplified) next to it or at ``out``."""
    require_torch("exporting ONNX", EXPORT_MODULES)
    from ultralytics import YOLO

    pt = Path(pt)
    yolo = YOLO(str(pt))
    path = Path(yolo.export(format="onnx", imgsz=imgsz, dynamic=True, simplify=True, opset=17, half=False))
    if out is not None and Path(out).resolve() != path.resolve():
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, out)
        path = Path(out)
    return path


def average_weights(inputs: list[str | Path], out: str | Path, weights: list[float] | None = None) -> Path:
    """Average the parameters of checkpoints of one architecture (a "model soup", e.g. two fine-tuning runs from
    the same start) into one ultralytics checkpoint at ``out`` (fp16, no optimizer), which loads like any other.

    Float tensors (weights, biases, batch-norm statistics) are averaged, weighted by ``weights`` (default equal);
    integer buffers come from the last input, as do the training args and class names of the written file."""
    require_torch("patrol average-weights")
    import torch

    paths = [Path(p) for p in inputs]
    if len(paths) < 2:
        raise UsageError("averaging needs at least two checkpoints")
    w = [1.0] * len(paths) if weights is None else [float(x) for x in weights]
    if len(w) != len(paths) or any(x < 0 for x in w) or sum(w) <= 0:
        raise UsageError(f"--weight wants one non-negative number per checkpoint ({len(paths)}), got {weights}")
    ckpts, models, states = [], [], []
    for p in paths:
        if not p.is_file():
            raise ModelError("checkpoint not found", p)
        try:
            ck = torch.load(p, map_location="cpu", weights_only=False)
            model = (ck.get("ema") or ck["model"]).float()
            states.append(model.state_dict())
        except Exception as e:  # noqa: BLE001 - anything unpickling a foreign file
            raise ModelError(f"not an ultralytics checkpoint: {type(e).__name__}: {e}", p) from None
        ckpts.append(ck)
        models.append(model)
    ref = states[-1]
    for p, sd in zip(paths, states):
        if sd.keys() != ref.keys() or any(sd[k].shape != ref[k].shape for k in ref):
            raise ModelError(f"architecture differs from {paths[-1].name}: only checkpoints of one model can be averaged", p)
    from .config import load_config
    from .infer import map_class_names

    cfg = load_config(None)

    def class_order(m) -> list[str]:
        names = dict(getattr(m, "names", {}) or {})
        try:  # our ids, their English/Japanese names, or placeholders ('0'..'3', data.yaml order)
            return map_class_names(names, cfg)
        except ModelError:
            return [str(names[k]) for k in sorted(names)]

    orders = [class_order(m) for m in models]
    for p, order in zip(paths, orders):
        if order != orders[-1]:
            raise ModelError(f"classes {order} differ from {paths[-1].name}'s {orders[-1]}: averaging would mix "
                             "the outputs of different classes", p)
    total = sum(w)
    avg = {k: (sum(wi * sd[k] for wi, sd in zip(w, states)) / total) if ref[k].is_floating_point() else ref[k]
           for k in ref}
    model, last = models[-1], ckpts[-1]
    model.load_state_dict(avg)
    last.update(model=model.half(), ema=None, optimizer=None, updates=None, epoch=-1,
                averaged_from=[str(p) for p in paths], averaged_weights=w)
    with atomic_write(out, "wb") as fh:
        torch.save(last, fh)
    return Path(out)
