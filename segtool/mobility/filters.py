"""Device filters before visits feed the indices (SPEC §3): keep devices with stays on at
least `min_days` distinct local days and at `min_places` distinct places (H3 cells at the
analysis resolution). A stay spanning midnight counts for both days.

Dropped devices are counted by their first failing rule, in this order:
``fewer_days`` then ``fewer_places``.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import polars_h3 as plh3

from segtool.errors import UsageError
from segtool.mobility.visits import check_resolution

REASONS = {
    "fewer_days": "stays on fewer than --min-days distinct local days",
    "fewer_places": "stays at fewer than --min-places distinct cells",
}


@dataclass(frozen=True)
class DeviceFilter:
    min_days: int = 7
    min_places: int = 2

    def __post_init__(self) -> None:
        if self.min_days < 0 or self.min_places < 0:
            raise UsageError("--min-days and --min-places must be 0 or more")


def device_activity(stays: pl.LazyFrame, res: int, tz: str) -> pl.LazyFrame:
    """device, days (distinct local dates with a stay), places (distinct cells)."""

    def local_date(col: pl.Expr) -> pl.Expr:
        return col.dt.convert_time_zone(tz).dt.date()

    last = pl.max_horizontal(pl.col("start"), pl.col("end") - pl.duration(microseconds=1))
    return (
        stays.select(
            pl.col("device").cast(pl.UInt64),
            plh3.latlng_to_cell("lat", "lon", check_resolution(res)).cast(pl.UInt64).alias("cell"),
            pl.date_ranges(local_date(pl.col("start")), local_date(last), "1d").alias("day"),
        )
        .explode("day")
        .group_by("device")
        .agg(
            pl.col("day").n_unique().cast(pl.UInt32).alias("days"),
            pl.col("cell").n_unique().cast(pl.UInt32).alias("places"),
        )
    )


def filter_devices(
    activity: pl.DataFrame, rule: DeviceFilter = DeviceFilter()
) -> tuple[pl.DataFrame, dict[str, int]]:
    """(devices kept — one column `device` —, devices dropped by reason)."""
    reason = (
        pl.when(pl.col("days") < rule.min_days)
        .then(pl.lit("fewer_days"))
        .when(pl.col("places") < rule.min_places)
        .then(pl.lit("fewer_places"))
    )
    tagged = activity.with_columns(reason.alias("reason"))
    kept = tagged.filter(pl.col("reason").is_null()).select("device").sort("device")
    counts = tagged.filter(pl.col("reason").is_not_null()).group_by("reason").len()
    dropped = {r: 0 for r in REASONS}
    dropped.update(dict(zip(counts["reason"], counts["len"], strict=True)))
    return kept, dropped
