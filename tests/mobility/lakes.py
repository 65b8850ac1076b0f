"""Write lake datasets straight in their SPEC §1 schemas (standing in for the ingesters)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from segtool.lake import Lake, Manifest


def write_dataset(
    lake: Lake | Path | str,
    name: str,
    frame: pl.DataFrame,
    *,
    command: str | None = None,
    partition_by: str | None = None,
) -> Lake:
    """Write `frame` as lake dataset `name` with a manifest (hive partitions if asked)."""
    lk = lake if isinstance(lake, Lake) else Lake(lake)
    manifest = Manifest(command=command or f"ingest {name}", rows_in=frame.height)
    manifest.rows_written = frame.height
    manifest.rows_rejected = 0
    with lk.writing(name, manifest) as tmp:
        if partition_by is None:
            frame.write_parquet(tmp / "part-0.parquet")
        else:
            for (key,), part in frame.group_by(partition_by, maintain_order=True):
                folder = tmp / f"{partition_by}={key}"
                folder.mkdir()
                part.drop(partition_by).write_parquet(folder / "part-0.parquet")
    return lk


def write_pings(lake, pings: pl.DataFrame) -> Lake:
    """Pings hive-partitioned by (UTC) date, as `segtool ingest pings` writes them."""
    if "date" not in pings.columns:
        pings = pings.with_columns(pl.col("ts").dt.date().alias("date"))
    return write_dataset(lake, "pings", pings, partition_by="date")
