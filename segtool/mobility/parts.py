"""The per-device stages as per-partition tasks for `segtool.engine`.

Each function reads one partition (a set of whole devices: `device mod n == b`) from the
lake, runs the stage's own pure function on it — `detect_stays`, `detect_homes`,
`generate_visits`, unchanged — and either writes the partition's part of the dataset
(atomically, into the dataset's temporary folder) or returns a small frame. What it
returns to the caller is small and additive: counts, sums in partition order.

The arguments are plain data (paths as strings, bucket numbers, small frames, frozen
parameters), so a task runs the same in this process or on a Dask worker that sees the
lake at the same path. Devices never straddle partitions, so the parts together equal the
single-pass result.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from segtool.engine import write_part
from segtool.exact import seconds_sum
from segtool.lake import Lake

# Working set per input row of each stage (bytes), measured at 10M–50M pings
# (bench/bench_scale.py): what `EngineSettings.rows_per_batch` sizes batches with.
BYTES_PER_PING = 250  # stays: the batch, its sort, the kernel's arrays
BYTES_PER_STAY_HOMES = 600  # homes: stays exploded to nights, grouped twice
BYTES_PER_STAY_VISITS = 1_500  # visits: ~17 half-hour rows per stay, cut and labelled


def split_pings(pings: pl.LazyFrame, n: int, scratch: Path) -> list[tuple[str, object]]:
    """Write the pings (stay-detection columns) as `n` device buckets of uncompressed Arrow
    IPC under `scratch` in one streaming pass; return each bucket's source for `stays_part`.

    With n = 1 nothing is copied: the task reads the lake's pings directly."""
    from segtool.mobility.stays import ping_columns

    columns = ping_columns(pings)
    if n <= 1:
        return [("lake", None)]
    columns.with_columns((pl.col("device") % n).alias("bucket")).sink_ipc(
        pl.PartitionBy(scratch, key="bucket", include_key=False), mkdir=True
    )
    empty = columns.clear().collect()
    return [
        ("ipc", str(scratch / f"bucket={b}"))
        if (scratch / f"bucket={b}").exists()
        else ("empty", empty)
        for b in range(n)
    ]


def _pings(root: str, kind: str, source) -> pl.DataFrame:
    from segtool.mobility.stays import ping_columns

    if kind == "lake":
        return ping_columns(Lake(root).scan("pings")).collect()
    if kind == "ipc":
        return pl.scan_ipc(Path(source) / "*.ipc").collect()
    return source


def stays_part(root: str, params, kind: str, source, out: str):
    """Stays of one bucket of pings, written to `out`; returns (StayCounts, devices in the
    bucket, devices with stays)."""
    from segtool.mobility.stays import detect_stays

    batch = _pings(root, kind, source)
    frame, counts = detect_stays(batch, params)
    write_part(frame, out)
    return counts, batch["device"].n_unique(), frame["device"].n_unique()


def _bucket(frame: pl.LazyFrame, b: int, n: int) -> pl.LazyFrame:
    from segtool.mobility.stays import device_batches

    return device_batches(frame, n)[b] if n > 1 else frame


def homes_part(root: str, params, areas: pl.DataFrame | None, b: int, n: int) -> pl.DataFrame:
    """Homes of the devices in bucket `b` of `n` (one row per device; small)."""
    from segtool.mobility.homes import detect_homes

    return detect_homes(_bucket(Lake(root).scan("stays"), b, n), params, areas)


def visits_part(root: str, params, kept: pl.DataFrame, b: int, n: int, out: str):
    """Visits of the kept devices in bucket `b` of `n`, written to `out`; returns (rows,
    dwell seconds, dwell seconds by daytype)."""
    from segtool.mobility.visits import generate_visits

    stays = (
        Lake(root).scan("stays").join(kept.lazy(), on="device", how="semi", maintain_order="left")
    )
    frame = generate_visits(_bucket(stays, b, n), params).collect()
    rows = write_part(frame, out)
    dwell = frame.select(seconds_sum("dwell_s")).item()
    by_daytype = dict(frame.group_by("daytype").agg(seconds_sum("dwell_s")).iter_rows())
    return rows, dwell, by_daytype
