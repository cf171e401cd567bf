"""A district's area (土木事務所・管区): ``patrol export`` and ``patrol stats`` ``--area FILE
[--area-where FIELD=VALUE] [--area-gap METRES]``.

``load_area(path, where, cfg, gap_m)`` reads the polygons of a GeoJSON / GeoPackage / Shapefile (``.shp`` or zipped
``.zip``) / FlatGeobuf in any CRS (a file without one: lon/lat when its coordinates look so, as ``roads.load_roads``
takes a network), MultiPolygons too; ``where`` (``FIELD=VALUE``) keeps the polygons whose FIELD equals VALUE. The area
is their union, in the file's CRS; the file's other polygons are kept beside it (``parts``): they are the other
districts, which the damages are shared out among.

- ``Area.inside(df, notes)``: the damages (``lat``, ``lon``) of the area. Each damage belongs to one polygon of the
  FILE at most (``Area.assign``), so that the districts of one file partition the damages: the polygon it lies in;
  in several (two districts drawn separately overlap, or it lies on their shared edge): the one it lies deepest in
  (the largest distance to that polygon's boundary, in metres; equal to the millimetre, on a shared edge: the first of
  them in the file's order); in none: the nearest within ``gap_m`` (``--area-gap``, default 0: none), else no
  district. Damages inside a polygon or on its edge are tested in the file's CRS (a point transforms exactly; a
  polygon's edges would bend), with an STRtree of the points queried by the (prepared) polygons; the depths and gaps
  only where needed, in metres (a lon/lat file: scaled about its middle, an affine map that keeps edges straight).
  Without a position: outside. ``notes`` gets the one-line notes of what the file's edges did: damages in no
  polygon of a file of several (the districts' figures then add up to less than the whole), given across a gap,
  or on a shared edge / in an overlap of the area's and another district's polygons.
- ``Area.clip(net)``: the road network's segments that intersect the area, kept whole (a ``RoadNetwork`` of those):
  a segment across a border belongs to both districts.

Errors: a file that is missing, unreadable, holds no polygons or no CRS: ``InputError`` (exit 3) naming it; a
``--area-where`` without ``=``, of a column the file lacks (the columns listed) or a value no polygon has (a few
values listed), a negative ``--area-gap``: ``UsageError`` (exit 2) naming the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from .errors import InputError, UsageError, plural

AREA_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb", ".sqlite", ".kml", ".gml")
POLYGON_TYPES = ("Polygon", "MultiPolygon")
#: values of the --area-where column named in the error when none matches
SHOW_VALUES = 8
#: depths (distances to a polygon's boundary) equal to this are equal: a damage on two districts' shared edge (drawn
#: twice, its vertices a little apart) is on it, and the first of the two in the file's order takes it
TIE_M = 0.001
#: a damage in no polygon of the file within this of one is said apart in the note (a gap between two districts'
#: polygons, a district drawn short of its roads), with the --area-gap that would count it in the nearest
NEAR_M = 50.0


@dataclass
class Assignment:
    """Where each point lies among the file's polygons (``Area.assign``), all per point: ``mine`` it belongs to the
    area; ``covered`` it lies in (or on the edge of) a polygon of the file; ``shared`` in one of the area's and in
    another's too (an overlap, a shared edge); ``dist`` its distance (m) to the nearest polygon where it lies in none
    and one is within ``max(gap_m, NEAR_M)`` (else inf; 0 where covered); ``by_gap`` it lies in none and counts in
    the nearest, within ``gap_m``."""
    mine: np.ndarray
    covered: np.ndarray
    shared: np.ndarray
    dist: np.ndarray
    by_gap: np.ndarray


@dataclass
class Area:
    geom: object  # the union of the polygons kept (shapely, prepared), in ``crs``
    crs: CRS
    label: str  # what the summaries call it: the --area-where value, else the file's name
    path: Path
    n_polygons: int  # the polygons kept
    warnings: list = dataclasses.field(default_factory=list)  # how the file was read (a guessed .dbf encoding)
    parts: np.ndarray | None = None  # every polygon feature of the file, in its order (prepared), in ``crs``
    kept: np.ndarray | None = None  # per part: picked by --area-where (all without it)
    gap_m: float = 0.0  # --area-gap: a damage in no polygon counts in the nearest within this (m)
    _metric: tuple | None = dataclasses.field(default=None, repr=False)  # (to metres, parts' boundaries, STRtree)

    def __post_init__(self):
        if self.parts is None:  # an area of one polygon (its union)
            self.parts = np.array([self.geom], dtype=object)
        if self.kept is None:
            self.kept = np.ones(len(self.parts), dtype=bool)

    def _to_area(self, src) -> Transformer | None:
        return None if CRS.from_user_input(src) == self.crs else Transformer.from_crs(src, self.crs, always_xy=True)

    def _in_metres(self):
        """(a function of (N, 2) coordinates in ``crs`` to metres, the parts' boundaries and an STRtree of the parts,
        both in metres). Projected: by the CRS's unit; lon/lat: scaled about the file's middle (metres per degree
        of the ellipsoid there: over a city, 0.1 % off at 10 km north or south), affine: an edge stays straight, a
        point on it on it."""
        if self._metric is None:
            if self.crs.is_geographic:
                x0, y0, x1, y1 = shapely.total_bounds(self.parts)
                lon0, lat0 = (x0 + x1) / 2, (y0 + y1) / 2
                f = np.radians(lat0)
                k = np.array([111412.84 * np.cos(f) - 93.5 * np.cos(3 * f) + 0.118 * np.cos(5 * f),
                              111132.954 - 559.822 * np.cos(2 * f) + 1.175 * np.cos(4 * f)])
                o = np.array([lon0, lat0])

                def fn(c):
                    return (c - o) * k
            else:
                unit = float(self.crs.axis_info[0].unit_conversion_factor) if self.crs.axis_info else 1.0

                def fn(c):
                    return c * unit
            parts = shapely.transform(self.parts, fn)
            self._metric = (fn, shapely.boundary(parts), shapely.STRtree(parts))
        return self._metric

    def assign(self, x: np.ndarray, y: np.ndarray, near: bool = True) -> Assignment:
        """Which points (``x``, ``y`` in ``crs``, finite) belong to the area, each point to one polygon of the file:
        the one it lies in (or on the edge of); in several, the one it lies deepest in (on a shared edge: the first in
        the file); in none, the nearest within ``gap_m``. ``near``: also the distance of those in none within NEAR_M
        (for the note; without it and without a gap, not looked for). Vectorised: no loop over the points."""
        n = len(x)
        pts = shapely.points(np.asarray(x, float), np.asarray(y, float))
        dist = np.full(n, np.inf)
        by_gap = np.zeros(n, dtype=bool)
        shared = np.zeros(n, dtype=bool)
        if not n:
            return Assignment(shared.copy(), shared.copy(), shared, dist, by_gap)
        if self.kept.all():  # the whole file: in it or on its edge (the union's prepared test), none to share with
            mine = shapely.intersects(self.geom, pts)
            covered = mine.copy()
        else:  # every (polygon, point) with the point in it or on its edge: the points' tree queried by the polygons
            fi, pi = shapely.STRtree(pts).query(self.parts, predicate="intersects")
            covered = np.bincount(pi, minlength=n) > 0
            mine = np.bincount(pi, weights=self.kept[fi], minlength=n) > 0
            shared = mine & (np.bincount(pi, weights=~self.kept[fi], minlength=n) > 0)
            pair = shared[pi]
            if pair.any():  # in the area's polygon and another's: the deepest (to the millimetre), then the first
                fn, bounds, _ = self._in_metres()
                p, f = pi[pair], fi[pair]
                depth = shapely.distance(shapely.points(fn(np.column_stack([x[p], y[p]]))), bounds[f])
                order = np.lexsort((f, -np.round(depth / TIE_M), p))
                p, f = p[order], f[order]
                first = np.r_[True, p[1:] != p[:-1]]
                mine[p[first]] = self.kept[f[first]]
        dist[covered] = 0.0
        out = np.flatnonzero(~covered)
        if len(out) and (near or self.gap_m > 0):  # in none: the nearest within the gap (the note: within NEAR_M)
            fn, _, tree = self._in_metres()
            pts_m = shapely.points(fn(np.column_stack([x[out], y[out]])))
            (q, f), d = tree.query_nearest(pts_m, max_distance=max(self.gap_m, NEAR_M if near else 0.0),
                                           return_distance=True, all_matches=True)
            if len(q):
                order = np.lexsort((f, np.round(d / TIE_M), q))  # equally near: the first in the file
                q, f, d = q[order], f[order], d[order]
                first = np.r_[True, q[1:] != q[:-1]]
                q, f, d = out[q[first]], f[first], d[first]
                dist[q] = d
                take = d <= self.gap_m
                by_gap[q[take]] = True
                mine[q[take]] = self.kept[f[take]]
        return Assignment(mine, covered, shared, dist, by_gap)

    def contains_lonlat(self, lon, lat, notes: list | None = None, what: str = "damage") -> np.ndarray:
        """True where (lon, lat) (WGS 84) belongs to the area (``assign``: to a polygon of it); NaN: False.
        Vectorised. ``notes``: the one-line notes of the file's gaps, overlaps and shared edges (``_notes``)."""
        lon = pd.to_numeric(pd.Series(np.asarray(lon, dtype=object)), errors="coerce").to_numpy(float)
        lat = pd.to_numeric(pd.Series(np.asarray(lat, dtype=object)), errors="coerce").to_numpy(float)
        ok = np.isfinite(lon) & np.isfinite(lat)
        out = np.zeros(len(lon), dtype=bool)
        x, y = lon[ok], lat[ok]
        if len(x):
            tr = self._to_area("EPSG:4326")
            if tr is not None:
                x, y = (np.asarray(v, float) for v in tr.transform(x, y))
        a = self.assign(x, y, near=notes is not None and not self.kept.all())
        out[ok] = a.mine
        if notes is not None:
            notes.extend(self._notes(a, len(lon), int((~ok).sum()), what))
        return out

    def inside(self, df: pd.DataFrame, notes: list | None = None, what: str = "damage") -> np.ndarray:
        """The rows of ``df`` (columns ``lat``, ``lon``) of the area (bool mask); ``notes``: as ``contains_lonlat``."""
        if "lat" not in df or "lon" not in df:
            return self.contains_lonlat(np.full(len(df), np.nan), np.full(len(df), np.nan), notes, what)
        return self.contains_lonlat(df["lon"].to_numpy(), df["lat"].to_numpy(), notes, what)

    def _notes(self, a: Assignment, n: int, no_position: int, what: str) -> list[str]:
        """What the file's edges did to ``n`` rows (``no_position`` of them without one): in no polygon of a file of
        several districts (the districts' figures add up to less than the whole; those near one: the --area-gap that
        counts them), counted across a gap, on a shared edge or in an overlap of the area's and another's polygons."""
        name, notes = self.path.name, []
        out = ~a.covered & ~a.by_gap
        gone = int(out.sum()) + no_position
        if gone and not self.kept.all():  # a district of a file of several (without --area-where: the summary's count)
            pos = f" ({no_position} without a position)" if no_position else ""
            where = (f" and farther than --area-gap {self.gap_m:g} m from every one" if self.gap_m > 0 else "")
            line = (f"{gone} of {plural(n, what)} {'lies' if gone == 1 else 'lie'} in no polygon of {name}{where}"
                    f"{pos}: in no district, so the districts' figures add up to {n - gone}, not {n}")
            near = out & (a.dist <= NEAR_M)
            if near.any():
                far = float(a.dist[near].max())
                up = np.ceil(far * 10) / 10  # up, as the --area-gap: 5.03 m is "5.1 m" (gap 6), not 5.0
                line += (f"; {int(near.sum())} of them within {NEAR_M:g} m of one (the farthest {up:.1f} m: a gap "
                         f"between two districts, or a district drawn short of its roads?): --area-gap "
                         f"{int(np.ceil(far))} counts each in its nearest polygon")
            notes.append(line)
        if a.by_gap.any():
            k = int(a.by_gap.sum())
            notes.append(f"{k} of {plural(n, what)} {'lies' if k == 1 else 'lie'} in no polygon of {name} but within "
                         f"--area-gap {self.gap_m:g} m of one: each counted in its nearest polygon "
                         f"({int((a.by_gap & a.mine).sum())} of them in {self.label})")
        if a.shared.any():
            k = int(a.shared.sum())
            mine = int((a.shared & a.mine).sum())
            notes.append(f"{plural(k, what)} {'lies' if k == 1 else 'lie'} in a polygon of {self.label} and in another "
                         f"of {name} (where they overlap, or on their shared edge): each counted once, in the polygon "
                         f"it lies deepest in (on a shared edge: the first of them in the file): {mine} in "
                         f"{self.label}, {k - mine} in another district")
        return notes

    def intersecting(self, geoms: np.ndarray, crs) -> np.ndarray:
        """True where a geometry (in ``crs``) intersects the area (its coordinates taken into the area's CRS)."""
        geoms = np.asarray(geoms, dtype=object)
        tr = self._to_area(crs)
        if tr is not None and len(geoms):
            geoms = shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
        return shapely.intersects(self.geom, geoms) if len(geoms) else np.zeros(0, dtype=bool)

    def clip(self, net, roads: str | Path | None = None):
        """The network ``net`` (``RoadNetwork``) cut down to its segments that intersect the area, each kept whole.
        InputError naming the area's file when none does (a wrong district or CRS: every output would be empty)."""
        from shapely import STRtree

        keep = self.intersecting(net.geoms, net.crs)
        if not keep.any():
            raise InputError(f"no segment of the road network{' ' + Path(roads).name if roads else ''} intersects "
                             f"the area {self.label!r} (is it the right district, its CRS the right one?)", self.path)
        idx = np.flatnonzero(keep)
        g = net.geoms[idx]
        return dataclasses.replace(
            net, gdf=net.gdf.iloc[idx].reset_index(drop=True), ids=net.ids[idx], names=net.names[idx],
            tree=STRtree(g), geoms=g, lengths=net.lengths[idx], start_node=net.start_node[idx],
            end_node=net.end_node[idx], fields={k: [v[i] for i in idx] for k, v in net.fields.items()},
            keys=net.keys[idx] if net.keys is not None else None, warnings=list(net.warnings),
            read_warnings=list(net.read_warnings), _index={})

    def said(self, n: int, of: int, what: str = "damage") -> str:
        """The summary's words: ``in area 北部土木事務所: 12 of 40 damages``."""
        return f"in area {self.label}: {n} of {plural(of, what)}"


def _parse_where(where: str) -> tuple[str, str]:
    field, eq, value = where.partition("=")
    field, value = field.strip(), value.strip()
    if not eq or not field:
        raise UsageError(f"{where!r}: give FIELD=VALUE (e.g. 名称=北部土木事務所)", None, "--area-where")
    return field, value


def _pick_layer(src: str, path: Path) -> dict:
    """The file's only layer, else its only polygon layer; else an error listing them."""
    import pyogrio

    try:
        layers = [(str(n), str(t)) for n, t in pyogrio.list_layers(src)]
    except Exception:  # noqa: BLE001 - unreadable: the read says why
        return {}
    if len(layers) <= 1:
        return {}
    poly = [n for n, t in layers if "polygon" in t.lower()]
    if len(poly) == 1:
        return {"layer": poly[0]}
    listing = ", ".join(f"{n} ({t})" for n, t in layers)
    raise InputError(f"several layers ({listing}); give a file of one layer of district polygons", path, "--area")


def _matches(col: pd.Series, value: str) -> np.ndarray:
    """``col == value`` as the user typed it: text as written; a number by value (``3`` is 3.0)."""
    hit = col.astype(object).where(col.notna(), None).map(lambda v: v is not None and str(v).strip() == value)
    hit = hit.to_numpy(bool)
    if pd.api.types.is_numeric_dtype(col.dtype):
        try:
            hit |= (col.to_numpy(float) == float(value))
        except ValueError:
            pass
    return hit


def load_area(path: str | Path, where: str | None = None, cfg=None, gap_m: float | None = None) -> Area:
    """The area of ``path``'s polygons (those whose FIELD is VALUE with ``where``), the file's other polygons beside
    it; ``cfg``: for ``roads.encoding`` (a Shapefile's .dbf without a .cpg is read as ``roads.shapefile_encoding``
    tells); ``gap_m`` (``--area-gap``): a damage in no polygon counts in the nearest within it."""
    import geopandas as gpd

    from .config import Config

    path = Path(path)
    field_value = _parse_where(where) if where is not None else None  # refused before the file is read
    gap_m = 0.0 if gap_m is None else float(gap_m)
    if not np.isfinite(gap_m) or gap_m < 0:
        raise UsageError(f"{gap_m:g}: give a distance in metres, 0 or more (e.g. 20)", None, "--area-gap")
    if not path.exists():
        raise InputError("file not found", path, "--area")
    if path.is_dir():
        raise InputError("is a folder, expected a file of district polygons (GeoJSON, GeoPackage, Shapefile)", path,
                         "--area")
    if path.stat().st_size == 0:
        raise InputError("empty file", path, "--area")
    if not path.name.lower().endswith(AREA_SUFFIXES):
        raise InputError(f"unknown format {path.suffix or '(no extension)'!r}; expected .geojson, .gpkg, .shp or a "
                         ".zip of a Shapefile", path, "--area")
    src = str(path)
    if path.suffix.lower() == ".zip":
        src = "/vsizip/" + str(path.resolve())
    kw = _pick_layer(src, path)
    warnings: list[str] = []
    enc, why = _dbf_encoding(path, cfg or Config())  # a .dbf in Shift_JIS without a .cpg: its names readable
    if enc:
        kw["encoding"] = enc
    if why:
        warnings.append(why)
    try:
        gdf = gpd.read_file(src, **kw)
    except Exception as e:  # noqa: BLE001 - pyogrio's DataSourceError / DataLayerError / ...
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"cannot read the area: {msg}", path, "--area") from None
    try:
        geometry = gdf.geometry
    except (AttributeError, ValueError):
        geometry = None
    if geometry is None:
        raise InputError("has no geometry (a table, not a map layer of polygons)", path, "--area")
    if not len(gdf):
        raise InputError("contains no features", path, "--area")
    gdf = gdf[geometry.notna() & ~geometry.is_empty]
    types = gdf.geom_type
    polys = gdf[types.isin(POLYGON_TYPES)]
    if not len(polys):
        found = ", ".join(sorted(set(types))) or "no geometry"
        raise InputError(f"contains no polygons (found {found}); give the district's boundary as polygons", path,
                         "--area")
    columns = [str(c) for c in polys.columns if c != polys.geometry.name]
    label = path.name
    hit = np.ones(len(polys), dtype=bool)
    if field_value is not None:
        field, value = field_value
        if field not in polys.columns or field == polys.geometry.name:
            raise UsageError(f"no column {field!r}; columns: {', '.join(columns) or 'none'}", path, "--area-where")
        hit = _matches(polys[field], value)
        if not hit.any():
            vals = pd.unique(polys[field].dropna().astype(str).str.strip())
            shown = ", ".join(map(str, vals[:SHOW_VALUES])) + (f" … ({len(vals)} in all)" if len(vals) > SHOW_VALUES
                                                                 else "")
            raise UsageError(f"no polygon has {field} = {value!r}; values: {shown or 'none (the column is empty)'}",
                             path, "--area-where")
        label = value if not pd.api.types.is_numeric_dtype(polys[field].dtype) else f"{field}={value}"  # not "2"
    crs = _area_crs(polys, path)
    g = np.asarray(polys.geometry.values, dtype=object)  # every district of the file: the damages are shared out
    bad = ~shapely.is_valid(g)
    if bad.any():  # a self-touching ring from a GIS: its area as drawn (make_valid), the polygons of it
        fixed = shapely.make_valid(g[bad])
        g[bad] = [shapely.union_all([p for p in shapely.get_parts(f) if shapely.get_type_id(p) in (3, 6)])
                  for f in fixed]
    geom = shapely.union_all(g[hit])
    shapely.prepare(geom)
    shapely.prepare(g)
    return Area(geom=geom, crs=crs, label=label, path=path, n_polygons=int(hit.sum()), warnings=warnings, parts=g,
                kept=hit, gap_m=gap_m)


def _dbf_encoding(path: Path, cfg) -> tuple[str | None, str | None]:
    """``roads.shapefile_encoding`` of a Shapefile, or of the one zipped in a ``.zip`` (its .dbf's head, and its .cpg
    if any, taken out to a temporary folder: the encoding is told from the first records)."""
    import tempfile
    import zipfile

    from .roads import DBF_SAMPLE_BYTES, shapefile_encoding

    if path.suffix.lower() != ".zip":
        return shapefile_encoding(path, cfg)
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            shps = [n for n in names if n.lower().endswith(".shp")]
            if len(shps) != 1:
                return None, None
            stem = shps[0][:-4]
            base = Path(stem).name or "area"
            with tempfile.TemporaryDirectory() as tmp:
                for n in names:
                    ext = n[len(stem):].lower() if n.startswith(stem) else ""
                    if ext in (".dbf", ".cpg"):
                        with z.open(n) as f:
                            (Path(tmp) / f"{base}{ext}").write_bytes(f.read(DBF_SAMPLE_BYTES + (1 << 20)))
                return shapefile_encoding(Path(tmp) / f"{base}.shp", cfg)  # (its warning names the zipped .dbf)
    except (OSError, zipfile.BadZipFile):
        return None, None  # the read says what is wrong


def _area_crs(polys, path: Path) -> CRS:
    """The polygons' CRS; a file without one: EPSG:4326 when the coordinates look like lon/lat, else InputError."""
    b = polys.total_bounds
    lonlat = bool(np.all(np.abs(b[[0, 2]]) <= 180) and np.all(np.abs(b[[1, 3]]) <= 90))
    hint = "; add a .prj (Shapefile) or save it with its CRS"
    if polys.crs is None:
        if not lonlat:
            raise InputError("no CRS and coordinates are not longitude/latitude" + hint, path, "--area")
        return CRS.from_epsg(4326)
    crs = CRS.from_user_input(polys.crs)
    if crs.is_geographic and not lonlat:  # GeoJSON readers say EPSG:4326 when the file names none
        raise InputError("coordinates are not longitude/latitude (projected coordinates without a CRS?)" + hint, path,
                         "--area")
    return crs
