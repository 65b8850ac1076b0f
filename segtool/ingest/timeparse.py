"""Times as users deliver them → `Datetime("us", "UTC")`, vectorised; null where unparseable.

Accepted, per value (a column may mix them):

- **Epoch numbers** (integer or decimal): the unit is read from the magnitude unless given
  (`unit="s" | "ms" | "us" | "ns"`): |v| < 1e11 → seconds, < 1e14 → milliseconds,
  < 1e17 → microseconds, else nanoseconds. For dates after 1973 these ranges do not overlap.
- **ISO 8601 with a zone**: `2024-03-04T12:34:56+01:00`, `…+0100`, `…+01`, `…Z`, with or
  without fractional seconds, `T` or a space between date and time.
- **ISO 8601 without a zone** (naive): read as local time in `tz` (default
  Europe/Stockholm). At the autumn DST change an ambiguous local time is taken as the
  earlier instant (summer time); a local time that does not exist (the spring gap) is
  unparseable.
- Already-typed columns (Parquet input): Datetime (naive → `tz`, aware → UTC), Date
  (local midnight), integers and floats (epoch as above).

Speed: the format is chosen on a sample of the column and applied to all values at once;
only the values it fails on go through the slower cascade of normalisation and formats.
"""

from __future__ import annotations

import polars as pl

DEFAULT_TZ = "Europe/Stockholm"
UTC_US = pl.Datetime("us", "UTC")

# Multipliers to microseconds, and the magnitude limits of the automatic unit detection.
_TO_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
_AUTO_LIMITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))

# (format, has_zone): tried in this order on the sample; the rest serve as the cascade.
_FORMATS: tuple[tuple[str, bool], ...] = (
    ("%Y-%m-%dT%H:%M:%S%.f%z", True),
    ("%Y-%m-%d %H:%M:%S%.f%z", True),
    ("%Y-%m-%dT%H:%M:%S%.f", False),
    ("%Y-%m-%d %H:%M:%S%.f", False),
)
# After normalisation (T separator, Z → +00:00, +hh → +hh:00) these cover the rest.
_CASCADE: tuple[tuple[str, bool], ...] = (
    ("%Y-%m-%dT%H:%M:%S%.f%z", True),
    ("%Y-%m-%dT%H:%M%z", True),
    ("%Y%m%dT%H%M%S%z", True),
    ("%Y-%m-%dT%H:%M:%S%.f", False),
    ("%Y-%m-%dT%H:%M", False),
    ("%Y%m%dT%H%M%S", False),
)

EPOCH_UNITS = ("auto", "s", "ms", "us", "ns")


def parse_times(values: pl.Series, tz: str = DEFAULT_TZ, unit: str = "auto") -> pl.Series:
    """`values` as Datetime(us, UTC); null where a value is empty or cannot be read."""
    expr = time_expr(pl.col(values.name), values, tz, unit)
    parsed = values.to_frame().select(expr.alias(values.name)).to_series()
    return repair(values, parsed, tz, unit)


def time_expr(col: pl.Expr, values: pl.Series, tz: str = DEFAULT_TZ, unit: str = "auto") -> pl.Expr:
    """An expression parsing `col` (whose data are `values`) with the one format that
    reads a sample of `values` best. Run `repair` afterwards for the values it missed."""
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        out = col if dtype.time_zone else _localise(col, tz)
        return out.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Date:
        return _localise(col.cast(pl.Datetime("us")), tz)
    if dtype.is_numeric():
        return epoch_expr(col, unit, integer=dtype.is_integer())
    if dtype != pl.String:
        col = col.cast(pl.String)
        values = values.cast(pl.String)
    sample = values.drop_nulls().head(1000)
    sample = sample.filter(sample.str.len_bytes() > 0).head(200)
    if sample.len() == 0:
        return pl.lit(None, dtype=UTC_US)
    if _looks_numeric(sample):
        if sample.cast(pl.Int64, strict=False).null_count() == 0:
            return epoch_expr(col.cast(pl.Int64, strict=False), unit, integer=True)
        return epoch_expr(col.cast(pl.Float64, strict=False), unit, integer=False)
    fixed = _fixed_width(col, sample, tz)
    if fixed is not None:
        return fixed
    frame = sample.to_frame("v")
    best = max(
        _FORMATS,
        key=lambda fz: (
            frame.select(_with_format(pl.col("v"), fz[0], fz[1], tz))
            .to_series()
            .is_not_null()
            .sum()
        ),
    )
    return _with_format(col, best[0], best[1], tz)


# Fixed-width shapes (the common vendor exports) parse several times faster by slicing: the
# date-time part has polars' fast fixed-format path, and the offset (few distinct values)
# is looked up in a table of every offset the general parser accepts (±00:00 to ±23:59).
_SHAPES = {
    "offset": r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d[+-]\d\d:\d\d$",
    "zulu": r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ$",
    "naive": r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d$",
}
_OFFSET_MINUTES = {
    f"{sign}{h:02d}:{m:02d}": (1 if sign == "+" else -1) * (60 * h + m)
    for sign in "+-"
    for h in range(24)
    for m in range(60)
}


def _fixed_width(col: pl.Expr, sample: pl.Series, tz: str) -> pl.Expr | None:
    """An expression for a sample all in one fixed-width ISO shape, else None. Values of
    another shape come out null (and are repaired by the cascade)."""
    shape = next((k for k, pattern in _SHAPES.items() if sample.str.contains(pattern).all()), None)
    if shape is None:
        return None
    sep = sample[0][10]
    naive = col.str.head(19).str.to_datetime(
        f"%Y-%m-%d{sep}%H:%M:%S", strict=False, time_unit="us", cache=False
    )
    if shape == "naive":
        return pl.when(col.str.len_bytes() == 19).then(_localise(naive, tz))
    if shape == "zulu":
        ok = (col.str.len_bytes() == 20) & (col.str.tail(1) == "Z")
        return pl.when(ok).then(naive.dt.replace_time_zone("UTC"))
    minutes = col.str.tail(6).replace_strict(_OFFSET_MINUTES, default=None, return_dtype=pl.Int64)
    return pl.when(col.str.len_bytes() == 25).then(
        (naive - pl.duration(minutes=minutes)).dt.replace_time_zone("UTC")
    )


def repair(
    values: pl.Series, parsed: pl.Series, tz: str = DEFAULT_TZ, unit: str = "auto"
) -> pl.Series:
    """Parse again, with the full cascade, the text values `parsed` left null."""
    if values.dtype != pl.String or parsed.null_count() == 0:
        return parsed
    failed = parsed.is_null() & values.is_not_null() & (values.str.len_bytes() > 0)
    if not failed.any():
        return parsed
    idx = failed.arg_true()
    return parsed.scatter(idx, _cascade(values.gather(idx), tz, unit))


def epoch_expr(v: pl.Expr, unit: str = "auto", *, integer: bool) -> pl.Expr:
    """Numbers since 1970-01-01 UTC as Datetime(us, UTC); unit by magnitude when 'auto'."""
    if unit not in EPOCH_UNITS:
        raise ValueError(f"unknown epoch unit {unit!r}")
    if integer:
        i = v.cast(pl.Int64)
        a = i.abs()
        if unit == "auto":
            us = (
                pl.when(a < int(1e11))
                .then(i * 1_000_000)
                .when(a < int(1e14))
                .then(i * 1_000)
                .when(a < int(1e17))
                .then(i)
                .otherwise(i // 1_000)
            )
        else:
            us = i // 1_000 if unit == "ns" else i * int(_TO_US[unit])
    else:
        f = v.cast(pl.Float64)
        if unit == "auto":
            a = f.abs()
            factor = (
                pl.when(a < 1e11)
                .then(1e6)
                .when(a < 1e14)
                .then(1e3)
                .when(a < 1e17)
                .then(1.0)
                .otherwise(1e-3)
            )
            us_f = f * factor
        else:
            us_f = f * _TO_US[unit]
        # Out-of-range and non-finite values become null rather than wrapping around.
        us = pl.when(us_f.is_finite() & (us_f.abs() < 9.2e18)).then(us_f.round(0)).cast(pl.Int64)
    return pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC")


def epoch_to_utc(values: pl.Series, unit: str = "auto") -> pl.Series:
    """Series version of `epoch_expr`."""
    return (
        values.to_frame("v")
        .select(epoch_expr(pl.col("v"), unit, integer=values.dtype.is_integer()))
        .to_series()
        .rename(values.name)
    )


def _localise(naive: pl.Expr, tz: str) -> pl.Expr:
    return naive.dt.replace_time_zone(
        tz, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")


def _with_format(col: pl.Expr, fmt: str, zoned: bool, tz: str) -> pl.Expr:
    parsed = col.str.to_datetime(fmt, strict=False, time_unit="us")
    if zoned:
        return parsed.dt.convert_time_zone("UTC")
    return _localise(parsed, tz)


def _parse_with(values: pl.Series, fmt: str, zoned: bool, tz: str) -> pl.Series:
    return values.to_frame("v").select(_with_format(pl.col("v"), fmt, zoned, tz)).to_series()


def _epoch_strings(values: pl.Series, unit: str) -> pl.Series:
    as_int = values.cast(pl.Int64, strict=False)
    out = epoch_to_utc(as_int, unit)
    missing = as_int.is_null() & values.is_not_null()
    if missing.any():
        idx = missing.arg_true()
        floats = values.gather(idx).str.strip_chars().cast(pl.Float64, strict=False)
        out = out.scatter(idx, epoch_to_utc(floats, unit))
    return out


def _looks_numeric(sample: pl.Series) -> bool:
    return sample.str.strip_chars().cast(pl.Float64, strict=False).null_count() == 0


def _cascade(values: pl.Series, tz: str, unit: str) -> pl.Series:
    s = (
        values.str.strip_chars()
        .str.replace(r"^(\d{4}-\d\d-\d\d)[ t]", "${1}T")
        .str.replace(r"\s+([+-]\d\d(:?\d\d)?|[Zz])$", "${1}")
        .str.replace(r"[Zz]$", "+00:00")
        .str.replace(r"([+-]\d\d)$", "${1}:00")
    )
    out = pl.Series(values.name, [None] * values.len(), dtype=UTC_US)
    for fmt, zoned in _CASCADE:
        todo = out.is_null()
        if not todo.any():
            return out
        idx = todo.arg_true()
        out = out.scatter(idx, _parse_with(s.gather(idx), fmt, zoned, tz))
    todo = out.is_null()
    if todo.any():
        idx = todo.arg_true()
        sub = s.gather(idx)
        numeric = sub.str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
        nums = pl.select(pl.when(numeric).then(sub).otherwise(None)).to_series()
        out = out.scatter(idx, _epoch_strings(nums, unit))
    return out
