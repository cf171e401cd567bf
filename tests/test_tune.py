"""Threshold tuning: the known optimum on synthetic predictions; the YAML keeps everything but thresholds."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from detector import CLASS_IDS
from detector import tune as tune_mod
from detector.config import load_config
from detector.evaluate import ImagePreds, score, source_of
from detector.tune import (choose_thresholds, thresholds_text, thresholds_tuned_at, tune, tune_stamp,
                           write_thresholds)


def _box(i: int) -> list[float]:
    return [i * 50.0, 0.0, i * 50.0 + 40.0, 40.0]


def _img(name: str, preds: list[tuple[int, str, float, bool]], n_gt_extra: list[tuple[int, str]] = ()) -> ImagePreds:
    """preds: (slot, class, conf, is_true) -- a true prediction sits exactly on a gt box of its class at ``slot``."""
    px, pc, pk, gx, gk = [], [], [], [], []
    for slot, cls, conf, true in preds:
        px.append(_box(slot))
        pc.append(conf)
        pk.append(cls)
        if true:
            gx.append(_box(slot))
            gk.append(cls)
    for slot, cls in n_gt_extra:
        gx.append(_box(slot))
        gk.append(cls)
    return ImagePreds(name=name, source=source_of(name), width=640, height=640,
                      pred_xyxy=np.array(px, float).reshape(-1, 4), pred_conf=np.array(pc, float),
                      pred_cls=np.array(pk, dtype=object), gt_xyxy=np.array(gx, float).reshape(-1, 4),
                      gt_cls=np.array(gk, dtype=object))


@pytest.fixture
def synthetic() -> list[ImagePreds]:
    return [
        # D00: TPs at 0.65..0.8, FPs at 0.2..0.35 -> any threshold in (0.35, 0.65] is perfect for D00
        _img("Japan_1.jpg", [(0, "D00", 0.8, True), (1, "D00", 0.3, False)]),
        _img("Japan_2.jpg", [(0, "D00", 0.7, True), (1, "D00", 0.35, False)]),
        _img("Czech_1.jpg", [(0, "D00", 0.65, True), (1, "D00", 0.2, False)]),
        # D40: one TP at 0.5 crowded out by five 0.6 D00 FPs under the 5-box cap unless D00's threshold > 0.6
        _img("Czech_2.jpg", [(i, "D00", 0.6, False) for i in range(5)] + [(6, "D40", 0.5, True)]),
        # D40 FP at 0.3: D40 threshold should be in (0.3, 0.5]
        _img("China_MotorBike_1.jpg", [(0, "D40", 0.3, False)]),
        # D10: TP at 0.9 and a missed gt; D20: nothing at all
        _img("China_MotorBike_2.jpg", [(0, "D10", 0.9, True)], [(3, "D10")]),
    ]


def _brute(preds, grid):
    best = -1.0
    for combo in itertools.product(grid, repeat=4):
        f = score(preds, dict(zip(CLASS_IDS, combo)), with_map=False)["f1"]
        best = max(best, f)
    return best


def test_choose_thresholds_known_optimum(synthetic):
    init = dict.fromkeys(CLASS_IDS, 0.25)
    thr, f1 = choose_thresholds(synthetic, init)
    assert 0.6 < thr["D00"] <= 0.65  # above the crowding FPs, below the weakest TP
    assert 0.3 < thr["D40"] <= 0.5
    assert thr["D10"] <= 0.9
    assert thr["D20"] == 0.25  # no predictions: left as it was
    # 3 D00 TP + 1 D40 TP + 1 D10 TP, no FP, 1 FN -> F1 = 10 / 11
    assert f1 == pytest.approx(10 / 11)
    assert score(synthetic, thr, with_map=False)["f1"] == pytest.approx(f1)
    # the same optimum as an exhaustive search over a coarse grid
    grid = [0.1, 0.32, 0.55, 0.62, 0.95]
    thr2, f2 = choose_thresholds(synthetic, init, grid=grid)
    assert f2 == pytest.approx(_brute(synthetic, grid))
    assert f1 >= score(synthetic, init, with_map=False)["f1"]


def test_plateau_middle_and_single_class():
    preds = [_img(f"Japan_{i}.jpg", [(0, "D20", 0.8, True), (1, "D20", 0.4, False)]) for i in range(3)]
    thr, f1 = choose_thresholds(preds, dict.fromkeys(CLASS_IDS, 0.1))
    assert f1 == 1.0
    assert thr["D20"] == pytest.approx(0.6, abs=0.011)  # middle of the plateau 0.41..0.80


CONFIG = """\
# Toyama city patrol configuration
municipality: toyama   # city name
timezone: Asia/Tokyo

classes:
  D00:
    name_en: longitudinal crack
    name_ja: 縦ひび割れ
    threshold: 0.25   # tuned 2026-10
    severity_weight: 1.0
  # transverse cracks matter less here
  D10:
    name_en: transverse crack
    name_ja: 横ひび割れ
    threshold: 0.3
  D20: {name_en: alligator crack, name_ja: 亀甲状ひび割れ}

  'D40':
    severity_weight: 3.5
    threshold: .2

detect:
  imgsz: 640   # keep
  iou: 0.5
dedupe:
  distance_m: 12.0
"""


def _strip_thr(d: dict) -> dict:
    d = yaml.safe_load(yaml.safe_dump(d))
    for spec in (d.get("classes") or {}).values():
        if isinstance(spec, dict):
            spec.pop("threshold", None)
    return d


def _other_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.strip().startswith("threshold:")]


NEW = {"D00": 0.41, "D10": 0.37, "D20": 0.6, "D40": 0.15}


def test_write_thresholds_targeted_edit(tmp_path):
    p = tmp_path / "toyama.yaml"
    p.write_text(CONFIG, encoding="utf-8")
    before = yaml.safe_load(CONFIG)
    # flow-style D20 cannot be edited line-wise: the fallback dump still changes only thresholds
    write_thresholds(p, NEW)
    after = yaml.safe_load(p.read_text(encoding="utf-8"))
    assert _strip_thr(after) == _strip_thr(before)
    assert {c: after["classes"][c]["threshold"] for c in CLASS_IDS} == NEW
    cfg = load_config(p)
    assert cfg.thresholds() == NEW
    assert cfg.municipality == "toyama" and cfg.classes["D40"].severity_weight == 3.5


def test_write_thresholds_keeps_text_and_comments(tmp_path):
    text = CONFIG.replace("  D20: {name_en: alligator crack, name_ja: 亀甲状ひび割れ}\n",
                          "  D20:\n    name_en: alligator crack\n")
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    write_thresholds(p, NEW)
    new = p.read_text(encoding="utf-8")
    assert _other_lines(new) == _other_lines(text)  # every non-threshold line untouched, comments included
    assert "    threshold: 0.41   # tuned 2026-10" in new
    after = yaml.safe_load(new)
    assert _strip_thr(after) == _strip_thr(yaml.safe_load(text))
    assert load_config(p).thresholds() == NEW


def test_write_thresholds_into_a_config_open_elsewhere_keeps_the_values(tmp_path, monkeypatch):
    """On Windows an editor that locks the config (or Excel) makes the replace fail after minutes of tuning: the
    one-line error (exit 2) names the file and gives the tuned thresholds, the config is left as it was."""
    import winsim
    from detector.atomic import OutputInUseError

    p = tmp_path / "toyama.yaml"
    p.write_text(CONFIG, encoding="utf-8")
    winsim.held_open(monkeypatch, p.name)
    with pytest.raises(OutputInUseError) as e:
        write_thresholds(p, NEW)
    assert e.value.exit_code == 2 and e.value.path == str(p)
    assert "open in an editor or another program; close it and run the same command again" in str(e.value)
    assert str(e.value).endswith("the tuned thresholds, to write in by hand if need be: D00 0.41, D10 0.37, "
                                 "D20 0.60, D40 0.15")
    assert p.read_text(encoding="utf-8") == CONFIG


def test_thresholds_text_inserts_missing(tmp_path):
    # a class without a threshold line, a class missing, and a file without classes at all
    text = "municipality: x  # keep me\nclasses:\n  D00:\n    name_en: crack\n  D10:\n    threshold: 0.5\n# tail comment\ndetect:\n  imgsz: 320\n"
    new = thresholds_text(text, NEW)
    assert "# keep me" in new and "# tail comment" in new
    d = yaml.safe_load(new)
    assert {c: d["classes"][c]["threshold"] for c in CLASS_IDS} == NEW
    assert d["classes"]["D00"]["name_en"] == "crack" and d["detect"] == {"imgsz": 320}
    new2 = thresholds_text("municipality: y\n", NEW)
    assert new2.startswith("municipality: y\n")
    assert yaml.safe_load(new2)["classes"]["D40"] == {"threshold": 0.15}
    p = tmp_path / "new.yaml"
    write_thresholds(p, NEW)  # created when missing
    assert load_config(p).thresholds() == NEW


def test_tune_end_to_end(tmp_path, monkeypatch, synthetic):
    p = tmp_path / "c.yaml"
    text = CONFIG.replace("  D20: {name_en: alligator crack, name_ja: 亀甲状ひび割れ}\n", "  D20:\n    name_en: a\n")
    p.write_text(text, encoding="utf-8")
    calls = []

    def fake_predict(data_yaml, weights, cfg, split="val", **kw):
        calls.append((data_yaml, weights, split))
        return synthetic

    monkeypatch.setattr(tune_mod, "predict_split", fake_predict)
    res = tune("data.yaml", "w.onnx", p, split="test")
    assert calls == [("data.yaml", "w.onnx", "test")]
    assert res["f1_after"] == pytest.approx(10 / 11)
    assert res["f1_after"] >= res["f1_before"]
    new = p.read_text(encoding="utf-8")
    # one line more: above classes:, the size (detect.imgsz), model and data the thresholds were chosen for, and
    # which classes: D20 has no labelled box in the split, so its threshold was left alone (the stamp named it too)
    stamp = [ln for ln in new.splitlines() if ln.startswith("# patrol tune")]
    assert len(stamp) == 1 and stamp[0].endswith(": thresholds of D00 D10 D40 chosen at 640 px (detect.imgsz) for "
                                                  f"{Path('w.onnx').resolve()} on "  # outside tmp_path: absolute
                                                  "data.yaml (test); left as they were (no labelled box in the "
                                                  "split): D20"), stamp
    assert res["kept"] == ["D20"] and res["D20"] == load_config(None).thresholds()["D20"]
    assert new.splitlines()[new.splitlines().index(stamp[0]) + 1] == "classes:"
    assert [ln for ln in _other_lines(new) if ln != stamp[0]] == _other_lines(text)
    cfg = load_config(p)
    assert cfg.thresholds() == {c: res[c] for c in CLASS_IDS}


def test_write_thresholds_keeps_crlf_line_endings(tmp_path):
    """A config written on Windows (CRLF, Japanese comments, no classes: yet) keeps its line endings: the whole file
    came back with LF (read_text turned every CRLF into LF), so each line showed as changed."""
    text = ("# 富山市の設定\r\nmunicipality: toyama  # 市\r\ntimezone: Asia/Tokyo\r\ndetect:\r\n  imgsz: 448\r\n")
    p = tmp_path / "toyama.yaml"
    p.write_bytes(text.encode("utf-8"))
    stamp = tune_stamp(448, tmp_path / "best.onnx", "data.yaml", "val", config_path=p)
    write_thresholds(p, NEW, stamp)
    raw = p.read_bytes().decode("utf-8")
    assert raw.startswith(text)  # every line of the file as it was, CRLF included
    assert raw.count("\n") == raw.count("\r\n")  # no LF-only line added either
    assert f"\r\n{stamp}\r\nclasses:\r\n" in raw
    assert load_config(p).thresholds() == NEW
    assert thresholds_tuned_at(p)[:2] == (448, p)
    write_thresholds(p, {**NEW, "D00": 0.5}, stamp)  # tuned again: the line edit, still CRLF, one stamp
    raw = p.read_bytes().decode("utf-8")
    assert raw.startswith(text) and raw.count("\n") == raw.count("\r\n") and raw.count("# patrol tune") == 1
    assert load_config(p).thresholds()["D00"] == 0.5


@pytest.mark.parametrize("text", [
    "\ufeffclasses:\n  D00:\n    threshold: 0.3  # by hand\nmunicipality: x\n",  # Notepad's UTF-8 (BOM), classes first
    "municipality: x  # by hand\n'classes':\n  D00:\n    threshold: 0.3\n",  # a quoted key
])
def test_write_thresholds_where_the_line_edit_cannot_find_classes(tmp_path, text):
    """classes: the line edit did not recognise (behind a BOM, quoted) got a second classes: block appended, which
    the check refused: tune stopped with 'duplicate key' naming its own temp file. Now the BOM is kept and the line
    edit done; a layout it does not know is rewritten as a whole (as flow style is)."""
    p = tmp_path / "c.yaml"
    p.write_bytes(text.encode("utf-8"))
    stamp = tune_stamp(448, "best.onnx", "data.yaml", "val")
    kept = write_thresholds(p, NEW, stamp)
    assert load_config(p).thresholds() == NEW and load_config(p).municipality == "x"
    assert thresholds_tuned_at(p)[:2] == (448, p)
    raw = p.read_bytes().decode("utf-8")
    if text.startswith("\ufeff"):
        assert kept and raw.startswith(f"\ufeff{stamp}\nclasses:\n") and "# by hand" in raw
    else:
        assert not kept and raw.count("classes") == 1


def test_stamp_records_the_model_by_content_and_reads_back(tmp_path):
    """The stamp names the model it tuned for and the start of its sha256 (a city's retrained best.onnx at the same
    path is another model; a copy elsewhere is the same one), read back by thresholds_tuned_at, in a CRLF + BOM
    config as Notepad writes it (both kept)."""
    from detector.config import DEFAULT_WEIGHTS_ONNX
    from detector.tune import TunedFor, model_sha256

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    sha = hashlib.sha256(DEFAULT_WEIGHTS_ONNX.read_bytes()).hexdigest()[:12]
    (tmp_path / "models").mkdir()
    copy = tmp_path / "models" / "best.onnx"
    shutil.copy(DEFAULT_WEIGHTS_ONNX, copy)
    assert model_sha256(DEFAULT_WEIGHTS_ONNX) == model_sha256(copy) == sha
    assert model_sha256(tmp_path / "missing.onnx") is None
    text = "\ufeff# 宇治市\r\nmunicipality: uji\r\ndetect:\r\n  weights: models/best.onnx\r\n"
    p = tmp_path / "uji.yaml"
    p.write_bytes(text.encode("utf-8"))
    stamp = tune_stamp(448, copy, "data.yaml", "val", when="2026-12-01", config_path=p)
    assert stamp == (f"# patrol tune 2026-12-01: thresholds chosen at 448 px (detect.imgsz) for "
                     f"{os.path.join('models', 'best.onnx')} [sha256:{sha}] on data.yaml (val)")
    write_thresholds(p, NEW, stamp)
    raw = p.read_bytes().decode("utf-8")
    assert raw.startswith(text) and raw.count("\n") == raw.count("\r\n") and raw.count("\ufeff") == 1
    assert thresholds_tuned_at(p) == TunedFor(448, p, os.path.join("models", "best.onnx"), sha)
    # a stamp written before the model's hash was recorded still gives the size (the model: unknown)
    p.write_text("# patrol tune: thresholds chosen at 576 px (detect.imgsz) for best.onnx on d.yaml (val)\n"
                 "classes:\n  D00:\n    threshold: 0.3\n", encoding="utf-8")
    assert thresholds_tuned_at(p) == TunedFor(576, p, None, None)
    # a stamp naming the classes it left alone: the size and model read as well
    stamp = tune_stamp(448, copy, "d.yaml", "val", kept=["D40", "D10"])
    p.write_text(f"{stamp}\nclasses:\n  D00:\n    threshold: 0.3\n", encoding="utf-8")
    assert "thresholds of D00 D20 chosen at 448 px" in p.read_text(encoding="utf-8")
    assert p.read_text(encoding="utf-8").rstrip().splitlines()[0].endswith(
        "(val); left as they were (no labelled box in the split): D10 D40")
    assert thresholds_tuned_at(p) == TunedFor(448, p, str(copy), sha)


def test_tune_refuses_a_split_without_any_labelled_box(tmp_path, monkeypatch, synthetic):
    """Every class without a labelled box: nothing is tuned, so nothing is written (the stamp would have said the
    thresholds were chosen for this model and size)."""
    from detector.errors import InputError

    for ip in synthetic:
        ip.gt_xyxy, ip.gt_cls = np.zeros((0, 4)), np.array([], dtype=object)
    monkeypatch.setattr(tune_mod, "predict_split", lambda *a, **kw: synthetic)
    p = tmp_path / "c.yaml"
    p.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(InputError, match="no labelled box in the val split: nothing to tune"):
        tune("data.yaml", "w.onnx", p)
    assert p.read_text(encoding="utf-8") == CONFIG


def test_some_thresholds_by_hand_keep_default_yaml_stamp(tmp_path):
    """A city config setting one class's threshold by hand (`classes: {D40: {threshold: 0.5}}`, as README's
    configuration section shows) takes the other classes' from configs/default.yaml, tuned for the shipped model at
    448 px: its stamp still holds for them. Before, the one hand-set class made the thresholds "set by hand", so a
    retrained model (or another detect.imgsz) ran at the shipped model's thresholds without a warning."""
    from detector.config import DEFAULT_CONFIG

    if not DEFAULT_CONFIG.is_file() or "# patrol tune" not in DEFAULT_CONFIG.read_text(encoding="utf-8"):
        pytest.skip(f"no tune stamp in {DEFAULT_CONFIG}")
    p = tmp_path / "imizu.yaml"
    p.write_text("municipality: imizu\nclasses:\n  D40:\n    threshold: 0.5\ndetect: {imgsz: 64}\n", encoding="utf-8")
    tuned = thresholds_tuned_at(p)
    assert tuned is not None and tuned.path == DEFAULT_CONFIG and tuned.imgsz == 448 and tuned.sha256
    # every class set by hand: nothing of default.yaml's is used, nothing to check
    p.write_text("classes:\n" + "".join(f"  {c}:\n    threshold: 0.4\n" for c in CLASS_IDS), encoding="utf-8")
    assert thresholds_tuned_at(p) is None
