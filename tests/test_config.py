"""Config loading: municipality files fall back to configs/default.yaml; the shipped files are valid."""

from __future__ import annotations

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
