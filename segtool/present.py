"""The one place that turns tidy result frames into what users see or save:
a terminal table, JSON (an array of objects), CSV or Parquet.

JSON rows carry every column of the result frame (nulls as `null`; NaN never appears:
indices that are undefined are reported as null). Columns that are null in every row are
left out, so a multigroup result has no `"group"` key while a two-group one does.
"""

from __future__ import annotations

import io
import json
import math
import sys
from enum import StrEnum
from pathlib import Path

import polars as pl
from rich.markup import escape
from rich.table import Table

from segtool import console
from segtool.errors import UsageError
from segtool.lake import Manifest, atomic_file, write_manifest_beside, write_text_atomic


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"


_SUFFIX_FORMAT = {".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def resolve_format(fmt: OutputFormat | str | None, output: Path | None) -> str:
    """The explicit --format, else the output file's suffix, else a terminal table."""
    if fmt is not None:
        return OutputFormat(fmt).value
    if output is not None and output.suffix.lower() in _SUFFIX_FORMAT:
        return _SUFFIX_FORMAT[output.suffix.lower()]
    return "table"


def drop_all_null(frame: pl.DataFrame) -> pl.DataFrame:
    keep = [c for c in frame.columns if frame[c].null_count() < frame.height or frame.height == 0]
    return frame.select(keep)


def _clean_nan(frame: pl.DataFrame) -> pl.DataFrame:
    floats = [c for c, t in frame.schema.items() if t.is_float()]
    if not floats:
        return frame
    return frame.with_columns(pl.col(c).fill_nan(None) for c in floats)


def to_records(frame: pl.DataFrame) -> list[dict]:
    """Rows as dicts, NaN as None, all-null columns dropped."""
    return drop_all_null(_clean_nan(frame)).to_dicts()


def to_json(frame: pl.DataFrame) -> str:
    return json.dumps(to_records(frame), indent=1, default=str, allow_nan=False) + "\n"


def to_csv(frame: pl.DataFrame) -> str:
    buf = io.StringIO()
    drop_all_null(_clean_nan(frame)).write_csv(buf)
    return buf.getvalue()


def _decimals(values: pl.Series) -> int:
    """Fewest decimals (0–4) that show every value of a float column exactly, else 4."""
    finite = values.drop_nulls().drop_nans()
    finite = finite.filter(finite.abs() < 1e15)
    for k in range(4):
        scaled = finite * 10**k
        if ((scaled - scaled.round()).abs() <= 1e-9 * scaled.abs().clip(lower_bound=1)).all():
            return k
    return 4


def _fmt_cell(value, decimals: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "" if math.isnan(value) else str(value)
        if value != 0 and abs(value) < 10**-decimals:
            return f"{value:.3g}"
        return f"{value:,.{decimals}f}" if abs(value) >= 1e4 else f"{value:.{decimals}f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1e4:
        return f"{value:,}"
    return str(value)


def rich_table(frame: pl.DataFrame, title: str | None = None) -> Table:
    frame = drop_all_null(frame)
    table = Table(
        title=escape(title) if title else None,
        header_style="bold",
        title_justify="left",
        min_width=len(title) if title else None,  # a title is never wrapped
    )
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    decimals = [_decimals(frame[c]) if frame.schema[c].is_float() else 0 for c in frame.columns]
    for row in frame.iter_rows():
        table.add_row(*(escape(_fmt_cell(v, d)) for v, d in zip(row, decimals, strict=True)))
    return table


def emit(
    frame: pl.DataFrame,
    fmt: OutputFormat | str | None = None,
    output: Path | None = None,
    *,
    title: str | None = None,
    manifest: Manifest | None = None,
) -> None:
    """Show `frame` on stdout or write it to `output` (atomically, with a manifest beside it)."""
    kind = resolve_format(fmt, output)
    if output is None:
        if kind == "parquet":
            raise UsageError("--format parquet needs --output FILE")
        if kind == "table":
            console.out().print(rich_table(frame, title))
        else:
            # Plain text straight to stdout: rich would wrap long lines.
            sys.stdout.write(to_json(frame) if kind == "json" else to_csv(frame))
            sys.stdout.flush()
        return
    output = Path(output)
    if kind == "parquet":
        with atomic_file(output) as tmp:
            drop_all_null(frame).write_parquet(tmp)
    elif kind == "json":
        write_text_atomic(output, to_json(frame))
    elif kind == "csv":
        write_text_atomic(output, to_csv(frame))
    else:
        buf = io.StringIO()
        from rich.console import Console

        Console(file=buf, width=200).print(rich_table(frame, title))
        write_text_atomic(output, buf.getvalue())
    if manifest is not None:
        write_manifest_beside(output, manifest)
    console.info(f"wrote {output} ({frame.height} rows)")
