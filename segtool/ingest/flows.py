"""Aggregated mobility flows (as mobile operators deliver them) → the lake's `flows/`.

A flow row says how many people (or trips) went from an origin to a destination, in a
time bin, possibly for a group. No device ids: nothing to pseudonymise. Output columns,
in this order (those without an input are left out):

| column | dtype | from |
|---|---|---|
| `origin` *or* `origin_cell` | Utf8 area id *or* UInt64 H3 cell | `--origin` |
| `destination` *or* `destination_cell` | Utf8 *or* UInt64 H3 cell | `--destination` |
| `start` | Datetime(us, UTC) | `--time`: the start of the time bin |
| `slot` | UInt8 | `--slot`: half-hour slot of the (local) day, 0–47 |
| `daytype` | Utf8 | `--daytype`: e.g. weekday / weekend, as given |
| group columns | Utf8 | `--group COL` (repeatable); default: every other input column |
| `count` | Float64 | `--count`: people or trips (operators scale counts, so not integer) |

Whether origin and destination are H3 cells is detected (`--origin-kind auto`): they are
cells when most values in the first rows are valid H3 indexes (hex string or integer);
otherwise area ids. Rows are sorted by every column and written to `flows/part-0.parquet`
(flows are aggregated, so they are held in memory as one partition).

Each row is written or rejected with the first reason that applies: `malformed_row`,
`empty_area`, `invalid_cell`, `unparseable_time`, `time_out_of_range`, `unparseable_slot`,
`unparseable_count`, `negative_count`, `duplicate_flow` (every field equal to an earlier
row's). Rows that differ only in the count are *kept*: counts are additive.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

import polars as pl
import polars_h3 as plh3

from segtool.errors import UsageError
from segtool.ingest import columns as cols
from segtool.ingest import fields
from segtool.ingest.engine import (
    REASON,
    DatasetSpec,
    IngestReport,
    expand_paths,
    ingest,
    open_inputs,
)
from segtool.ingest.reader import LINE
from segtool.ingest.timeparse import DEFAULT_TZ, UTC_US, repair, time_expr
from segtool.lake import Lake

KINDS = ("auto", "area", "cell")
ROLES = cols.Roles(
    required=("origin", "destination", "count"), optional=("time", "slot", "daytype")
)


@dataclass(frozen=True)
class FlowParams:
    """How to read flows. Column names left as None are auto-detected; `groups` None
    means every column not used for another role."""

    origin: str | None = None
    destination: str | None = None
    time: str | None = None
    slot: str | None = None
    daytype: str | None = None
    count: str | None = None
    groups: tuple[str, ...] | None = None
    origin_kind: str = "auto"
    destination_kind: str = "auto"
    tz: str = DEFAULT_TZ
    epoch_unit: str = "auto"
    delimiter: str | None = None
    encoding: str = "utf-8"


def _cells(values: pl.Series) -> pl.Series:
    """H3 cells (hex text or integers) as UInt64; null where not a valid cell."""
    text = values.cast(pl.String)
    frame = text.to_frame("v").with_columns(
        pl.coalesce(
            plh3.str_to_int("v"), pl.col("v").str.strip_chars().cast(pl.UInt64, strict=False)
        ).alias("c")
    )
    return frame.select(
        pl.when(plh3.is_valid_cell("c")).then(pl.col("c")).otherwise(None).alias("c")
    ).to_series()


def detect_kind(values: pl.Series) -> str:
    """'cell' when most non-empty values of the sample are valid H3 cells, else 'area'
    (area ids are practically never valid H3 indexes; stray bad cells become rejects)."""
    sample = values.cast(pl.String).drop_nulls()
    sample = sample.filter(sample.str.strip_chars().str.len_bytes() > 0).head(1000)
    if sample.len() and _cells(sample).null_count() < sample.len() / 2:
        return "cell"
    return "area"


def _slot(values: pl.Series) -> pl.Series:
    v = fields.parse_float(values)
    ok = v.is_finite().fill_null(False) & (v == v.round(0)) & (v >= 0) & (v <= 47)
    return pl.select(pl.when(ok).then(v).cast(pl.UInt8)).to_series()


def make_spec(
    kinds: dict[str, str], groups: tuple[str, ...], mapping: dict[str, str]
) -> DatasetSpec:
    """The flows dataset's spec for this input: its columns depend on what the input has."""
    schema: dict[str, pl.DataType] = {}
    for end in ("origin", "destination"):
        if kinds[end] == "cell":
            schema[f"{end}_cell"] = pl.UInt64
        else:
            schema[end] = pl.String
    if "time" in mapping:
        schema["start"] = UTC_US
    if "slot" in mapping:
        schema["slot"] = pl.UInt8
    if "daytype" in mapping:
        schema["daytype"] = pl.String
    for g in groups:
        schema[g] = pl.String
    schema["count"] = pl.Float64
    clash = [
        g
        for g in groups
        if g
        in (
            "origin",
            "destination",
            "origin_cell",
            "destination_cell",
            "start",
            "slot",
            "daytype",
            "count",
        )
    ]
    if clash:
        raise UsageError(f"group column(s) {clash} clash with the flows columns; rename them")
    keys = tuple(schema)
    return DatasetSpec(
        name="flows",
        command="segtool ingest flows",
        roles=ROLES,
        reject_roles={r: r for r in ("origin", "destination", "time", "slot", "daytype", "count")},
        schema=schema,
        sort_by=keys,
        dedupe_on=keys,
        duplicate_reason="duplicate_flow",
        partition=None,
        parse=lambda rows, mapping, params, pseudo: parse_flows(
            rows, mapping, params, kinds, groups
        ),
        slice_on=None,
    )


def parse_flows(
    rows: pl.DataFrame,
    mapping: dict[str, str],
    params: FlowParams,
    kinds: dict[str, str],
    groups: tuple[str, ...],
) -> pl.DataFrame:
    """One batch of flow rows → typed flows + `reason` (null when kept) + `__line`."""
    out: dict[str, pl.Series] = {}
    empty = pl.Series([False] * rows.height, dtype=pl.Boolean)
    invalid = pl.Series([False] * rows.height, dtype=pl.Boolean)
    for end in ("origin", "destination"):
        raw = rows[mapping[end]]
        given = fields.present(raw)
        empty = empty | ~given
        if kinds[end] == "cell":
            cell = _cells(raw)
            invalid = invalid | (given & cell.is_null())
            out[f"{end}_cell"] = cell
        else:
            out[end] = raw.cast(pl.String).str.strip_chars()
    bad_time = pl.Series([False] * rows.height, dtype=pl.Boolean)
    if "time" in mapping:
        t = rows[mapping["time"]]
        start = rows.select(
            time_expr(pl.col(mapping["time"]), t, params.tz, params.epoch_unit)
        ).to_series()
        start = repair(t, start, params.tz, params.epoch_unit)
        out["start"] = start
        bad_time = start.is_null()
    bad_slot = pl.Series([False] * rows.height, dtype=pl.Boolean)
    if "slot" in mapping:
        slot = _slot(rows[mapping["slot"]])
        out["slot"] = slot
        bad_slot = slot.is_null()
    if "daytype" in mapping:
        out["daytype"] = rows[mapping["daytype"]].cast(pl.String)
    for g in groups:
        out[g] = rows[g].cast(pl.String)
    count = fields.parse_float(rows[mapping["count"]])
    out["count"] = count
    frame = pl.DataFrame(out).with_columns(
        empty.alias("__empty"),
        invalid.alias("__invalid"),
        bad_time.alias("__bad_time"),
        bad_slot.alias("__bad_slot"),
        rows[LINE],
    )
    reason = (
        pl.when(pl.col("__empty"))
        .then(pl.lit("empty_area"))
        .when(pl.col("__invalid"))
        .then(pl.lit("invalid_cell"))
        .when(pl.col("__bad_time"))
        .then(pl.lit("unparseable_time"))
    )
    if "time" in mapping:
        reason = reason.when(~fields.time_in_range("start")).then(pl.lit("time_out_of_range"))
    reason = (
        reason.when(pl.col("__bad_slot"))
        .then(pl.lit("unparseable_slot"))
        .when(pl.col("count").is_null() | ~pl.col("count").is_finite())
        .then(pl.lit("unparseable_count"))
        .when(pl.col("count") < 0)
        .then(pl.lit("negative_count"))
        .otherwise(None)
    )
    return frame.select(*out, reason.alias(REASON), LINE)


def ingest_flows(
    files: Iterable[str | os.PathLike],
    lake: Lake,
    params: FlowParams = FlowParams(),
    *,
    config: cols.Config = cols.EMPTY_CONFIG,
    append: bool = False,
    **engine_options,
) -> IngestReport:
    """Ingest aggregated flow files into `lake/flows/` (rejects into `lake/_rejects/flows/`)."""
    for name, kind in (("origin", params.origin_kind), ("destination", params.destination_kind)):
        if kind not in KINDS:
            raise UsageError(f"--{name}-kind {kind!r}: use one of {', '.join(KINDS)}")
    paths = expand_paths(files)
    probe = make_spec({"origin": "area", "destination": "area"}, (), {})
    opened = open_inputs(paths, probe, params, config)
    first, mapping = opened[0]
    groups = params.groups
    if groups is None:
        used = set(mapping.values())
        groups = tuple(c for c in first.header if c not in used)
    for f, m in opened:
        missing = [g for g in groups if g not in f.header or g in m.values()]
        if missing:
            raise UsageError(
                f"{f.path}: no group column(s) {', '.join(missing)} "
                "(or they are used for another role)",
                hint=f"the header has {f.header}; name the groups with --group",
            )
    sample = next(iter(first.chunks())).rows
    kinds = {}
    for end, kind in (("origin", params.origin_kind), ("destination", params.destination_kind)):
        kinds[end] = detect_kind(sample[mapping[end]]) if kind == "auto" and sample.height else kind
        if kind == "auto" and not sample.height:
            kinds[end] = "area"
    spec = make_spec(kinds, tuple(groups), mapping)
    params = replace(params, groups=tuple(groups))
    return ingest(
        paths, lake, spec, params, key=None, config=config, append=append, **engine_options
    )
