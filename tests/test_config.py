"""Config loading: municipality files fall back to configs/default.yaml; the shipped files are valid."""

from __future__ import annotations

import re

import pytest
import yaml

from detector.config import DEFAULT_CONFIG, load_config
from detector.errors import ConfigError


def test_shipped_configs_load():
    base = load_config(DEFAULT_CONFIG)
    city = load_config(DEFAULT_CONFIG.parent / "toyama-city.yaml")
    assert city.municipality.startswith("富山市")
    # what the city file does not say comes from default.yaml (the tuned thresholds of the shipped model)
    assert city.thresholds() == base.thresholds()
    assert city.detect.imgsz == base.detect.imgsz


def test_uji_example_loads_and_reads_a_shapefile_without_prj(tmp_path):
    """configs/uji-city.yaml: Japanese id/name fields and roads.crs for a JGD2011 zone VI Shapefile that lost its .prj."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from detector.roads import load_roads

    cfg = load_config(DEFAULT_CONFIG.parent / "uji-city.yaml")
    assert cfg.municipality.startswith("宇治市") and cfg.segments.bins_m == [50.0, 200.0]
    net = gpd.GeoDataFrame({"路線ID": ["U-1"], "路線名": ["市道宇治線"]},
                           geometry=[LineString([(135.80, 34.89), (135.801, 34.89)])], crs=4326)
    net.to_crs(cfg.roads.crs).set_crs(None, allow_override=True).to_file(tmp_path / "uji.shp", encoding="utf-8")
    roads = load_roads(tmp_path / "uji.shp", cfg)
    assert list(roads.ids) == ["U-1"] and list(roads.names) == ["市道宇治線"]
    assert roads.lengths[0] == pytest.approx(91.3, abs=1)


def test_city_file_overrides_only_what_it_says(tmp_path):
    base = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    p = tmp_path / "city.yaml"
    p.write_text("classes:\n  D40:\n    threshold: 0.6\n", encoding="utf-8")
    cfg = load_config(p)
    assert cfg.classes["D40"].threshold == 0.6
    assert cfg.classes["D00"].threshold == base["classes"]["D00"]["threshold"]
    assert cfg.classes["D40"].name_ja == "ポットホール"


def test_bad_field_names_file_and_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("dedupe:\n  distance_m: -3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(bad := e.value).startswith(str(p)) and "dedupe.distance_m" in str(bad)


def test_key_given_twice_is_refused_with_its_line(tmp_path):
    """A second `roads:` appended at the end used to replace the first one silently (YAML keeps the last key):
    roads.id_field / name_field were lost and the outputs carried hashed segment ids and no road names."""
    p = tmp_path / "uji-city.yaml"
    p.write_text("municipality: 宇治市\nroads:\n  id_field: 路線ID\n  name_field: 路線名\nroads:\n  crs: EPSG:6674\n",
                 encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"{p}: line 5: invalid YAML: duplicate key 'roads' (YAML would keep only the last one; merge the two)"
    p.write_text("camera:\n  height_m: 1.3\n  height_m: 1.5\n", encoding="utf-8")  # nested too
    with pytest.raises(ConfigError, match="line 3: invalid YAML: duplicate key 'height_m'"):
        load_config(p)
    # a merge key may be overridden by the mapping's own keys: not a duplicate
    p.write_text("camera:\n  <<: {height_m: 1.3, pitch_deg: 8}\n  height_m: 1.5\n", encoding="utf-8")
    assert load_config(p).camera.height_m == 1.5


def test_shift_jis_and_bom(tmp_path):
    """Notepad's ANSI (Shift_JIS) is refused saying what to do, not with a codec message; UTF-8 with BOM loads."""
    p = tmp_path / "uji-city.yaml"
    text = "# 宇治市\nmunicipality: 宇治市 Uji City\n"
    p.write_bytes(text.encode("shift_jis"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"{p}: line 1: not UTF-8 text (Shift_JIS?); save the file as UTF-8"
    p.write_bytes(text.encode("utf-8-sig"))
    assert load_config(p).municipality == "宇治市 Uji City"


def _refused(tmp_path, text: str, why: str) -> None:
    """A config of ``text`` stops the load with the file and ``why`` first (ConfigError, exit 4)."""
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: {why}")


@pytest.mark.parametrize("text, why", [
    ("segments:\n  weights:\n    D50: 2\n", "segments.weights: unknown class ids ['D50']"),
    ("segments:\n  weights:\n    d40: 8\n", "segments.weights: unknown class ids ['d40']"),
    ("segments:\n  weights:\n    D40: -5\n", "segments.weights: weights must not be negative"),
    # a class's threshold under a mistyped id was refused as `classes.D50.name_en: Field required`
    ("classes:\n  D50:\n    threshold: 0.5\n", "classes: unknown class ids ['D50']; known: ['D00', 'D10', 'D20', 'D40']"),
    ("classes:\n  d40: {threshold: 0.5}\n", "classes: unknown class ids ['d40']"),
])
def test_segment_weights_of_unknown_classes_are_refused(tmp_path, text, why):
    """A weight under a mistyped class id was silently ignored (the class kept its default weight)."""
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(why)):
        load_config(p)


@pytest.mark.parametrize("text, why", [
    ("roads:\n", "roads: empty section: remove it (the defaults apply) or give its settings, indented under it"),
    ("classes:\n  D00:\n", "classes.D00: empty section"),
    ("roads:\nid_field: 路線ID\n", "roads: empty section"),  # settings not indented under it
    ("dedupe:\n  distance_m:\n", "dedupe.distance_m: no value: remove the line (the default applies) or give a value"),
    ("camera:\nheight_m: 1.4\n", "height_m: not a top-level setting: indent it under camera:"),
    ("dedupe:\n  distanse_m: 3\n", "dedupe.distanse_m: unknown setting"),
])
def test_empty_sections_and_stray_keys_say_so(tmp_path, text, why):
    """An empty `roads:` was refused in pydantic's words ("Input should be a valid dictionary or instance of
    RoadsSpec"); a key left unindented under `camera:` was "Extra inputs are not permitted"."""
    _refused(tmp_path, text, why)


def test_empty_camera_section_means_mounting_unknown(tmp_path):
    """`camera:` with nothing under it is the documented `camera: null` (hits stay at the GPS fix), not an error."""
    p = tmp_path / "c.yaml"
    for text in ("camera:\n", "camera: null\n", "camera:   # mounting unknown\ndedupe:\n  distance_m: 12\n"):
        p.write_text(text, encoding="utf-8")
        assert load_config(p).camera is None


def test_full_width_numbers_are_read(tmp_path):
    """全角 digits typed with a Japanese IME (`height_m: １．４`) were refused as "unable to parse string as a
    number" with no hint; numeric settings read them as ASCII, names keep what was written."""
    p = tmp_path / "c.yaml"
    p.write_text("municipality: 宇治市　第１\ncamera:\n  height_m: １．４\n  pitch_deg: －５\ndetect:\n  imgsz: ６４０\n"
                 "classes:\n  D40: {threshold: ０．６, name_en: Ｐｏｔｈｏｌｅ}\n"
                 "segments:\n  bins_m: [５０, ２００]\n  weights: {D40: ６}\n", encoding="utf-8")
    cfg = load_config(p)
    assert (cfg.camera.height_m, cfg.camera.pitch_deg, cfg.detect.imgsz) == (1.4, -5.0, 640)
    assert cfg.classes["D40"].threshold == 0.6 and cfg.segments.bins_m == [50.0, 200.0]
    assert cfg.segments.weights["D40"] == 6.0
    assert cfg.municipality == "宇治市　第１" and cfg.classes["D40"].name_en == "Ｐｏｔｈｏｌｅ"


@pytest.mark.parametrize("text, why", [
    ("segments:\n  bins_m: [20, 20]\n", "segments.bins_m: 20 m given twice"),
    ("segments:\n  bins_m: [20, 100, 20.0, 100]\n", "segments.bins_m: 100 m, 20 m given twice"),
    ("dedupe:\n  distance_m: 40\n", "dedupe.distance_m: 40 m is more than dedupe.max_extent_m (30 m)"),
    ("dedupe:\n  distance_m: 30\n  max_extent_m: 60\n", "store.match_distance_m: 25 m is less than dedupe.distance_m (30 m)"),
    ("store:\n  match_distance_m: 10\n", "store.match_distance_m: 10 m is less than dedupe.distance_m (15 m)"),
])
def test_contradicting_settings_are_refused(tmp_path, text, why):
    """Accepted without a word before: two bins of one length (two segments.geojson levels named bin20); a
    dedupe.distance_m the extent cap silently overrules along the road (but not off it); a registry match distance
    below the run's own merge distance (a damage one run merges would get two registry ids over two runs)."""
    _refused(tmp_path, text, why)
    p = tmp_path / "c.yaml"
    p.write_text("dedupe:\n  distance_m: 30\n  max_extent_m: 30\nstore:\n  match_distance_m: 30\n"
                 "segments:\n  bins_m: [12.5, 20, 100]\n", encoding="utf-8")  # equal is fine
    assert load_config(p).segments.bins_m == [12.5, 20.0, 100.0]


def test_frames_ignore_patterns(tmp_path):
    """frames.ignore: one pattern as a plain string, a Windows path with backslashes, a folder written with a
    trailing slash; an empty pattern (it would match nothing, or by mistake everything) is refused by field."""
    p = tmp_path / "c.yaml"
    p.write_text('frames:\n  ignore: "*_R.MP4"\n', encoding="utf-8")
    assert load_config(p).frames.ignore == ["*_R.MP4"]
    p.write_text('frames:\n  ignore: ["Rear\\\\*.MP4", "./Thumbs/", "/DCIM/Parking/*"]\n', encoding="utf-8")
    assert load_config(p).frames.ignore == ["Rear/*.MP4", "Thumbs/*", "DCIM/Parking/*"]
    p.write_text('frames:\n  ignore: ["*_R.MP4", " "]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "frames.ignore" in str(e.value) and "empty pattern" in str(e.value)


@pytest.mark.parametrize("text, line, why", [
    ("camera:\n\u3000height_m: 1.2\n", 2, "is indented with a full-width space (全角スペース)"),
    ("camera:\n  height_m:\u30001.2\n", 2, "has a full-width space (全角スペース) after its colon"),
    ("municipality: 宇治市　第１\ncamera:\n  height_m： 1.2\n", 3, "has a full-width colon (：) after its name"),
    ("patrol_log:\n  inspector:\u3000道路維持課　山田\n", 2, "has a full-width space (全角スペース) after its colon"),
    ("camera:\n  height_m: 1.2\n\u3000\u3000pitch_deg: 8\n", 3, "is indented with a full-width space"),
    # the file's only setting (under a comment) with a full-width colon is one string, not a mapping: the error was
    # `top level must be a mapping of settings` alone
    ("# 射水市\ntimezone： Asia/Tokyo\n", 2, "has a full-width colon (：) after its name"),
])
def test_full_width_space_or_colon_is_named(tmp_path, text, line, why):
    """A full-width space or colon typed with a Japanese IME where YAML needs ASCII makes YAML read the setting as
    text or a top-level key: the error was `camera: Input should be a valid dictionary or instance of CameraSpec`
    or `　height_m: unknown setting` (the 全角 space invisible), saying nothing of the cause. It now names the line."""
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"; line {line} {why}" in str(e.value), str(e.value)


def test_tab_indent_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("camera:\n\theight_m: 1.2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2: invalid YAML: .*\(a tab: indent with spaces\)"):
        load_config(p)
    # names with a full-width space stay as written, no hint where nothing is wrong
    p.write_text("municipality: 宇治市　第１\npatrol_log:\n  inspector: 道路維持課　山田\n", encoding="utf-8")
    assert load_config(p).patrol_log.inspector == "道路維持課　山田"


def test_a_fleet_number_without_quotes_is_text(tmp_path):
    """`patrol_log: {vehicle: 1234}` (YAML reads a number) was refused with "Input should be a valid string"; the
    patrol log writes the number as it was written. A true/false is still refused (no vehicle is called that)."""
    p = tmp_path / "city.yaml"
    p.write_text("patrol_log:\n  vehicle: 1234\n  inspector: 7\n", encoding="utf-8")
    cfg = load_config(p)
    assert (cfg.patrol_log.vehicle, cfg.patrol_log.inspector) == ("1234", "7")
    p.write_text("patrol_log:\n  vehicle: yes\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="patrol_log.vehicle"):
        load_config(p)


@pytest.mark.parametrize("text, why", [
    ("repair_cost:\n  per_m2: {D00: 3000, D10: 3000, D20: -8000, D40: 15000}\n",
     "repair_cost.per_m2: D20: -8000 is not a price: give 0 or more per m²"),
    ("repair_cost:\n  per_m2: {D00: 3000, D10: 3000, D20: 8000, D40: 15000}\n  minimum: -1\n",
     "repair_cost.minimum: -1 is not a price"),
    ("repair_cost:\n  per_m2: {D00: 3000, D10: 3000, D20: 8000}\n", "repair_cost.per_m2: no price for D40"),
    ("repair_cost:\n  per_m2: {D00: 3000, D10: 3000, D20: 8000, D40: 15000, D50: 1}\n",
     "repair_cost.per_m2: unknown class ids ['D50']"),
    ("repair_cost:\n  minimum: 20000\n", "repair_cost.per_m2: Field required"),
    ("repair_cost:\n  per_m2: {D00: 1, D10: 1, D20: 1, D40: 1}\n  per_m3: 1\n", "repair_cost.per_m3: unknown setting"),
])
def test_repair_cost_prices_are_checked(tmp_path, text, why):
    """`repair_cost` (patrol stats' 概算補修費): a negative unit price or minimum, a class without a price or an unknown
    one stop the load naming the setting and the class (exit 4, as every config error)."""
    _refused(tmp_path, text, why)


def test_repair_cost_is_none_by_default_and_reads_full_width_prices(tmp_path):
    """No unit prices are shipped (none invented): the default config has no repair_cost; a city's own, typed with
    a Japanese IME, is read."""
    assert load_config(DEFAULT_CONFIG).repair_cost is None and load_config(None).repair_cost is None
    p = tmp_path / "c.yaml"
    p.write_text("repair_cost:\n  per_m2: {D00: ３０００, D10: 3000, D20: 8000.5, D40: 0}\n  minimum: ２００００\n"
                 "  currency: EUR\n", encoding="utf-8")
    rc = load_config(p).repair_cost
    assert rc.per_m2 == {"D00": 3000.0, "D10": 3000.0, "D20": 8000.5, "D40": 0.0}
    assert (rc.minimum, rc.currency) == (20000.0, "EUR")


@pytest.mark.parametrize("text, why", [
    ("segments:\n  survey_width_m: 0\n", "segments.survey_width_m: Input should be greater than 0"),
    ("segments:\n  survey_width_m: -3\n", "segments.survey_width_m: Input should be greater than 0"),
    ("segments:\n  survey_width_m: 35\n", "segments.survey_width_m: Input should be less than or equal to 20"),
    ("segments:\n  survey_width_m: 3m\n", "segments.survey_width_m: Input should be a valid number"),
])
def test_survey_width_is_checked(tmp_path, text, why):
    """`segments.survey_width_m` (the width the crack rate's surveyed area takes): 0, negative, wider than a road or
    not a number stops the load naming the file and the setting (exit 4); 3.0 by default; a city's own is read."""
    _refused(tmp_path, text, why)


def test_survey_width_default_and_own(tmp_path):
    assert load_config(None).segments.survey_width_m == 3.0
    p = tmp_path / "c.yaml"
    p.write_text("segments:\n  survey_width_m: 3.5  # 第2種の車線\n", encoding="utf-8")
    assert load_config(p).segments.survey_width_m == 3.5
