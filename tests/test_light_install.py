"""The light install (``pip install road-patrol``, no ``[torch]`` extra): the everyday commands run without torch,
ultralytics or onnx, and the commands that need them stop with one line naming what is missing and the exact
install command.

Each command runs in a subprocess whose imports of torch, torchvision, ultralytics, onnx and onnxslim are refused
by a meta-path finder (as on a PC where they are not installed), so this holds in CI's full install too. The
finder also records every attempt, so a path that tries torch and falls back quietly (seconds of import time on
every run of a full install) fails as well."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TOYAMA, need

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("torch", "torchvision", "ultralytics", "onnx", "onnxslim")

_PRELUDE = """
import atexit, os, sys
BLOCKED = {blocked!r}
tried = []
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, NoTorch())
for m in list(sys.modules):
    if m.split(".")[0] in BLOCKED:
        del sys.modules[m]
atexit.register(lambda: open(os.environ["PATROL_TEST_TRIED"], "w").write("\\n".join(tried)))
sys.path.insert(0, {root!r})
sys.argv = ["patrol", *sys.argv[1:]]
from cli import main
main()
"""


def light_patrol(tmp_path: Path, *args) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``patrol ARGS`` with torch & co. blocked: the result and the blocked imports it attempted."""
    tried = tmp_path / f"tried-{len(list(tmp_path.glob('tried-*')))}.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_") or k == "PATROL_SHARED"}
    env["PATROL_TEST_TRIED"] = str(tried)
    code = _PRELUDE.format(blocked=BLOCKED, root=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    return r, [t for t in tried.read_text().splitlines() if t] if tried.is_file() else []


def ok_light(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    r, tried = light_patrol(tmp_path, *args)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert not tried, f"patrol {args[0]} tried to import {sorted(set(tried))} (the light install has none of them)"
    return r


def test_the_blocker_blocks(tmp_path):
    """The harness itself: an import of torch in such a subprocess fails and is recorded."""
    r, tried = light_patrol(tmp_path, "train", "--help")
    assert r.returncode == 0
    code = _PRELUDE.split("sys.path.insert")[0].format(blocked=BLOCKED) + "import torch\n"
    env = {**os.environ, "PATROL_TEST_TRIED": str(tmp_path / "t.txt")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr
    assert (tmp_path / "t.txt").read_text() == "torch"


def drive_copy(dst: Path, pass_: str, n: int) -> Path:
    """The first ``n`` frames of a sample pass (several of them with damage in the oracle), copied to ``dst``."""
    dst.mkdir(parents=True)
    for p in sorted(need(TOYAMA / pass_).glob("IMG_2026*.jpg"))[:n]:
        shutil.copy2(p, dst / p.name)
    return dst


def test_everyday_commands_run_without_torch(tmp_path):
    """run (two passes, --roads, --store), export in every format, status, import-verification, detect and
    locate: all on the light install, none of them so much as trying torch, ultralytics or onnx."""
    roads = need(TOYAMA / "roads.geojson")
    d1 = drive_copy(tmp_path / "p1", "toyama-2026-11-p1", 10)
    d2 = drive_copy(tmp_path / "p2", "toyama-2026-11-p2", 10)
    out, store = tmp_path / "out", tmp_path / "registry.gpkg"
    ok_light(tmp_path, "run", d1, d2, "--roads", roads, "--out", out, "--store", store)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["frames"]["used"] == 20 and summary["candidates"] > 0
    assert Path(summary["model"]).suffix == ".onnx"
    for fmt in ("geojson", "gpkg", "shp", "csv", "xlsx", "kml", "html"):
        ok_light(tmp_path, "export", store, "--format", fmt, "--out", tmp_path / "exp" / f"list.{fmt}")
        assert (tmp_path / "exp" / f"list.{fmt}").is_file()
    with open(tmp_path / "exp" / "list.csv", encoding="utf-8-sig", newline="") as fh:
        cid = next(csv.DictReader(fh))["candidate_id"]
    ok_light(tmp_path, "status", store, cid, "--set", "scheduled", "--note", "light install")
    ok_light(tmp_path, "import-verification", store, tmp_path / "exp" / "list.csv")
    ok_light(tmp_path, "detect", d1, "--out", tmp_path / "det")
    ok_light(tmp_path, "locate", tmp_path / "det" / "detections.csv", "--roads", roads, "--out", tmp_path / "loc")
    assert (tmp_path / "loc" / "repair_list.csv").is_file()


def _one_line(r: subprocess.CompletedProcess, code: int) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code, f"exit {r.returncode}, expected {code}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    assert "Traceback" not in r.stderr + r.stdout and "internal error" not in r.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{r.stderr}"
    return lines[0]


def test_train_and_average_weights_without_torch_say_what_to_install(tmp_path):
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: {0: D00, 1: D10, 2: D20, 3: D40}\n", encoding="utf-8")
    install = f"-m pip install -e \"{ROOT}[torch]\""  # run from this checkout: its own path, editable
    for args, what in ((("train", data, "--out", tmp_path / "runs"), "patrol train"),
                       (("train", data, "--out", tmp_path / "runs", "--hyp", "mixup=0.1", "--no-export"), "patrol train"),
                       (("average-weights", ROOT / "weights" / "rdd-yolo.pt", ROOT / "weights" / "rdd-yolo.pt",
                         "--out", tmp_path / "avg.pt"), "patrol average-weights")):
        r, _ = light_patrol(tmp_path, *args)
        line = _one_line(r, 2)
        assert f"{what} needs the optional torch extra (missing here: torch, ultralytics" in line, line
        assert install in line and sys.executable in line, line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "avg.pt").exists()


def test_a_pt_model_without_torch_names_its_onnx_twin_and_the_install(tmp_path):
    need(ROOT / "weights" / "rdd-yolo.pt")
    d = drive_copy(tmp_path / "p1", "toyama-2026-11-p1", 2)
    r, _ = light_patrol(tmp_path, "detect", d, "--out", tmp_path / "o", "--weights", ROOT / "weights" / "rdd-yolo.pt")
    line = _one_line(r, 5)
    assert "a .pt model needs the optional torch extra (missing here: torch, ultralytics)" in line, line
    assert f"--weights {ROOT / 'weights' / 'rdd-yolo.onnx'}" in line and "-m pip install -e" in line, line


@pytest.mark.parametrize("fixture", ["eval", "tune"])
def test_eval_and_tune_run_the_onnx_model_without_torch(tmp_path, fixture):
    """Scoring and tuning a city's thresholds need no torch with the ONNX model: six labelled photos of the
    sample drive (boxes from its oracle) as a data set."""
    oracle = need(TOYAMA / "toyama-2026-11-p1.oracle.csv")
    from PIL import Image

    imgs, labs = tmp_path / "ds" / "images" / "val", tmp_path / "ds" / "labels" / "val"
    imgs.mkdir(parents=True)
    labs.mkdir(parents=True)
    ids = {"D00": 0, "D10": 1, "D20": 2, "D40": 3}
    by_image: dict[str, list[str]] = {}

    with open(oracle, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            w, h = float(row["width"]), float(row["height"])
            x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            by_image.setdefault(row["image"], []).append(
                f"{ids[row['class']]} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    for name in sorted(by_image)[:6]:
        with Image.open(TOYAMA / "toyama-2026-11-p1" / name) as im:
            im.convert("RGB").save(imgs / name)
        (labs / name).with_suffix(".txt").write_text("\n".join(by_image[name]) + "\n", encoding="utf-8")
    data = tmp_path / "ds" / "data.yaml"
    data.write_text("path: .\ntrain: images/val\nval: images/val\nnames: {0: D00, 1: D10, 2: D20, 3: D40}\n",
                    encoding="utf-8")
    if fixture == "eval":
        ok_light(tmp_path, "eval", data, "--out", tmp_path / "eval.json")
        res = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
        assert res["weights"].endswith(".onnx") and res["n_images"] == 6 and res["tp"] > 0
    else:
        cfg = tmp_path / "city.yaml"
        cfg.write_text("municipality: test\n", encoding="utf-8")
        ok_light(tmp_path, "tune", data, "--config", cfg)
        assert "threshold" in cfg.read_text(encoding="utf-8")


def test_the_wheel_carries_the_model_and_configs(tmp_path):
    """``make wheelhouse`` ships patrol as a wheel: installed from it (no checkout beside it), patrol finds the
    shipped model and configs/default.yaml in ``<venv>/share/road-patrol`` and detects with them. Built without
    build isolation (this interpreter's setuptools), installed without an index: no network."""
    import sysconfig
    from importlib.metadata import PackageNotFoundError, version

    try:
        have = [int(x) for x in version("setuptools").split(".")[:1]] >= [77] and version("wheel")
    except PackageNotFoundError:
        have = False
    if not have:  # the test extra brings them (make test installs it)
        pytest.skip("building the wheel without the network needs setuptools>=77 and wheel here (pip install -e '.[test]')")
    src = tmp_path / "src"  # a copy of what the wheel is built from, so that the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "cli.py", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("detector", "configs", "weights"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                        "--wheel-dir", tmp_path / "wheels", src], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp_path / "wheels").glob("road_patrol-*.whl"))
    import zipfile

    with zipfile.ZipFile(wheel) as z:  # the licences travel with it (README: Licence), AGPL-3.0-only in its metadata
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode("utf-8")
    for lic in ("LICENSE", "detector/assets/leaflet/LICENSE", "detector/assets/haarcascades/LICENSE.txt"):
        assert any(n.endswith(f".dist-info/licenses/{lic}") for n in names), (lic, names)
    assert "License-Expression: AGPL-3.0-only" in meta, meta[:800]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    share = venv / "share" / "road-patrol"
    assert (share / "weights" / "rdd-yolo.onnx").read_bytes() == (ROOT / "weights" / "rdd-yolo.onnx").read_bytes()
    assert (share / "configs" / "default.yaml").is_file()
    # the dependencies from this interpreter's site-packages, listed by a .pth after the venv's own (where patrol
    # is): a patrol installed here too (a wheel, or an editable one's .pth, not read from a .pth's folder) comes last
    r = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                       text=True, check=True, timeout=60)
    (Path(r.stdout.strip()) / "zz-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_") and k != "PYTHONPATH"}
    frames = drive_copy(tmp_path / "p1", "toyama-2026-11-p1", 2)
    run = tmp_path / "elsewhere"  # not the checkout, not the source copy
    run.mkdir()
    r = subprocess.run([py, "-c", "import cli, detector.config as c; print(cli.__file__); print(c.DEFAULT_CONFIG)"],
                       cwd=run, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    code_at, config_at = r.stdout.split()
    assert Path(code_at).resolve().is_relative_to(venv.resolve()), code_at
    assert Path(config_at).resolve() == (share / "configs" / "default.yaml").resolve()
    r = subprocess.run([py, "-m", "cli", "detect", frames, "--out", run / "out"], cwd=run, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    summary = json.loads((run / "out" / "summary.json").read_text(encoding="utf-8"))
    assert Path(summary["model"]).resolve() == (share / "weights" / "rdd-yolo.onnx").resolve(), summary["model"]
