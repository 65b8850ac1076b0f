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
    "time_out_of_range": "the time is before 1990-01-01 or after 2100-01-01 UTC (a wrong epoch unit or a placeholder)",
    "duplicate_stay": "an exact duplicate of an earlier stay (same device, start, end, lat, lon)",
    "duplicate_flow": "an exact duplicate of an earlier flow row (every field equal)",
    "empty_area": "the origin or destination is empty",
    "unparseable_slot": "the slot is not a whole number from 0 to 47",
    "invalid_cell": "the origin or destination is not a valid H3 cell (in a column of H3 cells)",
}

# Every reject frame ends with these, after the dataset's own text columns and `fields`
# (all the row's input fields as text, delimiter-joined, device ids replaced by pseudonyms).
FIELDS_COLUMN = "fields"


class RejectWriter:
    """Stream reject rows into one Parquet file with a fixed schema (all text, `line`
    UInt64), in the order they are added — so a re-run writes the same bytes.

    Rows are buffered and written in row groups of `group_rows`; `close()` writes an
    empty file (schema only) when `write_empty` and nothing was added.
    """

    def __init__(self, path: Path, columns: tuple[str, ...], group_rows: int = 200_000):
        self.path = Path(path)
        self.columns = (*columns, FIELDS_COLUMN, *REJECT_META_COLUMNS)
        self.schema = {c: pl.String for c in self.columns} | {"line": pl.UInt64}
        self.group_rows = group_rows
        self._buffer: list = []  # pyarrow Tables
        self._buffered = 0
        self._writer = None
        self.counts: dict[str, int] = {}
        self.rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        frame = frame.select(
            pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c)
            for c, t in self.schema.items()
        )
        for reason, n in frame["reason"].value_counts().iter_rows():
            self.counts[reason] = self.counts.get(reason, 0) + n
        self.rows += frame.height
        # as Arrow (a copy): a polars frame filtered from a batch would keep the whole
        # batch's string buffers alive
        self._buffer.append(frame.to_arrow())
        self._buffered += frame.height
        if self._buffered >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        import pyarrow as pa

        table = pa.concat_tables(self._buffer)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=self.group_rows)
        self._buffer, self._buffered = [], 0

    def close(self, write_empty: bool = True) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
        elif write_empty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pl.DataFrame(schema=self.schema).write_parquet(self.path)
