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

import numpy as np
import polars as pl
import pyarrow as pa

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
    fixed = _fixed_width(col, values, sample, tz)
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


# Fixed-width shapes (the common vendor exports) are read straight from the strings' bytes
# with numpy: every character is checked, the fields are combined into microseconds since
# the epoch, and anything unusual (another width, a leap second, an offset beyond ±23:59,
# a day the month lacks) comes out null, to be read by the general cascade in `repair`.
_SHAPES = {
    "offset": r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d[+-]\d\d:\d\d$",
    "zulu": r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ$",
    "naive": r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d$",
}
_WIDTH = {"offset": 25, "zulu": 20, "naive": 19}
# every offset the general parser accepts (±00:00 to ±23:59; see the tests)
_OFFSET_MINUTES = {
    f"{sign}{h:02d}:{m:02d}": (1 if sign == "+" else -1) * (60 * h + m)
    for sign in "+-"
    for h in range(24)
    for m in range(60)
}


def _fixed_width(col: pl.Expr, values: pl.Series, sample: pl.Series, tz: str) -> pl.Expr | None:
    """An expression for a sample all in one fixed-width ISO shape, else None. Values of
    another shape come out null (and are repaired by the cascade)."""
    shape = next((k for k, pattern in _SHAPES.items() if sample.str.contains(pattern).all()), None)
    if shape is None:
        return None
    us = _read_fixed(values, shape)
    if shape == "naive":
        return _localise(pl.lit(us.cast(pl.Datetime("us"))), tz)
    return pl.lit(us.cast(UTC_US))


def _fixed_bytes(values: pl.Series, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The values' bytes as an (n, width) array, and which values have exactly `width`
    bytes (the other rows are zeros)."""
    arr = values.rechunk().to_arrow()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    n = len(arr)
    validity, offsets, data = arr.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    ok = np.diff(offs) == width
    if validity is not None:
        ok &= values.is_not_null().to_numpy()
    if ok.all() and offs[-1] - offs[0] == n * width:
        return raw[offs[0] : offs[-1]].reshape(n, width), ok
    out = np.zeros((n, width), dtype=np.uint8)
    at = offs[:-1][ok]
    out[ok] = raw[at[:, None] + np.arange(width)]
    return out, ok


def _month_tables() -> tuple[np.ndarray, np.ndarray]:
    """Indexed by year * 13 + month (years 0–9999, month 1–12; 0 is never valid): days
    from 1970-01-01 to the month's first day (proleptic Gregorian), and its length."""
    year = np.repeat(np.arange(10_000, dtype=np.int64), 13)
    month = np.tile(np.arange(13, dtype=np.int64), 10_000)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    length = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[month]
    length = length + (leap & (month == 2))
    # days_from_civil (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms")
    m = np.maximum(month, 1)
    y = year - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5
    first = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    return first, length


def _two_digit_table() -> np.ndarray:
    """Indexed by two bytes read as a little-endian uint16: their value if both are ASCII
    digits ("07" → 7), else 255."""
    table = np.full(1 << 16, 255, dtype=np.uint8)
    for tens in range(10):
        for ones in range(10):
            table[(48 + tens) | (48 + ones) << 8] = 10 * tens + ones
    return table


_MONTH_FIRST, _MONTH_LENGTH = _month_tables()
_TWO_DIGITS = _two_digit_table()
# two-digit field -> its first byte; a year is two of them
_FIELDS = {
    "century": 0,
    "year": 2,
    "month": 5,
    "day": 8,
    "hour": 11,
    "minute": 14,
    "second": 17,
    "off_h": 20,
    "off_m": 23,
}


def _read_fixed(values: pl.Series, shape: str) -> pl.Series:
    """`YYYY-MM-DD[T ]hh:mm:ss` (+ `±hh:mm` or `Z` by `shape`) → Int64 microseconds since
    the epoch (naive shapes: of the wall clock), null where a value is not exactly that."""
    width = _WIDTH[shape]
    b, ok = _fixed_bytes(values, width)
    n = len(b)

    def pair(at: int) -> np.ndarray:  # the value of the two digits at `at` (255: not digits)
        u16 = np.ndarray((n,), dtype="<u2", buffer=b, offset=at, strides=(width,))
        return _TWO_DIGITS[u16]

    v = {name: pair(at) for name, at in _FIELDS.items() if at < width}
    for name in v:
        ok &= v[name] < 100
    for at, char in ((4, "-"), (7, "-"), (13, ":"), (16, ":"), (19, "Z"), (22, ":")):
        if at < width and not (at == 19 and shape == "offset"):
            ok &= b[:, at] == ord(char)
    ok &= (b[:, 10] == ord("T")) | (b[:, 10] == ord(" "))
    year = v["century"].astype(np.int32) * 100 + v["year"]
    month, day = v["month"], v["day"]
    ok &= (month >= 1) & (month <= 12) & (day >= 1)
    month_at = np.where(ok, year * 13 + month, 0)
    ok &= day <= _MONTH_LENGTH[month_at]
    ok &= (v["hour"] <= 23) & (v["minute"] <= 59) & (v["second"] <= 59)
    clock = v["hour"].astype(np.int32) * 3_600 + v["minute"].astype(np.int32) * 60 + v["second"]
    if shape == "offset":
        ok &= (v["off_h"] <= 23) & (v["off_m"] <= 59)
        sign = b[:, 19]
        ok &= (sign == ord("+")) | (sign == ord("-"))
        offset = v["off_h"].astype(np.int32) * 3_600 + v["off_m"].astype(np.int32) * 60
        clock -= np.where(sign == ord("-"), -offset, offset)
    us = ((_MONTH_FIRST[month_at] + (day - 1)) * 86_400 + clock) * 1_000_000
    return pl.Series(values.name, pa.array(us, mask=~ok), dtype=pl.Int64)


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
