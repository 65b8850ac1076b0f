"""Does a set of detected stays recover a set of true (or peer) stays? Reusable checker.

`match_stays(detected, truth, tolerance_s)` pairs each true stay with the detected stay of
the same device whose start is nearest, and calls it recovered when both start and end lie
within the tolerance. `recovery_rate` is the share of true stays (of at least
`min_duration_s`) recovered; `agreement` applies it both ways between two detections.
Frames need `device`, `start`, `end` (any Datetime, same time zone in both).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl


def match_stays(
    detected: pl.DataFrame, truth: pl.DataFrame, tolerance_s: float = 300.0
) -> pl.DataFrame:
    """`truth` with `matched` (bool) and the start/end differences in seconds (detected − true)."""
    tol = timedelta(seconds=tolerance_s)
    det = (
        detected.select(
            "device",
            pl.col("start").alias("start"),
            pl.col("start").alias("det_start"),
            pl.col("end").alias("det_end"),
        )
        .with_columns(pl.col("device").cast(pl.UInt64))
        .sort("start")
    )
    tru = truth.with_columns(pl.col("device").cast(pl.UInt64)).sort("start")
    joined = tru.join_asof(
        det, on="start", by="device", strategy="nearest", tolerance=tol, check_sortedness=False
    )
    return joined.with_columns(
        ((pl.col("det_start") - pl.col("start")).dt.total_microseconds() / 1e6).alias("d_start_s"),
        ((pl.col("det_end") - pl.col("end")).dt.total_microseconds() / 1e6).alias("d_end_s"),
    ).with_columns(
        (
            pl.col("d_start_s").is_not_null()
            & (pl.col("d_start_s").abs() <= tolerance_s)
            & (pl.col("d_end_s").abs() <= tolerance_s)
        ).alias("matched")
    )


def recovery_rate(
    detected: pl.DataFrame,
    truth: pl.DataFrame,
    tolerance_s: float = 300.0,
    min_duration_s: float = 1800.0,
) -> float:
    """Share of true stays lasting at least `min_duration_s` that are recovered."""
    long = truth.filter(
        (pl.col("end") - pl.col("start")).dt.total_microseconds() >= min_duration_s * 1e6
    )
    if long.height == 0:
        return float("nan")
    return float(match_stays(detected, long, tolerance_s)["matched"].mean())


def agreement(a: pl.DataFrame, b: pl.DataFrame, tolerance_s: float = 300.0) -> tuple[float, float]:
    """(share of `b`'s stays found in `a`, share of `a`'s stays found in `b`)."""
    return (
        float(match_stays(a, b, tolerance_s)["matched"].mean()),
        float(match_stays(b, a, tolerance_s)["matched"].mean()),
    )
