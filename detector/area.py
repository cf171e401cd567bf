"""A district's area (土木事務所・管区): ``patrol export`` and ``patrol stats`` ``--area FILE [--area-where FIELD=VALUE]``.

``load_area(path, where)`` reads the polygons of a GeoJSON / GeoPackage / Shapefile (``.shp`` or zipped ``.zip``) /
FlatGeobuf in any CRS (a file without one: lon/lat when its coordinates look so, as ``roads.load_roads`` takes a
network), MultiPolygons too; ``where`` (``FIELD=VALUE``) keeps the polygons whose FIELD equals VALUE. The area is their
union, in the file's CRS.

- ``Area.inside(df)``: the damages (``lat``, ``lon``) inside the area or on its edge: one vectorised ``intersects`` of the
  prepared polygon over all points, in the file's CRS (a point transforms exactly; a polygon's edges would bend).
  Without a position: outside.
- ``Area.clip(net)``: the road network's segments that intersect the area, kept whole (a ``RoadNetwork`` of those).

Errors: a file that is missing, unreadable, holds no polygons or no CRS: ``InputError`` (exit 3) naming it; a
``--area-where`` without ``=``, of a column the file lacks (the columns listed) or a value no polygon has (a few
values listed): ``UsageError`` (exit 2) naming the file.
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


@dataclass
class Area:
    geom: object  # the union of the polygons kept (shapely, prepared), in ``crs``
    crs: CRS
    label: str  # what the summaries call it: the --area-where value, else the file's name
    path: Path
    n_polygons: int
    warnings: list = dataclasses.field(default_factory=list)  # how the file was read (a guessed .dbf encoding)

    def _to_area(self, src) -> Transformer | None:
        return None if CRS.from_user_input(src) == self.crs else Transformer.from_crs(src, self.crs, always_xy=True)

    def contains_lonlat(self, lon, lat) -> np.ndarray:
        """True where (lon, lat) (WGS 84) lies inside the area or on its edge; NaN: False. Vectorised."""
        lon = pd.to_numeric(pd.Series(np.asarray(lon, dtype=object)), errors="coerce").to_numpy(float)
        lat = pd.to_numeric(pd.Series(np.asarray(lat, dtype=object)), errors="coerce").to_numpy(float)
        ok = np.isfinite(lon) & np.isfinite(lat)
        out = np.zeros(len(lon), dtype=bool)
        if not ok.any():
            return out
        x, y = lon[ok], lat[ok]
        tr = self._to_area("EPSG:4326")
        if tr is not None:
            x, y = (np.asarray(v, float) for v in tr.transform(x, y))
        out[ok] = shapely.intersects(self.geom, shapely.points(x, y))
        return out

    def inside(self, df: pd.DataFrame) -> np.ndarray:
        """The rows of ``df`` (columns ``lat``, ``lon``) inside the area (bool mask)."""
        if not len(df) or "lat" not in df or "lon" not in df:
            return np.zeros(len(df), dtype=bool)
        return self.contains_lonlat(df["lon"].to_numpy(), df["lat"].to_numpy())

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


def load_area(path: str | Path, where: str | None = None, cfg=None) -> Area:
    """The area of ``path``'s polygons (those whose FIELD is VALUE with ``where``); ``cfg``: for ``roads.encoding``
    (a Shapefile's .dbf without a .cpg is read as ``roads.shapefile_encoding`` tells)."""
    import geopandas as gpd

    from .config import Config

    path = Path(path)
    field_value = _parse_where(where) if where is not None else None  # refused before the file is read
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
        polys = polys[hit]
        label = value if not pd.api.types.is_numeric_dtype(polys[field].dtype) else f"{field}={value}"  # not "2"
    crs = _area_crs(polys, path)
    g = np.asarray(polys.geometry.values, dtype=object)
    bad = ~shapely.is_valid(g)
    if bad.any():  # a self-touching ring from a GIS: its area as drawn (make_valid), the polygons of it
        fixed = shapely.make_valid(g[bad])
        g[bad] = [shapely.union_all([p for p in shapely.get_parts(f) if shapely.get_type_id(p) in (3, 6)])
                  for f in fixed]
    geom = shapely.union_all(g)
    shapely.prepare(geom)
    return Area(geom=geom, crs=crs, label=label, path=path, n_polygons=int(len(polys)), warnings=warnings)


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
