"""Read one vector layer: GeoPackage, Shapefile, GeoJSON, FlatGeobuf (pyogrio/GDAL) or
GeoParquet (pyarrow + shapely: this GDAL build has no Parquet driver).

Every problem is an `InputError` naming the file: not a geometry file, several layers
and no `--layer`, a named field missing (the message lists the fields there are), no
CRS (unless `--crs` supplies it), no features.

Also here, shared by the three geographic ingests: rejected features as a rejects frame
(`layer_rejects`), the writing of their datasets (`write_datasets`: each atomic, all
computed before the first is written), and the row accounting they report
(`DatasetStats`, `IngestReport`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError
from segtool.geo.project import crs_name

KINDS = "GeoPackage, Shapefile, GeoJSON, FlatGeobuf or GeoParquet"
GEO_SUFFIXES = {
    ".gpkg",
    ".shp",
    ".geojson",
    ".geojsonl",
    ".geojsons",
    ".fgb",
    ".zip",
    ".gdb",
    ".json",
    ".parquet",
    ".geoparquet",
}
PARQUET_SUFFIXES = {".parquet", ".geoparquet", ".pq"}
# Sidecar files whose bytes are part of a Shapefile (recorded in the manifest).
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")


@dataclass
class GeoLayer:
    """One layer read from a geometry file: attributes, geometries and their CRS."""

    path: Path
    layer: str | None
    crs: str  # e.g. "EPSG:3006"
    attributes: pl.DataFrame  # the requested fields, in file order
    geometry: np.ndarray  # shapely geometries (None where the feature has none)

    def __len__(self) -> int:
        return len(self.geometry)


def input_files(path: str | Path) -> list[Path]:
    """The files that make up a geometry file (a Shapefile's .shx/.dbf/.prj/.cpg too)."""
    path = Path(path)
    files = [path]
    if path.suffix.lower() == ".shp":
        files += [p for s in SHAPEFILE_SIDECARS if (p := path.with_suffix(s)).exists()]
    return files


def is_geoparquet(path: str | Path) -> bool:
    import pyarrow.parquet as pq

    try:
        return b"geo" in (pq.read_schema(path).metadata or {})
    except Exception:
        return False


def looks_like_geofile(path: str | Path) -> bool:
    """A vector layer (by suffix), or a Parquet file carrying GeoParquet metadata."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return is_geoparquet(path)
    return suffix in GEO_SUFFIXES


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")


def _check_fields(path: Path, available: list[str], wanted: list[str]) -> None:
    missing = [f for f in wanted if f not in available]
    if not missing:
        return
    lower = {a.lower(): a for a in available}
    close = [lower[m.lower()] for m in missing if m.lower() in lower]
    raise InputError(
        f"{path} has no field {', '.join(repr(m) for m in missing)}; "
        f"its fields are: {', '.join(available) or '(none)'}",
        hint=f"did you mean {', '.join(repr(c) for c in close)}?" if close else None,
    )


def _resolve_crs(path: Path, declared: str | None, given: str | None) -> str:
    if declared is None and given is None:
        raise InputError(
            f"{path} declares no coordinate reference system (CRS)",
            hint="pass --crs with the CRS the coordinates are in, e.g. --crs EPSG:3006",
        )
    if declared is None:
        return crs_name(given)
    if given is not None and crs_name(given) != crs_name(declared):
        raise UsageError(
            f"--crs {given} contradicts the CRS {crs_name(declared)} declared by {path}",
            hint="--crs only supplies a CRS for files that declare none; drop it",
        )
    return crs_name(declared)


def read_geofile(
    path: str | Path,
    *,
    fields: list[str] | tuple[str, ...] = (),
    layer: str | None = None,
    crs: str | None = None,
    all_fields: bool = False,
) -> GeoLayer:
    """Read `fields` (or every field with `all_fields`) and the geometry of one layer.

    `crs` supplies the CRS of a file that declares none (it never overrides one).
    """
    path = Path(path)
    _check_exists(path)
    fields = list(dict.fromkeys(fields))
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_geoparquet(path, fields, crs, all_fields)
    return _read_ogr(path, fields, layer, crs, all_fields)


def _read_ogr(
    path: Path, fields: list[str], layer: str | None, crs: str | None, all_fields: bool
) -> GeoLayer:
    import pyogrio
    import shapely
    from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError

    errors = (DataSourceError, DataLayerError, FieldError, GeometryError, OSError, ValueError)
    try:
        layers = pyogrio.list_layers(path)
    except errors as e:
        raise InputError(
            f"{path} is not a geometry file segtool can read ({KINDS}): {_first_line(e)}"
        ) from None
    names = [str(n) for n in layers[:, 0]] if len(layers) else []
    if layer is None and len(names) > 1:
        raise UsageError(
            f"{path} holds {len(names)} layers: {', '.join(names)}",
            hint="choose one with --layer NAME",
        )
    if layer is not None and layer not in names:
        raise InputError(f"{path} has no layer {layer!r}; its layers are: {', '.join(names)}")
    layer = layer or (names[0] if names else None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = pyogrio.read_info(path, layer=layer)
    except errors as e:
        raise InputError(f"{path}: cannot read layer {layer!r}: {_first_line(e)}") from None
    if info.get("geometry_type") is None:
        raise InputError(
            f"{path} is a table without geometry, not a geometry layer ({KINDS})",
            hint="give polygons (areas, land use) or points (POIs) with a CRS",
        )
    available = [str(f) for f in info["fields"]]
    _check_fields(path, available, fields)
    crs_text = _resolve_crs(path, info.get("crs"), crs)
    columns = available if all_fields else fields
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta, table = pyogrio.read_arrow(path, layer=layer, columns=columns)
    except errors as e:
        raise InputError(f"{path}: cannot read features: {_first_line(e)}") from None
    if table.num_rows == 0:
        raise InputError(f"{path} has no features (layer {layer!r} is empty)")
    geom_col = meta.get("geometry_name") or "wkb_geometry"
    if geom_col not in table.column_names:  # GDAL names it after the layer's geometry field
        geom_col = table.column_names[-1]
    wkb = table.column(geom_col).to_numpy(zero_copy_only=False)
    try:
        geometry = shapely.from_wkb(wkb, on_invalid="ignore")
    except Exception as e:  # pragma: no cover - GDAL gives valid WKB
        raise InputError(f"{path}: unreadable geometry: {e}") from None
    attrs = _frame(table.select(columns))
    return GeoLayer(path, layer, crs_text, attrs, np.asarray(geometry, dtype=object))


def _read_geoparquet(path: Path, fields: list[str], crs: str | None, all_fields: bool) -> GeoLayer:
    import pyarrow.parquet as pq
    import shapely

    try:
        schema = pq.read_schema(path)
    except Exception as e:
        raise InputError(f"{path} is not a Parquet file: {_first_line(e)}") from None
    raw = (schema.metadata or {}).get(b"geo")
    names = list(schema.names)
    if raw is None:
        if "geometry" not in names:
            raise InputError(
                f"{path} is a Parquet table without geometry (no GeoParquet 'geo' metadata "
                "and no 'geometry' column)"
            )
        geom_col, declared = "geometry", None  # WKB of unknown CRS: needs --crs
    else:
        try:
            geo = json.loads(raw)
            geom_col = geo["primary_column"]
            colmeta = geo["columns"][geom_col]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: malformed GeoParquet metadata ({e})") from None
        encoding = str(colmeta.get("encoding", "WKB")).upper()
        if encoding != "WKB":
            raise InputError(
                f"{path}: GeoParquet geometry encoding {encoding!r} is not supported (only WKB)",
                hint="re-save it with WKB encoding (the default of GeoPandas and GDAL)",
            )
        if "crs" not in colmeta:
            declared = "OGC:CRS84"  # the GeoParquet default: lon/lat WGS84
        elif colmeta["crs"] is None:
            declared = None  # explicitly unknown
        else:
            declared = _projjson_crs(path, colmeta["crs"])
    attr_names = [n for n in names if n != geom_col]
    _check_fields(path, attr_names, fields)
    crs_text = _resolve_crs(path, declared, crs)
    columns = attr_names if all_fields else fields
    try:
        table = pq.read_table(path, columns=[*columns, geom_col])
    except Exception as e:
        raise InputError(f"{path}: cannot read: {_first_line(e)}") from None
    if table.num_rows == 0:
        raise InputError(f"{path} has no features (0 rows)")
    try:
        geometry = shapely.from_wkb(table.column(geom_col).to_numpy(zero_copy_only=False))
    except Exception as e:
        raise InputError(f"{path}: column {geom_col!r} is not WKB geometry: {e}") from None
    return GeoLayer(
        path, None, crs_text, _frame(table.select(columns)), np.asarray(geometry, dtype=object)
    )


def _projjson_crs(path: Path, value) -> str:
    from pyproj import CRS

    try:
        parsed = CRS.from_user_input(json.dumps(value) if isinstance(value, dict) else value)
    except Exception as e:
        raise InputError(f"{path}: unreadable CRS in GeoParquet metadata: {e}") from None
    auth = parsed.to_authority(min_confidence=90)
    return f"{auth[0]}:{auth[1]}" if auth else parsed.to_wkt()


def _frame(table) -> pl.DataFrame:
    """Attributes as a polars frame (zero columns when none were asked for)."""
    if table.num_columns == 0:
        return pl.DataFrame()
    frame = pl.from_arrow(table)
    return frame.to_frame() if isinstance(frame, pl.Series) else frame


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# --- what becomes of a layer's features: rejects, datasets, the summary -------------------


def layer_rejects(layer: GeoLayer, rows: np.ndarray, reasons) -> pl.DataFrame:
    """Rejected features: every attribute as text, the geometry as WKT, the file, the
    1-based feature number (`line`) and the reason."""
    import shapely

    rows = np.asarray(rows, dtype=np.int64)
    attrs = layer.attributes[rows] if layer.attributes.width else pl.DataFrame()
    geometry = layer.geometry[rows]
    wkt = np.full(rows.size, None, dtype=object)
    present = ~shapely.is_missing(geometry)
    wkt[present] = shapely.to_wkt(geometry[present], rounding_precision=-1)
    reason = np.broadcast_to(np.asarray(reasons, dtype=object), rows.shape)
    frame = pl.DataFrame(
        {
            **{c: attrs[c].cast(pl.String) for c in attrs.columns},
            "geometry": pl.Series(wkt.tolist(), dtype=pl.String),
            "source_file": pl.Series([str(layer.path)] * rows.size, dtype=pl.String),
            "line": pl.Series(rows + 1, dtype=pl.UInt64),
            "reason": pl.Series(reason.tolist(), dtype=pl.String),
        }
    )
    return frame.sort("line")


@dataclass
class DatasetWrite:
    """One dataset to write: its frame, its manifest, and whether it is GeoParquet."""

    name: str
    frame: pl.DataFrame
    manifest: object  # segtool.lake.Manifest
    geoparquet: bool = False


def write_datasets(lake, writes: list[DatasetWrite]) -> None:
    """Write each dataset atomically (temp folder + rename) with its `_manifest.json`.

    Callers compute everything first, so a bad input fails before anything is written.
    """
    from segtool.geo.geoparquet import write_geoparquet
    from segtool.schema import SCHEMAS, validate

    for w in writes:
        if w.name in SCHEMAS:
            validate(w.name, w.frame.schema)  # the SPEC §1 contract, checked before writing
    for w in writes:
        with lake.writing(w.name, w.manifest) as tmp:
            target = tmp / "part-0.parquet"
            if w.geoparquet:
                write_geoparquet(w.frame, target)
            else:
                w.frame.write_parquet(target)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """'minlon,minlat,maxlon,maxlat' (WGS84) → a tuple; UsageError when malformed."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if (
        len(values) != 4
        or not (-180 <= values[0] < values[2] <= 180)
        or not (-90 <= values[1] < values[3] <= 90)
    ):
        raise UsageError(
            f"--bbox {text!r} is not minlon,minlat,maxlon,maxlat",
            hint="e.g. --bbox 17.8,59.2,18.3,59.45",
        )
    return values  # type: ignore[return-value]


@dataclass
class DatasetStats:
    """Row accounting of one written dataset: rows_in = rows_written + rows_rejected."""

    dataset: str
    records: int  # rows in the written dataset
    rows_in: int
    rows_written: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    rejects: str | None = None  # the `_rejects/<name>/` dataset holding its rejected rows

    def __post_init__(self) -> None:
        assert self.rows_in == self.rows_written + self.rows_rejected, self
        assert self.rows_rejected == sum(self.rejected_by_reason.values()), self
        if self.rejects is None:
            self.rejects = self.dataset


@dataclass
class IngestReport:
    """What an ingest run wrote, for the CLI summary and for callers of the Python API."""

    datasets: list[DatasetStats]
    notes: list[str]
    parameters: object = None
    extra: dict | None = None

    def stats(self, dataset: str) -> DatasetStats:
        return next(d for d in self.datasets if d.dataset == dataset)

    def summary(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "dataset": [d.dataset for d in self.datasets],
                "records": [d.records for d in self.datasets],
                "rows_in": [d.rows_in for d in self.datasets],
                "rows_written": [d.rows_written for d in self.datasets],
                "rows_rejected": [d.rows_rejected for d in self.datasets],
                "rejected_by_reason": [
                    ", ".join(f"{k}: {v}" for k, v in sorted(d.rejected_by_reason.items()))
                    for d in self.datasets
                ],
            },
            schema={
                "dataset": pl.String,
                "records": pl.Int64,
                "rows_in": pl.Int64,
                "rows_written": pl.Int64,
                "rows_rejected": pl.Int64,
                "rejected_by_reason": pl.String,
            },
        )


def reason_counts(reasons: pl.Series | np.ndarray | list) -> dict[str, int]:
    if isinstance(reasons, np.ndarray):
        reasons = reasons.tolist()
    s = pl.Series("reason", reasons, dtype=pl.String).drop_nulls()
    if s.len() == 0:
        return {}
    vc = s.value_counts(sort=False).sort("reason")
    return dict(zip(vc["reason"].to_list(), vc["count"].to_list(), strict=True))
