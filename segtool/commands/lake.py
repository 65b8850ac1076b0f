"""`segtool lake info` (issue: ingest)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.markup import escape

from segtool import console
from segtool.lake import DEFAULT_LAKE, Lake
from segtool.options import Format, Output
from segtool.options import Lake as LakeOpt
from segtool.present import emit, resolve_format


def info(lake: LakeOpt = Path(DEFAULT_LAKE), fmt: Format = None, output: Output = None) -> None:
    """Describe the lake: each dataset's rows, devices, time range, bounding box and manifest.

    One row per dataset, rejects datasets (`_rejects/<name>`) included. `devices` counts
    distinct pseudonyms where a `device` column exists; the time range spans every
    timestamp column; the bounding box covers `lat`/`lon` (or H3 cell centres, or the
    GeoParquet bbox). `stale` says when a dataset was built from an earlier version of an
    upstream dataset, and what to run. `--format json` adds each dataset's full
    `_manifest.json`.

    **Examples**

    ```
    segtool lake info --lake lake
    segtool lake info --lake lake --format json > lake.json
    ```
    """
    from segtool.lakeinfo import lake_info

    the_lake = Lake(lake)
    frame = lake_info(the_lake)
    if frame.height == 0:
        console.note(escape(f"the lake {str(the_lake.root)!r} holds no datasets yet"))
    kind = resolve_format(fmt, output)
    if kind == "json":
        emit(frame, kind, output)
        return
    flat = frame.drop("manifest")
    if kind == "table":
        flat = flat.select(
            "dataset",
            "rows",
            "files",
            (pl.col("bytes") / 1e6).round(1).alias("MB"),
            "devices",
            pl.col("start").dt.strftime("%Y-%m-%d %H:%M").alias("from (UTC)"),
            pl.col("end").dt.strftime("%Y-%m-%d %H:%M").alias("to (UTC)"),
            pl.concat_str(
                [
                    pl.col(c).round(4).cast(pl.String)
                    for c in ("min_lon", "min_lat", "max_lon", "max_lat")
                ],
                separator=", ",
            ).alias("bbox (lon, lat)"),
            "rows_rejected",
            "command",
            "stale",
        )
    emit(flat, kind, output, title=f"lake {the_lake.root}")
