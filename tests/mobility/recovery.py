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
    """`truth` with `matched` (bool) and the start/end differences in seconds (detected − true).

    With `true_start`/`true_end` columns (from `observable_stays`), a detected boundary
    anywhere between the true and the observed one, give or take the tolerance, counts:
    the pings cannot tell where in between the device arrived or left.
    """
    tol = timedelta(seconds=tolerance_s)
    det = detected.select(
        "device",
        pl.col("start").alias("start"),
        pl.col("start").alias("det_start"),
        pl.col("end").alias("det_end"),
    ).sort("start")
    tru = truth.sort("start")
    joined = tru.join_asof(
        det, on="start", by="device", strategy="nearest", tolerance=tol, check_sortedness=False
    )

    def seconds(expr: pl.Expr) -> pl.Expr:
        return expr.dt.total_microseconds() / 1e6

    def within(det: str, a: str, b: str) -> pl.Expr:
        lo = pl.min_horizontal(a, b) - tol
        hi = pl.max_horizontal(a, b) + tol
        return (pl.col(det) >= lo) & (pl.col(det) <= hi)

    ts = "true_start" if "true_start" in truth.columns else "start"
    te = "true_end" if "true_end" in truth.columns else "end"
    return joined.with_columns(
        seconds(pl.col("det_start") - pl.col("start")).alias("d_start_s"),
        seconds(pl.col("det_end") - pl.col("end")).alias("d_end_s"),
        (
            pl.col("det_start").is_not_null()
            & within("det_start", "start", ts)
            & within("det_end", "end", te)
        )
        .fill_null(False)
        .alias("matched"),
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


def observable_stays(
    truth: pl.DataFrame,
    pings: pl.DataFrame,
    max_gap_s: float = 3 * 3600.0,
    min_duration_s: float = 0.0,
) -> pl.DataFrame:
    """What of each true stay the pings can show: the true stay cut to its first and last
    ping, and split where two consecutive pings inside it are more than `max_gap_s` apart
    (no detector with that gap rule can bridge them). Pieces shorter than `min_duration_s`
    are left out. Use it when the generator's sampling has gaps (e.g. the synthetic city's
    `--gap-share`): `recovery_rate(detected, observable_stays(truth, pings))`.

    Returns the truth's columns with `start`/`end` replaced by the observed ones, plus
    `true_start`, `true_end`, `n_pings`.
    """
    key = truth.with_row_index("_stay").with_columns(
        pl.col("start").alias("true_start"), pl.col("end").alias("true_end")
    )
    p = pings.select("device", pl.col("ts").cast(key.schema["start"])).sort("ts")
    inside = (
        p.join_asof(
            key.select("device", "_stay", "true_start", "true_end").sort("true_start"),
            left_on="ts",
            right_on="true_start",
            by="device",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("_stay").is_not_null() & (pl.col("ts") <= pl.col("true_end")))
        .sort("_stay", "ts")
    )
    gap = (pl.col("ts") - pl.col("ts").shift(1)).dt.total_microseconds().over("_stay")
    runs = (
        inside.with_columns(
            (gap > max_gap_s * 1e6).fill_null(False).cum_sum().over("_stay").alias("_run")
        )
        .group_by("_stay", "_run")
        .agg(
            pl.col("ts").min().alias("start"),
            pl.col("ts").max().alias("end"),
            pl.len().alias("n_pings"),
        )
        .filter((pl.col("end") - pl.col("start")).dt.total_microseconds() >= min_duration_s * 1e6)
    )
    return (
        key.drop("start", "end")
        .join(runs, on="_stay", how="inner")
        .sort("_stay", "_run")
        .drop("_stay", "_run")
    )
