"""How long does ``--area FILE --area-where FIELD=VALUE`` take now that a file's districts share the damages out (each
damage in one polygon of the file: the deepest of those it lies in, README: One district's lists and figures)?
Measured in one run.

The registry of ``bench_stats.py`` (``fill``: ~7,000 damages over four years, ``--sightings`` 8 each on average:
~56,000 sightings) with positions on the sample network (``bench_jobs.place``: a random segment by length, a random
chainage), and a district file of ``--districts`` polygons over the network's extent: the Voronoi cells of random seeds,
each boundary drawn separately as a city's office files are: densified to a vertex every 2 m and shifted by a smooth
wave of its own (±1.5 m), so that two neighbours' shared edges never coincide (thin overlaps and gaps all along
them), ~2,000-3,000 vertices a polygon; written in JGD2011 plane rectangular VII (EPSG:6675, metres) and in lon/lat.

In this process (best of ``--repeat``): for every district, ``Area.contains_lonlat`` of the registry's damages (its
first call: with the metric copy of the file's polygons it makes) against the rule it replaces (0.10.0's: a prepared
union's ``intersects``: the damages on a shared edge or in an overlap in both districts,
those in a gap in none), the damages counted in two districts by the old rule, and the check that the new one
partitions them; the same on ``--points`` points along the network (the sightings' count). Then the CLI (a process
of its own: what a user waits for): ``patrol stats`` and ``patrol export --format csv`` of the whole registry and of
one district.

    .venv/bin/python bench/bench_area.py [--damages 7000] [--sightings 8] [--districts 20] [--points 56000]
        [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_jobs import city  # noqa: E402
from bench_stats import TOYAMA, patrol  # noqa: E402


def districts(path: Path, n: int, seed: int = 2) -> Path:
    """``n`` district polygons (名称 district-01 …) over the sample network's extent, each drawn on its own (see the
    module's text), written to ``path`` (EPSG:6675) and beside it in lon/lat (``…-4326.gpkg``)."""
    import geopandas as gpd
    import shapely

    net = gpd.read_file(TOYAMA / "roads.geojson").to_crs(6675)
    x0, y0, x1, y1 = net.total_bounds
    box = shapely.box(x0 - 10, y0 - 10, x1 + 10, y1 + 10)
    rng = np.random.default_rng(seed)
    seeds = shapely.multipoints(np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]))
    cells = shapely.intersection(np.asarray(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))), box)
    drawn = []
    for i, c in enumerate(cells):  # (a loop over the districts, not the points)
        ph = rng.uniform(0, 2 * np.pi, 2)

        def wave(xy, ph=ph):  # the same vertex the same shift: the ring stays closed
            return xy + 1.5 * np.column_stack([np.sin(xy[:, 1] / 37.0 + ph[0]), np.sin(xy[:, 0] / 41.0 + ph[1])])
        drawn.append(shapely.make_valid(shapely.transform(shapely.segmentize(c, 2.0), wave)))
    gdf = gpd.GeoDataFrame({"名称": [f"district-{i + 1:02d}" for i in range(len(drawn))]}, geometry=drawn, crs=6675)
    gdf.to_file(path)
    gdf.to_crs(4326).to_file(path.with_name(path.stem + "-4326.gpkg"))
    return path


def along(n: int, seed: int = 3):
    """``n`` (lon, lat) on the sample network: a random segment by length, a random chainage."""
    import shapely

    from detector.config import Config
    from detector.roads import load_roads

    net = load_roads(TOYAMA / "roads.geojson", Config())
    rng = np.random.default_rng(seed)
    seg = rng.choice(len(net.ids), n, p=net.lengths / net.lengths.sum())
    pts = shapely.line_interpolate_point(net.geoms[seg], rng.uniform(0, 1, n) * net.lengths[seg])
    return net.to_wgs84.transform(shapely.get_x(pts), shapely.get_y(pts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--damages", type=int, default=7000)
    ap.add_argument("--sightings", type=int, default=8)
    ap.add_argument("--districts", type=int, default=20)
    ap.add_argument("--points", type=int, default=56000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build the registry and the districts here and keep them")
    a = ap.parse_args()
    d = a.keep or Path(tempfile.mkdtemp(prefix="bench_area_"))
    big = city(d, a.damages, a.sightings)
    f = d / "districts.gpkg"
    if not f.exists():
        districts(f, a.districts)

    import geopandas as gpd
    import shapely

    from detector.area import load_area
    from detector.config import Config
    from detector.stats import read_registry
    from detector.store import Store

    with Store.for_config(big, Config()) as st:
        cands = read_registry(st)[0]
    gdf = gpd.read_file(f)
    names = list(gdf["名称"])
    nv = shapely.get_num_coordinates(np.asarray(gdf.geometry.values))
    print(f"registry: {len(cands):,} damages (not merged into another) on the sample network; {f.name}: "
          f"{len(names)} districts, {int(nv.min()):,}-{int(nv.max()):,} vertices each")
    lon, lat = along(a.points)

    def best(fn) -> tuple[float, object]:
        times, out = [], None
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    for path in (f, f.with_name(f.stem + "-4326.gpkg")):
        areas = [load_area(path, f"名称={x}") for x in names]
        for what, x, y in (("damages", cands["lon"].to_numpy(float), cands["lat"].to_numpy(float)),
                           ("points", np.asarray(lon), np.asarray(lat))):
            t_old, old = best(lambda: [_old_rule(ar, x, y) for ar in areas])
            t_new, new = best(lambda: [_fresh(ar).contains_lonlat(x, y, []) for ar in areas])  # (as the CLI: its notes)
            old, new = np.array(old), np.array(new)
            notes: list[str] = []
            areas[0].contains_lonlat(x, y, notes)
            assert new.sum(axis=0).max() <= 1, "a point in two districts"
            union = load_area(path).contains_lonlat(x, y)
            assert (new.any(axis=0) == union).all(), "the districts' points are not the file's"
            print(f"{path.name}, {len(x):,} {what}, {len(names)} districts: the old rule {t_old:.3f} s "
                  f"({int((old.sum(axis=0) > 1).sum())} in two districts, {int((~old.any(axis=0)).sum())} in none), "
                  f"the new {t_new:.3f} s ({t_new / len(names) * 1000:.1f} ms a district; "
                  f"{int(new.sum())} in one district each, {int((~new.any(axis=0)).sum())} in none)")
        for n in notes:
            print(f"  note: {n}")
    base = {}
    for cmd, args in (("stats", ("--until", "2026-11-30")), ("export", ("--format", "csv", "--out", d / "x.csv"))):
        t0 = min(patrol(cmd, big, *args) for _ in range(a.repeat))
        t1 = min(patrol(cmd, big, *args, "--area", f, "--area-where", f"名称={names[len(names) // 2]}")
                 for _ in range(a.repeat))
        base[cmd] = t0
        print(f"patrol {cmd} {args[0]} {args[1]}: the whole registry {t0:.2f} s, one district {t1:.2f} s "
              f"({t1 - t0:+.2f} s)")
    if a.keep is None:
        shutil.rmtree(d, ignore_errors=True)


def _fresh(area):
    """The area without its metric copy of the file's polygons (made on its first use: each run of the CLI pays it)."""
    area._metric = None
    return area


def _old_rule(area, lon, lat) -> np.ndarray:
    """0.10.0's ``Area.contains_lonlat``: inside the union of the polygons picked, or on its edge."""
    import pandas as pd
    import shapely

    lon = pd.to_numeric(pd.Series(np.asarray(lon, dtype=object)), errors="coerce").to_numpy(float)
    lat = pd.to_numeric(pd.Series(np.asarray(lat, dtype=object)), errors="coerce").to_numpy(float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    out = np.zeros(len(lon), dtype=bool)
    x, y = lon[ok], lat[ok]
    tr = area._to_area("EPSG:4326")
    if tr is not None:
        x, y = (np.asarray(v, float) for v in tr.transform(x, y))
    out[ok] = shapely.intersects(area.geom, shapely.points(x, y))
    return out


if __name__ == "__main__":
    main()
