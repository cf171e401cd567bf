"""Load a road network (GeoJSON / GeoPackage / Shapefile / OSM) into a metric ``RoadNetwork`` with an STRtree.

``load_roads(path, cfg)``:
- formats: anything pyogrio reads by extension (.geojson/.json, .gpkg, .shp, .fgb, ...) and OpenStreetMap
  ``.osm.pbf`` / ``.osm`` / ``.osm.gz`` (layer ``lines``, ``/vsigzip/`` for .gz; only ways with ``highway``).
- MultiLineStrings are exploded; the parts get ``<id>#<k>`` ids (stable: part order of the file).
- ids: ``cfg.roads.id_field`` (must exist), else the first unique column of segment_id/id/osm_id/fid, else
  ``seg-<8 hex of sha1(WKB)>`` (deterministic; ``-<n>`` appended on collisions / duplicate geometries).
- names: ``cfg.roads.name_field`` else the first of name/name_ja/road_name (else "").
- kept fields: ``cfg.roads.keep_fields`` (each must exist; in an OSM file a key of ``other_tags`` will do: ref,
  surface, lanes) as ``RoadNetwork.fields`` {output name (``export.road_field_names``): values aligned with the
  segments}, Python values as read (int, float, str, bool; a date as ``YYYY-MM-DD``; missing: None). An integer
  column with empty values, which GDAL hands over as floats, stays integers. ``join_fields`` copies them onto
  candidates by ``segment_id``.
- projected to ``cfg.locate.crs`` or the UTM zone of the network's centre. A file without a CRS is taken
  as EPSG:4326 when its coordinates look like lon/lat, else ``InputError("no CRS")``.

Topology: segment endpoints are merged into nodes (0.5 m grid in the metric CRS); ``touching(a, b)`` says
whether two segments share a node or meet anywhere (OSM ways crossing at interior nodes).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from shapely import STRtree

from .config import Config
from .errors import InputError, plural
from .textio import CODEC_LABELS, TextEncodingError, decode_text

ID_CANDIDATES = ("segment_id", "id", "osm_id", "fid")
NAME_CANDIDATES = ("name", "name_ja", "road_name")
OSM_SUFFIXES = (".osm.pbf", ".osm", ".osm.gz", ".pbf")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".gml", ".kml", ".sqlite", ".geojsonl", ".geojsons")
NODE_SNAP_M = 0.5


@dataclass
class RoadNetwork:
    gdf: "object"  # geopandas.GeoDataFrame in ``crs`` with columns segment_id, road_name, geometry
    ids: np.ndarray  # str segment ids, aligned with gdf rows
    names: np.ndarray  # str road names ("" when unknown)
    crs: CRS
    to_wgs84: Transformer  # metric -> lon/lat (always_xy)
    from_wgs84: Transformer  # lon/lat -> metric (always_xy)
    tree: STRtree
    geoms: np.ndarray  # shapely LineStrings (metric), aligned with ids
    lengths: np.ndarray
    start_node: np.ndarray  # int node id of the first vertex
    end_node: np.ndarray  # int node id of the last vertex
    convergence_deg: float = 0.0  # grid north minus true north at the network centre (true = grid + conv)
    source: str = ""
    warnings: list = field(default_factory=list)  # said in the run summary (e.g. renamed duplicate ids)
    fields: dict = field(default_factory=dict)  # kept road fields: output name -> list of values aligned with ids
    read_warnings: list = field(default_factory=list)  # how the file was read (a guessed .dbf encoding): also in
    # ``warnings``; every command that reads the network says them (patrol export too)
    #: the file's id of each segment (``roads.id_field`` or the id column, before ``#k`` / ``-n``), aligned with ids;
    #: the pieces of a repeated id or a multiline share it (``join_fields`` tells them apart by position). None: ids
    keys: "np.ndarray | None" = None
    id_field: str | None = None  # the column the ids came from (for messages)
    _index: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, segment_id: str) -> int:
        if not self._index:
            self._index.update({s: i for i, s in enumerate(self.ids)})
        return self._index[segment_id]

    def bearing_at(self, idx: np.ndarray, s: np.ndarray, delta: float = 2.0) -> np.ndarray:
        """Grid bearing (deg clockwise from grid north, 0..360) of segments ``idx`` at chainages ``s``,
        in the direction of digitisation. Vectorised."""
        idx = np.asarray(idx, dtype=np.int64)
        s = np.asarray(s, dtype=float)
        g = self.geoms[idx]
        L = self.lengths[idx]
        a = shapely.line_interpolate_point(g, np.clip(s - delta, 0, L))
        b = shapely.line_interpolate_point(g, np.clip(s + delta, 0, L))
        dx = shapely.get_x(b) - shapely.get_x(a)
        dy = shapely.get_y(b) - shapely.get_y(a)
        return np.degrees(np.arctan2(dx, dy)) % 360.0

    def true_to_grid(self, heading_true: np.ndarray) -> np.ndarray:
        return (np.asarray(heading_true, dtype=float) - self.convergence_deg) % 360.0

    def touching(self, a: np.ndarray, b: np.ndarray, tol: float = 1.0) -> np.ndarray:
        """True where segments a and b share an end node or come within ``tol`` metres (vectorised)."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        shared = (
            (self.start_node[a] == self.start_node[b]) | (self.start_node[a] == self.end_node[b])
            | (self.end_node[a] == self.start_node[b]) | (self.end_node[a] == self.end_node[b])
        )
        out = shared | (a == b)
        rest = ~out
        if rest.any():
            out[rest] = shapely.distance(self.geoms[a[rest]], self.geoms[b[rest]]) <= tol
        return out

    def lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self.to_wgs84.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon), np.asarray(lat)

    def xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.from_wgs84.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)


def _is_osm(path: Path) -> bool:
    n = path.name.lower()
    return n.endswith(OSM_SUFFIXES)


#: bytes of a .dbf's records read to tell its text encoding (whole records; ~4 MB: every value of a city's ledger
#: of ~40,000 segments, and still a fraction of a second)
DBF_SAMPLE_BYTES = 4 << 20


def _sibling(path: Path, suffix: str) -> Path | None:
    """The file beside a Shapefile ``path`` with its stem and ``suffix`` in any case (``ROADS.DBF``, ``roads.cpg``)."""
    for cand in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if cand.is_file():
            return cand
    try:
        return next((f for f in path.parent.iterdir() if f.stem == path.stem and f.suffix.lower() == suffix
                     and f.is_file()), None)
    except OSError:
        return None


def shapefile_encoding(path: Path, cfg: Config) -> tuple[str | None, str | None]:
    """(encoding to read a Shapefile's ``.dbf`` text with, or None for GDAL's own choice; warning or None).

    GDAL takes the encoding from a ``.cpg`` beside the ``.dbf`` or from the dBASE header's language driver id;
    without either it reads ISO-8859-1, which turns a Japanese ledger's Shift_JIS (what Windows GIS and road ledger
    systems write, often without a ``.cpg``) or UTF-8 text into mojibake: column names no config can name, road
    names and kept fields garbled in every output. Such a file is read as ``roads.encoding`` when set, else as the
    encoding its field names and text decode in: UTF-8, else Shift_JIS (cp932); one warning says so."""
    if path.suffix.lower() != ".shp":
        return None, None
    dbf = _sibling(path, ".dbf")
    if dbf is None or _sibling(path, ".cpg") is not None:
        return None, None
    try:
        with dbf.open("rb") as f:
            head = f.read(32)
            if len(head) < 32 or head[29] != 0:  # a language driver id: GDAL reads it
                return None, None
            header_len = int.from_bytes(head[8:10], "little")
            record_len = int.from_bytes(head[10:12], "little")
            desc = f.read(max(header_len - 32, 0))
            n = DBF_SAMPLE_BYTES // record_len if record_len else 0
            body = f.read(n * record_len)
    except OSError:
        return None, None  # unreadable: the read itself says why
    # the text only: each field's name (11 bytes of its 32-byte descriptor, up to 0x0D) and the character fields'
    # values; numbers, lengths and counts in the headers are binary
    texts, start = [], 1  # byte 0 of a record: the deletion flag
    rec = np.frombuffer(body[: len(body) - len(body) % record_len], dtype=np.uint8).reshape(-1, record_len) \
        if record_len else np.zeros((0, 0), np.uint8)
    for i in range(0, len(desc) - 31, 32):
        d = desc[i:i + 32]
        if d[0] == 0x0D:
            break
        texts.append(d[:11].split(b"\0", 1)[0])
        width = d[16]
        if chr(d[11]) in "Cc" and start + width <= record_len:
            texts.append(rec[:, start:start + width].tobytes())
        start += width
    data = b"\n".join(texts)
    if cfg.roads.encoding:
        return cfg.roads.encoding, None
    if data.isascii():
        return None, None
    name = dbf.name
    tell = (f"set roads.encoding in the config, or put a {dbf.stem}.cpg beside it holding the encoding's name "
            f"(932 for Shift_JIS, UTF-8)")
    # detector.textio's rule, lenient: a few bad sequences are allowed (a writer that cut a name or value at the
    # dBASE byte limit inside a character: GDAL cuts 管理事務所 to 10 bytes of UTF-8; a ledger's few gaiji);
    # text in another encoding fails on most characters
    try:
        _, enc = decode_text(data, lenient=True)
    except TextEncodingError:
        return None, (f"{name}: names no text encoding (no .cpg, no language driver id) and its text is neither "
                      f"UTF-8 nor Shift_JIS: read as ISO-8859-1; if road names or columns look garbled, {tell}")
    return enc, (f"{name}: names no text encoding (no .cpg, no language driver id): read as {CODEC_LABELS[enc]}, "
                 f"the encoding its text decodes in; if road names or columns look garbled, {tell}")


def _read(path: Path, cfg: Config, warnings: list | None = None):
    import geopandas as gpd

    name = path.name.lower()
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a folder, expected a road network file (GeoJSON, GeoPackage, Shapefile, OSM)", path)
    if path.stat().st_size == 0:
        raise InputError("empty file", path)
    osm = _is_osm(path)
    if not osm and not name.endswith(VECTOR_SUFFIXES):
        raise InputError(
            f"unknown road network format {path.suffix or '(no extension)'!r}; expected .geojson, .gpkg, .shp, .osm.pbf, .osm, .osm.gz",
            path,
        )
    src = str(path)
    kw = {}
    if osm:
        if name.endswith(".gz"):
            src = "/vsigzip/" + str(path.resolve())
        kw["layer"] = cfg.roads.layer or "lines"
    else:
        kw.update(_pick_layer(path, cfg.roads.layer))
        enc, why = shapefile_encoding(path, cfg)
        if enc:
            kw["encoding"] = enc
        if why and warnings is not None:
            warnings.append(why)
    columns = None
    if not osm and name.endswith(COLUMNS_SUFFIXES):
        columns = _file_columns(src, kw)
        if columns is not None:
            want = {cfg.roads.id_field, cfg.roads.name_field, *ID_CANDIDATES, *NAME_CANDIDATES, *cfg.roads.keep_fields}
            kw["columns"] = [c for c in columns if c in want]
    try:
        gdf = gpd.read_file(src, **kw)
    except Exception as e:  # pyogrio raises DataSourceError / DataLayerError / ...
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"cannot read road network: {msg}", path) from None
    if osm and "highway" in gdf.columns:
        gdf = gdf[gdf["highway"].notna() & (gdf["highway"].astype(str) != "")]
    if columns is None:
        geometry = getattr(gdf, "geometry", None)
        columns = [str(c) for c in gdf.columns if geometry is None or c != geometry.name]
    return gdf, columns


#: formats whose columns are listed without reading the features (a header, a schema): only the columns load_roads
#: uses are read (ids, names, kept fields; a city's ledger has dozens: each costs as much as the geometry)
COLUMNS_SUFFIXES = (".gpkg", ".shp", ".fgb", ".sqlite")


def _file_columns(src: str, kw: dict) -> list[str] | None:
    """The layer's columns in the file's order (what ``read_file`` gives, without the geometry), or None where
    pyogrio cannot tell (the read then reads them all and says what is wrong)."""
    import pyogrio

    try:
        info = pyogrio.read_info(src, layer=kw.get("layer"), encoding=kw.get("encoding"))
    except Exception:  # noqa: BLE001 - the read says why
        return None
    return [str(f) for f in info["fields"]]


def _pick_layer(path: Path, layer: str | None) -> dict:
    """``roads.layer`` if the file has it; else, in a file of several layers, the only one holding lines. Errors list
    the layers and their geometry types so the user can set ``roads.layer``."""
    import pyogrio

    try:
        layers = [(str(n), str(t)) for n, t in pyogrio.list_layers(path)]
    except Exception:  # noqa: BLE001 - unreadable: the read below says why
        return {"layer": layer} if layer else {}
    listing = ", ".join(f"{n} ({t})" for n, t in layers)
    if layer:
        if layer not in [n for n, _ in layers]:
            raise InputError(f"no layer {layer!r}; layers: {listing}", path, "roads.layer")
        return {"layer": layer}
    if len(layers) <= 1:
        return {}
    lines = [n for n, t in layers if "line" in t.lower() or t.lower() in ("unknown", "none", "geometry")]
    if len(lines) == 1:
        return {"layer": lines[0]}
    raise InputError(f"several layers ({listing}); set roads.layer in the config to the road lines", path, "roads.layer")


_HSTORE_VALUE = r'"((?:[^"\\]|\\.)*)"'


def _osm_tag(other_tags: pd.Series, key: str) -> pd.Series:
    """The value of ``key`` in GDAL's OSM ``other_tags`` (``"ref"=>"CG-2","surface"=>"asphalt"``), NaN where absent.
    Vectorised (one regular expression over the column)."""
    import re

    pat = r'(?:^|,)"' + re.escape(key.replace("\\", "\\\\").replace('"', '\\"')) + r'"=>' + _HSTORE_VALUE
    got = other_tags.astype(object).where(other_tags.notna(), "").astype(str).str.extract(pat, expand=False)
    return got.str.replace(r'\\(.)', r"\1", regex=True)


def _kept_columns(lines, path: Path, cfg: Config, osm: bool, columns: list[str]) -> list[tuple[str, str, pd.Series]]:
    """The ``roads.keep_fields`` columns of ``lines`` as (the network's name, output name, column); InputError naming the file and the
    field when the network has no such column (nor, in an OSM file, such a tag on any way)."""
    from .export import road_field_names

    out = []
    for src, name in road_field_names(cfg.roads.keep_fields):
        if src in lines.columns and src != lines.geometry.name:
            out.append((src, name, lines[src]))
            continue
        if osm and "other_tags" in lines.columns:
            col = _osm_tag(lines["other_tags"], src)
            if col.notna().any():
                out.append((src, name, col))
                continue
            raise InputError(f"roads.keep_fields: no way of the network has the tag {src!r} (nor a column of that "
                             f"name; columns: {', '.join(columns)})",
                             path, src)
        raise InputError(f"roads.keep_fields: the network has no column {src!r}; columns: "
                         f"{', '.join(columns)}", path, src)
    return out


def _declared_types(path: Path, cfg: Config, osm: bool) -> dict[str, str]:
    """Columns the file declares integer ("int") or boolean ("bool"): GDAL hands such a column with empty values over
    as floats (1.0, 0.0, NaN)."""
    if osm:
        return {}
    try:
        import pyogrio

        info = pyogrio.read_info(path, **_pick_layer(path, cfg.roads.layer))
    except Exception:  # noqa: BLE001 - read already; the values stay as read
        return {}
    out = {}
    for f, t in zip(info["fields"], info["dtypes"]):
        t = str(t)
        if t.startswith(("int", "uint")):
            out[str(f)] = "int"
        elif t == "bool":
            out[str(f)] = "bool"
    return out


def _plain_values(col: pd.Series, kind: str | None) -> list:
    """A column as Python values for the outputs: numbers stay numbers (an integer column with empty values,
    read as floats, as ints; a boolean one as True/False), text as written, a date or time as ISO text, missing as
    None. Anything else (a BLOB's bytes, a JSON list or object) is left as read: ``_refuse_odd`` names it."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        t = pd.to_datetime(col)
        fmt = "%Y-%m-%d" if (t.dropna() == t.dropna().dt.normalize()).all() else None
        return [None if pd.isna(v) else (v.strftime(fmt) if fmt else v.isoformat()) for v in t]
    vals = col.astype(object).where(col.notna(), None).tolist()
    fast = _plain_by_dtype(col, vals, kind)
    if fast is not None:
        return fast
    out = []
    for v in vals:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        elif isinstance(v, float) and kind == "int" and v.is_integer():
            v = int(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and kind == "bool" and v in (0, 1):
            v = bool(v)
        elif isinstance(v, (pd.Timestamp,)):
            v = v.isoformat()
        elif hasattr(v, "isoformat") and not isinstance(v, str):  # datetime.date / time from an object column
            v = v.isoformat()
        out.append(v)
    return out


def _plain_by_dtype(col: pd.Series, vals: list, kind: str | None) -> list | None:
    """``_plain_values`` of a column whose dtype tells what its values are (numbers, true/false, text), at once
    rather than value by value (a city's million segments: ~1 s a field); None for the rest (the loop does them)."""
    dt = col.dtype
    if isinstance(dt, np.dtype) and dt.kind in "fiu":
        a = col.to_numpy()
        if dt.kind in "iu" and kind != "bool":
            return a.tolist()  # Python ints
        finite = np.isfinite(a) if dt.kind == "f" else np.ones(len(a), dtype=bool)
        out = np.empty(len(a), dtype=object)
        out[:] = a.tolist()
        if kind == "int" and dt.kind == "f":
            whole = finite & (np.floor(a) == a)
            if (np.abs(a[whole]) >= 2.0**62).any():
                return None  # ints beyond int64: value by value
            out[whole] = a[whole].astype(np.int64).tolist()
        elif kind == "bool":
            flag = finite & ((a == 0) | (a == 1))
            out[flag] = (a[flag] == 1).tolist()
        out[~finite] = None
        return out.tolist()
    if isinstance(dt, np.dtype) and dt.kind == "b":
        return col.to_numpy().tolist()
    if pd.api.types.infer_dtype(vals, skipna=True) in ("string", "empty"):
        return vals  # text (and None)
    return None


def _refuse_odd(path: Path, src: str, vals: list) -> None:
    """InputError naming the file and the field when a kept field holds other values than text, numbers, dates or
    true/false: a BLOB (a scanned drawing, a photo) or a JSON list/object, which no list, map or Shapefile cell
    shows (they came out as ``b'\\xad…'``)."""
    if pd.api.types.infer_dtype(vals, skipna=True) in ("string", "integer", "floating", "mixed-integer-float",
                                                         "boolean", "empty"):
        return  # plain values only (one scan in C)
    for v in vals:
        if v is None or isinstance(v, (bool, int, float, str)):
            continue
        what = ("binary data (a BLOB)" if isinstance(v, (bytes, bytearray, memoryview)) else
                "lists" if isinstance(v, (list, tuple, np.ndarray)) else
                "JSON objects" if isinstance(v, dict) else f"{type(v).__name__} values")
        raise InputError(f"roads.keep_fields: {src!r} holds {what}, which no list, map or Shapefile can show; keep "
                         "fields of text, numbers, dates or true/false", path, src)


def require_network(net: "RoadNetwork | None", cfg: Config) -> None:
    """UsageError (exit 2, ``--roads``) when the config keeps road fields but no network was given to copy them
    from (``patrol export`` without ``--roads``)."""
    from .errors import UsageError

    if net is None and cfg.roads.keep_fields:
        raise UsageError(f"roads.keep_fields ({', '.join(cfg.roads.keep_fields)}) are copied from the road network "
                         "by segment_id: pass it with --roads", field="--roads")


#: a damage within this many metres of the piece its segment_id names keeps that piece (a run places damages on
#: their segment: centimetres; a registry merge moves one by a metre or so); else the nearest piece of its id
PIECE_TOL_M = 1.0


def _ledger_keys(seg: pd.Series, keys: set) -> pd.Series:
    """The file's id of each placed segment id: itself where the network has it as an id, else without a ``-n``
    (a repeated id's piece) and then a ``#k`` (a multiline's part); None where none of them is an id of the network."""
    k0 = seg.astype(str)
    k1 = k0.str.replace(r"-\d+$", "", regex=True)
    k2 = k1.str.replace(r"#\d+$", "", regex=True)
    out = pd.Series([None] * len(seg), index=seg.index, dtype=object)
    for k in (k2, k1, k0):  # the longest that is an id wins
        hit = k.isin(keys)
        out[hit] = k[hit]
    return out


def _pieces(df: pd.DataFrame, net: "RoadNetwork", placed: np.ndarray, pos: np.ndarray, cfg: Config
            ) -> tuple[np.ndarray, np.ndarray]:
    """The network segment each placed row of ``df`` takes its kept fields from, where its id is repeated in the file
    (``roads.id_field`` values shared by the pieces of a route, told apart as ``<id>-1``, ``-2`` … in file order) or
    a multiline's (``#k``): such suffixes change when the file is re-sorted or edited, so the row takes the piece
    its ``segment_id`` names when the damage lies within ``PIECE_TOL_M`` of it, else the nearest piece of that id
    within ``locate.max_snap_m`` (one STRtree query for all rows). Returns (pos, the rows whose id has pieces but
    none within the snap distance: -1 in pos)."""
    far = np.zeros(len(df), dtype=bool)
    if net.keys is None or not placed.any() or "lat" not in df or "lon" not in df:
        return pos, far
    code, uniq = pd.factorize(pd.Series(net.keys, dtype=object))  # the file's id of each segment, as a number
    shared = np.bincount(code, minlength=len(uniq)) > 1
    seg = pd.Series(list(df["segment_id"]), dtype=object)
    want = pd.Index(uniq).get_indexer(_ledger_keys(seg.where(placed, ""), set(uniq)).to_numpy())  # -1: no such id
    lat = pd.to_numeric(pd.Series(list(df["lat"]), dtype=object), errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(pd.Series(list(df["lon"]), dtype=object), errors="coerce").to_numpy(dtype=float)
    rows = np.flatnonzero(placed & (want >= 0) & shared[np.maximum(want, 0)] & np.isfinite(lat) & np.isfinite(lon))
    if not len(rows):
        return pos, far
    x, y = net.xy(lon[rows], lat[rows])
    pts = shapely.points(x, y)
    pos = pos.copy()
    # the named piece, where the damage lies on it (the file unchanged: a run's own network)
    named = pos[rows]
    has = named >= 0
    on = np.zeros(len(rows), dtype=bool)
    on[has] = (code[named[has]] == want[rows[has]]) & (
        shapely.distance(pts[has], net.geoms[named[has]]) <= PIECE_TOL_M)
    rest = np.flatnonzero(~on)
    if len(rest):
        pi, si = net.tree.query(pts[rest], predicate="dwithin", distance=cfg.locate.max_snap_m)
        mine = code[si] == want[rows[rest]][pi]
        pi, si = pi[mine], si[mine]
        d = shapely.distance(pts[rest][pi], net.geoms[si])
        order = np.lexsort((si, d, pi))  # per row the nearest piece (ties: the file's first)
        pi, si = pi[order], si[order]
        first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, dtype=bool)
        best = np.full(len(rest), -1, dtype=np.int64)
        best[pi[first]] = si[first]
        pos[rows[rest]] = best
        far[rows[rest][best < 0]] = True
    return pos, far


def join_fields(df: pd.DataFrame, net: "RoadNetwork | None", cfg: Config, roads: str | Path | None = None
                ) -> tuple[pd.DataFrame, str | None]:
    """``df`` (candidates, a run's or the registry's) with the kept road fields of the segment each row is placed on
    (``segment_id``), under their output names; None where a row has no segment or one the network lacks. Where the
    network's id repeats (the pieces of one route sharing a 路線ID) the piece is found by the row's position
    (``lat``/``lon``, see ``_pieces``), since the ``-n`` that tell the pieces apart follow the file's row order.
    Returns (the frame, a warning naming how many rows' segments ``net`` lacks — the network was edited since — and
    how many lie farther than ``locate.max_snap_m`` from every piece of their repeated id; or None). Without kept
    fields, ``df`` as it is. ``net`` None with kept fields: UsageError (``--roads``)."""
    from .export import road_columns

    names = road_columns(cfg)
    if not names:
        return df, None
    require_network(net, cfg)
    out = df.copy()
    seg = list(out["segment_id"]) if "segment_id" in out else [None] * len(out)
    placed = np.array([isinstance(s, str) and s != "" for s in seg], dtype=bool)
    pos = pd.Index(net.ids).get_indexer([s if p else "" for s, p in zip(seg, placed)])  # ids are unique, never ""
    pos[~placed] = -1
    pos, far = _pieces(out, net, placed, pos, cfg)
    for name in names:
        vals = net.fields[name]
        out[name] = pd.Series([vals[i] if i >= 0 else None for i in pos], index=out.index, dtype=object)
    lost = int((placed & (pos < 0) & ~far).sum())
    where = Path(roads).name if roads is not None else (Path(net.source).name if net.source else "the network")
    notes = []
    if lost:
        notes.append(f"{lost} of {len(out)} candidates lie on segments that {where} does not have (edited since they "
                     f"were found?): their {', '.join(names)} are empty")
    if far.any():
        ids = [str(v) for v in (out["candidate_id"] if "candidate_id" in out else out.index)[far]][:3]
        col = f"{net.id_field!r} value" if net.id_field else "id"
        notes.append(f"{int(far.sum())} of {len(out)} candidates ({', '.join(ids)}{' …' if far.sum() > 3 else ''}) "
                     f"lie farther than {cfg.locate.max_snap_m:g} m (locate.max_snap_m) from every piece of their "
                     f"road's {col} in {where} (a piece moved or removed since?): their {', '.join(names)} are empty")
    return out, "; ".join(notes) or None


def _stable_ids(geoms: np.ndarray) -> np.ndarray:
    wkb = shapely.to_wkb(geoms, output_dimension=2, byte_order=1)
    ids = np.array(["seg-" + hashlib.sha1(w).hexdigest()[:8] for w in wkb], dtype=object)
    return _dedupe_ids(ids)


def _dedupe_ids(ids: np.ndarray) -> np.ndarray:
    """Repeated ids as ``<id>-1``, ``-2`` … in row order, never one the file has itself (``R``, ``R``, ``R-1`` give
    ``R``, ``R-2``, ``R-1``: ids stay unique)."""
    s = pd.Series(ids)
    dup = s.duplicated().to_numpy()  # hashing, no sort (a city's million unique ids: nothing more to do)
    if dup.any():
        # how many times each id came before, in row order (groupby().cumcount(), without sorting the strings)
        code = pd.factorize(s, sort=False)[0]
        order = np.argsort(code, kind="stable")
        c = code[order]
        first = np.r_[True, c[1:] != c[:-1]]
        rank = np.arange(len(c)) - np.maximum.accumulate(np.where(first, np.arange(len(c)), 0))
        k = pd.Series(np.empty(len(c), dtype=np.int64), index=s.index)
        k.iloc[order] = rank
        dup = pd.Series(dup, index=s.index)
        s[dup] = s[dup] + "-" + k[dup].astype(str)
        if not s.is_unique:  # a suffixed id that the file has as an id of its own: the next free number
            taken = set(s[~dup])
            for i in np.flatnonzero(dup.to_numpy()):
                base, n = ids[i], int(k.iloc[i])
                while f"{base}-{n}" in taken:
                    n += 1
                s.iloc[i] = f"{base}-{n}"
                taken.add(s.iloc[i])
    return s.to_numpy(dtype=object)


#: the most a locate.crs may stretch or shrink distances at the network (UTM: 0.1 % at a zone's edge; the plane
#: rectangular zones: 0.01 %; Web Mercator in Japan: 20-30 %)
MAX_SCALE_ERROR = 0.01


def _scale_error(crs, lon: float, lat: float) -> float:
    """How much ``crs`` stretches (or shrinks) distances at (lon, lat): the larger of its meridian and parallel scale
    errors (NaN where PROJ cannot tell, e.g. outside the projection's domain)."""
    from pyproj import Proj

    try:
        f = Proj(crs).get_factors(lon, lat)
        return float(max(abs(f.meridional_scale - 1.0), abs(f.parallel_scale - 1.0)))
    except Exception:  # noqa: BLE001 - pyproj's ProjError and friends
        return math.nan


def _project(g: np.ndarray, crs, target) -> tuple[np.ndarray, np.ndarray]:
    """(lines ``g`` in ``crs`` projected to ``target``, their x, y vertices there): what
    ``GeoSeries(g, crs=crs).to_crs(target)`` gives (the same transformer, the same numbers), without its copies,
    keeping the vertices for the topology."""
    import geopandas as gpd

    if shapely.has_z(g).any() or CRS.from_user_input(crs).is_exact_same(target):  # 3D lines (z transformed
        # too), or nothing to do: as geopandas does it
        out = np.asarray(gpd.GeoSeries(g, crs=crs).to_crs(target).values, dtype=object)
        return out, shapely.get_coordinates(out)
    xy = shapely.get_coordinates(g)
    x, y = Transformer.from_crs(crs, target, always_xy=True).transform(xy[:, 0], xy[:, 1])
    xy = np.column_stack([x, y])
    return shapely.set_coordinates(g.copy(), xy), xy


def _node_ids(keys: np.ndarray) -> np.ndarray:
    """The node of each grid point (rows of ``keys``, int64 x, y): its rank among the distinct points in (x, y)
    order, as ``np.unique(keys, axis=0, return_inverse=True)`` gives it, but on one int64 per point (x * span + y;
    sorting rows as structured values took seconds on a million links) where the spans fit."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    lo, hi = keys.min(axis=0), keys.max(axis=0)
    span_x, span_y = int(hi[0]) - int(lo[0]) + 1, int(hi[1]) - int(lo[1]) + 1
    if span_x * span_y >= 2**62:  # coordinates too far apart (or not finite): rows as they are
        return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
    one = (keys[:, 0] - lo[0]) * np.int64(span_y) + (keys[:, 1] - lo[1])
    return np.unique(one, return_inverse=True)[1].reshape(-1)


def load_roads(path: str | Path, cfg: Config | None = None) -> RoadNetwork:
    import geopandas as gpd

    cfg = cfg or Config()
    path = Path(path)
    read_warnings: list[str] = []
    gdf, file_columns = _read(path, cfg, read_warnings)  # file_columns: all of them (gdf: those used)
    if len(gdf) == 0 or gdf.geometry is None:
        raise InputError("contains no features", path)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    types = gdf.geom_type
    lines = gdf[types.isin(["LineString", "MultiLineString", "LinearRing"])]
    if len(lines) == 0:
        found = ", ".join(sorted(set(types))) or "nothing"
        raise InputError(f"contains no LineString features (found {found})", path, "geometry")

    # ids before exploding
    columns = ", ".join(file_columns)
    id_field = cfg.roads.id_field
    if id_field is not None:
        if id_field not in lines.columns:
            raise InputError(f"configured id field not found; columns: {columns}", path, id_field)
        ids = lines[id_field]
        if ids.isna().any():
            raise InputError("id field has empty values", path, id_field)
        ids = ids.astype(str).to_numpy(dtype=object)
    else:
        ids = None
        for c in ID_CANDIDATES:
            if c in lines.columns:
                col = lines[c]
                if col.notna().all() and col.astype(str).is_unique:
                    ids = col.astype(str).to_numpy(dtype=object)
                    break
    name_field = cfg.roads.name_field
    if name_field is not None:
        if name_field not in lines.columns:
            raise InputError(f"configured name field not found; columns: {columns}", path, name_field)
        names = lines[name_field]
    else:
        names = next((lines[c] for c in NAME_CANDIDATES if c in lines.columns), None)
    names = (names.fillna("").astype(str).to_numpy(dtype=object) if names is not None
             else np.full(len(lines), "", dtype=object))

    # CRS
    crs = lines.crs
    b = lines.total_bounds
    lonlat = bool(np.all(np.abs(b[[0, 2]]) <= 180) and np.all(np.abs(b[[1, 3]]) <= 90))
    example = "e.g. EPSG:6675 for JGD2011 zone VII"
    hint = f"; name it in the config as roads.crs ({example}), or add a .prj"
    given = None
    if cfg.roads.crs:
        try:
            given = CRS.from_user_input(cfg.roads.crs)
        except Exception as e:  # noqa: BLE001 - pyproj's CRSError and friends
            raise InputError(f"unknown CRS {cfg.roads.crs!r}: {e}", path, "roads.crs") from None
    if crs is None:
        if given is not None:
            if given.is_geographic and not lonlat:
                raise InputError(f"{cfg.roads.crs!r} is longitude/latitude ({given.name}) but the coordinates are not; "
                                 f"name the projected CRS ({example})", path, "roads.crs")
            crs = given
        elif lonlat:
            crs = CRS.from_epsg(4326)
        else:
            raise InputError("no CRS and coordinates are not longitude/latitude" + hint, path)
    elif CRS.from_user_input(crs).is_geographic and not lonlat:
        # GeoJSON readers report EPSG:4326 whenever the file names no CRS, so projected metres show up here
        if given is None or given.is_geographic:
            raise InputError("coordinates are not longitude/latitude (projected coordinates without a CRS?)" + hint,
                             path, "crs")
        crs = given
    kept = _kept_columns(lines, path, cfg, _is_osm(path), file_columns)
    types = _declared_types(path, cfg, _is_osm(path)) if kept else {}
    geom = np.asarray(lines.geometry.values, dtype=object)
    # explode multilines (LinearRing -> LineString) as GeoDataFrame.explode does (shapely.get_parts), on arrays: rows
    # (the file's row of each part), part (its number in the row), nparts (the row's parts); a network of
    # LineStrings only (a city's million links) is taken as it is
    if (shapely.get_type_id(geom) == 5).any():
        g, rows = shapely.get_parts(geom, return_index=True)
    else:
        g, rows = geom.copy(), np.arange(len(geom))
    rows = rows.astype(np.int64)
    run = np.ones(len(rows), dtype=bool)
    run[1:] = rows[1:] != rows[:-1]
    part = np.arange(len(rows)) - np.flatnonzero(run)[np.cumsum(run) - 1]
    nparts = np.bincount(rows, minlength=len(geom))[rows]
    ring = shapely.get_type_id(g) == 2
    if ring.any():
        g[ring] = shapely.linestrings(shapely.get_coordinates(g[ring]))  # not expected often
    keep = (shapely.get_type_id(g) == 1) & (shapely.get_num_coordinates(g) >= 2)
    if not keep.all():
        g, rows, part, nparts = g[keep], rows[keep], part[keep], nparts[keep]
    if len(g) == 0:
        raise InputError("contains no LineString features with 2+ points", path)

    # project
    to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
    b = shapely.total_bounds(g)
    clon, clat = to_ll.transform((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    if not (np.isfinite(clon) and np.isfinite(clat)):
        raise InputError("cannot find the network's position", path)
    if cfg.locate.crs:
        from .config import _checked_crs

        try:  # as the config checks it when it loads (here for a setting given since, in code)
            _checked_crs(cfg.locate.crs, metric=True)
        except ValueError as e:
            raise InputError(str(e), path, "locate.crs") from None
        target = CRS.from_user_input(cfg.locate.crs)
        stretch = _scale_error(target, clon, clat)
        if not stretch <= MAX_SCALE_ERROR:
            # metres, but not on the ground here: Web Mercator (EPSG:3857) is 25 % long in Toyama, a zone of the
            # other end of the country a few %: every distance of the config (snap, dedupe, match) would be off
            raise InputError(f"locate.crs {cfg.locate.crs} ({target.name}) stretches distances by "
                             f"{stretch:.1%} at the network ({clat:.4f}, {clon:.4f}), and every distance of the "
                             "config is metres on the ground: give your area's plane rectangular zone (e.g. "
                             "EPSG:6675) or UTM zone, or leave it out (the UTM zone of the network)", path,
                             "locate.crs")
    else:
        from pyproj.aoi import AreaOfInterest
        from pyproj.database import query_utm_crs_info

        info = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(clon, clat, clon, clat))
        target = CRS.from_epsg(info[0].code) if info else CRS.from_epsg(3857)
    read_g = g  # as read (ring -> line), for the ids made from geometry
    g, xy = _project(g, crs, target)
    n_dup = 0  # repeated values of the configured id field (auto-detected id columns are unique)
    file_ids = None  # the file's id of each segment (before "#k" / "-n")
    if ids is None:
        seg_ids = _stable_ids(read_g)
    else:
        file_ids = ids[rows]  # str (ids come as str)
        seg_ids = file_ids.copy()
        multi = nparts > 1
        if multi.any():
            seg_ids[multi] = [f"{b}#{k}" for b, k in zip(file_ids[multi], part[multi])]
        # an id column found unique stays unique without parts; else count the repeats
        n_dup = 0 if id_field is None and not multi.any() else int(pd.Series(seg_ids).duplicated().sum())
        seg_ids = _dedupe_ids(seg_ids) if n_dup else seg_ids
    seg_ids = np.asarray(seg_ids, dtype=object)
    road_names = names[rows]
    kept_values = {name: _plain_values(col, types.get(src)) for src, name, col in kept}
    same_rows = len(rows) == len(lines) and bool((rows == np.arange(len(rows))).all())  # one segment a row
    for src, name, _ in kept:
        _refuse_odd(path, src, kept_values[name])

    # topology: endpoints merged on a grid
    count = shapely.get_num_coordinates(g)
    last = np.cumsum(count) - 1
    keys = np.round(np.vstack([xy[last - count + 1], xy[last]]) / NODE_SNAP_M).astype(np.int64)
    node = _node_ids(keys)
    n = len(g)

    fwd = Transformer.from_crs(4326, target, always_xy=True)
    inv = Transformer.from_crs(target, 4326, always_xy=True)
    conv = 0.0
    try:
        from pyproj import Proj

        cx, cy = shapely.total_bounds(g).reshape(2, 2).mean(axis=0)
        clon, clat = inv.transform(cx, cy)
        conv = float(Proj(target).get_factors(clon, clat).meridian_convergence)
    except Exception:
        conv = 0.0
    out = gpd.GeoDataFrame({"segment_id": seg_ids, "road_name": road_names}, geometry=g, crs=target)
    return RoadNetwork(
        gdf=out, ids=seg_ids, names=road_names, crs=target, to_wgs84=inv, from_wgs84=fwd,
        tree=STRtree(g), geoms=g, lengths=shapely.length(g), start_node=node[:n], end_node=node[n:],
        convergence_deg=conv, source=str(path),
        fields={name: (list(vals) if same_rows else [vals[i] for i in rows]) for name, vals in kept_values.items()},
        keys=file_ids if file_ids is not None else seg_ids.copy(),
        id_field=id_field if id_field is not None else None,
        read_warnings=read_warnings,
        warnings=read_warnings + ([f"{Path(path).name}: {plural(n_dup, 'segment')} repeat{'s' if n_dup == 1 else ''} an id of the "
                                   f"{id_field!r} column; they are "
                                   f"told apart as <id>-1, <id>-2 … in the outputs (ids that are not in the network)"]
                                  if n_dup else []),
    )
