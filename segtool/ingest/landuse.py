"""Land-use polygons → per-hexagon shares by category (SPEC §5, §8).

`landuse/`: cell UInt64, category Utf8, share Float64 = |U_c ∩ H| / |H|, the share of
hexagon H's area covered by category c, where U_c is the union of the category's
polygons. Areas are exact (`segtool.geo.fractions`), measured in the layer's own CRS when
it is projected in metres (e.g. EPSG:3006), else in the local UTM zone.

Overlaps
- within a category: overlapping polygons are unioned first (only those that overlap:
  `segtool.geo.dissolve`), so an area covered twice by one category counts once;
- between categories (`overlaps="proportional"`, the default): where categories overlap
  inside a hexagon, their shares are scaled down so they add up to the share of the
  hexagon covered by any category (overlapping area is split in proportion to each
  category's share);
- `priority=(c1, c2, …)`: the first listed category wins where several overlap
  (categories not listed follow in alphabetical order).

So the shares of a hexagon sum to the share covered by the layer: 1 for interior cells,
less at the layer's edges, over holes and in gaps between polygons.

Features rejected (to `_rejects/landuse/`, one reason each): `empty_geometry`,
`not_polygonal` (points, lines, polygons that collapse when repaired), `empty_category`,
`outside_bbox` (with `--bbox`; features that cross it are clipped to it). Invalid
polygons are repaired with `make_valid` and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import UsageError
from segtool.geo import clean
from segtool.geo.crs import WGS84
from segtool.geo.dissolve import dissolve, overlap_components
from segtool.geo.fractions import area_fractions, sum_by
from segtool.geo.grid import MAX_RES, MIN_RES
from segtool.geo.project import metric_crs_for, transform_geoms
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
from segtool.ingest.rejects import as_reject_frame
from segtool.lake import Lake, Manifest
from segtool.schema import dataset_schema

LANDUSE_SCHEMA = dataset_schema("landuse")


@dataclass(frozen=True)
class LanduseParams:
    """Options of `segtool ingest landuse` (serialised into the manifest)."""

    category: str
    res: int = 9
    layer: str | None = None
    crs: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # minlon, minlat, maxlon, maxlat
    priority: tuple[str, ...] | None = None  # None: proportional overlaps

    def __post_init__(self) -> None:
        if not MIN_RES <= self.res <= MAX_RES:
            raise UsageError(f"--res {self.res} is outside {MIN_RES}–{MAX_RES}")


def feature_categories(layer: GeoLayer, category: str) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's category as text (stripped), and a mask of the empty ones."""
    cats = layer.attributes[category].cast(pl.String).str.strip_chars()
    empty = (cats.fill_null("") == "").to_numpy()
    return np.asarray(cats.to_list(), dtype=object), empty


def bbox_polygon(bbox, crs: str):
    """The --bbox rectangle (WGS84) as a polygon in `crs`, densified so its edges bend
    with the projection."""
    import shapely

    box = shapely.segmentize(shapely.box(*bbox), max_segment_length=0.01)
    return transform_geoms(np.array([box], dtype=object), WGS84, crs)[0]


def clip_to_bbox(geoms: np.ndarray, bbox, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Geometries clipped to the bbox, and a mask of those left with nothing inside."""
    import shapely

    box = bbox_polygon(bbox, crs)
    shapely.prepare(box)
    present = ~clean.missing(geoms)
    out = geoms.copy()
    crossing = present.copy()
    crossing[present] = ~shapely.contains(box, geoms[present])
    out[crossing] = shapely.intersection(geoms[crossing], box)
    outside = present & ~clean.has_area(out) & clean.has_area(geoms)
    return out, outside


def category_unions(
    geoms: np.ndarray, categories: np.ndarray, priority: tuple[str, ...] | None
) -> tuple[list[str], np.ndarray]:
    """One geometry per category: the union of its polygons (a loop over categories, not
    polygons). With `priority`, each category loses what earlier ones cover."""
    import shapely

    names = sorted(set(categories.tolist()))
    if priority:
        names = [c for c in priority if c in names] + [c for c in names if c not in priority]
    unions = np.array([shapely.union_all(geoms[categories == c]) for c in names], dtype=object)
    if priority:
        taken = None
        for i, u in enumerate(list(unions)):
            if taken is not None:
                unions[i] = shapely.difference(u, taken)
            taken = u if taken is None else shapely.union(taken, u)
    return names, unions


def landuse_shares(
    geoms: np.ndarray,
    categories: np.ndarray,
    crs: str,
    res: int,
    *,
    metric_crs: str | None = None,
    priority: tuple[str, ...] | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Per-hexagon shares by category from valid polygons `geoms` (in `crs`) and their
    `categories`. Returns (cell, category, share) sorted by cell and category, and facts
    for the manifest (metric CRS, overlap area)."""
    metric = metric_crs or metric_crs_for(crs, geoms)
    geoms_m, _ = clean.repair(transform_geoms(np.asarray(geoms, dtype=object), crs, metric))
    categories = np.asarray(categories, dtype=object)
    if priority:
        names, unions = category_unions(geoms_m, categories, priority)
        shares = _cell_shares(unions, np.arange(len(names)), names, metric, res)
        overlap_m2 = 0.0
    else:
        shares, names, overlap_m2 = _proportional_shares(geoms_m, categories, metric, res)
    shares = shares.with_columns(pl.col("share").clip(upper_bound=1.0)).sort("cell", "category")
    info = {
        "metric_crs": metric,
        "categories": names,
        "overlap_handling": "priority" if priority else "proportional",
        "category_overlap_m2": max(overlap_m2, 0.0),
    }
    return shares.cast(LANDUSE_SCHEMA), info


def _fractions(geoms: np.ndarray, metric: str, res: int) -> pl.DataFrame:
    """(index, cell, share of the cell) for each geometry."""
    fr = area_fractions(geoms, metric, res, metric_crs=metric)
    return fr.select("index", "cell", (pl.col("overlap_m2") / pl.col("cell_m2")).alias("share"))


def _cell_shares(geoms, code, names, metric, res) -> pl.DataFrame:
    """Shares per (cell, category) of interior-disjoint geometries with category `code`."""
    fr = _fractions(geoms, metric, res)
    frame = fr.select(
        "cell",
        pl.Series("category", names, dtype=pl.String).gather(
            pl.Series(code, dtype=pl.UInt32).gather(fr["index"])
        ),
        "share",
    )
    return sum_by(frame, ["cell", "category"], "share")


def _proportional_shares(geoms, categories, metric, res):
    """Union each category's overlapping polygons (only those: `segtool.geo.dissolve`),
    measure, then scale the shares of cells where categories overlap so they sum to the
    share covered by any category."""
    import shapely

    names, code = np.unique(categories.astype(str), return_inverse=True)
    names = names.tolist()
    labels = overlap_components(geoms, code)
    own, label = dissolve(geoms, labels)
    own_code = np.empty(label.size, dtype=np.int64)
    own_code[labels] = code  # every member of a component has the component's category
    fr = _fractions(own, metric, res)
    shares = sum_by(
        fr.select(
            "cell",
            pl.Series("category", names, dtype=pl.String).gather(
                pl.Series(own_code, dtype=pl.UInt32).gather(fr["index"])
            ),
            "share",
        ),
        ["cell", "category"],
        "share",
    )
    # overlaps between categories: the union of each group of overlapping polygons
    cross = overlap_components(own)
    sizes = np.bincount(cross)
    in_multi = sizes[cross] > 1
    if not in_multi.any():
        return shares, names, 0.0
    unions, _ = dissolve(own[in_multi], cross[in_multi])
    overlap_m2 = float(shapely.area(own[in_multi]).sum() - shapely.area(unions).sum())
    parts = fr.filter(pl.Series(in_multi).gather(fr["index"]))
    excess = pl.concat(
        [
            parts.select("cell", "share"),
            _fractions(unions, metric, res).select("cell", (-pl.col("share")).alias("share")),
        ]
    )
    excess = sum_by(excess, ["cell"], "share").rename({"share": "excess"})
    shares = (
        shares.join(excess, on="cell", how="left")
        .with_columns(pl.col("share").sum().over("cell").alias("total"))
        .with_columns(
            pl.when(pl.col("excess") > 1e-12)
            .then(pl.col("share") * (pl.col("total") - pl.col("excess")) / pl.col("total"))
            .otherwise(pl.col("share"))
            .alias("share")
        )
        .select("cell", "category", "share")
    )
    return shares, names, overlap_m2


def ingest_landuse(
    geofile: str | Path,
    lake: Lake | str | Path | None = None,
    *,
    params: LanduseParams | None = None,
    on_stage: Callable[[str], None] | None = None,
    **options,
) -> IngestReport:
    """Read a land-use layer and write `landuse/` (+ `_rejects/landuse/`) to the lake.

    `options` are the fields of `LanduseParams` (category, res, layer, crs, bbox,
    priority) when `params` is not given; `on_stage` is told what is being done.
    """
    import shapely

    params = params or LanduseParams(**options)
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    stage = on_stage or (lambda _: None)
    stage(f"reading {geofile}")
    layer = read_geofile(
        geofile, fields=[params.category], layer=params.layer, crs=params.crs, all_fields=True
    )
    notes: list[str] = []
    cats, empty_category = feature_categories(layer, params.category)
    geoms, repaired = clean.repair(layer.geometry)
    if repaired:
        notes.append(f"repaired {repaired} invalid polygon(s) (make_valid)")
    metric = metric_crs_for(layer.crs, geoms)
    geoms_m = transform_geoms(geoms, layer.crs, metric)
    # one reason per feature, the first that applies
    reason = np.full(len(layer), None, dtype=object)
    reason[clean.missing(layer.geometry)] = "empty_geometry"
    reason[(reason == None) & ~clean.has_area(geoms_m)] = "not_polygonal"  # noqa: E711
    reason[(reason == None) & empty_category] = "empty_category"  # noqa: E711
    if params.bbox is not None:
        clipped, outside = clip_to_bbox(geoms_m, params.bbox, metric)
        geoms_m = clipped
        reason[(reason == None) & outside] = "outside_bbox"  # noqa: E711
    ok = reason == None  # noqa: E711
    stage(f"measuring {int(ok.sum())} polygons against H3 cells (res {params.res}, {metric})")
    shares, info = landuse_shares(
        geoms_m[ok], cats[ok], metric, params.res, metric_crs=metric, priority=params.priority
    )
    # slivers from digitising or rounding (< 1e-6 of the land area) are not worth a note
    noticeable = info["category_overlap_m2"] > 1e-6 * float(shapely.area(geoms_m[ok]).sum())
    if noticeable and not params.priority:
        notes.append(
            f"categories overlap on {info['category_overlap_m2'] / 1e6:.3g} km²: "
            "shares there are split in proportion (or use --priority)"
        )
    rejected = np.flatnonzero(~ok)
    rejects = as_reject_frame(layer_rejects(layer, rejected, reason[rejected])).collect()
    by_reason = reason_counts(reason[~ok])
    stats = DatasetStats(
        "landuse", shares.height, len(layer), int(ok.sum()), int((~ok).sum()), by_reason
    )
    extra = {**info, "res": params.res, "layer_crs": layer.crs, "geometries_repaired": repaired}
    writes = []
    for name, frame in (("landuse", shares), ("_rejects/landuse", rejects)):
        manifest = Manifest(
            command="segtool ingest landuse",
            parameters=params,
            rows_in=stats.rows_in,
            rows_written=stats.rows_written,
            rows_rejected=stats.rows_rejected,
            rejected_by_reason=by_reason,
            extra={**extra, "dataset": name, "records": frame.height},
        )
        for path in input_files(geofile):
            manifest.add_input(path, "landuse")
        writes.append(DatasetWrite(name, frame, manifest))
    stage(f"writing to {lake.root}")
    write_datasets(lake, writes)
    return IngestReport([stats], notes, params, extra)
