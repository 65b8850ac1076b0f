"""Read a table of counts (CSV or Parquet, long or wide) into the canonical long frame
the residential indices take: columns `unit`, `group` (an `Enum` of the sorted group
labels, a string type), `n` (Float64) and, with `within`, `stratum` (String); one row per
(unit, group), sorted by unit then group.

Long input has one row per unit and group with a count (as R `segregation` takes it);
wide input (`wide=True`) one row per unit and one count column per group. Column names
are auto-detected when not given (see `UNIT_NAMES`, `GROUP_NAMES`, `COUNT_NAMES`) and
the choice is reported. Nothing is dropped silently: duplicate (unit, group) rows are
summed, units whose counts are all zero and groups with no members are dropped, each
with a note and a count; everything else that is wrong is an `InputError` that names
the column and the first offending line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError

UNIT_NAMES = (
    "unit", "unit_id", "area", "area_id", "tract", "tract_id", "geoid", "deso", "regso",
    "zone", "cell", "h3", "hex", "neighbourhood", "neighborhood", "school", "place",
    "region", "id",
)  # fmt: skip
GROUP_NAMES = (
    "group", "grp", "category", "class", "race", "ethnicity", "origin", "quartile",
    "income_group", "type",
)  # fmt: skip
COUNT_NAMES = (
    "n", "count", "counts", "freq", "frequency", "population", "pop", "persons", "people",
    "number", "value", "weight", "total",
)  # fmt: skip
TOTAL_NAMES = ("total", "tot", "sum", "all", "population", "pop")

CANONICAL = ("unit", "group", "n")


@dataclass(frozen=True)
class Columns:
    """Which input columns were used (and which were auto-detected); goes in the manifest."""

    unit: str
    group: str | None  # long format
    count: str | None  # long format
    groups: tuple[str, ...] = ()  # wide format: one count column per group
    within: str | None = None
    wide: bool = False
    detected: tuple[str, ...] = ()  # roles that were auto-detected

    def describe(self) -> str:
        def tag(role: str, name: str) -> str:
            return f"{role}={name!r}" + (" (detected)" if role in self.detected else "")

        parts = [tag("unit", self.unit)]
        if self.wide:
            parts.append(tag("groups", ", ".join(self.groups)))
        else:
            parts += [tag("group", self.group or ""), tag("count", self.count or "")]
        if self.within:
            parts.append(f"within={self.within!r}")
        return "columns: " + ", ".join(parts)


@dataclass
class Counts:
    """A validated table of counts and what happened on the way in."""

    frame: pl.DataFrame  # canonical long frame
    columns: Columns
    rows_in: int  # data rows read (long: rows; wide: rows × group columns)
    duplicate_rows: int = 0  # rows summed into another row of the same (unit, group)
    zero_units: int = 0  # units dropped because all their counts are zero
    zero_unit_rows: int = 0  # input rows of those units
    zero_groups: tuple[str, ...] = ()
    zero_group_rows: int = 0
    excluded_columns: tuple[str, ...] = ()  # wide: a total column left out
    notes: list[str] = field(default_factory=list)
    units: int = 0  # distinct units kept
    groups: list[str] = field(default_factory=list)  # groups kept, sorted

    @property
    def rows_dropped(self) -> int:
        return self.zero_unit_rows + self.zero_group_rows

    def summary(self) -> dict:
        return {
            "rows_in": self.rows_in,
            "duplicate_rows_summed": self.duplicate_rows,
            "zero_total_units_dropped": self.zero_units,
            "zero_total_unit_rows_dropped": self.zero_unit_rows,
            "empty_groups_dropped": list(self.zero_groups),
            "rows_used": self.rows_in - self.rows_dropped,
            "units": self.units,
            "groups": self.groups,
        }


# --------------------------------------------------------------------------------------
# Files


def _kind(path: Path) -> str:
    if path.is_dir():
        return "parquet-dir"
    suffix = "".join(s.lower() for s in path.suffixes[-2:])
    if suffix.endswith((".parquet", ".pq")):
        return "parquet"
    if suffix.endswith((".csv", ".csv.gz", ".txt")):
        return "csv"
    if suffix.endswith((".tsv", ".tab")):
        return "tsv"
    raise InputError(
        f"cannot tell the format of {str(path)!r}",
        hint="use a .csv, .tsv or .parquet file (or a folder of Parquet files)",
    )


def _scan(path: Path, kind: str, strings: list[str] | None = None) -> pl.LazyFrame:
    if kind == "parquet":
        return pl.scan_parquet(path)
    if kind == "parquet-dir":
        if not any(path.rglob("*.parquet")):
            raise InputError(f"the folder {str(path)!r} holds no Parquet files")
        return pl.scan_parquet(str(path / "**" / "*.parquet"), hive_partitioning=True)
    return pl.scan_csv(
        path,
        separator="\t" if kind == "tsv" else ",",
        schema_overrides=dict.fromkeys(strings or [], pl.String),
        infer_schema_length=10_000,
    )


def read_counts(
    path: str | Path,
    *,
    unit: str | None = None,
    group: str | None = None,
    count: str | None = None,
    wide: bool = False,
    within: str | None = None,
) -> Counts:
    """Read and validate a counts table (see the module doc). In wide format `group` may
    name the group columns, comma-separated (default: every column but unit/within)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {str(path)!r}")
    kind = _kind(path)
    try:
        schema = _scan(path, kind).collect_schema()
    except pl.exceptions.NoDataError as e:
        raise InputError(f"{str(path)!r} is empty (no header, no rows)") from e
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"cannot read {str(path)!r}: {e}") from e
    cols = detect_columns(
        dict(schema), unit=unit, group=group, count=count, wide=wide, within=within
    )
    # CSV: read every used column as text, so that ids keep leading zeros and a bad count
    # becomes a clear error naming its line instead of a parser failure.
    used = [cols.unit, *([cols.group, cols.count] if not wide else cols.groups)]
    used += [cols.within] if cols.within else []
    strings = used if kind in ("csv", "tsv") else None
    try:
        frame = _scan(path, kind, strings).select(used).collect()
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"cannot read {str(path)!r}: {e}") from e
    first_line = 2 if kind in ("csv", "tsv") else 1  # CSV: line 1 is the header
    return canonicalize(frame, cols, first_line=first_line)


# --------------------------------------------------------------------------------------
# Column detection


def _find(columns: list[str], candidates: tuple[str, ...], taken: set[str]) -> str | None:
    lower = {c.lower(): c for c in columns if c not in taken}
    for name in candidates:
        if name in lower:
            return lower[name]
    return None


def detect_columns(
    schema: dict[str, pl.DataType],
    *,
    unit: str | None = None,
    group: str | None = None,
    count: str | None = None,
    wide: bool = False,
    within: str | None = None,
) -> Columns:
    """Resolve the unit/group/count (or wide group) columns, auto-detecting missing ones."""
    columns = list(schema)
    listed = ", ".join(columns)
    for role, name in (("--unit", unit), ("--count", count), ("--within", within)):
        if name is not None and name not in columns:
            raise InputError(
                f"{role} column {name!r} is not in the table", hint=f"its columns are: {listed}"
            )
    detected: list[str] = []
    taken = {c for c in (unit, group, count, within) if c}

    if wide:
        if count is not None:
            raise UsageError("--count does not apply with --wide (each group column holds counts)")
        if unit is None:
            unit = _find(columns, UNIT_NAMES, taken) or columns[0]
            detected.append("unit")
        if group is not None:
            groups = tuple(g.strip() for g in group.split(",") if g.strip())
            missing = [g for g in groups if g not in columns]
            if missing:
                raise InputError(
                    f"group column {', '.join(map(repr, missing))} is not in the table",
                    hint=f"its columns are: {listed}",
                )
        else:
            groups = tuple(c for c in columns if c not in (unit, within))
            detected.append("groups")
        text = [g for g in groups if not (schema[g].is_numeric() or schema[g] == pl.Null)]
        if text:
            raise InputError(
                f"with --wide every group column holds counts, but {', '.join(map(repr, text))} is text",
                hint="name the group columns with --group A,B,C",
            )
        if len(groups) < 1:
            raise InputError("with --wide the table needs count columns besides the unit")
        return Columns(unit, None, None, groups, within, True, tuple(detected))

    if group is not None and group not in columns:
        raise InputError(
            f"--group column {group!r} is not in the table", hint=f"its columns are: {listed}"
        )
    if count is None:
        count = _find(columns, COUNT_NAMES, taken | {unit, group} - {None})
        if count is None:
            numeric = [c for c in columns if c not in taken and schema[c].is_numeric()]
            if len(numeric) == 1:
                count = numeric[0]
        if count is None:
            raise InputError(
                "cannot tell which column holds the counts",
                hint=f"pass --count COL (columns: {listed})",
            )
        detected.append("count")
        taken.add(count)
    if unit is None:
        unit = _find(columns, UNIT_NAMES, taken)
        if unit is not None:
            detected.append("unit")
            taken.add(unit)
    if group is None:
        group = _find(columns, GROUP_NAMES, taken)
        if group is not None:
            detected.append("group")
            taken.add(group)
    rest = [c for c in columns if c not in taken]
    if unit is None and group is None and len(rest) == 2:
        unit, group = rest
        detected += ["unit", "group"]
    elif unit is None and group is not None and len(rest) == 1:
        unit = rest[0]
        detected.append("unit")
    elif group is None and unit is not None and len(rest) == 1:
        group = rest[0]
        detected.append("group")
    if unit is None or group is None:
        role = "--unit" if unit is None else "--group"
        raise InputError(
            f"cannot tell which column is the {role[2:]}",
            hint=f"pass {role} COL (columns: {listed})",
        )
    if len({unit, group, count, within} - {None}) < 3 + (within is not None):
        raise UsageError("unit, group, count (and --within) must be different columns")
    return Columns(unit, group, count, (), within, False, tuple(detected))


# --------------------------------------------------------------------------------------
# Validation into the canonical frame


def _where(frame: pl.DataFrame, mask: pl.Expr) -> tuple[int, int]:
    """How many rows match `mask`, and the line of the first."""
    hit = frame.filter(mask)
    return hit.height, (int(hit["_line"][0]) if hit.height else -1)


def canonicalize(frame: pl.DataFrame, cols: Columns, *, first_line: int = 1) -> Counts:
    """Validate a raw frame with the columns named in `cols` into the canonical frame.

    `first_line` is the line (CSV) or row number of the first data row, used in messages.
    """
    frame = frame.with_row_index("_line", offset=first_line)
    rows_read = frame.height
    if rows_read == 0:
        raise InputError("the table has no data rows")
    excluded: tuple[str, ...] = ()
    notes: list[str] = []
    keys = ["_line", cols.unit] + ([cols.within] if cols.within else [])
    if cols.wide:
        groups, excluded = _drop_total_column(frame, cols)
        if excluded:
            notes.append(
                f"left out column {excluded[0]!r}: it is the sum of the group columns, not a group"
            )
        long = frame.unpivot(index=keys, on=list(groups), variable_name="group", value_name="n")
    else:
        long = frame.select(*keys, pl.col(cols.group).alias("group"), pl.col(cols.count).alias("n"))
    long = long.rename({cols.unit: "unit"})
    if cols.within:
        long = long.rename({cols.within: "stratum"}).with_columns(pl.col("stratum").cast(pl.String))
    long = long.with_columns(pl.col("group").cast(pl.String))
    count_name = "the group columns" if cols.wide else repr(cols.count)
    long = long.with_columns(n=_parse_counts(long, count_name))
    rows_in = long.height

    # Checks run on cheap summaries first (null counts, one numpy pass over the counts);
    # only a table that fails one is searched for the first offending line.
    for col, label in (("unit", cols.unit), ("group", cols.group), ("stratum", cols.within)):
        if label is None or col not in long.columns or not long[col].null_count():
            continue
        k, line = _where(long, pl.col(col).is_null())
        raise InputError(f"{k} rows have no value in column {label!r} (first on line {line})")
    if long["n"].null_count():
        k, line = _where(long, pl.col("n").is_null())
        raise InputError(f"{k} rows have no count in {count_name} (first on line {line})")
    values = long["n"].to_numpy()
    if values.size and not (np.isfinite(values).all() and values.min() >= 0):
        k, line = _where(long, pl.col("n").is_nan() | pl.col("n").is_infinite())
        if k:
            raise InputError(
                f"{k} counts in {count_name} are NaN or infinite (first on line {line})"
            )
        k, line = _where(long, pl.col("n") < 0)
        bad = long.filter(pl.col("n") < 0).row(0, named=True)
        raise InputError(
            f"{k} counts in {count_name} are negative (first on line {line}: "
            f"unit {bad['unit']!r}, group {bad['group']!r}, {bad['n']:g})"
        )

    # Sort by unit, then by group within unit, stably (so duplicates keep line order).
    # Multi-key string sorts are slow in polars: sort by unit alone when needed, then
    # by an integer key (unit run × K + group code), skipping either sort when the file
    # is already in order. Group labels are hashed once, into an Enum kept from here on.
    prev_u = pl.col("unit").shift(1)
    if not long.select((pl.col("unit") >= prev_u).fill_null(True).all()).item():
        long = long.sort("unit", maintain_order=True)
    all_groups = sorted(long["group"].unique().to_list())
    long = long.with_columns(pl.col("group").cast(pl.Enum(all_groups)))
    long = long.with_columns(
        _uid=pl.col("unit").rle_id(),
        _key=pl.col("unit").rle_id().cast(pl.UInt64) * len(all_groups)
        + pl.col("group").to_physical().cast(pl.UInt64),
    )
    if not long.select((pl.col("_key") >= pl.col("_key").shift(1)).fill_null(True).all()).item():
        long = long.sort("_key", maintain_order=True)
    same_unit = pl.col("_uid") == pl.col("_uid").shift(1)
    same_cell = (pl.col("_key") == pl.col("_key").shift(1)).fill_null(False)
    if cols.within:
        clash = long.filter(same_unit & (pl.col("stratum") != pl.col("stratum").shift(1)))
        if clash.height:
            raise InputError(
                f"unit {clash['unit'][0]!r} lies in more than one stratum of {cols.within!r} "
                f"(line {clash['_line'][0]})",
                hint="--within needs every unit nested in one stratum (e.g. tracts in districts)",
            )
    dup = long.select(same_cell.alias("d"))["d"]
    n_dup = int(dup.sum())
    rows = None  # input rows behind each row (1 unless duplicates were summed)
    if n_dup:
        first = long.filter(dup)["_line"][0]
        agg = [pl.col("n").sum(), pl.col("unit").first(), pl.col("group").first()]
        agg += [pl.col("stratum").first()] if cols.within else []
        long = (
            long.with_columns(_cell=(~dup).cum_sum())
            .group_by("_cell", maintain_order=True)
            .agg(pl.col("_uid").first(), pl.len().alias("_rows"), *agg)
        )
        rows = long["_rows"].to_numpy()
        notes.append(
            f"summed {_plural(n_dup, 'duplicate (unit, group) row')} into their first occurrence "
            f"(first duplicate on line {first})"
        )

    # Units whose counts are all zero (sorted by unit: totals by run id, no hashing).
    uid = long["_uid"].to_numpy()
    n = long["n"].to_numpy()
    totals = np.bincount(uid, weights=n)
    zero_units = int(np.count_nonzero(totals == 0))
    n_units = len(totals) - zero_units
    zero_unit_rows = 0
    if zero_units:
        drop = totals[uid] == 0
        zero_unit_rows = int(rows[drop].sum()) if rows is not None else int(drop.sum())
        keep = ~drop
        long, n = long.filter(pl.Series(keep)), n[keep]
        rows = None if rows is None else rows[keep]
        notes.append(
            f"dropped {_plural(zero_units, 'unit')} whose counts are all zero "
            f"({_plural(zero_unit_rows, 'row')})"
        )
    # Groups with no members (by group code: no hashing of labels).
    code = long["group"].to_physical().to_numpy()
    k = len(all_groups)
    sums = np.bincount(code, weights=n, minlength=k)
    present = np.bincount(code, minlength=k) > 0  # groups left with a row
    empty = present & (sums == 0)
    zero_groups = tuple(g for g, e in zip(all_groups, empty, strict=True) if e)
    zero_group_rows = 0
    if zero_groups:
        drop = empty[code]
        zero_group_rows = int(rows[drop].sum()) if rows is not None else int(drop.sum())
        long = long.filter(pl.Series(~drop))
        notes.append(
            f"dropped {_plural(len(zero_groups), 'group')} with no members: "
            f"{', '.join(zero_groups)} ({_plural(zero_group_rows, 'row')})"
        )

    if long.height == 0:
        raise InputError("every count is zero: there is nothing to measure")
    groups = [g for g, p, e in zip(all_groups, present, empty, strict=True) if p and not e]
    if n_units < 2:
        raise InputError(
            f"only one unit ({long['unit'][0]!r}): segregation needs at least two units"
        )
    if len(groups) < 2:
        raise InputError(f"only one group ({groups[0]!r}): segregation needs at least two groups")

    # Sorted by unit (flagged, so `composition` need not check it); counts in one chunk.
    group = pl.col("group")
    out = [
        pl.col("unit").set_sorted(),
        group if groups == all_groups else group.cast(pl.String).cast(pl.Enum(groups)),
        pl.col("n"),
    ]
    out += [pl.col("stratum")] if cols.within else []
    frame = long.select(out)
    return Counts(
        frame=frame.with_columns(frame["n"].rechunk()),
        columns=cols,
        rows_in=rows_in,
        duplicate_rows=n_dup,
        zero_units=zero_units,
        zero_unit_rows=zero_unit_rows,
        zero_groups=zero_groups,
        zero_group_rows=zero_group_rows,
        excluded_columns=excluded,
        notes=notes,
        units=n_units,
        groups=groups,
    )


def _plural(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _parse_counts(long: pl.DataFrame, count_name: str) -> pl.Series:
    """The count column as Float64; text that is not a number is an error naming its line."""
    n = long["n"]
    if n.dtype == pl.String:
        parsed = n.str.strip_chars().replace("", None).cast(pl.Float64, strict=False)
        bad = parsed.is_null() & n.str.strip_chars().replace("", None).is_not_null()
    elif n.dtype.is_numeric() or n.dtype == pl.Null:
        return n.cast(pl.Float64)
    else:
        parsed = n.cast(pl.Float64, strict=False)
        bad = parsed.is_null() & n.is_not_null()
    if bad.any():
        first = long.filter(bad).row(0, named=True)
        raise InputError(
            f"{int(bad.sum())} counts in {count_name} are not numbers "
            f"(first on line {first['_line']}: {first['n']!r})"
        )
    return parsed


def _drop_total_column(
    frame: pl.DataFrame, cols: Columns
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Wide input often carries a total column; leave it out when it is the row sum of the
    others (only for auto-detected group columns)."""
    groups = cols.groups
    if "groups" not in cols.detected or len(groups) < 3:
        return groups, ()
    for g in groups:
        if g.lower() not in TOTAL_NAMES:
            continue
        others = [o for o in groups if o != g]
        nums = frame.select(
            pl.col(c).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
            for c in groups
        )
        diff = nums.select((pl.col(g) - pl.sum_horizontal(others)).abs().max()).item()
        scale = nums.select(pl.col(g).abs().max()).item() or 1.0
        if diff is not None and diff <= 1e-9 * scale:
            return tuple(others), (g,)
    return groups, ()
