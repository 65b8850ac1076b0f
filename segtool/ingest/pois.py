"""Points of interest → counts per hexagon and category (SPEC §5).

`pois/`: cell UInt64, category Utf8, n UInt32 — how many POIs of each category lie in
each H3 cell at `--res`. Points are moved to WGS84 (pyproj) and binned with polars-h3.
Features that are not single points (a shop mapped as a building polygon, a MultiPoint)
are placed at a point on their surface (`shapely.point_on_surface`) and counted.

Features rejected (to `_rejects/pois/`): `empty_geometry`, `coordinates_out_of_range`
(not on the globe after reprojection: a wrong CRS), `empty_category`, `outside_bbox`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import UsageError
from segtool.geo import clean
from segtool.geo.grid import MAX_RES, MIN_RES, cells_of_points
from segtool.geo.project import points_lonlat
from segtool.ingest.geofile import (
    DatasetStats,
    DatasetWrite,
    IngestReport,
    input_files,
    layer_rejects,
    read_geofile,
    reason_counts,
    write_datasets,
)
from segtool.ingest.landuse import feature_categories
from segtool.ingest.rejects import as_reject_frame
from segtool.lake import Lake, Manifest
from segtool.schema import dataset_schema

POIS_SCHEMA = dataset_schema("pois")


@dataclass(frozen=True)
class PoiParams:
    """Options of `segtool ingest pois` (serialised into the manifest)."""

    category: str
    res: int = 9
    layer: str | None = None
    crs: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # minlon, minlat, maxlon, maxlat

    def __post_init__(self) -> None:
        if not MIN_RES <= self.res <= MAX_RES:
            raise UsageError(f"--res {self.res} is outside {MIN_RES}–{MAX_RES}")


def poi_counts(cells: np.ndarray, categories: np.ndarray) -> pl.DataFrame:
    """(cell, category, n) from one cell and category per POI, sorted."""
    frame = pl.DataFrame(
        {
            "cell": pl.Series(cells, dtype=pl.UInt64),
            "category": pl.Series(categories, dtype=pl.String),
        }
    )
    counts = frame.group_by("cell", "category").agg(pl.len().alias("n"))
    return counts.sort("cell", "category").cast(POIS_SCHEMA)


def ingest_pois(
    geofile: str | Path,
    lake: Lake | str | Path | None = None,
    *,
    params: PoiParams | None = None,
    on_stage: Callable[[str], None] | None = None,
    **options,
) -> IngestReport:
    """Read a POI layer and write `pois/` (+ `_rejects/pois/`) to the lake.

    `options` are the fields of `PoiParams` (category, res, layer, crs, bbox) when
    `params` is not given; `on_stage` is told what is being done.
    """
    params = params or PoiParams(**options)
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    stage = on_stage or (lambda _: None)
    stage(f"reading {geofile}")
    layer = read_geofile(
        geofile, fields=[params.category], layer=params.layer, crs=params.crs, all_fields=True
    )
    notes: list[str] = []
    cats, empty_category = feature_categories(layer, params.category)
    points, converted = clean.representative_points(layer.geometry)
    if converted:
        notes.append(f"placed {converted} non-point feature(s) at a point on their surface")
    lon, lat = points_lonlat(points, layer.crs)
    reason = np.full(len(layer), None, dtype=object)
    reason[clean.missing(points)] = "empty_geometry"
    off_globe = ~((np.abs(lat) <= 90) & (np.abs(lon) <= 180))
    reason[(reason == None) & off_globe] = "coordinates_out_of_range"  # noqa: E711
    reason[(reason == None) & empty_category] = "empty_category"  # noqa: E711
    if params.bbox is not None:
        x0, y0, x1, y1 = params.bbox
        inside = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
        reason[(reason == None) & ~inside] = "outside_bbox"  # noqa: E711
    ok = reason == None  # noqa: E711
    cells = cells_of_points(lat[ok], lon[ok], params.res)
    counts = poi_counts(cells, cats[ok])
    rejected = np.flatnonzero(~ok)
    rejects = as_reject_frame(layer_rejects(layer, rejected, reason[rejected])).collect()
    by_reason = reason_counts(reason[~ok])
    stats = DatasetStats(
        "pois", counts.height, len(layer), int(ok.sum()), int((~ok).sum()), by_reason
    )
    extra = {
        "res": params.res,
        "layer_crs": layer.crs,
        "converted_to_points": converted,
        "categories": sorted(set(cats[ok].tolist())),
    }
    writes = []
    for name, frame in (("pois", counts), ("_rejects/pois", rejects)):
        manifest = Manifest(
            command="segtool ingest pois",
            parameters=params,
            rows_in=stats.rows_in,
            rows_written=stats.rows_written,
            rows_rejected=stats.rows_rejected,
            rejected_by_reason=by_reason,
            extra={**extra, "dataset": name, "records": frame.height},
        )
        for path in input_files(geofile):
            manifest.add_input(path, "pois")
        writes.append(DatasetWrite(name, frame, manifest))
    stage(f"writing to {lake.root}")
    write_datasets(lake, writes)
    return IngestReport([stats], notes, params, extra)
