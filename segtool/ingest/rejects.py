"""Rejected input rows: every row that does not reach a dataset lands here with a reason.

Layout: `<lake>/_rejects/<dataset>/` — Parquet with the row's original fields as text,
`source_file`, `line` (1-based line in the file for text input, row number otherwise),
and `reason` (a short stable code such as `unparseable_time`, see each ingester).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

REJECT_META_COLUMNS = ("source_file", "line", "reason")


def as_reject_frame(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Cast every column to text (keeping `line` as UInt64) so rejects of different
    sources share one schema per dataset."""
    lf = frame.lazy()
    cols = lf.collect_schema().names()
    missing = [c for c in REJECT_META_COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"reject frame lacks {missing}")
    return lf.select(
        *(pl.col(c).cast(pl.String) for c in cols if c not in REJECT_META_COLUMNS),
        pl.col("source_file").cast(pl.String),
        pl.col("line").cast(pl.UInt64),
        pl.col("reason").cast(pl.String),
    )


def reason_counts(rejects: pl.DataFrame) -> dict[str, int]:
    if rejects.height == 0:
        return {}
    counts = rejects.group_by("reason").len().sort("reason")
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def rejects_path(lake_root: Path, dataset: str) -> Path:
    return Path(lake_root) / "_rejects" / dataset


# Stable reason codes (a contract: the synthetic city plants rows for several of them and
# users filter rejects by them). Ingesters may add more; describe each here.
REASONS: dict[str, str] = {
    "malformed_row": "the line does not split into the header's fields (wrong field count, bad quoting)",
    "empty_id": "the device id is empty",
    "unparseable_time": "the time is neither epoch seconds/ms/µs nor ISO 8601",
    "unparseable_coordinates": "lat or lon is empty or not a number",
    "coordinates_out_of_range": "lat outside [-90, 90] or lon outside [-180, 180] (after reprojection), or not in the CRS's domain",
    "outside_bbox": "the point (or geometry feature) lies outside --bbox",
    "duplicate_ping": "an exact duplicate of an earlier ping (same device, time, lat, lon)",
    "low_accuracy": "accuracy worse than --max-accuracy metres",
    "unparseable_accuracy": "accuracy is present but not a number",
    "end_before_start": "a stay or flow ends before it starts",
    "negative_count": "a count is negative",
    "unparseable_count": "a count is not a number",
    "unknown_area": "the area id is not among the area polygons",
    "empty_area_id": "the area id is empty",
    "empty_group": "a long population table's group is empty",
    "empty_geometry": "a geometry file's feature has no geometry (or an empty one)",
    "not_polygonal": "a polygon layer's feature has no area (a point or line, or a polygon that collapses when repaired)",
    "empty_category": "the land-use or POI category is empty",
}
