"""Stays → H3 visits: one row per (stay, half-hour slot) with the dwell in that slot.

Each stay is mapped to the H3 cell (polars-h3, UInt64) of its centre at the analysis
resolution and split at half-hour boundaries of local time; `dwell_s` is the real time (in
seconds) spent in each piece, so the pieces of a stay sum to its duration, also across a
DST change. `slot` is the local half-hour of the piece's start (0 = 00:00–00:30 …
47 = 23:30–24:00); on the autumn DST night the repeated hour 02:00–03:00 falls in slots
4 and 5 twice, in spring those slots are absent. `daytype` is the local date's kind:
``weekday``, ``weekend`` (Saturday, Sunday) or ``holiday`` (public holidays of the country,
via the `holidays` package; a holiday on a weekend is a ``holiday``). `holidays="weekend"`
labels holidays as weekend days instead, `holidays="weekday"` ignores them.

Half-hour boundaries of local time are half-hour boundaries of UTC for every time zone whose
offset is a multiple of 30 minutes (checked), so the split is done in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import polars_h3 as plh3

from segtool.errors import UsageError
from segtool.schema import dataset_schema

HolidayLabel = Literal["holiday", "weekend", "weekday"]
DAYTYPES = ("weekday", "weekend", "holiday")
SLOT = "30m"

VISITS_SCHEMA = dataset_schema("visits")


def check_resolution(res: int) -> int:
    if not 5 <= int(res) <= 12:
        raise UsageError(f"the H3 resolution must be between 5 and 12, got {res}")
    return int(res)


@lru_cache(maxsize=16)
def check_time_zone(tz: str, half_hours: bool = False) -> str:
    """Raise UsageError for an unknown zone (or, with `half_hours`, one whose UTC offset is
    not a whole number of half hours between 1970 and 2100)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise UsageError(f"unknown time zone {tz!r}", hint="e.g. Europe/Stockholm") from e
    if half_hours:
        for year in range(1970, 2101):
            for month in (1, 7):
                off = datetime(year, month, 1, tzinfo=zone).utcoffset() or timedelta(0)
                if off.total_seconds() % 1800:
                    raise UsageError(
                        f"time zone {tz!r} has a UTC offset of {off} that is not a multiple "
                        "of 30 minutes; half-hour slots are not supported there"
                    )
    return tz


@lru_cache(maxsize=32)
def holiday_dates(
    country: str = "SE", de_facto: bool = False, years: tuple[int, ...] = ()
) -> tuple[date, ...]:
    """Public holidays of `country` in `years`; with `de_facto` also the days off that are
    not public holidays (in Sweden Midsummer Eve, Christmas Eve, New Year's Eve). Sundays
    are not listed as holidays (they are weekend days anyway)."""
    import holidays

    if not years:
        return ()
    categories = ("public", "de_facto") if de_facto else ("public",)
    kwargs = {"include_sundays": False} if country.upper() == "SE" else {}
    try:
        cal = holidays.country_holidays(
            country.upper(), years=list(years), categories=categories, **kwargs
        )
    except NotImplementedError as e:
        raise UsageError(f"the holidays package does not know country {country!r}") from e
    return tuple(sorted(cal.keys()))


def daytype_expr(
    local_date: pl.Expr,
    holidays_as: HolidayLabel = "holiday",
    country: str = "SE",
    de_facto: bool = False,
) -> pl.Expr:
    """weekday / weekend / holiday of a local Date expression (holidays looked up for the
    years present)."""
    weekend = local_date.dt.weekday() >= 6  # ISO: Monday 1 … Sunday 7
    plain = pl.when(weekend).then(pl.lit("weekend")).otherwise(pl.lit("weekday"))
    if holidays_as == "weekday":
        return plain

    def is_holiday(dates: pl.Series) -> pl.Series:
        years = tuple(sorted(dates.dt.year().drop_nulls().unique().to_list()))
        days = pl.Series(holiday_dates(country, de_facto, years), dtype=pl.Date)
        return dates.is_in(days.implode())

    holiday = local_date.map_batches(is_holiday, return_dtype=pl.Boolean, is_elementwise=True)
    return pl.when(holiday).then(pl.lit(holidays_as)).otherwise(plain)


@dataclass(frozen=True)
class VisitParams:
    """Analysis resolution, local time zone and how public holidays are labelled."""

    res: int = 9
    tz: str = "Europe/Stockholm"
    holidays: HolidayLabel = "holiday"
    de_facto_holidays: bool = False
    country: str = "SE"

    def __post_init__(self) -> None:
        check_resolution(self.res)
        check_time_zone(self.tz, half_hours=True)
        holiday_dates(self.country, self.de_facto_holidays, (2000,))  # a known country?
        if self.holidays not in ("holiday", "weekend", "weekday"):
            raise UsageError(
                f"--holidays must be holiday, weekend or weekday, not {self.holidays!r}"
            )


def slot_of(local: pl.Expr) -> pl.Expr:
    """The half-hour slot 0–47 of a local time expression."""
    return (local.dt.hour() * 2 + local.dt.minute() // 30).cast(pl.UInt8)


def cut_at_half_hours(frame: pl.LazyFrame, start: str, end: str) -> pl.LazyFrame:
    """Each row cut at the UTC half-hour boundaries inside [start, end) (Datetime columns):
    one row per piece, in time order, with `start` and `end` replaced by the piece's own
    and `slot_start` the start of its half hour. A row with end ≤ start stays one row.
    (UTC half hours are local half hours in every zone whose offset is a whole or half
    hour.)"""
    half = pl.duration(minutes=30)
    return (
        frame.with_columns(
            pl.datetime_ranges(
                pl.col(start).dt.truncate(SLOT), pl.col(end), SLOT, closed="left"
            ).alias("slot_start")
        )
        .explode("slot_start")
        .with_columns(
            pl.max_horizontal("slot_start", start).alias(start),
            pl.min_horizontal(pl.col("slot_start") + half, end).alias(end),
        )
    )


def generate_visits(stays: pl.LazyFrame, params: VisitParams = VisitParams()) -> pl.LazyFrame:
    """Visits (SPEC §1 `visits/`): every stay split into its local half-hour slots.

    Σ dwell_s over a stay's rows = end − start (seconds); zero-length pieces are left out.
    Rows keep the order of `stays`, each stay's pieces in time order.
    """
    check_resolution(params.res)
    stays = stays.select(
        pl.col("device").cast(pl.UInt64),
        plh3.latlng_to_cell("lat", "lon", params.res).cast(pl.UInt64).alias("cell"),
        pl.col("start").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("end").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
    ).filter(pl.col("end") > pl.col("start"))
    pieces = (
        cut_at_half_hours(stays, "start", "end")
        .select(
            "device",
            "cell",
            "start",
            ((pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6).alias("dwell_s"),
            pl.col("slot_start").alias("b"),
        )
        .filter(pl.col("dwell_s") > 0)
    )
    # slot and day type belong to the slot's UTC start `b` (local and UTC half hours
    # coincide): work them out once per distinct slot, not once per visit
    local = pl.col("b").dt.convert_time_zone(params.tz).dt.replace_time_zone(None)
    slots = pieces.select(pl.col("b").unique()).select(
        "b",
        slot_of(local).alias("slot"),
        daytype_expr(
            local.dt.date(), params.holidays, params.country, params.de_facto_holidays
        ).alias("daytype"),
    )
    return pieces.join(slots, on="b", how="left", maintain_order="left").select(
        "device", "cell", "start", "dwell_s", "slot", "daytype"
    )
