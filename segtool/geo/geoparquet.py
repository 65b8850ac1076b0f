"""GeoParquet (v1.1) writing and reading: WKB geometry plus the `geo` metadata that QGIS,
GDAL and GeoPandas read. Writes atomically."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from segtool.lake import atomic_file

WGS84_PROJJSON_ID = {"authority": "EPSG", "code": 4326}


def geo_metadata(geometry: str, geometry_types: list[str], bbox: list[float] | None) -> dict:
    col = {"encoding": "WKB", "geometry_types": geometry_types}
    if bbox is not None:
        col["bbox"] = bbox
    # No "crs" key means OGC:CRS84 (lon/lat WGS84) in GeoParquet 1.x.
    return {"version": "1.1.0", "primary_column": geometry, "columns": {geometry: col}}


def write_geoparquet(
    frame: pl.DataFrame,
    path: str | Path,
    geometry: str = "geometry",
    geometry_types: list[str] | None = None,
) -> None:
    """Write `frame` (with a WKB column `geometry` in lon/lat) as GeoParquet."""
    import shapely

    geoms = shapely.from_wkb(frame[geometry].to_numpy()) if frame.height else []
    if geometry_types is None:
        geometry_types = sorted(set(shapely.get_type_id(geoms).tolist())) if frame.height else []
        names = {
            0: "Point",
            1: "LineString",
            3: "Polygon",
            4: "MultiPoint",
            5: "MultiLineString",
            6: "MultiPolygon",
            7: "GeometryCollection",
        }
        geometry_types = [names.get(t, "Unknown") for t in geometry_types]
    bbox = None
    if frame.height:
        b = shapely.total_bounds(geoms)
        bbox = [float(x) for x in b]
    table = frame.to_arrow()
    meta = dict(table.schema.metadata or {})
    meta[b"geo"] = json.dumps(geo_metadata(geometry, geometry_types, bbox)).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)


def read_geo_metadata(path: str | Path) -> dict | None:
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"geo")
    return json.loads(raw) if raw else None
