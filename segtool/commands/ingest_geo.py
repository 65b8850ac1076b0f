"""`segtool ingest population | landuse | pois`: register counts, land use and POIs into
the lake. Thin: parse options → `segtool.ingest.{population,landuse,pois}` → summary."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from segtool import console, present
from segtool.ingest.geofile import IngestReport, parse_bbox
from segtool.lake import Lake
from segtool.lakelock import DEFAULT_WAIT
from segtool.options import Format, Wait
from segtool.options import Lake as LakeOpt

Res = Annotated[
    int,
    typer.Option("--res", min=5, max=12, help="H3 resolution of the hexagons (5–12; 9 ≈ 0.1 km²)."),
]
Layer = Annotated[
    str | None, typer.Option("--layer", help="Layer to read when the file holds several.")
]
Crs = Annotated[
    str | None,
    typer.Option(
        "--crs",
        help="CRS of a geometry file that declares none (e.g. EPSG:3006). "
        "Never overrides a declared CRS.",
    ),
]
Bbox = Annotated[
    str | None,
    typer.Option(
        "--bbox",
        help="Area of interest minlon,minlat,maxlon,maxlat (WGS84): features outside are "
        "rejected (outside_bbox), polygons crossing it are clipped.",
    ),
]


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(v.strip() for v in text.split(",") if v.strip())


@contextmanager
def _stages():
    """A spinner on stderr naming the current stage (quiet in CI and when piped)."""
    with console.progress() as p:
        task = p.add_task("starting", total=None)
        yield lambda text: p.update(task, description=text)


def _report(report: IngestReport, lake: Lake, fmt) -> None:
    for note in report.notes:
        console.note(note)
    summary = report.summary()
    if present.resolve_format(fmt, None) == "table":  # reasons follow below, one line each
        summary = summary.drop("rejected_by_reason")
    present.emit(summary, fmt, title=f"ingested into {lake.root}")
    for d in report.datasets:
        if d.rejects != d.dataset:  # same input rows as another dataset: said once
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(d.rejected_by_reason.items()))
        console.info(
            f"{d.dataset}: read {d.rows_in}, wrote {d.rows_written}, rejected {d.rows_rejected}"
            + (f" ({reasons}; see {lake.root}/_rejects/{d.rejects}/)" if reasons else "")
        )


def population(
    file: Annotated[
        Path,
        typer.Argument(
            help="Counts: CSV/Parquet table (long or wide), or a geometry file whose "
            "attributes hold them (grid squares, points)."
        ),
    ],
    areas: Annotated[
        Path | None,
        typer.Option(
            "--areas",
            help="Area polygons: GeoPackage, Shapefile, GeoJSON, FlatGeobuf or GeoParquet, "
            "any CRS. Not needed when FILE is itself a polygon or point layer.",
        ),
    ] = None,
    area_id: Annotated[
        str | None, typer.Option("--area-id", help="Field of the polygons holding the area id.")
    ] = None,
    table_id: Annotated[
        str | None,
        typer.Option("--table-id", help="Column of FILE holding the area id (default: --area-id)."),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option("--group", help="Long table: the group column (auto: group)."),
    ] = None,
    count: Annotated[
        str | None,
        typer.Option("--count", help="Long table: the count column (auto: count, n, population)."),
    ] = None,
    wide: Annotated[
        bool | None,
        typer.Option(
            "--wide/--long",
            help="Table shape: one column per group (wide) or group+count columns (long). "
            "Default: auto.",
            show_default=False,
        ),
    ] = None,
    groups: Annotated[
        str | None,
        typer.Option("--groups", help="Wide table: the group columns, e.g. Q1,Q2,Q3,Q4 (auto)."),
    ] = None,
    x: Annotated[
        str | None,
        typer.Option(
            "--x",
            help="Counts at points given as coordinates in FILE: the easting (or longitude) "
            "column. CRS from --crs (default EPSG:4326).",
        ),
    ] = None,
    y: Annotated[
        str | None,
        typer.Option("--y", help="... and the northing (or latitude) column."),
    ] = None,
    res: Res = 9,
    layer: Layer = None,
    crs: Annotated[
        str | None,
        typer.Option(
            "--crs",
            help="CRS of --x/--y, or of a geometry file that declares none (e.g. EPSG:3006). "
            "Never overrides a declared CRS.",
        ),
    ] = None,
    lake: LakeOpt = Path("lake"),
    wait: Wait = DEFAULT_WAIT,
    fmt: Format = None,
) -> None:
    """Ingest register population: group counts per area (or grid square, or point).

    Writes `population/` (unit, group, count), `areas/` (GeoParquet, EPSG:4326) and
    `population_cells/` (cell, group, count at `--res`): each area's counts spread over
    the hexagons it overlaps in proportion to the exact overlap area, preserving every
    area's total. Rows naming unknown areas or holding bad counts go to
    `_rejects/population/` with their reason; unusable polygons to `_rejects/areas/`.

    **Examples**

    ```
    segtool ingest population income_deso.csv --areas deso.gpkg --area-id deso
    segtool ingest population counts.parquet --areas deso.fgb --area-id deso --wide --groups Q1,Q2,Q3,Q4
    segtool ingest population grid_250m.gpkg --area-id rutid --res 10
    segtool ingest population addresses.gpkg --groups born_sweden,born_abroad
    segtool ingest population points.csv --x east --y north --crs EPSG:3006 --res 11
    ```
    """
    from segtool.ingest.population import PopulationParams, ingest_population

    params = PopulationParams(
        area_id=area_id,
        table_id=table_id,
        group=group,
        count=count,
        wide=wide,
        groups=_split(groups),
        res=res,
        layer=layer,
        crs=crs,
        x=x,
        y=y,
    )
    target = Lake(lake, wait=wait)
    with _stages() as stage:
        report = ingest_population(file, target, areas=areas, params=params, on_stage=stage)
    _report(report, target, fmt)


def landuse(
    geofile: Annotated[
        Path,
        typer.Argument(
            help="Land-use polygons (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, GeoParquet)."
        ),
    ],
    category: Annotated[
        str, typer.Option("--category", help="Field holding the land-use category.")
    ],
    res: Res = 9,
    priority: Annotated[
        str | None,
        typer.Option(
            "--priority",
            help="Where categories overlap, the first listed wins, e.g. water,park,residential. "
            "Default: overlapping area is split in proportion.",
        ),
    ] = None,
    bbox: Bbox = None,
    layer: Layer = None,
    crs: Crs = None,
    lake: LakeOpt = Path("lake"),
    wait: Wait = DEFAULT_WAIT,
    fmt: Format = None,
) -> None:
    """Ingest land-use polygons as per-hexagon shares by category.

    Writes `landuse/` (cell, category, share): the share of each hexagon's area covered
    by each category, from exact polygon–hexagon intersections in a metric CRS (the
    layer's own when projected, else the local UTM zone). Polygons of one category are
    unioned first; interior hexagons sum to 1. Unusable features go to
    `_rejects/landuse/`.

    **Examples**

    ```
    segtool ingest landuse urban_atlas.gpkg --category code_2018 --res 9
    segtool ingest landuse osm_landuse.fgb --category landuse --bbox 17.8,59.2,18.3,59.45
    segtool ingest landuse zoning.shp --category zone --crs EPSG:3006 --priority water,park
    ```
    """
    from segtool.ingest.landuse import LanduseParams, ingest_landuse

    params = LanduseParams(
        category=category,
        res=res,
        layer=layer,
        crs=crs,
        bbox=parse_bbox(bbox),
        priority=_split(priority),
    )
    target = Lake(lake, wait=wait)
    with _stages() as stage:
        report = ingest_landuse(geofile, target, params=params, on_stage=stage)
    _report(report, target, fmt)


def pois(
    geofile: Annotated[
        Path,
        typer.Argument(help="POI points (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, GeoParquet)."),
    ],
    category: Annotated[str, typer.Option("--category", help="Field holding the POI category.")],
    res: Res = 9,
    bbox: Bbox = None,
    layer: Layer = None,
    crs: Crs = None,
    lake: LakeOpt = Path("lake"),
    wait: Wait = DEFAULT_WAIT,
    fmt: Format = None,
) -> None:
    """Ingest points of interest as counts per hexagon and category.

    Writes `pois/` (cell, category, n). Polygons and other non-point features are
    placed at a point on their surface. Unusable features go to `_rejects/pois/`.

    **Examples**

    ```
    segtool ingest pois osm_pois.gpkg --category amenity --res 9
    segtool ingest pois shops.shp --category type --crs EPSG:3006 --format json
    ```
    """
    from segtool.ingest.pois import PoiParams, ingest_pois

    params = PoiParams(category=category, res=res, layer=layer, crs=crs, bbox=parse_bbox(bbox))
    target = Lake(lake, wait=wait)
    with _stages() as stage:
        report = ingest_pois(geofile, target, params=params, on_stage=stage)
    _report(report, target, fmt)
