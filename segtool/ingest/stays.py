"""Vendor stays (stops) → the lake's `stays/` dataset.

Vendors often deliver stops already detected: a device id, start and end times, and a
location. Output (SPEC §1): `device` UInt64 (pseudonym), `start`, `end` Datetime(us, UTC),
`lat`, `lon` Float64 (WGS84), `n_pings` UInt32 (null unless the input has it), in
`stays/part-0.parquet` sorted by (device, start, end, lat, lon) — one file per 8M rows
beyond that, split by device range.

Each row is written or rejected with the first reason that applies: `malformed_row`,
`empty_id`, `unparseable_time` (start or end), `time_out_of_range`, `end_before_start`,
`unparseable_coordinates`, `coordinates_out_of_range`, `outside_bbox`,
`unparseable_count` (n_pings given but not a whole number ≥ 0), `duplicate_stay`.

Python API::

    from segtool.ingest.stays import StayParams, ingest_stays
    report = ingest_stays(["stops.csv"], Lake("lake"), StayParams(), key=load_key())
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from segtool.ingest import columns as cols
from segtool.ingest import fields
from segtool.ingest.engine import REASON, DatasetSpec, IngestReport, ingest
from segtool.ingest.pseudonym import Key, Pseudonymiser
from segtool.ingest.reader import LINE
from segtool.ingest.timeparse import DEFAULT_TZ, repair, time_expr
from segtool.lake import Lake
from segtool.schema import dataset_schema


@dataclass(frozen=True)
class StayParams:
    """How to read stays. Column names left as None are auto-detected."""

    id: str | None = None
    start: str | None = None
    end: str | None = None
    lat: str | None = None
    lon: str | None = None
    n_pings: str | None = None
    tz: str = DEFAULT_TZ
    crs: str = "EPSG:4326"
    bbox: tuple[float, float, float, float] | None = None
    epoch_unit: str = "auto"
    delimiter: str | None = None
    encoding: str = "utf-8"


SCHEMA = dataset_schema("stays")


def parse_stays(
    rows: pl.DataFrame, mapping: dict[str, str], params: StayParams, pseudo: Pseudonymiser
) -> pl.DataFrame:
    """One batch of input rows → typed stays + `reason` (null when kept) + `__line`."""
    c_id, c_start, c_end, c_lat, c_lon = (mapping[r] for r in ("id", "start", "end", "lat", "lon"))
    c_n = mapping.get("n_pings")
    schema = rows.schema
    device = pseudo.hash_series(rows[c_id])
    parsed = (
        rows.lazy()
        .select(
            device.alias("device"),
            time_expr(pl.col(c_start), rows[c_start], params.tz, params.epoch_unit).alias("start"),
            time_expr(pl.col(c_end), rows[c_end], params.tz, params.epoch_unit).alias("end"),
            fields.float_expr(c_lat, schema[c_lat]).alias("y"),
            fields.float_expr(c_lon, schema[c_lon]).alias("x"),
            (fields.float_expr(c_n, schema[c_n]) if c_n else pl.lit(None, pl.Float64)).alias("n"),
        )
        .collect(engine="streaming")
    )
    start = repair(rows[c_start], parsed["start"], params.tz, params.epoch_unit)
    end = repair(rows[c_end], parsed["end"], params.tz, params.epoch_unit)
    y = fields.repair_float(rows[c_lat], parsed["y"])
    x = fields.repair_float(rows[c_lon], parsed["x"])
    lat, lon = fields.to_lat_lon(y, x, params.crs)
    n = parsed["n"]
    bad_n = pl.Series([False] * rows.height, dtype=pl.Boolean)
    if c_n:
        n = fields.repair_float(rows[c_n], n)
        suspect = n.is_null() | ~n.is_finite().fill_null(False) | (n < 0) | (n != n.round(0))
        if suspect.fill_null(True).any():
            bad_n = suspect.fill_null(True) & fields.present(rows[c_n])
    frame = pl.DataFrame(
        {
            "device": parsed["device"],
            "start": start,
            "end": end,
            "lat": lat,
            "lon": lon,
            "n_pings": n,
            "__has_id": fields.present(rows[c_id]),
            "__bad_n": bad_n,
            LINE: rows[LINE],
        }
    )
    reason = (
        pl.when(~pl.col("__has_id"))
        .then(pl.lit("empty_id"))
        .when(pl.col("start").is_null() | pl.col("end").is_null())
        .then(pl.lit("unparseable_time"))
        .when(~fields.time_in_range("start") | ~fields.time_in_range("end"))
        .then(pl.lit("time_out_of_range"))
        .when(pl.col("end") < pl.col("start"))
        .then(pl.lit("end_before_start"))
        .when(pl.col("lat").is_null() | pl.col("lon").is_null())
        .then(pl.lit("unparseable_coordinates"))
        .when(~fields.in_range())
        .then(pl.lit("coordinates_out_of_range"))
        .when(~fields.in_bbox(params.bbox))
        .then(pl.lit("outside_bbox"))
        .when(pl.col("__bad_n"))
        .then(pl.lit("unparseable_count"))
        .otherwise(None)
    )
    return frame.select(
        pl.when(pl.col("__has_id")).then(pl.col("device")).alias("device"),
        "start",
        "end",
        "lat",
        "lon",
        pl.when(~pl.col("__bad_n")).then(pl.col("n_pings")).cast(pl.UInt32).alias("n_pings"),
        reason.alias(REASON),
        LINE,
    )


STAYS = DatasetSpec(
    name="stays",
    command="segtool ingest stays",
    roles=cols.Roles(required=("id", "start", "end", "lat", "lon"), optional=("n_pings",)),
    reject_roles={
        "device": "id",
        "start": "start",
        "end": "end",
        "lat": "lat",
        "lon": "lon",
        "n_pings": "n_pings",
    },
    schema=SCHEMA,
    sort_by=("device", "start", "end", "lat", "lon"),
    dedupe_on=("device", "start", "end", "lat", "lon"),
    duplicate_reason="duplicate_stay",
    partition=None,
    parse=parse_stays,
)


def ingest_stays(
    files: Iterable[str | os.PathLike],
    lake: Lake,
    params: StayParams = StayParams(),
    *,
    key: Key,
    config: cols.Config = cols.EMPTY_CONFIG,
    append: bool = False,
    **engine_options,
) -> IngestReport:
    """Ingest vendor stay files into `lake/stays/` (rejects into `lake/_rejects/stays/`)."""
    return ingest(
        files, lake, STAYS, params, key=key, config=config, append=append, **engine_options
    )
