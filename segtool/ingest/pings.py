"""Raw GPS pings (CSV, CSV.gz or Parquet) → the lake's `pings/` dataset.

Output (SPEC §1): `device` UInt64 (keyed-hash pseudonym), `ts` Datetime(us, UTC), `lat`,
`lon` Float64 (WGS84), `accuracy_m` Float32 (null when not given), hive-partitioned by
`date` (the UTC date of `ts`: `pings/date=2024-03-04/part-0.parquet`). Within a partition,
rows are sorted by (device, ts, lat, lon).

Each input row is written or rejected with the first reason that applies, in this order:
`malformed_row`, `empty_id`, `unparseable_time`, `time_out_of_range`,
`unparseable_coordinates`, `coordinates_out_of_range`, `outside_bbox`,
`unparseable_accuracy`, `low_accuracy`, `duplicate_ping` (same device, ts, lat and lon as
an earlier row; the first in file/line order is kept).

Python API::

    from segtool.ingest.pings import PingParams, ingest_pings
    report = ingest_pings(["vendor/*.csv.gz"], Lake("lake"), PingParams(tz="UTC"), key=load_key())
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from segtool.ingest import columns as cols
from segtool.ingest import fields
from segtool.ingest.engine import REASON, DatasetSpec, IngestReport, ingest, with_reasons
from segtool.ingest.pseudonym import Key, Pseudonymiser
from segtool.ingest.reader import LINE
from segtool.ingest.timeparse import DEFAULT_TZ, UTC_US, repair, time_expr
from segtool.lake import Lake

DEFAULT_MAX_ACCURACY = 100.0


@dataclass(frozen=True)
class PingParams:
    """How to read pings. Column names left as None are auto-detected (see columns.py)."""

    id: str | None = None
    time: str | None = None
    lat: str | None = None
    lon: str | None = None
    accuracy: str | None = None
    tz: str = DEFAULT_TZ
    crs: str = "EPSG:4326"
    bbox: tuple[float, float, float, float] | None = None
    max_accuracy: float | None = DEFAULT_MAX_ACCURACY
    epoch_unit: str = "auto"
    delimiter: str | None = None
    encoding: str = "utf-8"


SCHEMA: dict[str, pl.DataType] = {
    "device": pl.UInt64,
    "ts": UTC_US,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "accuracy_m": pl.Float32,
}


def parse_pings(
    rows: pl.DataFrame, mapping: dict[str, str], params: PingParams, pseudo: Pseudonymiser
) -> pl.DataFrame:
    """One batch of input rows → typed pings + `date` + `reason` (null when kept) + `__line`.

    Each field is parsed by one vectorised expression (polars evaluates them in parallel);
    only values that expression could not read (rare) take the slower repair paths, and
    the reject reason is worked out only for the rows that fail a check.
    """
    c_id, c_time, c_lat, c_lon = (mapping[r] for r in ("id", "time", "lat", "lon"))
    c_acc = mapping.get("accuracy")
    schema = rows.schema
    parsed = rows.select(
        time_expr(pl.col(c_time), rows[c_time], params.tz, params.epoch_unit).alias("ts"),
        fields.float_expr(c_lat, schema[c_lat]).alias("y"),
        fields.float_expr(c_lon, schema[c_lon]).alias("x"),
        (
            fields.float_expr(c_acc, schema[c_acc]) if c_acc else pl.lit(None, dtype=pl.Float64)
        ).alias("accuracy_m"),
    )
    ts = repair(rows[c_time], parsed["ts"], params.tz, params.epoch_unit)
    y = fields.repair_float(rows[c_lat], parsed["y"])
    x = fields.repair_float(rows[c_lon], parsed["x"])
    lat, lon = fields.to_lat_lon(y, x, params.crs)
    acc = parsed["accuracy_m"]
    columns = {
        "device": pseudo.device_ids(rows[c_id]),  # null where the id is missing or blank
        "ts": ts,
        "lat": lat,
        "lon": lon,
        "accuracy_m": acc,
        LINE: rows[LINE],
    }
    acc_ok = pl.lit(True)
    if c_acc:
        acc = columns["accuracy_m"] = fields.repair_float(rows[c_acc], acc)
        if acc.null_count() or acc.is_nan().any() or (acc < 0).any():
            columns["__acc_ok"] = ~(
                (acc.is_null() | acc.is_nan() | (acc < 0)) & fields.present(rows[c_acc])
            )
            acc_ok = pl.col("__acc_ok")
    frame = pl.DataFrame(columns)
    checks = [
        ("empty_id", pl.col("device").is_not_null()),
        ("unparseable_time", pl.col("ts").is_not_null()),
        ("time_out_of_range", fields.time_in_range("ts")),
        ("unparseable_coordinates", pl.col("lat").is_not_null() & pl.col("lon").is_not_null()),
        ("coordinates_out_of_range", fields.in_range()),
        ("outside_bbox", fields.in_bbox(params.bbox)),
        ("unparseable_accuracy", acc_ok),
    ]
    if params.max_accuracy is not None:
        checks.append(("low_accuracy", ~(pl.col("accuracy_m") > params.max_accuracy)))
    return with_reasons(frame, checks).select(
        "device",
        "ts",
        "lat",
        "lon",
        pl.col("accuracy_m").cast(pl.Float32),
        pl.col("ts").dt.date().alias("date"),
        REASON,
        LINE,
    )


PINGS = DatasetSpec(
    name="pings",
    command="segtool ingest pings",
    roles=cols.Roles(required=("id", "time", "lat", "lon"), optional=("accuracy",)),
    reject_roles={
        "device": "id",
        "time": "time",
        "lat": "lat",
        "lon": "lon",
        "accuracy": "accuracy",
    },
    schema=SCHEMA,
    sort_by=("device", "ts", "lat", "lon"),
    dedupe_on=("device", "ts", "lat", "lon"),
    duplicate_reason="duplicate_ping",
    partition="date",
    parse=parse_pings,
)


def ingest_pings(
    files: Iterable[str | os.PathLike],
    lake: Lake,
    params: PingParams = PingParams(),
    *,
    key: Key,
    config: cols.Config = cols.EMPTY_CONFIG,
    append: bool = False,
    **engine_options,
) -> IngestReport:
    """Ingest ping files into `lake/pings/` (rejects into `lake/_rejects/pings/`).

    `key` comes from `pseudonym.load_key(salt_file, synthetic)`. With `append=True` the
    files are added to the existing dataset (a file already ingested is refused).
    """
    return ingest(
        files, lake, PINGS, params, key=key, config=config, append=append, **engine_options
    )
