"""Small builders for hand-made traces: positions in metres around a base point, times in
minutes after a base instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

M_PER_DEG = 6_371_008.8 * np.pi / 180.0
BASE_LAT, BASE_LON = 59.33, 18.06
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)  # a Monday


def ll(north_m: float, east_m: float) -> tuple[float, float]:
    return (
        BASE_LAT + north_m / M_PER_DEG,
        BASE_LON + east_m / (M_PER_DEG * np.cos(np.radians(BASE_LAT))),
    )


def pings(rows: list[tuple], t0: datetime = T0) -> pl.DataFrame:
    """rows: (device, minutes, north_m, east_m) → a `pings/` frame."""
    devs, ts, lats, lons = [], [], [], []
    for dev, minutes, north, east in rows:
        lat, lon = ll(north, east)
        devs.append(dev)
        ts.append(t0 + timedelta(minutes=minutes))
        lats.append(lat)
        lons.append(lon)
    return pl.DataFrame(
        {
            "device": pl.Series(devs, dtype=pl.UInt64),
            "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")),
            "lat": pl.Series(lats, dtype=pl.Float64),
            "lon": pl.Series(lons, dtype=pl.Float64),
        }
    )


def stays(rows: list[tuple], lat: float = BASE_LAT, lon: float = BASE_LON) -> pl.DataFrame:
    """rows: (device, start, end[, lat, lon]) with aware datetimes → a `stays/` frame."""
    out = []
    for r in rows:
        dev, s, e = r[:3]
        la, lo = (r[3], r[4]) if len(r) > 3 else (lat, lon)
        out.append((dev, s, e, la, lo, 10))
    return pl.DataFrame(
        out,
        schema={
            "device": pl.UInt64,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "lat": pl.Float64,
            "lon": pl.Float64,
            "n_pings": pl.UInt32,
        },
        orient="row",
    )


def minutes(delta) -> float:
    return delta.total_seconds() / 60.0
