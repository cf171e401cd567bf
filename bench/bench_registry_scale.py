"""Does merging a day's drive into a city's registry after a year of weekly drives stay fast? Measured in one run.

A city of ~300,000 people has ~1,000 km of roads; a patrol drives 50-100 km a day at one frame a second (~10 m).
The network is a real one: the Kubicka Fushimi-Uji (Kyoto) map (``../shared/data/roads/kubicka/00000099``, 36,863
links, ~1,000 km of road). Every week of a year one patrol drive (``--week-frames`` frames) follows a route, a random
walk along it (no U-turn but at a dead end), a frame every 10 m, one a second, GPS noise (3 m), heading noise (3 deg);
its frames are recorded as ``frames.frame_keys`` gives them (drive, name, key, time, lat, lon, heading). The city
drives ``--routes`` such routes in turn (8 x 40 km: each road of them ~6 times a year, every other round the other
way).

Damages (D in the registry at the end of the year) lie on the roads the year's drives took (a registry knows only
the patrolled roads): 90 % of D real damages, uniform along those links, with a class; a drive whose frames come
3-20 m behind one (within 5 m of its heading line) sights it with probability 0.75, from each such frame with
probability 0.8: one run candidate a damage and drive, with every sighting's box, confidence and time, a position
off by ~2 m, its segment id and chainage, and a real crop (the sample's frames cut and re-encoded, 64 of them). The
other 10 % are false alarms, a few a week, each seen once. Everything is merged through ``Store.merge`` (the real
path ``patrol run --store`` takes: candidates and frames), week after week; the registries of the smaller D hold
the same drives (F frames), their damages a subset.

Measured: one more drive of N frames (the first N frames of the next week's route: new photos, its own candidates; a drive
longer than a week's goes on along roads not driven before) merged into a
copy of each registry, each in its own process: seconds, the same merge again (a rerun: nothing to write), and the
process's peak RSS above what it held before the merge (``VmHWM``); with the ratio per doubling of D and of N
(x2.0 a doubling is linear). ``--weeks-axis``: the same at D = the middle size with registries of fewer weeks (F).
``--export``: ``patrol export`` of the largest registry as csv, geojson and html (and html ``--max-mb 10``, the network
drawn), and ``--format segments`` (the network's condition from all its frames, as .geojson and .gpkg), each a process
of its own (the CLI): seconds, MB, peak RSS (with ``--before``: also by the code at REV); csv and html each twice, the
second as next week's export of the registry unchanged: the photos it wrote again and the ratio to the first (html: the
registry's thumbnail cache removed before the first). ``--profile``: cProfile of the largest measured merge, the top
functions by cumulative time. ``--before REV``: the measured merges also with the code at REV (``git archive``), on
the same registries, printed before the working tree's (the registries are built by the working tree's code).

    .venv/bin/python bench/bench_registry_scale.py [--sizes 500,2000,8000] [--frames 1000,4000] [--weeks 52]
        [--week-frames 4000] [--export] [--profile] [--before REV] [--keep DIR] [--weeks-axis 13,26]
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
KUBICKA = SHARED / "data" / "roads" / "kubicka" / "00000099"
TOYAMA = SHARED / "sample_drives" / "toyama"
CONFIG = ROOT / "configs" / "uji-city.yaml"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

R = 6371008.8
CLASSES = ["D00", "D10", "D20", "D40"]

# one measured merge, in a process of its own (peak RSS of that merge alone; the code at ROOT or at --before)
MERGE = r"""
import json, pickle, shutil, sys, time
sys.path.insert(0, sys.argv[1])
from detector.config import load_config
from detector.store import Store
code, src, dst, data, cfgp, prof = sys.argv[1:7]
shutil.copy(src, dst)
cfg = load_config(cfgp)
with open(data, "rb") as fh:
    cands, frames = pickle.load(fh)
import shapely, pandas, numpy  # (what the merge imports: not its memory)
def rss(field="VmRSS:"):  # (VmHWM: this process's peak; ru_maxrss keeps the forking parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
rss0 = rss()
with Store.for_config(dst, cfg) as st:
    if prof:
        import cProfile, pstats, io
        p = cProfile.Profile()
        p.enable()
    t = time.perf_counter()
    r = st.merge(cands, {"run_id": "measured"}, cfg, frames=frames)
    t1 = time.perf_counter() - t
    if prof:
        p.disable()
        s = io.StringIO()
        pstats.Stats(p, stream=s).sort_stats("cumulative").print_stats(28)
        print(s.getvalue(), file=sys.stderr)
    peak = rss("VmHWM:")
    t = time.perf_counter()
    st.merge(cands, {"run_id": "measured-again"}, cfg, frames=frames)
    t2 = time.perf_counter() - t
    n_c, n_f = st.con.execute("SELECT (SELECT COUNT(*) FROM candidates), (SELECT COUNT(*) FROM frames)").fetchone()
print(json.dumps({"s": t1, "again_s": t2, "rss0_mb": rss0, "peak_mb": peak, "new": len(r.new),
                  "seen": len(r.seen_again), "frames": r.frames_recorded, "D": n_c, "F": n_f,
                  "unseen": sum(len(v) for v in (r.passed_unseen_by_drive or {}).values())}))
"""

EXPORT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from cli import main
t = time.perf_counter()
try:
    main(sys.argv[2:])
except SystemExit as e:
    if e.code:
        raise
peak = [int(x.split()[1]) / 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:")]  # (see MERGE)
print(json.dumps({"s": time.perf_counter() - t, "peak_mb": peak[0]}))
"""


class Network:
    """The Kubicka map as an undirected graph in local metres (equirectangular about its mean latitude)."""

    def __init__(self, folder: Path):
        kid = folder.name
        nodes = np.loadtxt(folder / f"{kid}.nodes", ndmin=2)
        arcs = np.loadtxt(folder / f"{kid}.arcs", dtype=np.int64, ndmin=2)
        a, b = np.minimum(arcs[:, 0], arcs[:, 1]), np.maximum(arcs[:, 0], arcs[:, 1])
        pairs = np.unique(np.stack([a, b], 1)[a != b], axis=0)
        self.lon, self.lat = nodes[:, 0], nodes[:, 1]
        self.lat0 = float(self.lat.mean())
        self.lon0 = float(self.lon.mean())
        self.x = np.radians(self.lon - self.lon0) * R * math.cos(math.radians(self.lat0))
        self.y = np.radians(self.lat - self.lat0) * R
        u = np.concatenate([pairs[:, 0], pairs[:, 1]])
        v = np.concatenate([pairs[:, 1], pairs[:, 0]])
        order = np.argsort(u, kind="stable")
        self.nbr = v[order]
        self.ptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=len(nodes)))])
        self.pairs = pairs
        self.km = float(np.hypot(self.x[pairs[:, 0]] - self.x[pairs[:, 1]], self.y[pairs[:, 0]] - self.y[pairs[:, 1]]).sum()) / 1e3
        self.nodes_linked = np.flatnonzero(np.diff(self.ptr) > 0)

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lat = self.lat0 + np.degrees(y / R)
        lon = self.lon0 + np.degrees(x / (R * math.cos(math.radians(self.lat0))))
        return lon, lat

    def walk(self, rng, metres: float, start: int | None = None) -> np.ndarray:
        """Node sequence of a random walk at least ``metres`` long (no U-turn but at a dead end)."""
        cur = int(rng.choice(self.nodes_linked)) if start is None else start
        path, prev, dist = [cur], -1, 0.0
        while dist < metres:
            nb = self.nbr[self.ptr[cur]:self.ptr[cur + 1]]
            if len(nb) > 1:
                nb = nb[nb != prev]
            nxt = int(nb[rng.integers(len(nb))])
            dist += math.hypot(self.x[nxt] - self.x[cur], self.y[nxt] - self.y[cur])
            prev, cur = cur, nxt
            path.append(cur)
        return np.array(path)


def drive_frames(net: Network, rng, n: int, drive: str, t0: datetime, path: np.ndarray) -> dict:
    """``n`` frames 10 m apart along ``path`` (nodes, at least n * 10 m long): true and noisy positions (m),
    heading, segment, time, key."""
    px, py = net.x[path], net.y[path]
    seg_len = np.hypot(np.diff(px), np.diff(py))
    keep = np.concatenate([[True], seg_len > 0])  # (duplicate node positions)
    path, px, py = path[keep], px[keep], py[keep]
    seg_len = np.hypot(np.diff(px), np.diff(py))
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    s = np.arange(n) * 10.0
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg_len) - 1)
    f = (s - cum[i]) / seg_len[i]
    x, y = px[i] + f * (px[i + 1] - px[i]), py[i] + f * (py[i + 1] - py[i])
    hdg = np.degrees(np.arctan2(px[i + 1] - px[i], py[i + 1] - py[i])) % 360.0
    a, b = path[i], path[i + 1]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # chainage along the link from its lower node: the distance from node lo
    ch = np.where(a == lo, f, 1.0 - f) * seg_len[i]
    nx, ny = x + rng.normal(0, 3.0, n), y + rng.normal(0, 3.0, n)
    lon, lat = net.to_lonlat(nx, ny)
    return {"drive": drive, "x": x, "y": y, "hdg": hdg, "lo": lo, "hi": hi, "ch": ch, "seg_len": seg_len[i],
            "lat": lat, "lon": lon, "heading": (hdg + rng.normal(0, 3.0, n)) % 360.0,
            "time": [t0 + timedelta(seconds=int(k)) for k in range(n)],
            "key": rng.integers(1, 2 ** 62, size=n, dtype=np.int64), "n": n}


def frame_tuples(d: dict) -> list[tuple]:
    return [(d["drive"], f"IMG_{i:05d}.jpg", int(d["key"][i]), d["time"][i], float(d["lat"][i]), float(d["lon"][i]),
             float(d["heading"][i])) for i in range(d["n"])]


def place_damages(net: Network, rng, drives: list[dict], n: int) -> pd.DataFrame:
    """``n`` damages uniform along the links the drives took: x, y (m), segment id, chainage, class."""
    links = np.unique(np.concatenate([np.stack([d["lo"], d["hi"]], 1) for d in drives]), axis=0)
    ln = np.hypot(net.x[links[:, 0]] - net.x[links[:, 1]], net.y[links[:, 0]] - net.y[links[:, 1]])
    k = rng.choice(len(links), size=n, p=ln / ln.sum())
    u = rng.uniform(0, 1, n)
    lo, hi = links[k, 0], links[k, 1]
    x = net.x[lo] + u * (net.x[hi] - net.x[lo])
    y = net.y[lo] + u * (net.y[hi] - net.y[lo])
    return pd.DataFrame({"x": x, "y": y, "segment_id": [f"{a}-{b}" for a, b in zip(lo, hi)], "chainage_m": u * ln[k],
                         "class": rng.choice(CLASSES, n), "seed": rng.integers(0, 2 ** 31, n)})


def sightings(d: dict, dmg: pd.DataFrame) -> dict[int, list[int]]:
    """{damage row: frames of drive ``d`` 3-20 m behind it, within 5 m of the frame's heading line}."""
    import shapely

    if not len(dmg):
        return {}
    tree = shapely.STRtree(shapely.points(dmg["x"].to_numpy(), dmg["y"].to_numpy()))
    fi, di = tree.query(shapely.points(d["x"], d["y"]), predicate="dwithin", distance=20.0)
    vx, vy = dmg["x"].to_numpy()[di] - d["x"][fi], dmg["y"].to_numpy()[di] - d["y"][fi]
    h = np.radians(d["hdg"][fi])
    along, lateral = vx * np.sin(h) + vy * np.cos(h), np.abs(vx * np.cos(h) - vy * np.sin(h))
    ok = (along >= 3.0) & (along <= 20.0) & (lateral <= 5.0)
    out: dict[int, list[int]] = {}
    for f, k in zip(fi[ok], di[ok]):
        out.setdefault(int(k), []).append(int(f))
    return out


def run_cands(net: Network, rng, d: dict, dmg: pd.DataFrame, n_false: int, crops: list[bytes]) -> pd.DataFrame:
    """The run's candidates of drive ``d``: the damages it sighted (p 0.75 each, each frame p 0.8) and ``n_false``
    false alarms (a frame's 8 m ahead), as ``locate_and_dedupe`` gives them (with observations and crop)."""
    rows = []
    seen = sightings(d, dmg)
    items = [(k, fs) for k, fs in sorted(seen.items()) if rng.random() < 0.75]
    fp = rng.choice(d["n"], size=min(n_false, d["n"]), replace=False) if n_false else []
    for f in fp:
        h = math.radians(d["hdg"][f])
        items.append((None, [int(f)], (d["x"][f] + 8 * math.sin(h), d["y"][f] + 8 * math.cos(h)),
                      str(rng.choice(CLASSES)), f"{d['lo'][f]}-{d['hi'][f]}", float(d["ch"][f])))
    for it in items:
        if it[0] is not None:
            k, fs = it
            fs = [f for f in fs if rng.random() < 0.8] or fs[:1]
            r = dmg.iloc[k]
            x, y, cls, seg, ch = r["x"], r["y"], r["class"], r["segment_id"], r["chainage_m"]
        else:
            _, fs, (x, y), cls, seg, ch = it
        lon, lat = net.to_lonlat(np.array([x + rng.normal(0, 2.0)]), np.array([y + rng.normal(0, 2.0)]))
        obs = []
        for f in fs:
            x1, y1 = int(rng.integers(100, 400)), int(rng.integers(300, 450))
            obs.append({"drive": d["drive"], "image": f"IMG_{f:05d}.jpg", "x1": x1, "y1": y1,
                        "x2": x1 + int(rng.integers(40, 200)), "y2": y1 + int(rng.integers(20, 150)),
                        "confidence": round(float(rng.uniform(0.3, 0.95)), 3), "time": d["time"][f].isoformat(),
                        "width": 640, "height": 640})
        best = max(obs, key=lambda o: o["confidence"])
        rows.append({"candidate_id": f"C{len(rows) + 1:04d}", "class": cls, "confidence": best["confidence"],
                     "n_obs": len(obs), "first_seen": obs[0]["time"], "last_seen": obs[-1]["time"],
                     "segment_id": seg, "chainage_m": round(float(ch + rng.normal(0, 1.0)), 2),
                     "lat": float(lat[0]), "lon": float(lon[0]), "best_image": best["image"],
                     "best_drive": d["drive"], **{f"best_{c}": best[c] for c in ("x1", "y1", "x2", "y2")},
                     "best_width": 640, "best_height": 640, "drives": [d["drive"]],
                     "images": [o["image"] for o in obs], "severity": round(float(rng.uniform(0, 100)), 1),
                     "observations": obs, "crop_jpeg": crops[int(rng.integers(len(crops)))]})
    return pd.DataFrame(rows)


def sample_crops(n: int, rng) -> list[bytes]:
    """``n`` real crops: pieces of the sample drive's frames, JPEG 85 as ``crops.make_crop`` writes them."""
    import cv2

    imgs = []
    for p in sorted(TOYAMA.glob("toyama-2026-11-p1/IMG_2026*.jpg"))[:40]:
        im = cv2.imread(str(p))
        if im is not None:
            imgs.append(im)
    out = []
    for i in range(n):
        im = imgs[i % len(imgs)]
        h, w = im.shape[:2]
        y0, x0 = int(rng.integers(0, h - 180)), int(rng.integers(0, w - 240))
        out.append(cv2.imencode(".jpg", im[y0:y0 + 180, x0:x0 + 240], [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return out


def build(path: Path, net, drives, dmg, weeks: int, crops, cfg, rng) -> tuple[float, int, int]:
    """Merge ``weeks`` weekly drives (their sightings of ``dmg`` and false alarms) into a new registry at ``path``
    through ``Store.merge``. Returns (seconds, damages, frames)."""
    from detector.store import Store

    n_false = max(1, round(len(dmg) / 9 / weeks))  # 10 % of the registry: false alarms
    t_all = 0.0
    for w in range(weeks):
        c = run_cands(net, rng, drives[w], dmg, n_false, crops)
        t = time.perf_counter()
        with Store.for_config(path, cfg) as st:
            st.merge(c, {"run_id": f"week{w:03d}"}, cfg, frames=frame_tuples(drives[w]))
        t_all += time.perf_counter() - t
    with Store.for_config(path, cfg) as st:
        n_c, n_f = st.con.execute("SELECT (SELECT COUNT(*) FROM candidates), (SELECT COUNT(*) FROM frames)").fetchone()
    return t_all, n_c, n_f


def measure(code: Path, reg: Path, data: Path, work: Path, profile: bool = False) -> dict:
    r = subprocess.run([sys.executable, "-c", MERGE, str(code), str(reg), str(work / "measured.gpkg"), str(data),
                        str(CONFIG), "1" if profile else ""], cwd=code, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"measured merge failed ({code}):\n{r.stderr[-3000:]}")
    if profile:
        print(r.stderr)
    (work / "measured.gpkg").unlink()
    return json.loads(r.stdout.strip().splitlines()[-1])


def exports(title: str, code: Path, path: Path, roads: Path, n_c: int, work: Path) -> None:
    """`patrol export` of ``path`` as csv, geojson, html and html --max-mb 10, each a process of its own (the CLI of
    the code at ``code``): seconds, MB, peak RSS. csv and the html exports run twice: the second ('again', a week's
    export of a registry that did not change) with the first's photos beside the file (how many it rewrote: mtime) and
    the registry's thumbnail cache (``report.thumb_cache_path``: removed before the first, cold), with the ratio."""
    print(f"\n== {title}: patrol export of the largest registry ({n_c:,} damages, {path.stat().st_size / 1e6:.0f} MB), "
          "each a process (import included); 'again': the same export rerun")
    cache = path.with_name(path.name + ".thumbs")
    for fmt, extra in (("csv", []), ("geojson", []), ("html", ["--roads", str(roads)]),
                       ("html", ["--roads", str(roads), "--max-mb", "10"]),
                       ("segments", ["--roads", str(roads), "geojson"]), ("segments", ["--roads", str(roads), "gpkg"])):
        if fmt == "segments":  # the network's condition from every frame held (absent from older code)
            if code != ROOT:
                continue
            extra, ext = extra[:2], extra[2]
        else:
            ext = fmt
        out = work / f"export-{fmt}{'-10mb' if '--max-mb' in extra else ''}.{ext}"
        photos = out.parent / (out.name.replace(".", "_") + "_crops")
        if photos.is_dir():  # a first export writes every photo
            shutil.rmtree(photos)
        if fmt == "html" and cache.exists():
            cache.unlink()
        first = None
        for again in ((False, True) if fmt in ("csv", "html") else (False,)):
            before = {p.name: p.stat().st_mtime_ns for p in photos.glob("*.jpg")} if photos.is_dir() else {}
            r = subprocess.run([sys.executable, "-c", EXPORT, str(code), "export", str(path), "--format", fmt, "--out",
                                str(out), "--config", str(CONFIG), *extra], cwd=code, capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"export {fmt} failed:\n{r.stderr[-3000:]}\n{r.stdout[-2000:]}")
            m = json.loads(r.stdout.strip().splitlines()[-1])
            mb = out.stat().st_size / 1e6
            after = {p.name: p.stat().st_mtime_ns for p in photos.glob("*.jpg")} if photos.is_dir() else {}
            wrote = sum(1 for k, t in after.items() if before.get(k) != t)
            name = "  again" if again else f"  {fmt:8s}"
            label = " ".join(extra[2:]) or (ext if fmt == "segments" else "")
            print(f"{name:10s} {label:12s} {m['s']:6.1f} s  {mb:7.1f} MB ({mb * 1e3 / n_c:.1f} KB a damage)  "
                  f"peak RSS {m['peak_mb']:.0f} MB" + (f"  + {len(after)} photos ({wrote} written)" if after else "")
                  + (f"  {first / m['s']:.2f}x faster" if again else "")
                  + (f"  (thumbnail cache {cache.stat().st_size / 1e6:.1f} MB)" if again and fmt == "html"
                     and cache.exists() else ""), flush=True)
            first = m["s"]


def per_doubling(x0: float, x1: float, t0: float, t1: float) -> str:
    """The time ratio per doubling of the size (x2.00: linear; x1.00: flat)."""
    if t0 <= 0 or x1 == x0:
        return "   -  "
    return f"x{(t1 / t0) ** (1 / math.log2(x1 / x0)):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500,2000,8000", help="damages in the registry (D)")
    ap.add_argument("--frames", default="1000,4000", help="frames of the measured drive (N)")
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--week-frames", type=int, default=4000, help="frames of each weekly drive (~40 km)")
    ap.add_argument("--routes", type=int, default=8, help="patrol routes driven in turn, one a week")
    ap.add_argument("--weeks-axis", default="", help="also registries of these many weeks at the middle size")
    ap.add_argument("--export", action="store_true", help="patrol export of the largest registry")
    ap.add_argument("--profile", action="store_true", help="cProfile of the largest measured merge")
    ap.add_argument("--before", metavar="REV", help="also measure the merges with the code at this git revision")
    ap.add_argument("--keep", default=None, help="folder for the registries (reused when they are there)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not KUBICKA.is_dir() or not TOYAMA.is_dir():
        sys.exit(f"skipped: needs the Kubicka Fushimi-Uji network {KUBICKA} and the sample drive {TOYAMA} "
                 "(../shared beside the checkout)")
    from detector.config import load_config

    cfg = load_config(CONFIG)
    sizes = sorted(int(x) for x in a.sizes.split(","))
    ns = sorted(int(x) for x in a.frames.split(","))
    axis = sorted(int(x) for x in a.weeks_axis.split(",") if x)
    work = Path(a.keep or tempfile.mkdtemp(prefix="bench_registry_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    t = time.perf_counter()
    net = Network(KUBICKA)
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=cfg.tz)
    routes = [net.walk(rng, a.week_frames * 10.0 + 10.0) for _ in range(a.routes)]
    # week w drives route w % routes, every other round the other way (a city's rotation of patrol routes)
    drives = [drive_frames(net, rng, a.week_frames, f"{(t0 + timedelta(weeks=w)):%Y-%m-%d}", t0 + timedelta(weeks=w),
                           routes[w % a.routes][::(-1) ** (w // a.routes)]) for w in range(a.weeks)]
    tw = t0 + timedelta(weeks=a.weeks)
    # the next week's route, new photos; a longer drive goes on from its end (roads it has not driven)
    mrng = np.random.default_rng(a.seed + 1)
    nxt = routes[a.weeks % a.routes][::(-1) ** (a.weeks // a.routes)]
    if max(ns) > a.week_frames:
        nxt = np.concatenate([nxt, net.walk(mrng, (max(ns) - a.week_frames) * 10.0 + 10.0, start=int(nxt[-1]))[1:]])
    measured = {n: drive_frames(net, mrng, n, f"{tw:%Y-%m-%d}-{n}", tw, nxt) for n in ns}
    crops = sample_crops(64, rng)
    # the real damages of the largest size; a smaller size's are its first ones (the same drives)
    all_dmg = place_damages(net, rng, drives, round(max(sizes) * 0.9))
    covered = np.unique(np.concatenate([np.stack([d["lo"], d["hi"]], 1) for d in drives]), axis=0)
    print(f"network {KUBICKA.name}: {len(net.pairs):,} links, {net.km:,.0f} km; {a.weeks} weekly drives of "
          f"{a.week_frames:,} frames ({a.weeks * a.week_frames * 10 / 1e3:,.0f} km driven, {len(covered):,} links "
          f"taken); crops {np.mean([len(c) for c in crops]) / 1e3:.1f} KB; made in {time.perf_counter() - t:.1f} s",
          flush=True)
    regs: dict[tuple[int, int], tuple[Path, int, int]] = {}
    builds = [(d, a.weeks) for d in sizes] + [(sizes[len(sizes) // 2], w) for w in axis if w < a.weeks]
    for dsize, weeks in builds:
        path = work / f"registry-D{dsize}-W{weeks}.gpkg"
        dmg = all_dmg.iloc[:round(dsize * 0.9)].reset_index(drop=True)
        brng = np.random.default_rng(a.seed * 1000 + dsize)
        if path.exists():
            from detector.store import Store

            with Store.for_config(path, cfg) as st:
                n_c, n_f = st.con.execute("SELECT (SELECT COUNT(*) FROM candidates), (SELECT COUNT(*) FROM frames)"
                                          ).fetchone()
            print(f"registry D~{dsize} ({weeks} weeks): reused {path}: {n_c:,} damages, {n_f:,} frames", flush=True)
        else:
            s, n_c, n_f = build(path, net, drives, dmg, weeks, crops, cfg, brng)
            print(f"registry D~{dsize} ({weeks} weeks): {n_c:,} damages, {n_f:,} frames, "
                  f"{path.stat().st_size / 1e6:.0f} MB; built through Store.merge in {s:.0f} s "
                  f"({s / weeks:.2f} s a week)", flush=True)
        regs[(dsize, weeks)] = (path, n_c, n_f)
        for n in ns:  # the measured drive's candidates against this size's damages (same seed: the same sightings)
            data = work / f"measured-D{dsize}-N{n}.pkl"
            if not data.exists():
                c = run_cands(net, np.random.default_rng(a.seed * 7 + n), measured[n], dmg,
                              max(1, round(len(dmg) / 9 / weeks * n / a.week_frames)), crops)
                with open(data, "wb") as fh:
                    pickle.dump((c, frame_tuples(measured[n])), fh)
    codes = [("working tree", ROOT)]
    if a.before:
        code = work / "before"
        if code.exists():
            shutil.rmtree(code)
        code.mkdir()
        subprocess.run(f"git archive {a.before} | tar -x -C {code}", shell=True, check=True, cwd=ROOT)
        codes.insert(0, (f"before ({a.before})", code))
    for title, code in codes:
        print(f"\n== {title}: one more drive merged (its own process; 'again': the same merge rerun)")
        print(f"{'D':>7} {'F':>8} {'weeks':>5} {'N':>6} {'cands':>6} {'new':>5} {'merge s':>8} {'again s':>8} "
              f"{'peak+MB':>8} {'per 2x D':>9} {'per 2x N':>9}")
        got: dict[tuple, dict] = {}
        for (dsize, weeks), (path, n_c, n_f) in regs.items():
            for n in ns:
                data = work / f"measured-D{dsize}-N{n}.pkl"
                with open(data, "rb") as fh:
                    nc = len(pickle.load(fh)[0])
                prof = a.profile and code == ROOT and (dsize, weeks, n) == (sizes[-1], a.weeks, ns[-1])
                m = got[(dsize, weeks, n)] = measure(code, path, data, work, prof)
                pd_ = (per_doubling(regs[(sizes[sizes.index(dsize) - 1], weeks)][1], n_c,
                                    got[(sizes[sizes.index(dsize) - 1], weeks, n)]["s"], m["s"])
                       if weeks == a.weeks and sizes.index(dsize) > 0 else "")
                pn = per_doubling(ns[ns.index(n) - 1], n, got[(dsize, weeks, ns[ns.index(n) - 1])]["s"], m["s"]) \
                    if ns.index(n) > 0 else ""
                print(f"{n_c:7,} {n_f:8,} {weeks:5d} {n:6,} {nc:6,} {m['new']:5,} {m['s']:8.2f} {m['again_s']:8.2f} "
                      f"{m['peak_mb'] - m['rss0_mb']:8.0f} {pd_:>9} {pn:>9}", flush=True)
    if a.export:
        path, n_c, _ = regs[(sizes[-1], a.weeks)]
        roads = work / "fushimi-uji.geojson"  # the network as the city's file names its fields (uji-city.yaml)
        lon, lat = net.lon, net.lat
        roads.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"路線ID": f"{p}-{q}", "路線名": f"市道{p % 500}号線"},
             "geometry": {"type": "LineString", "coordinates": [[lon[p], lat[p]], [lon[q], lat[q]]]}}
            for p, q in net.pairs.tolist()]}, ensure_ascii=False), encoding="utf-8")
        for title, code in codes:
            exports(title, code, path, roads, n_c, work)
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
