"""Register population: group counts per area (or grid square, or point) → the lake.

Inputs
- a counts table FILE: CSV (any of , ; tab |, optionally .gz, UTF-8 or Windows-1252) or
  Parquet, *long* (area, group, count) or *wide* (area, one column per group); or a
  geometry file whose attributes hold the counts (SCB's grid squares come like that).
- the area polygons GEOFILE (`--areas`), any CRS, with the id field `--area-id`. When
  FILE is itself a polygon layer, its own polygons are the areas. When FILE is a point
  layer, each point's counts go to the H3 cell containing it.

Datasets written (SPEC §1 plus one)
- `population/`        unit Utf8 (area id), group Utf8, count Float64 — as given, duplicates
                       (same area and group twice) summed; point input: cell UInt64 instead
                       of unit.
- `areas/`             area Utf8, geometry WKB (EPSG:4326), GeoParquet 1.1 — every usable
                       polygon of GEOFILE; features sharing an id are merged into one.
- `population_cells/`  cell UInt64, group Utf8, count Float64 at `--res`: each area's counts
                       spread over the hexagons it overlaps in proportion to the overlap
                       area (exact, `segtool.geo.fractions`), so every area's total and the
                       grand total are preserved.
- `_rejects/population/`, `_rejects/areas/`: rejected table rows / features with reasons.

Apportionment: count(c, g) = Σ_a count(a, g) · |A_a ∩ H_c| / Σ_c' |A_a ∩ H_c'|, areas
measured in the areas' own CRS when it is metric (e.g. EPSG:3006), else the local UTM zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError
from segtool.geo import clean
from segtool.geo.crs import WGS84
from segtool.geo.fractions import area_fractions, sum_by
from segtool.geo.grid import cells_of_points
from segtool.geo.project import metric_crs_for, points_lonlat, transform_geoms
from segtool.ingest.geofile import (
    DatasetStats,
    DatasetWrite,
    GeoLayer,
    IngestReport,
    input_files,
    layer_rejects,
    read_geofile,
    reason_counts,
    write_datasets,
)
from segtool.ingest.population_table import (
    LINE,
    PopulationParams,
    Table,
    count_expr,
    counts_long,
    read_table,
)
from segtool.ingest.rejects import as_reject_frame
from segtool.lake import Lake, Manifest

# --- areas -------------------------------------------------------------------------------


@dataclass
class Areas:
    """Usable area polygons, one per id, and what happened to each feature."""

    ids: np.ndarray  # area ids (str), sorted
    geometry: np.ndarray  # valid (Multi)Polygons in `crs`, aligned with ids
    crs: str
    layer: GeoLayer
    rejects: pl.DataFrame
    repaired: int
    merged: int  # features merged into another of the same id


def prepare_areas(layer: GeoLayer, area_id: str) -> Areas:
    """One valid polygonal geometry per area id; features without id or area rejected."""
    import shapely

    ids = layer.attributes[area_id].cast(pl.String).str.strip_chars()
    geoms, repaired = clean.repair(layer.geometry)
    reason = np.full(len(layer), None, dtype=object)
    reason[clean.missing(layer.geometry)] = "empty_geometry"
    no_area = (reason == None) & ~clean.has_area(geoms)  # noqa: E711 - elementwise on object array
    reason[no_area] = "not_polygonal"
    empty_id = (ids.is_null() | (ids == "")).to_numpy()
    reason[empty_id] = "empty_area_id"
    ok = np.flatnonzero(reason == None)  # noqa: E711
    rejected = np.flatnonzero(reason != None)  # noqa: E711
    rejects = layer_rejects(layer, rejected, reason[rejected])

    keep_ids = ids.to_numpy()[ok].astype(str)
    uniq, codes = np.unique(keep_ids, return_inverse=True)
    merged = int(ok.size - uniq.size)
    if merged:
        parts, owner = shapely.get_parts(geoms[ok], return_index=True)
        polys, sub = shapely.get_parts(parts, return_index=True)
        owner = owner[sub]
        poly = np.flatnonzero(shapely.get_type_id(polys) == 3)
        target = codes[owner[poly]]
        order = np.argsort(target, kind="stable")  # shapely wants sorted indices
        area_geoms = shapely.multipolygons(polys[poly[order]], indices=target[order])
        area_geoms, _ = clean.repair(area_geoms)
    else:
        order = np.argsort(keep_ids, kind="stable")
        area_geoms = geoms[ok][order]
    return Areas(
        uniq, np.asarray(area_geoms, dtype=object), layer.crs, layer, rejects, repaired, merged
    )


def areas_frame(areas: Areas) -> pl.DataFrame:
    """The `areas/` dataset: area id and WKB geometry in EPSG:4326 (lon, lat)."""
    import shapely

    wgs = transform_geoms(areas.geometry, areas.crs, WGS84)
    return pl.DataFrame(
        {"area": areas.ids.astype(object), "geometry": shapely.to_wkb(wgs)},
        schema={"area": pl.String, "geometry": pl.Binary},
    )


def apportion(counts: pl.DataFrame, fractions: pl.DataFrame) -> pl.DataFrame:
    """Spread counts (unit, group, count) over cells by overlap (unit, cell, overlap_m2).

    Each unit's counts are divided in proportion to its overlap with each cell, so per
    unit and in total the counts are preserved. Returns (cell, group, count), sorted.
    """
    weights = fractions.select(
        "unit",
        "cell",
        (pl.col("overlap_m2") / pl.col("overlap_m2").sum().over("unit")).alias("w"),
    )
    spread = counts.join(weights, on="unit", how="inner").select(
        "cell", "group", (pl.col("count") * pl.col("w")).alias("count")
    )
    out = sum_by(spread, ["cell", "group"], "count")
    return out.with_columns(pl.col("cell").cast(pl.UInt64))


# --- the whole run -----------------------------------------------------------------------


def ingest_population(
    file: str | Path,
    lake: Lake | str | Path | None = None,
    *,
    areas: str | Path | None = None,
    params: PopulationParams | None = None,
    on_stage: Callable[[str], None] | None = None,
    **options,
) -> IngestReport:
    """Ingest a counts table (and area polygons) into the lake; see the module docstring.

    `options` are the fields of `PopulationParams` (area_id, table_id, group, count, wide,
    groups, res, layer, crs) when `params` is not given. Everything is computed before the
    first dataset is written, so bad input leaves the lake as it was. `on_stage` is told
    what is being done (for a progress display).
    """
    params = params or PopulationParams(**options)
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    stage = on_stage or _quiet
    stage(f"reading {file}")
    table = read_table(file, layer=params.layer, crs=params.crs)
    notes = list(table.notes)
    if params.x is not None:
        if areas is not None:
            raise UsageError("give either point coordinates (--x/--y) or --areas, not both")
        points, crs = _table_points(table, params)
        return _ingest_points(table, lake, params, notes, stage, points, crs)
    if table.layer is not None and areas is None and _is_point_layer(table.layer):
        points, converted = clean.representative_points(table.layer.geometry)
        if converted:
            notes.append(f"{converted} multipoint feature(s) placed at one of their points")
        return _ingest_points(table, lake, params, notes, stage, points, table.layer.crs)

    if areas is None and table.layer is None:
        raise UsageError(
            f"{table.path} is a plain table: give the area polygons with --areas GEOFILE"
        )
    if params.area_id is None:
        raise UsageError("--area-id is required: the field that identifies each area")
    if areas is None:
        area_layer = table.layer
        if params.area_id not in area_layer.attributes.columns:
            raise InputError(
                f"{table.path} has no field {params.area_id!r}; its fields are: "
                f"{', '.join(area_layer.attributes.columns)}"
            )
    else:
        stage(f"reading {areas}")
        area_layer = read_geofile(
            areas, fields=[params.area_id], layer=params.layer, crs=params.crs, all_fields=True
        )
    prepared = prepare_areas(area_layer, params.area_id)
    if prepared.repaired:
        notes.append(f"repaired {prepared.repaired} invalid area geometries (make_valid)")
    if prepared.merged:
        notes.append(f"merged {prepared.merged} features sharing an area id with another")

    key = params.table_id or params.area_id
    if key not in table.frame.columns:
        raise InputError(
            f"{table.path} has no column {key!r} to join to the areas; its columns are: "
            f"{', '.join(c for c in table.frame.columns if c != LINE)}",
            hint="name the table's id column with --table-id COL",
        )
    counts = counts_long(table, key, params)
    notes += counts.notes
    known = pl.Series("unit", prepared.ids.astype(object), dtype=pl.String)
    row_ids = table.frame.select(LINE, pl.col(key).cast(pl.String).str.strip_chars().alias("unit"))
    reasons = (
        counts.row_reason.join(row_ids, on=LINE, how="left")
        .with_columns(
            pl.when(pl.col("reason") == "empty_area_id")
            .then(pl.col("reason"))
            .when(~pl.col("unit").is_in(known.implode()))
            .then(pl.lit("unknown_area"))
            .otherwise(pl.col("reason"))
            .alias("reason")
        )
        .select(LINE, "reason")
    )
    unknown = reasons.filter(pl.col("reason") == "unknown_area").height
    if unknown:
        example = (
            row_ids.join(reasons.filter(pl.col("reason") == "unknown_area"), on=LINE)["unit"]
            .head(3)
            .to_list()
        )
        notes.append(
            f"{unknown} row(s) name areas not among the polygons (e.g. {', '.join(map(repr, example))}); "
            "ids are compared as text"
        )
    accepted_lines = reasons.filter(pl.col("reason").is_null()).select(LINE)
    long = counts.long.join(accepted_lines, on=LINE, how="semi")
    population = _sum_duplicates(long, ["unit", "group"], notes)

    metric = metric_crs_for(prepared.crs, prepared.geometry)
    stage(f"measuring {len(prepared.ids)} areas against H3 cells (res {params.res}, {metric})")
    fr = area_fractions(prepared.geometry, prepared.crs, params.res, metric_crs=metric)
    fr = fr.with_columns(
        pl.Series("unit", prepared.ids.astype(object), dtype=pl.String).gather(fr["index"])
    )
    cells = apportion(population.select("unit", "group", "count"), fr)

    table_rejects = _table_rejects(table, reasons)
    rows_in = table.frame.height
    by_reason = reason_counts(reasons["reason"])
    rows_rejected = sum(by_reason.values())
    feature_reasons = reason_counts(prepared.rejects["reason"])
    area_stats = DatasetStats(
        "areas",
        len(prepared.ids),
        len(area_layer),
        len(area_layer) - prepared.rejects.height,
        prepared.rejects.height,
        feature_reasons,
    )
    pop_stats = DatasetStats(
        "population", population.height, rows_in, rows_in - rows_rejected, rows_rejected, by_reason
    )
    cell_stats = DatasetStats(
        "population_cells",
        cells.height,
        rows_in,
        rows_in - rows_rejected,
        rows_rejected,
        by_reason,
        rejects="population",
    )
    extra = {
        "shape": counts.shape,
        "groups": counts.groups,
        "res": params.res,
        "metric_crs": metric,
        "areas_crs": prepared.crs,
        "geometries_repaired": prepared.repaired,
        "features_merged": prepared.merged,
        "total_count": float(population["count"].sum()),
    }
    inputs = [(table.path, "counts")]
    if areas is not None:
        inputs += [(p, "areas") for p in input_files(areas)]
    elif table.layer is not None:
        inputs = [(p, "counts+areas") for p in input_files(table.path)]
    writes = [
        _write(
            "population",
            population.select("unit", "group", "count"),
            pop_stats,
            params,
            inputs,
            extra,
        ),
        _write("population_cells", cells, cell_stats, params, inputs, extra),
        _write("areas", areas_frame(prepared), area_stats, params, inputs, extra, geo=True),
        _write("_rejects/population", table_rejects, pop_stats, params, inputs, extra),
        _write(
            "_rejects/areas",
            as_reject_frame(prepared.rejects).collect(),
            area_stats,
            params,
            inputs,
            extra,
        ),
    ]
    stage(f"writing to {lake.root}")
    write_datasets(lake, writes)
    return IngestReport([pop_stats, cell_stats, area_stats], notes, params, extra)


def _is_point_layer(layer: GeoLayer) -> bool:
    import shapely

    g = layer.geometry[~clean.missing(layer.geometry)]
    return g.size > 0 and bool(np.isin(shapely.get_type_id(g), [0, 4]).all())


def _quiet(_: str) -> None:
    pass


def _table_points(table: Table, params: PopulationParams) -> tuple[np.ndarray, str]:
    """Points from the --x/--y columns (CRS --crs, default WGS84 lon/lat); None where a
    coordinate is not a number."""
    import shapely

    for col in (params.x, params.y):
        if col not in table.frame.columns:
            raise InputError(
                f"{table.path} has no column {col!r}; its columns are: "
                f"{', '.join(c for c in table.frame.columns if c != LINE)}"
            )
    xy = table.frame.select(
        count_expr(params.x, table.frame.schema[params.x], table.decimal_comma).alias("x"),
        count_expr(params.y, table.frame.schema[params.y], table.decimal_comma).alias("y"),
    )
    ok = (xy["x"].is_not_null() & xy["y"].is_not_null()).to_numpy()
    points = np.full(xy.height, None, dtype=object)
    points[ok] = shapely.points(xy["x"].to_numpy()[ok], xy["y"].to_numpy()[ok])
    return points, params.crs or WGS84


def _ingest_points(
    table: Table,
    lake: Lake,
    params: PopulationParams,
    notes: list[str],
    stage,
    points: np.ndarray,
    crs: str,
) -> IngestReport:
    """Counts at points: each point's counts go to the H3 cell (at --res) containing it."""
    present = ~clean.missing(points)
    lon, lat = points_lonlat(points, crs)
    in_range = present & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    missing = "empty_geometry" if table.layer is not None else "unparseable_coordinates"
    geo_reason = pl.Series(
        np.where(~present, missing, np.where(~in_range, "coordinates_out_of_range", ""))
    )
    geo_reason = pl.when(geo_reason == "").then(None).otherwise(geo_reason)
    exclude = tuple(c for c in (params.table_id, params.area_id, params.x, params.y) if c)
    stage(f"binning {int(in_range.sum())} points to H3 cells (res {params.res})")
    counts = counts_long(table, None, params, exclude)
    notes += counts.notes
    cell = np.zeros(points.size, dtype=np.uint64)
    if in_range.any():
        cell[in_range] = cells_of_points(lat[in_range], lon[in_range], params.res)
    reasons = counts.row_reason.with_columns(
        pl.coalesce(geo_reason, pl.col("reason")).alias("reason")
    )
    accepted = reasons.filter(pl.col("reason").is_null()).select(LINE)
    line_cell = pl.DataFrame({LINE: table.frame[LINE], "cell": pl.Series(cell, dtype=pl.UInt64)})
    long = counts.long.join(accepted, on=LINE, how="semi").join(line_cell, on=LINE)
    population = sum_by(long, ["cell", "group"], "count").with_columns(
        pl.col("cell").cast(pl.UInt64)
    )
    rows_in = table.frame.height
    by_reason = reason_counts(reasons["reason"])
    rejected = sum(by_reason.values())
    pop_stats = DatasetStats(
        "population", population.height, rows_in, rows_in - rejected, rejected, by_reason
    )
    cell_stats = DatasetStats(
        "population_cells",
        population.height,
        rows_in,
        rows_in - rejected,
        rejected,
        by_reason,
        "population",
    )
    extra = {
        "shape": counts.shape,
        "groups": counts.groups,
        "res": params.res,
        "points_crs": crs,
        "total_count": float(population["count"].sum()),
    }
    inputs = [(p, "counts+points") for p in input_files(table.path)]
    writes = [
        _write("population", population, pop_stats, params, inputs, extra),
        _write("population_cells", population, cell_stats, params, inputs, extra),
        _write(
            "_rejects/population", _table_rejects(table, reasons), pop_stats, params, inputs, extra
        ),
    ]
    stage(f"writing to {lake.root}")
    write_datasets(lake, writes)
    return IngestReport([pop_stats, cell_stats], notes, params, extra)


def _sum_duplicates(long: pl.DataFrame, keys: list[str], notes: list[str]) -> pl.DataFrame:
    n = long.height
    out = sum_by(long, keys, "count")
    if out.height < n:
        notes.append(f"summed {n - out.height} duplicate row(s) (same {' and '.join(keys)})")
    return out


def _table_rejects(table: Table, reasons: pl.DataFrame) -> pl.DataFrame:
    """Rejected table rows with every original field as text (geometry as WKT)."""
    bad = reasons.filter(pl.col("reason").is_not_null())
    if table.layer is not None:
        rows = bad[LINE].to_numpy().astype(np.int64) - 1
        return as_reject_frame(layer_rejects(table.layer, rows, bad["reason"].to_numpy())).collect()
    frame = table.frame.join(bad, on=LINE, how="inner").sort(LINE)
    frame = frame.with_columns(
        pl.lit(str(table.path)).alias("source_file"), pl.col(LINE).alias("line")
    ).drop(LINE)
    return as_reject_frame(frame).collect()


def _write(
    name, frame, stats: DatasetStats, params, inputs, extra, geo: bool = False
) -> DatasetWrite:
    manifest = Manifest(
        command="segtool ingest population",
        parameters=params,
        rows_in=stats.rows_in,
        rows_written=stats.rows_written,
        rows_rejected=stats.rows_rejected,
        rejected_by_reason=stats.rejected_by_reason,
        extra={**extra, "dataset": name, "records": frame.height},
    )
    for path, role in inputs:
        manifest.add_input(path, role)
    return DatasetWrite(name, frame, manifest, geoparquet=geo)
