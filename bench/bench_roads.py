"""How long does reading a road network take (``roads.load_roads``: every ``patrol run``, ``locate`` and
``export --roads`` does it), before and after a change? Measured in one run, old and new in turn.

    .venv/bin/python bench/bench_roads.py [BIG_ROADS] [--before REV] [--repeat 3] [--profile]

Networks: the sample's (``../shared/sample_drives/toyama/roads.geojson``), two real OSM extracts
(``../shared/data/roads/osm/andorra.osm.pbf``, ``campo-grande.osm.gz``: GDAL's ``lines`` layer, ways with
``highway``), read once with the default config and once keeping OSM tags (``keep_fields: [highway, ref, surface,
lanes]``) and with ``roads.id_field: highway`` (a repeated id: every segment renamed ``<id>-n``); copies of the sample
written here: without ids and with its segments joined in pairs as MultiLineStrings (ids made from the geometry;
``roads.id_field`` a repeated column: exploded parts ``#k``, ``-n``), in EPSG:6675 (to UTM; to ``locate.crs`` the same
CRS) and with z; and BIG_ROADS if given (a city's network, e.g. the sample copied around a city: 1,123,900
links). ``load_roads`` of ``--before`` (default 2e1b640, before the speed-up; ``git show REV:detector/roads.py``
loaded as a module beside the package) and of the working tree read each one in turn, ``--repeat`` times (best of):
seconds and ratio, and the two ``RoadNetwork`` compared field by field (ids, names, keys, kept fields, warnings, CRS,
geometries' WKB, lengths, nodes, the STRtree's geometries, the GeoDataFrame): "same" or what differs; and the
messages refusing a wrong id_field, name_field or kept field (GeoPackage, Shapefile, OSM) compared.
``--profile``: cProfile of the new ``load_roads`` on the last network (BIG_ROADS when given), the top costs.

Measured (2 shared cores, best of 2, all the same): the sample copied around a city (GeoPackage, 1,123,900 links)
16.0 -> 6.8 s (2.35x), with a kept field 17.3 -> 7.0 s; its first 200,000 links with 18 more columns 4.5 -> 1.6 s;
the sample 0.42 -> 0.34 s; the OSM extracts ~1.0-1.1x (GDAL's OSM parsing is most of it). README: Benchmarks.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
TMP = Path(tempfile.mkdtemp(prefix="bench_roads_"))  # the old module, the networks written here; removed at the end

from detector import roads as new_roads  # noqa: E402
from detector.config import Config  # noqa: E402


def old_module(rev: str):
    """``detector/roads.py`` at ``rev`` as a module of the package (its relative imports resolve to the tree's)."""
    src = subprocess.run(["git", "show", f"{rev}:detector/roads.py"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    path = TMP / "roads_before.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("detector._roads_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def wkb(geoms) -> list[bytes]:
    return list(shapely.to_wkb(np.asarray(geoms, dtype=object), output_dimension=3, include_srid=True))


def differences(a, b) -> list[str]:
    """What differs between two RoadNetworks (empty: the same)."""
    out = []

    def check(name, same):
        if not same:
            out.append(name)

    check("len", len(a) == len(b))
    if out:
        return out
    check("ids", list(a.ids) == list(b.ids) and a.ids.dtype == b.ids.dtype)
    check("names", list(a.names) == list(b.names) and a.names.dtype == b.names.dtype)
    check("keys", (a.keys is None and b.keys is None) or (a.keys is not None and b.keys is not None
                                                          and list(a.keys) == list(b.keys)))
    check("id_field", a.id_field == b.id_field)
    check("fields", list(a.fields) == list(b.fields) and all(
        [(type(x), x) for x in a.fields[k]] == [(type(x), x) for x in b.fields[k]] for k in a.fields))
    check("warnings", a.warnings == b.warnings and a.read_warnings == b.read_warnings)
    check("crs", a.crs == b.crs and a.gdf.crs == b.gdf.crs)
    check("transformers", a.to_wgs84.definition == b.to_wgs84.definition
          and a.from_wgs84.definition == b.from_wgs84.definition)
    check("convergence", a.convergence_deg == b.convergence_deg)
    check("source", a.source == b.source)
    check("geoms", wkb(a.geoms) == wkb(b.geoms))
    check("lengths", np.array_equal(a.lengths, b.lengths))
    check("nodes", np.array_equal(a.start_node, b.start_node) and np.array_equal(a.end_node, b.end_node)
          and a.start_node.dtype == b.start_node.dtype)
    check("tree", wkb(a.tree.geometries) == wkb(b.tree.geometries))
    check("gdf", list(a.gdf.columns) == list(b.gdf.columns) and a.gdf.index.equals(b.gdf.index)
          and list(a.gdf["segment_id"]) == list(b.gdf["segment_id"])
          and list(a.gdf["road_name"]) == list(b.gdf["road_name"])
          and wkb(a.gdf.geometry.values) == wkb(b.gdf.geometry.values))
    return out


def no_ids_multilines(tmp: Path) -> Path:
    """A GeoJSON of the sample's network without its ids, its segments joined in pairs as MultiLineStrings, one row repeated
    (two identical geometries: ``seg-…-1``); a column ``road_no`` repeating each value 3 times."""
    import geopandas as gpd

    g = gpd.read_file(SHARED / "sample_drives" / "toyama" / "roads.geojson")
    geoms = np.asarray(g.geometry.values, dtype=object)
    n = len(geoms) // 2 * 2
    multi = shapely.multilinestrings(geoms[:n], indices=np.arange(n) // 2)
    multi = np.concatenate([multi, multi[:1], geoms[n:]])
    out = tmp / "sample-noids-multi.geojson"
    road_no = [f"R{i // 3}" for i in range(len(multi))]  # roads.id_field road_no: repeated ids and "#k" parts
    gpd.GeoDataFrame({"road_no": road_no}, geometry=multi, crs=g.crs).to_file(out, driver="GeoJSON")
    return out


def projected_and_3d(tmp: Path) -> tuple[Path, Path]:
    """The sample's network in JGD2011 zone VII (EPSG:6675, a GeoPackage with columns of each kind: integers, reals,
    true/false with empty cells, text, dates; and 18 columns a ledger has that patrol does not use) and with a z on every vertex (GeoJSON)."""
    import geopandas as gpd

    g = gpd.read_file(SHARED / "sample_drives" / "toyama" / "roads.geojson")
    plane = tmp / "sample-6675.gpkg"
    n = len(g)
    i = np.arange(n)
    fields = g.to_crs(6675).assign(  # a ledger's columns, with empty cells: kept fields of every kind
        lanes=pd.array(np.where(i % 5 == 0, None, i % 4 + 1), dtype="Int64"),
        width=np.where(i % 7 == 0, np.nan, 2.5 + (i % 9) * 0.5),
        paved=pd.array(np.where(i % 6 == 0, None, i % 3 > 0), dtype="boolean"),
        route=np.where(i % 11 == 0, None, np.char.add("県道", (i % 50).astype(str))),
        built=pd.to_datetime("2001-04-01") + pd.to_timedelta(i % 3000, unit="D"),
        **{f"note{k}": np.char.add("備考", (i % (k + 20)).astype(str)) for k in range(9)},  # and columns not used
        **{f"code{k}": i % (k + 3) for k in range(9)})
    fields.to_file(plane, driver="GPKG")
    fields.drop(columns="built").to_file(tmp / "sample-6675.shp", encoding="UTF-8")  # a Shapefile too (.cpg)
    z = g.copy()
    z["geometry"] = shapely.force_3d(np.asarray(g.geometry.values, dtype=object), 12.5)
    out = tmp / "sample-3d.geojson"
    z.to_file(out, driver="GeoJSON")
    return plane, out


def timed(fn, path, cfg):
    t = time.perf_counter()
    net = fn(path, cfg)
    return time.perf_counter() - t, net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("big", nargs="?", type=Path, help="a large network (e.g. /tmp/thumbw/bench/n3000/roads.gpkg)")
    ap.add_argument("--before", default="2e1b640", help="the revision to compare with (default 2e1b640)")
    ap.add_argument("--repeat", type=int, default=3, help="reads of each network by each version (best of)")
    ap.add_argument("--profile", action="store_true", help="cProfile the new load_roads on the last network")
    a = ap.parse_args()
    old = old_module(a.before)
    osm = SHARED / "data" / "roads" / "osm"
    tags = Config.model_validate({"roads": {"keep_fields": ["highway", "ref", "surface", "lanes"]}})
    repeated = Config.model_validate({"roads": {"id_field": "highway", "keep_fields": ["surface"]}})
    multi = no_ids_multilines(TMP)
    plane, with_z = projected_and_3d(TMP)
    cases = [("sample (toyama)", SHARED / "sample_drives" / "toyama" / "roads.geojson", Config()),
             ("sample, no ids, multilines", None, Config()),
             ("sample, multilines, id=road_no", None, Config.model_validate({"roads": {"id_field": "road_no"}})),
             ("sample in EPSG:6675 (gpkg, 23 cols)", plane, Config()),
             ("  same, locate.crs EPSG:6675", plane, Config.model_validate({"locate": {"crs": "EPSG:6675"}})),
             ("  same, 5 kept fields", plane, Config.model_validate(
                 {"roads": {"keep_fields": ["lanes", "width", "paved", "route", "built"]}})),
             ("sample with z", with_z, Config())]
    for f in ("andorra.osm.pbf", "campo-grande.osm.gz"):
        cases += [(f, osm / f, Config()), (f"{f} + 4 tags", osm / f, tags), (f"{f} id=highway", osm / f, repeated)]
    if a.big:
        cases += [(f"{a.big.name} (big), kept field segment_id", a.big,
                   Config.model_validate({"roads": {"keep_fields": ["segment_id"]}})),
                  (f"{a.big.name} (big)", a.big, Config())]
    print(f"load_roads: {a.before} (before) vs working tree (after), best of {a.repeat}\n")
    print(f"{'network':44} {'segments':>10} {'before s':>9} {'after s':>9} {'ratio':>6}  result")
    all_same = True
    for label, path, cfg in cases:
        if path is None:
            path = multi
        if not path.exists():
            print(f"{label:44} missing: {path}")
            continue
        t_old, t_new = [], []
        for _ in range(a.repeat):  # in turn, so load on the machine falls on both
            t, net_old = timed(old.load_roads, path, cfg)
            t_old.append(t)
            t, net_new = timed(new_roads.load_roads, path, cfg)
            t_new.append(t)
        diff = differences(net_old, net_new)
        all_same &= not diff
        print(f"{label:44} {len(net_new):>10,} {min(t_old):>9.2f} {min(t_new):>9.2f} {min(t_old) / min(t_new):>6.2f}  "
              f"{'same' if not diff else 'DIFFERENT: ' + ', '.join(diff)}")
        del net_old, net_new
        last = (label.strip(), path, cfg)
    # what a wrong setting is told: the same message (the columns a file has, listed in its order)
    shp = plane.with_suffix(".shp")
    for label, p, roads in [("gpkg, id_field", plane, {"id_field": "nope"}), ("gpkg, name_field", plane,
                            {"name_field": "nope"}), ("gpkg, keep_fields", plane, {"keep_fields": ["width", "nope"]}),
                            ("shp, keep_fields", shp, {"keep_fields": ["nope"]}),
                            ("osm, keep_fields", osm / "andorra.osm.pbf", {"keep_fields": ["nope"]})]:
        said = []
        for fn in (old.load_roads, new_roads.load_roads):
            try:
                fn(p, Config.model_validate({"roads": roads}))
                said.append("(no error)")
            except Exception as e:  # noqa: BLE001 - InputError expected, compared as said
                said.append(f"{type(e).__name__}: {e}")
        same = said[0] == said[1]
        all_same &= same
        print(f"{'refused: ' + label:44} {'same: …' + said[1][-60:] if same else 'DIFFERENT: ' + ' | '.join(said)}")
    print("\nall networks the same before and after" if all_same else "\nSOME NETWORKS DIFFER")
    if a.profile:
        prof = cProfile.Profile()
        label, path, cfg = last
        prof.runcall(new_roads.load_roads, path, cfg)
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        print(f"\ncProfile of load_roads (after) on {label}, top 15 by own time:")
        lines = s.getvalue().splitlines()
        print("\n".join([next(x for x in lines if "function calls" in x)]
                        + lines[next(i for i, x in enumerate(lines) if "ncalls" in x):]).rstrip())
    sys.exit(0 if all_same else 1)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
