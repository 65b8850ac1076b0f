"""Homes (and optionally work places) from stays.

Home (SPEC §3): among the H3 cells (at the analysis resolution) where a device stayed during
the night window (default 22:00–06:00 local) on at least `min_nights` distinct nights, the
one with the most night-window stay time. `nights` counts the nights with any stay time in
that cell; `home_share` = night time in the home cell ÷ all the device's night time. A night
belongs to the date on which its window starts; windows are local wall-clock times, so the
DST nights last 7 h or 9 h of real time. Ties go to the smaller cell id.

Work (optional): among the cells other than home, the one with the most stay time in the
weekday work window (default 09:00–17:00 local, Monday–Friday, public holidays excluded)
on at least `min_work_days` distinct days.

The register area containing the home (`area`) is the area whose polygon contains the home
cell's centre (`segtool.geo.areas`), null where none does or no areas are given.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import polars_h3 as plh3

from segtool.errors import UsageError
from segtool.mobility.visits import (
    check_resolution,
    check_time_zone,
    daytype_expr,
    holiday_dates,
)
from segtool.schema import dataset_schema

HOMES_SCHEMA = dataset_schema("homes", "area")


@dataclass(frozen=True)
class HomeParams:
    """Night and work windows (local hours), thresholds, resolution and time zone."""

    res: int = 9
    tz: str = "Europe/Stockholm"
    night_start_h: float = 22.0
    night_end_h: float = 6.0
    min_nights: int = 3
    work: bool = False
    work_start_h: float = 9.0
    work_end_h: float = 17.0
    min_work_days: int = 3
    country: str = "SE"

    def __post_init__(self) -> None:
        check_resolution(self.res)
        check_time_zone(self.tz)
        holiday_dates(self.country, False, (2000,))  # a known country?
        for h in (self.night_start_h, self.night_end_h, self.work_start_h, self.work_end_h):
            if not 0 <= h < 24:
                raise UsageError(f"window hours must lie in [0, 24), got {h}")
        if self.night_start_h == self.night_end_h or self.work_start_h == self.work_end_h:
            raise UsageError("a time window must not be empty (start = end)")
        if self.min_nights < 1 or self.min_work_days < 1:
            raise UsageError("--min-nights and --min-work-days must be at least 1")


def window_time(
    stays: pl.LazyFrame, start_h: float, end_h: float, tz: str, res: int
) -> pl.LazyFrame:
    """Stay time inside a daily local window, per (device, cell, day).

    The window of local date `day` runs from `day` start_h:00 to start_h + length (crossing
    midnight when end_h < start_h), in wall-clock time, so DST days are handled exactly.
    Returns device, cell, day (Date), seconds (> 0).
    """
    length_s = ((end_h - start_h) % 24) * 3600.0
    start_s = start_h * 3600.0
    shift = pl.duration(microseconds=int(round(start_s * 1e6)))

    def local_naive(col: str) -> pl.Expr:
        return pl.col(col).dt.convert_time_zone(tz).dt.replace_time_zone(None)

    def to_utc(naive: pl.Expr) -> pl.Expr:
        # a boundary in the spring DST gap does not exist: use the instant the clocks jump
        exact = naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        after = (naive + pl.duration(hours=1)).dt.replace_time_zone(
            tz, ambiguous="earliest", non_existent="null"
        )
        return pl.coalesce(exact, after).dt.convert_time_zone("UTC")

    day0 = pl.col("day").cast(pl.Datetime("us"))
    return (
        stays.select(
            pl.col("device").cast(pl.UInt64),
            plh3.latlng_to_cell("lat", "lon", check_resolution(res)).cast(pl.UInt64).alias("cell"),
            pl.col("start").dt.convert_time_zone("UTC").alias("s"),
            pl.col("end").dt.convert_time_zone("UTC").alias("e"),
            pl.date_ranges(
                (local_naive("start") - shift).dt.date(),
                (local_naive("end") - shift).dt.date(),
                "1d",
            ).alias("day"),
        )
        .explode("day")
        .with_columns(
            to_utc(day0 + shift).alias("w0"),
            to_utc(day0 + shift + pl.duration(microseconds=int(round(length_s * 1e6)))).alias("w1"),
        )
        .with_columns(
            (
                (
                    pl.min_horizontal("e", "w1") - pl.max_horizontal("s", "w0")
                ).dt.total_microseconds()
                / 1e6
            ).alias("seconds")
        )
        .filter(pl.col("seconds") > 0)
        .group_by("device", "cell", "day")
        .agg(pl.col("seconds").sum())
    )


def _best_cell(per_day: pl.LazyFrame, min_days: int, name: str) -> pl.LazyFrame:
    """Per device: the cell with the most time among cells seen on ≥ min_days days
    (ties: the smaller cell id), with its seconds and days."""
    per_cell = (
        per_day.group_by("device", "cell")
        .agg(pl.col("seconds").sum(), pl.col("day").n_unique().alias("days"))
        .filter(pl.col("days") >= min_days)
    )
    order = dict(by=[pl.col("seconds"), pl.col("cell")], descending=[True, False])
    return per_cell.group_by("device").agg(
        pl.col("cell").sort_by(**order).first().alias(name),
        pl.col("seconds").sort_by(**order).first(),
        pl.col("days").sort_by(**order).first(),
    )


def detect_homes(
    stays: pl.LazyFrame, params: HomeParams = HomeParams(), areas: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Homes of the devices in `stays` (SPEC §1 `homes/`), sorted by device.

    Devices without a cell seen on at least `min_nights` nights get no row.
    """
    nights = window_time(stays, params.night_start_h, params.night_end_h, params.tz, params.res)
    total = nights.group_by("device").agg(pl.col("seconds").sum().alias("night_s"))
    homes = (
        _best_cell(nights, params.min_nights, "home_cell")
        .join(total, on="device")
        .select(
            "device",
            "home_cell",
            pl.col("days").clip(upper_bound=65535).cast(pl.UInt16).alias("nights"),
            (pl.col("seconds") / pl.col("night_s")).cast(pl.Float32).alias("home_share"),
        )
        .sort("device")
        .collect(engine="streaming")
    )
    homes = homes.with_columns(home_areas(homes, stays, params.res, areas))
    if params.work:
        homes = homes.join(work_cells(stays, homes, params), on="device", how="left")
    return homes


def work_cells(stays: pl.LazyFrame, homes: pl.DataFrame, params: HomeParams) -> pl.DataFrame:
    """device, work_cell: the cell outside home with the most weekday work-window time."""
    days = window_time(stays, params.work_start_h, params.work_end_h, params.tz, params.res)
    days = (
        days.filter(daytype_expr(pl.col("day"), "holiday", params.country) == "weekday")
        .join(homes.lazy().select("device", "home_cell"), on="device", how="left")
        .filter(pl.col("home_cell").is_null() | (pl.col("cell") != pl.col("home_cell")))
        .drop("home_cell")
    )
    return (
        _best_cell(days, params.min_work_days, "work_cell")
        .select("device", "work_cell")
        .collect(engine="streaming")
    )


def home_points(homes: pl.DataFrame, stays: pl.LazyFrame, res: int) -> pl.DataFrame:
    """device, lat, lon: the duration-weighted mean position of the device's stays in its
    home cell (the best estimate of where the home is; always inside that cell's area
    of influence, unlike the cell centre near an area border)."""
    duration = (pl.col("end") - pl.col("start")).dt.total_seconds().cast(pl.Float64)
    w = pl.when(duration > 0).then(duration).otherwise(1.0)
    return (
        stays.select(
            "device",
            plh3.latlng_to_cell("lat", "lon", check_resolution(res)).cast(pl.UInt64).alias("cell"),
            "lat",
            "lon",
            w.alias("w"),
        )
        .join(
            homes.lazy().select("device", pl.col("home_cell").alias("cell")),
            on=["device", "cell"],
        )
        .group_by("device")
        .agg(
            ((pl.col("lat") * pl.col("w")).sum() / pl.col("w").sum()).alias("lat"),
            ((pl.col("lon") * pl.col("w")).sum() / pl.col("w").sum()).alias("lon"),
        )
        .collect(engine="streaming")
    )


def home_areas(
    homes: pl.DataFrame, stays: pl.LazyFrame, res: int, areas: pl.DataFrame | None
) -> pl.Series:
    """Register area containing each home: the area of the home's position (see
    `home_points`), else of the home cell's centre; null outside all areas or without areas.
    """
    n = homes.height
    if areas is None or n == 0:
        return pl.Series("area", [None] * n, dtype=pl.String)
    from segtool.geo.areas import areas_of_points

    points = (
        homes.select("device", "home_cell")
        .join(home_points(homes, stays, res), on="device", how="left", maintain_order="left")
        .with_columns(
            pl.col("lat").fill_null(plh3.cell_to_lat("home_cell")),
            pl.col("lon").fill_null(plh3.cell_to_lng("home_cell")),
        )
    )
    return areas_of_points(points["lat"].to_numpy(), points["lon"].to_numpy(), areas).alias("area")
