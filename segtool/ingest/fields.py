"""Vectorised parsers for the fields of a batch: numbers, coordinates (any CRS), bounding
boxes. Each returns nulls where a value cannot be read; the ingester turns nulls into
reject reasons."""

from __future__ import annotations

import numpy as np
import polars as pl

from segtool.errors import UsageError
from segtool.geo.crs import WGS84, parse_crs, to_wgs84

MIN_TIME = "1990-01-01"  # earlier (or later than MAX_TIME) is `time_out_of_range`
MAX_TIME = "2100-01-01"


def parse_float(values: pl.Series) -> pl.Series:
    """Numbers as Float64: numeric columns cast, text parsed (surrounding spaces allowed)."""
    if values.dtype.is_numeric():
        return values.cast(pl.Float64)
    return repair_float(values, _text(values).cast(pl.Float64, strict=False))


def float_expr(col: str, dtype: pl.DataType) -> pl.Expr:
    """The fast half of `parse_float` as an expression (run `repair_float` after it)."""
    if dtype.is_numeric():
        return pl.col(col).cast(pl.Float64)
    return pl.col(col).cast(pl.String).cast(pl.Float64, strict=False)


def repair_float(values: pl.Series, parsed: pl.Series) -> pl.Series:
    """Retry, with surrounding spaces stripped, the text values that did not parse."""
    if values.dtype.is_numeric() or parsed.null_count() == 0:
        return parsed
    values = _text(values)
    retry = parsed.is_null() & values.is_not_null() & (values.str.len_bytes() > 0)
    if not retry.any():
        return parsed
    idx = retry.arg_true()
    return parsed.scatter(idx, values.gather(idx).str.strip_chars().cast(pl.Float64, strict=False))


def _text(values: pl.Series) -> pl.Series:
    return values if values.dtype == pl.String else values.cast(pl.String)


def present(values: pl.Series) -> pl.Series:
    """True where the field holds something (not null, not empty or blank text)."""
    if values.dtype != pl.String:
        return values.is_not_null()
    out = values.is_not_null() & (values.str.len_bytes() > 0)
    maybe_blank = out & values.str.contains(r"^\s").fill_null(False)
    if maybe_blank.any():
        idx = maybe_blank.arg_true()
        out = out.scatter(idx, values.gather(idx).str.strip_chars().str.len_bytes() > 0)
    return out


def is_wgs84(crs: str | None) -> bool:
    if crs is None:
        return True
    return parse_crs(crs).equals(parse_crs(WGS84), ignore_axis_order=True)


def coordinates(
    lat_field: pl.Series, lon_field: pl.Series, crs: str | None
) -> tuple[pl.Series, pl.Series]:
    """(lat, lon) in WGS84 as Float64. With a projected `crs` the `lat` field holds the
    northing (y) and `lon` the easting (x). Unreadable values are null; points the CRS
    cannot transform come back as inf (and are then out of range)."""
    return to_lat_lon(parse_float(lat_field), parse_float(lon_field), crs)


def to_lat_lon(y: pl.Series, x: pl.Series, crs: str | None) -> tuple[pl.Series, pl.Series]:
    """Parsed northing/latitude `y` and easting/longitude `x` in `crs` → WGS84 (lat, lon)."""
    if is_wgs84(crs):
        return y.rename("lat"), x.rename("lon")
    both = (x.is_not_null() & y.is_not_null()).to_numpy()
    finite = both & (x.is_finite() & y.is_finite()).fill_null(False).to_numpy()
    lat = np.full(len(x), np.inf)
    lon = np.full(len(x), np.inf)
    if finite.any():
        la, lo = to_wgs84(x.to_numpy()[finite], y.to_numpy()[finite], crs)
        lat[finite], lon[finite] = la, lo
    nulls = np.flatnonzero(~both)
    return pl.Series("lat", lat).scatter(nulls, None), pl.Series("lon", lon).scatter(nulls, None)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """`min_lon,min_lat,max_lon,max_lat` (WGS84 degrees, the GeoJSON order) → a tuple."""
    if text is None or text == "":
        return None
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise UsageError(
            f"--bbox {text!r} is not four numbers",
            hint="give min_lon,min_lat,max_lon,max_lat in WGS84, e.g. 17.6,59.1,18.6,59.6",
        )
    min_lon, min_lat, max_lon, max_lat = box
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise UsageError(
            f"--bbox {text!r} is not min_lon,min_lat,max_lon,max_lat with min < max",
            hint="e.g. 17.6,59.1,18.6,59.6 for Stockholm",
        )
    return box  # type: ignore[return-value]


def in_range(lat: str = "lat", lon: str = "lon") -> pl.Expr:
    return pl.col(lat).is_between(-90.0, 90.0) & pl.col(lon).is_between(-180.0, 180.0)


def in_bbox(
    bbox: tuple[float, float, float, float] | None, lat: str = "lat", lon: str = "lon"
) -> pl.Expr:
    if bbox is None:
        return pl.lit(True)
    min_lon, min_lat, max_lon, max_lat = bbox
    return pl.col(lat).is_between(min_lat, max_lat) & pl.col(lon).is_between(min_lon, max_lon)


def time_in_range(col: str) -> pl.Expr:
    lo = pl.lit(MIN_TIME).str.to_datetime(time_unit="us", time_zone="UTC")
    hi = pl.lit(MAX_TIME).str.to_datetime(time_unit="us", time_zone="UTC")
    return (pl.col(col) >= lo) & (pl.col(col) < hi)
