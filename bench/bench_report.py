"""How does the offline map (report.html, `patrol export --format html`) scale with a city's registry? Before and
after a change, measured in one run on the same registry.

The registry is built as bench_registry.py builds it (the Toyama oracle candidates, located and deduped once,
copied into GROUPS sites and merged as WEEKS weekly runs into one GeoPackage registry), with two differences so
the map carries what a city's does: each copy's crop is a real crop (``crops.make_crop`` of the sample frame and
box, faces and plates blurred) given its own noise and brightness (so no two crops are the same bytes), and the
copies lie on a grid of ~3 km cells (a city, not a line 5 km a copy to the east); a crew's verification list sets
a third of the damages confirmed / scheduled / repaired with a note. The registry's ``Store.query`` (as `patrol
export` reads it) is written as html by the code at ``--before`` (``git archive`` of that revision's ``detector/``)
and by the working tree's, each in its own process, with the Toyama road network.

Each file is then opened in headless Chromium (``chromium --headless --no-sandbox``, ``--dump-dom``, no virtual time)
``--repeat`` times: a script after the app's records when it finished (``performance.now()``, ms since navigation
start: reading the file, parsing the page and the data, drawing the markers and the table), the JS heap
(``--enable-precise-memory-info``) and the page's element count; the process's wall time and the peak RSS of the
largest Chromium process (``getrusage(RUSAGE_CHILDREN)`` of a wrapper) are taken around it (the script empties
the data blocks before ``--dump-dom`` writes the page out, so the dump of 20 MB of text does not count). Then the page is opened
at ``#c=<id>`` of a damage in the middle of the list, and the bench checks that its popup shows the thumbnail
(decoded, ``naturalWidth`` > 0). Prints per size: MB, KB a candidate, export seconds, load ms, heap MB, RSS MB,
elements, before -> after and the ratio (medians of the repeats).

With ``--max-mb`` (default 10,5) the working tree's export is also written and measured with each size cap
(``patrol export --format html --max-mb N``) and the line it says is printed; the popup's photo is then that of the
damage in the middle of the list where the cap kept it (0 where it was left out). The road network drawn is the
sample's copied to each site of the grid (a city's network around every site; ``--sample-roads``: once, as before).

    .venv/bin/python bench/bench_report.py [--candidates 2000,5000] [--weeks 3] [--before d83695f] [--repeat 3]
        [--max-mb 10,5] [--sample-roads]

``--cold``: instead, where a first export's time goes (the registry's thumbnail cache removed, as the first export
of a registry or a week's new damages): ``patrol export REGISTRY --format html --roads R`` of each registry, each
a process, with the thumbnails made by 1 thread and by ``report.THUMB_WORKERS``' default (min(8, cores)), in turn
``--repeat`` times; prints the medians of the whole export, its thumbnails (``report._thumb_uris``) and photos
(``report.write_photos``), the peak RSS, the ratio 1 thread / default, whether both wrote the same thumbnails, and
a warm export (the cache kept) for comparison.

    .venv/bin/python bench/bench_report.py --cold [--candidates 3000,7000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_registry import week_cands  # noqa: E402
from detector.config import Config  # noqa: E402
from detector.detections import Detections, read_detections_csv  # noqa: E402
from detector.pipeline import locate_and_dedupe  # noqa: E402
from detector.store import Store  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--enable-precise-memory-info",
                  "--window-size=1400,1000"]

EXPORT = r"""
import pickle, sys, time
tree, data, out = sys.argv[1:4]
cap = float(sys.argv[4]) if len(sys.argv) > 4 else None
sys.path.insert(0, tree)
from detector import report
from detector.config import Config
df, roads = pickle.load(open(data, "rb"))
said = []
t = time.perf_counter()
report.export(df, "html", out, Config(), roads_wgs84=roads, **({"max_mb": cap, "said": said} if cap else {}))
print("; ".join(said))
print(time.perf_counter() - t)
"""

COLD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from detector import report
workers = int(sys.argv[2])
report.THUMB_WORKERS = workers or None
spent = {"thumbs": 0.0, "photos": 0.0}

def timed(name, f):
    def run(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[name] += time.perf_counter() - t
    return run

report._thumb_uris = timed("thumbs", report._thumb_uris)
report.write_photos = timed("photos", report.write_photos)
from cli import main
t = time.perf_counter()
try:
    main(sys.argv[3:])
except SystemExit as e:
    if e.code:
        raise
peak = [int(x.split()[1]) / 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:")]
print(json.dumps({"s": time.perf_counter() - t, **spent, "peak_mb": peak[0]}))
"""


def cold(a, base, crops, roads, cfg, work: Path) -> None:
    """``--cold``: a first export's time (no thumbnail cache), thumbnails by 1 thread vs by the default pool."""
    import os

    from detector.report import thumb_cache_path

    n_workers = min(8, os.cpu_count() or 1)
    print(f"cold html export (no thumbnail cache), each a process; thumbnails by 1 thread vs {n_workers} "
          f"(os.cpu_count() {os.cpu_count()}); medians of {a.repeat}, in turn")
    for n in [int(x) for x in a.candidates.split(",")]:
        d = work / f"n{n}"
        d.mkdir(exist_ok=True)
        store = d / "registry.gpkg"
        if not store.exists():
            build_registry(store, base, crops, n, a.weeks, cfg)
        with Store.for_config(store, cfg) as st:
            n_c = len(st.query(lists=False))
        net = d / "roads.gpkg"
        if not net.exists():
            city_roads(roads, math.ceil(n_c / len(base)) + a.weeks).to_file(net, driver="GPKG")
        cache = thumb_cache_path(store)
        res: dict[int, list[dict]] = {1: [], n_workers: []}
        thumbs: dict[int, str] = {}

        def export(w: int, keep_cache: bool = False) -> dict:
            out = d / f"cold-w{w}.html"
            shutil.rmtree(d / f"cold-w{w}_html_crops", ignore_errors=True)
            if cache.exists() and not keep_cache:
                cache.unlink()
            r = subprocess.run([sys.executable, "-c", COLD, str(ROOT), str(w), "export", str(store), "--format", "html",
                                "--roads", str(net), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"export failed:\n{r.stderr[-3000:]}")
            page = out.read_text(encoding="utf-8")
            thumbs[w] = page[page.index('id="thumbs"'):page.index("</script>", page.index('id="thumbs"'))]
            return json.loads(r.stdout.strip().splitlines()[-1])

        for i in range(a.repeat):
            for w in ((1, n_workers) if i % 2 == 0 else (n_workers, 1)):
                res[w].append(export(w))
        warm = export(n_workers, keep_cache=True)
        med = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for w, rs in res.items()}
        one, many = med[1], med[n_workers]
        print(f"\n{n_c:,} damages (registry {store.stat().st_size / 1e6:.0f} MB)")
        print(f"  {'':22s} {'1 thread':>9s} {f'{n_workers} threads':>10s}   ratio")
        for k, label in (("s", "export s"), ("thumbs", "  thumbnails s"), ("photos", "  photos s"),
                         ("peak_mb", "peak RSS MB")):
            print(f"  {label:22s} {one[k]:9.1f} {many[k]:10.1f}   x{one[k] / many[k]:.2f}")
        print(f"  rest (export - thumbnails - photos) {one['s'] - one['thumbs'] - one['photos']:.1f} s; thumbnails "
              f"{100 * many['thumbs'] / many['s']:.0f}% of the cold export at {n_workers} threads")
        print(f"  cold export speed-up, {n_workers} threads / 1: x{one['s'] / many['s']:.2f}; same thumbnails: "
              f"{thumbs[1] == thumbs[n_workers]}; warm (cache kept): {warm['s']:.1f} s, "
              f"x{many['s'] / warm['s']:.2f} faster than cold")
    print(f"work folder: {work}")


# after the app's script: when it was done, the JS heap and the elements, into <html data-bench>
PROBE = ("<script>document.documentElement.setAttribute('data-bench', JSON.stringify({ready: performance.now(),"
         " heap: performance.memory ? performance.memory.usedJSHeapSize : null,"
         " nodes: document.getElementsByTagName('*').length}));"
         # --dump-dom writes the whole page out: without the data blocks, so their MB do not time the dump
         " ['data', 'thumbs'].forEach(function (id) { var e = document.getElementById(id); if (e) e.textContent = ''; });"
         "</script>")
POPUP = ("<script>setTimeout(function () { var i = document.querySelector('.leaflet-popup img');"
         " document.documentElement.setAttribute('data-popup', JSON.stringify(i ? {w: i.naturalWidth,"
         " src: i.src.slice(0, 16)} : null)); }, 3000);</script>")

WRAP = r"""
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)
print(r.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stdout.write(r.stdout)
"""


def sample_base(toy: Path, cfg):
    """(the sample drive's damages, located and merged from both passes' true boxes; each one's real crop): what a
    city-sized registry is built from by copies (``build_registry``)."""
    det = Detections.concat([read_detections_csv(toy / f"toyama-2026-11-p{i}.oracle.csv") for i in (1, 2)])
    _, _, base, _ = locate_and_dedupe(det, toy / "roads.geojson", cfg)
    return base, real_crops(base, toy, cfg)


def real_crops(base, toy: Path, cfg) -> list[bytes]:
    """The pipeline's crop of each base candidate: its best frame and box, privacy blur, label."""
    import cv2

    from detector import crops

    out = []
    for r in base.to_dict("records"):
        img = cv2.imread(str(toy / r["best_drive"] / r["best_image"]))
        box = [r["best_x1"], r["best_y1"], r["best_x2"], r["best_y2"]]
        out.append(crops.make_crop(img, box, cfg, label=f"{r['class']} {r['confidence']:.2f}"))
    return out


def varied(crop: bytes, seed: int) -> bytes:
    """The crop with its own sensor noise and exposure, re-encoded as make_crop encodes (JPEG 85)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR).astype(np.float32)
    img = img * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15) + rng.normal(0, 3, img.shape)
    return cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def build_registry(path: Path, base, crops: list[bytes], n: int, weeks: int, cfg) -> None:
    nb = len(base)
    groups = max(1, math.ceil(n / nb) - weeks)  # week w adds one more copy (bench_registry's new damages)
    cache: dict[tuple[int, int], bytes] = {}
    for w in range(weeks):
        gs = list(range(groups)) + [groups + w]
        c = week_cands(base, w, gs)
        gi = np.repeat(gs, nb)
        k = np.tile(np.arange(nb), len(gs))
        c["lon"] = c["lon"] - 0.056 * gi + 0.035 * (gi % 12)  # a grid of 12 columns, ~3 km a cell
        c["lat"] = c["lat"] + 0.028 * (gi // 12)
        c["crop_jpeg"] = [cache.setdefault((g, j), varied(crops[j], g * 1000 + j)) for g, j in zip(gi, k)]
        with Store.for_config(path, cfg) as st:
            st.merge(c, {"run_id": f"week{w:03d}"}, cfg)
    with Store.for_config(path, cfg) as st:
        ids = [r[0] for r in st.con.execute("SELECT candidate_id FROM candidates ORDER BY fid")]
        lst = path.parent / "crew.csv"
        with open(lst, "w", encoding="utf-8") as fh:
            fh.write("candidate_id,status,note,checked_by\n")
            for i, cid in enumerate(ids):
                if i % 3 == 0:
                    st_ = ("confirmed", "scheduled", "repaired")[(i // 3) % 3]
                    fh.write(f"{cid},{st_},段差あり {i},点検班 A\n")
        st.import_verification(lst)


def chromium(args: list[str]) -> tuple[float, int, str]:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        sys.exit("headless Chromium not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([sys.executable, "-c", WRAP, exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                           capture_output=True, text=True)
    head, _, dom = r.stdout.partition("\n")
    rc, wall, rss = head.split()
    if rc != "0":
        sys.exit(f"chromium failed: {r.stderr[-2000:]}")
    return float(wall), int(rss), dom


def measure(html: Path, repeat: int, popup_id: str) -> dict[str, float]:
    probe = html.with_name(html.stem + "-probe.html")
    text = html.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", PROBE + POPUP + "</body>"), encoding="utf-8")
    runs = []
    for _ in range(repeat):
        wall, rss, dom = chromium(["--dump-dom", probe.as_uri()])
        m = re.search(r'data-bench="([^"]*)"', dom)
        if not m or 'data-selfcheck="report-ok' not in dom:
            sys.exit(f"{html.name}: the page did not load: {dom[:300]}")
        b = json.loads(m.group(1).replace("&quot;", '"'))
        runs.append({"load ms": b["ready"], "JS heap MB": (b["heap"] or 0) / 1e6, "elements": b["nodes"],
                     "chromium s": wall, "peak RSS MB": rss / 1024})
    res = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    _, _, dom = chromium(["--dump-dom", "--virtual-time-budget=5000", probe.as_uri() + "#c=" + popup_id])
    m = re.search(r'data-popup="([^"]*)"', dom)
    pop = json.loads(m.group(1).replace("&quot;", '"')) if m else None
    res["popup photo px"] = pop["w"] if pop else 0
    return res


def city_roads(roads, n_sites: int):
    """The sample's road network copied to each site of the grid build_registry lays the damages on (week_cands'
    5 km a copy east undone, then the grid's shift): a city's network around each site, as a whole city's would be."""
    import geopandas as gpd
    import pandas as pd

    parts = []
    for g in range(n_sites):
        r = roads.copy()
        r["geometry"] = r.geometry.translate(0.035 * (g % 12), 0.028 * (g // 12))
        r["segment_id"] = r["segment_id"].astype(str) + f"@g{g}"
        parts.append(r)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=roads.crs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", default="2000,5000")
    ap.add_argument("--weeks", type=int, default=3)
    ap.add_argument("--before", default="d83695f", help="revision of the baseline (git archive of its detector/)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--keep", default=None, help="folder to keep the registries and the html in")
    ap.add_argument("--max-mb", default="10,5", help="the working tree's export with these caps too ('' for none)")
    ap.add_argument("--cold", action="store_true", help="a first export's time (no thumbnail cache): thumbnails "
                    "by 1 thread vs the default pool (no Chromium, no --before)")
    ap.add_argument("--sample-roads", action="store_true", help="draw the sample's network once (as before "
                    "c10700c), not a copy at each site (a city's)")
    a = ap.parse_args()
    import geopandas as gpd

    toy = Path(a.shared) / "sample_drives" / "toyama"
    cfg = Config()
    base, crops = sample_base(toy, cfg)
    roads = gpd.read_file(toy / "roads.geojson").to_crs("EPSG:4326")
    work = Path(a.keep or tempfile.mkdtemp(prefix="bench_report_"))
    work.mkdir(parents=True, exist_ok=True)
    if a.cold:
        return cold(a, base, crops, roads, cfg, work)
    before = work / "before-tree"
    if not before.exists():
        before.mkdir()
        arch = subprocess.run(["git", "archive", a.before, "detector"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=arch, check=True)
    print(f"base: {len(base)} damages of the Toyama sample, real crops {np.mean([len(c) for c in crops]) / 1e3:.1f} KB "
          f"on average; before = {a.before}, after = working tree; Chromium medians of {a.repeat}")
    for n in [int(x) for x in a.candidates.split(",")]:
        d = work / f"n{n}"
        d.mkdir(exist_ok=True)
        store = d / "registry.gpkg"
        t0 = time.perf_counter()
        if not store.exists():
            build_registry(store, base, crops, n, a.weeks, cfg)
        with Store.for_config(store, cfg) as st:
            df = st.query(lists=False)
        data = d / "query.pkl"
        sites = math.ceil(len(df) / len(base)) + a.weeks
        net = roads if a.sample_roads else city_roads(roads, sites)
        data.write_bytes(pickle.dumps((df, net)))
        print(f"\n{len(df)} damages ({a.weeks} weekly merges, registry {store.stat().st_size / 1e6:.0f} MB, "
              f"built in {time.perf_counter() - t0:.0f} s; road network {len(net):,} links)")
        popup_id = str(df["candidate_id"].iloc[len(df) // 2])
        res, said = {}, {}
        caps = [float(x) for x in a.max_mb.split(",") if x]
        runs = [("before", before, None), ("after", ROOT, None)] + [(f"--max-mb {c:g}", ROOT, c) for c in caps]
        for tag, tree, cap in runs:
            out = d / f"{tag.replace('--max-mb ', 'cap')}.html"
            r = subprocess.run([sys.executable, "-c", EXPORT, str(tree), str(data), str(out)]
                               + ([str(cap)] if cap else []), capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"{tag} export failed:\n{r.stderr[-3000:]}")
            size = out.stat().st_size
            said[tag] = r.stdout.splitlines()[-2]
            res[tag] = {"file MB": size / 1e6, "KB a damage": size / 1e3 / len(df),
                        "export s": float(r.stdout.split()[-1]), **measure(out, a.repeat, popup_id)}
        print(f"  {'':15s} {'before':>10s}    {'after':>10s}" + "".join(f"  {t:>14s}" for t, _, c in runs if c))
        for k in res["before"]:
            b, f = res["before"][k], res["after"][k]
            row = f"  {k:15s} {b:10.1f} -> {f:10.1f}" + "".join(f"  {res[t][k]:14.1f}" for t, _, c in runs if c)
            print(row + (f"  (after x{f / b:.2f})" if b else ""))
        for t, _, c in runs:
            if c:
                print(f"  {t}: {said[t]}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
