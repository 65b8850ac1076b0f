"""Order-independent sums, so that multi-threaded plans give the same bits on every run.

A float sum depends on the order its terms are added in, and polars' engines add a
group's rows in whatever order their threads finish — re-runs could then differ in the
last bits, and "a re-run gives the same bytes" would not hold. Durations are therefore
summed as whole nanoseconds in 128-bit integers (integer sums are exact, so every order
gives the same total, and 128 bits cannot overflow) and turned back into seconds after.
"""

from __future__ import annotations

import polars as pl

NS = 1_000_000_000


def seconds_sum(col: str) -> pl.Expr:
    """Σ `col` (seconds) to the nanosecond, the same on every run; named `col`.

    Visits' dwell times are whole microseconds (differences of µs timestamps), so nothing
    is rounded for them; other values (shares of a dwell time under soft group
    membership) are rounded to the nanosecond before they are added. (A float64 holds
    whole nanoseconds exactly up to 2^53 ns ≈ 104 days, longer than any single dwell.)
    """
    total = (pl.col(col) * NS).round().cast(pl.Int128).sum()
    return (total.cast(pl.Float64) / float(NS)).alias(col)
