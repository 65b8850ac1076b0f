"""The lake's dataset contracts (SPEC §1) as polars schemas, and one validator.

H3 cells are UInt64; timestamps are UTC microseconds; device ids are keyed-hash
pseudonyms (UInt64). Optional columns may be absent; required ones must be present with
exactly these dtypes.
"""

from __future__ import annotations

import polars as pl

from segtool.errors import InputError

UTC_US = pl.Datetime("us", "UTC")

# name -> (required columns, optional columns)
SCHEMAS: dict[str, tuple[dict[str, pl.DataType], dict[str, pl.DataType]]] = {
    "pings": (
        {"device": pl.UInt64, "ts": UTC_US, "lat": pl.Float64, "lon": pl.Float64},
        {"accuracy_m": pl.Float32, "date": pl.Date},
    ),
    "stays": (
        {
            "device": pl.UInt64,
            "start": UTC_US,
            "end": UTC_US,
            "lat": pl.Float64,
            "lon": pl.Float64,
            "n_pings": pl.UInt32,
        },
        {},
    ),
    "homes": (
        {
            "device": pl.UInt64,
            "home_cell": pl.UInt64,
            "nights": pl.UInt16,
            "home_share": pl.Float32,
        },
        {"area": pl.String, "work_cell": pl.UInt64},
    ),
    "devices": (
        {"device": pl.UInt64, "weight": pl.Float64},
        {"group": pl.String},
    ),
    "population": (
        {"group": pl.String, "count": pl.Float64},
        {"unit": pl.String, "cell": pl.UInt64},
    ),
    "areas": ({"area": pl.String, "geometry": pl.Binary}, {}),
    # register counts apportioned to H3 cells at the analysis resolution (ingest population)
    "population_cells": (
        {"cell": pl.UInt64, "group": pl.String, "count": pl.Float64},
        {},
    ),
    "landuse": ({"cell": pl.UInt64, "category": pl.String, "share": pl.Float64}, {}),
    "pois": ({"cell": pl.UInt64, "category": pl.String, "n": pl.UInt32}, {}),
    "visits": (
        {
            "device": pl.UInt64,
            "cell": pl.UInt64,
            "start": UTC_US,
            "dwell_s": pl.Float64,
            "slot": pl.UInt8,
            "daytype": pl.String,
        },
        {},
    ),
}


def dataset_schema(name: str, *optional: str) -> pl.Schema:
    """The required columns of dataset `name` (in contract order), plus the named
    optional ones: the schema to build or cast a dataset's frame with."""
    required, extra = SCHEMAS[name]
    return pl.Schema({**required, **{c: extra[c] for c in optional}})


def validate(name: str, schema: pl.Schema | dict) -> None:
    """Raise InputError unless `schema` satisfies dataset `name`'s contract.

    Extra columns are allowed (e.g. soft group shares in `devices/`).
    """
    required, optional = SCHEMAS[name]
    schema = dict(schema)
    missing = [c for c in required if c not in schema]
    if missing:
        raise InputError(f"dataset {name!r} lacks column(s) {', '.join(missing)}")
    wrong = [
        f"{c} is {schema[c]}, expected {t}"
        for c, t in {**required, **optional}.items()
        if c in schema and schema[c] != t
    ]
    if wrong:
        raise InputError(f"dataset {name!r} has wrong dtypes: " + "; ".join(wrong))
