"""The counts table of `segtool ingest population`: read it and make it long.

`read_table` reads a CSV (any of , ; tab |, optionally .gz, UTF-8 or Windows-1252) or
Parquet file, or a geometry file's attributes, keeping each row's line number;
`counts_long` turns a long (area, group, count) or wide (area, one column per group) table
into long rows with each row's own reason for rejection (empty id, unparseable or
negative count). The column names are found among the usual ones (`GROUP_NAMES`,
`COUNT_NAMES`) unless given.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError
from segtool.geo.grid import MAX_RES, MIN_RES
from segtool.ingest.geofile import (
    GeoLayer,
    looks_like_geofile,
    read_geofile,
)

GROUP_NAMES = ("group", "grupp")
COUNT_NAMES = ("count", "n", "population", "antal", "value", "persons", "pop")
# Columns a wide table may carry besides its groups: never taken as groups automatically.
TOTAL_NAMES = {"total", "totalt", "summa", "sum", "all", "alla"}
NOT_GROUPS = {
    "fid",
    "id",
    "objectid",
    "ogc_fid",
    "x",
    "y",
    "lat",
    "lon",
    "lng",
    "latitude",
    "longitude",
    "easting",
    "northing",
    "shape_area",
    "shape_length",
    "shape_leng",
    "geometry",
    "geom",
}
LINE = "__line"


@dataclass(frozen=True)
class PopulationParams:
    """Options of `segtool ingest population` (serialised into the manifests)."""

    area_id: str | None = None  # id field of the area polygons
    table_id: str | None = None  # id column of the counts table (default: area_id)
    group: str | None = None  # long table: the group column
    count: str | None = None  # long table: the count column
    wide: bool | None = None  # None: auto-detect
    groups: tuple[str, ...] | None = None  # wide table: the group columns (default: auto)
    res: int = 9
    layer: str | None = None
    crs: str | None = None  # CRS of a geometry file declaring none, or of --x/--y
    x: str | None = None  # table with point coordinates: easting/longitude column
    y: str | None = None  # ... northing/latitude column

    def __post_init__(self) -> None:
        if not MIN_RES <= self.res <= MAX_RES:
            raise UsageError(f"--res {self.res} is outside {MIN_RES}–{MAX_RES}")
        if (self.x is None) != (self.y is None):
            raise UsageError("--x and --y go together: the two coordinate columns of points")


# --- reading the counts table ------------------------------------------------------------


@dataclass
class Table:
    """A counts table as read: original columns, and the 1-based line of each row."""

    path: Path
    frame: pl.DataFrame  # original columns (+ LINE)
    decimal_comma: bool = False
    layer: GeoLayer | None = None  # when FILE is a geometry file
    notes: list[str] = field(default_factory=list)


def _sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    return max(counts, key=lambda s: (counts[s], s == ","))


def read_table(path: str | Path, *, layer: str | None = None, crs: str | None = None) -> Table:
    """Read FILE: a CSV/Parquet table or a geometry file (its attributes)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if looks_like_geofile(path):
        geo = read_geofile(path, layer=layer, crs=crs, all_fields=True)
        frame = geo.attributes.with_columns(
            pl.Series(LINE, np.arange(1, len(geo) + 1), dtype=pl.UInt64)
        )
        return Table(path, frame, layer=geo)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pl.read_parquet(path)
        except Exception as e:
            raise InputError(f"{path} is not a readable Parquet table: {e}") from None
        if frame.height == 0:
            raise InputError(f"{path} has no rows")
        frame = frame.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.UInt64))
        return Table(path, frame)
    return _read_csv(path)


def _read_csv(path: Path) -> Table:
    notes = []
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise InputError(f"{path} is not a complete gzip file: {e}") from None
    if not raw.strip():
        raise InputError(f"{path} is empty")
    if b"\x00" in raw[:65536]:
        raise InputError(f"{path} is not a text table (CSV) nor Parquet: it holds binary data")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        notes.append(f"{path} is not UTF-8; read it as Windows-1252")
    sep = _sniff_separator(text.split("\n", 1)[0])
    try:
        frame = pl.read_csv(io.StringIO(text), separator=sep, infer_schema=False)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path} is not a readable CSV table: {msg}") from None
    if frame.height == 0:
        raise InputError(f"{path} has a header but no rows")
    # Header is line 1, so row i (0-based) is line i + 2 (no multi-line fields assumed).
    frame = frame.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.UInt64))
    return Table(path, frame, decimal_comma=sep == ";", notes=notes)


def count_expr(name: str, dtype: pl.DataType, decimal_comma: bool) -> pl.Expr:
    """A count column as Float64: null where it is not a number (NaN and ±inf included)."""
    if dtype.is_numeric():
        value = pl.col(name).cast(pl.Float64)
    else:
        s = pl.col(name).cast(pl.String).str.strip_chars().str.replace_all(r"[\s\u00a0]", "")
        if decimal_comma:
            s = (
                pl.when(s.str.contains(r"^[-+]?\d*,\d+$"))
                .then(s.str.replace(",", "."))
                .otherwise(s)
            )
        value = s.cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value).otherwise(None)


def _find(columns: list[str], wanted: str | None, candidates, what: str, path) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise InputError(
                f"{path} has no column {wanted!r} ({what}); its columns are: {', '.join(columns)}"
            )
        return wanted
    lower = {c.lower(): c for c in columns}
    return next((lower[c] for c in candidates if c in lower), None)


@dataclass
class Counts:
    """A counts table in long form, before checking its area ids against the polygons."""

    long: (
        pl.DataFrame
    )  # LINE, unit (String, or null without ids), group, count (Float64, may be null)
    row_reason: pl.DataFrame  # LINE, reason (count/id problems of the row, null if none)
    groups: list[str]
    shape: str  # "long" | "wide"
    notes: list[str]


def counts_long(
    table: Table, key: str | None, params: PopulationParams, exclude: tuple[str, ...] = ()
) -> Counts:
    """Long (unit, group, count) rows of a long or wide table, with each row's own reason
    for rejection (empty id, unparseable or negative count) where it has one.

    `key` is the id column (None for points); `exclude` names columns that are never groups.
    """
    frame, path = table.frame, table.path
    columns = [c for c in frame.columns if c != LINE]
    notes: list[str] = []
    group_col = _find(columns, params.group, GROUP_NAMES, "--group", path)
    count_col = _find(columns, params.count, COUNT_NAMES, "--count", path)
    wide = params.wide
    if wide is None:
        wide = not (group_col and count_col) or params.groups is not None
    unit = (
        pl.col(key).cast(pl.String).str.strip_chars().alias("unit")
        if key
        else pl.lit(None, pl.String).alias("unit")
    )
    # evaluated on frames that hold the "unit" column made above
    empty_id = pl.col("unit").is_null() | (pl.col("unit") == "") if key else pl.lit(False)

    if not wide:
        if group_col is None or count_col is None:
            raise UsageError(
                f"{path}: a long table needs a group and a count column "
                f"(columns: {', '.join(columns)})",
                hint="name them with --group COL --count COL, or use --wide",
            )
        long = frame.select(
            LINE,
            unit,
            pl.col(group_col).cast(pl.String).str.strip_chars().alias("group"),
            count_expr(count_col, frame.schema[count_col], table.decimal_comma).alias("count"),
        )
        bad = long.select(
            LINE,
            pl.when(empty_id)
            .then(pl.lit("empty_area_id"))
            .when(pl.col("group").fill_null("") == "")
            .then(pl.lit("empty_group"))
            .when(pl.col("count").is_null())
            .then(pl.lit("unparseable_count"))
            .when(pl.col("count") < 0)
            .then(pl.lit("negative_count"))
            .otherwise(None)
            .alias("reason"),
        )
        groups = sorted(long["group"].drop_nulls().unique().to_list())
        return Counts(long, bad, groups, "long", notes)

    groups = list(params.groups) if params.groups else _wide_groups(table, (key, *exclude), notes)
    missing = [g for g in groups if g not in columns]
    if missing:
        raise InputError(
            f"{path} has no column {', '.join(map(repr, missing))}; its columns are: "
            f"{', '.join(columns)}"
        )
    if not groups:
        raise InputError(
            f"{path}: found no group columns with counts (columns: {', '.join(columns)})",
            hint="name them with --groups A,B,C, or give a long table with --group and --count",
        )
    values = frame.select(
        LINE,
        unit,
        *(count_expr(g, frame.schema[g], table.decimal_comma).alias(g) for g in groups),
    )
    bad = values.select(
        LINE,
        pl.when(empty_id)
        .then(pl.lit("empty_area_id"))
        .when(pl.any_horizontal(pl.col(g).is_null() for g in groups))
        .then(pl.lit("unparseable_count"))
        .when(pl.any_horizontal(pl.col(g) < 0 for g in groups))
        .then(pl.lit("negative_count"))
        .otherwise(None)
        .alias("reason"),
    )
    long = values.unpivot(
        index=[LINE, "unit"], on=groups, variable_name="group", value_name="count"
    )
    return Counts(long, bad, groups, "wide", notes)


def _wide_groups(table: Table, exclude: tuple, notes: list[str]) -> list[str]:
    """Group columns of a wide table: every column (but the id) that holds numbers."""
    frame = table.frame
    groups, skipped = [], []
    for name, dtype in frame.schema.items():
        if name == LINE or name in exclude or name.lower() in NOT_GROUPS:
            continue
        if name.lower() in TOTAL_NAMES:
            skipped.append(name)
            continue
        if dtype.is_numeric():
            groups.append(name)
            continue
        if dtype != pl.String:
            continue
        text = frame[name].str.strip_chars()
        text = text.filter(text.is_not_null() & (text != ""))
        parsed = frame.select(count_expr(name, pl.String, table.decimal_comma))[name]
        if text.len() and parsed.drop_nulls().len() >= 0.5 * text.len():
            groups.append(name)
    if skipped:
        notes.append(f"left out total column(s) {', '.join(skipped)} (not a group)")
    if groups:
        notes.append(f"wide table: groups {', '.join(groups)}")
    return groups
