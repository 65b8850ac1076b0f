"""`segtool lake info` (issue: ingest)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.markup import escape

from segtool import console
from segtool.errors import InputError
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


def gc(lake: LakeOpt = Path(DEFAULT_LAKE), fmt: Format = None, output: Output = None) -> None:
    """Remove the staging folders left in the lake by runs that died, and say what it freed.

    A run stages its work in `.tmp-*`, `.spool-*`, `.scratch-*` and `.old-*` folders and
    renames the result into place; a killed run (`kill -9`, power loss) leaves them behind.
    A folder is removed only when no live job holds its dataset's lock (the kernel drops
    the lock of a dead process); folders of running jobs are kept and listed with their
    job. Every run of a stage does the same for its own dataset before it starts.

    **Examples**

    ```
    segtool lake gc --lake lake
    segtool lake gc --lake lake --format json
    ```
    """
    from segtool.lakegc import collect

    the_lake = Lake(lake)
    if not the_lake.root.is_dir():
        raise InputError(f"there is no lake folder {str(the_lake.root)!r}")
    removed, kept = collect(the_lake)
    rows = [
        {
            "path": str(s.path),
            "dataset": s.dataset,
            "kind": s.kind,
            "bytes": s.bytes,
            "action": "removed",
            "held_by": None,
        }
        for s in removed
    ] + [
        {
            "path": str(s.path),
            "dataset": s.dataset,
            "kind": s.kind,
            "bytes": s.bytes,
            "action": "kept",
            "held_by": who,
        }
        for s, who in kept
    ]
    schema = {
        "path": pl.String,
        "dataset": pl.String,
        "kind": pl.String,
        "bytes": pl.Int64,
        "action": pl.String,
        "held_by": pl.String,
    }
    frame = pl.DataFrame(rows, schema=schema)
    freed = sum(s.bytes for s in removed)
    console.info(
        escape(
            f"lake gc: removed {len(removed)} staging folder(s) of dead runs, freed "
            f"{_human_bytes(freed)}; kept {len(kept)} of running jobs"
        )
    )
    kind = resolve_format(fmt, output)
    if frame.height or kind != "table":
        emit(frame, kind, output, title=f"staging in {the_lake.root}")


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} bytes"
