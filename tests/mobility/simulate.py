"""A small vectorised mobility simulator with known true stays (tests and the benchmark).

Each device has a home, a work place and `n_places` other places in a city around
Stockholm. Every local day it leaves home in the morning, stays at work (weekdays) or at
another place (weekends), often stops at a second place, and goes home for the night. Pings
come on a jittered regular grid (`interval_s`), sparse at night (`night_keep`), with GPS
jitter (`jitter_m`, per axis) and lone outliers (`outlier_rate`, 100–400 m away); moves are
straight lines at `speed_ms`. Everything is numpy over all devices at once.

`simulate(params)` returns a `Simulation` with `pings` (SPEC §1 `pings/` schema plus a
`date` column), the true `stays` (device, start, end, lat, lon, kind, censored — true when
the observation window cuts the stay) and `homes` (device, lat, lon, work_lat, work_lon).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

M_PER_DEG = 6_371_008.8 * np.pi / 180.0
US = 1_000_000


@dataclass(frozen=True)
class SimParams:
    n_devices: int = 100
    n_days: int = 10
    start: date = date(2024, 3, 25)  # a Monday; the spring DST change is on 2024-03-31
    tz: str = "Europe/Stockholm"
    interval_s: float = 120.0
    night_keep: float = 0.2  # share of pings kept between 00:00 and 06:00 local
    jitter_m: float = 8.0
    outlier_rate: float = 0.005
    n_places: int = 8
    speed_ms: float = 6.0
    centre: tuple[float, float] = (59.33, 18.06)
    extent_m: float = 8000.0
    seed: int = 0
    first_device: int = 0  # devices first_device … first_device + n_devices − 1


@dataclass
class Simulation:
    pings: pl.DataFrame
    stays: pl.DataFrame
    homes: pl.DataFrame


def device_ids(index: np.ndarray) -> np.ndarray:
    """SplitMix64 of the device index: uniform UInt64 ids like the lake's keyed hashes."""
    z = index.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _local_to_utc_us(local_s: np.ndarray, start: date, tz: str) -> np.ndarray:
    """Seconds after local midnight of `start` (wall clock) → UTC epoch microseconds."""
    base = pl.Series([start]).cast(pl.Datetime("us"))[0]
    naive = pl.Series(np.round(local_s.ravel() * US).astype(np.int64)).cast(
        pl.Duration("us")
    ) + pl.lit(base)
    out = (
        pl.select(naive)
        .to_series()
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(pl.Int64)
        .to_numpy()
    )
    return out.reshape(local_s.shape)


def _places(rng, p: SimParams, shape) -> tuple[np.ndarray, np.ndarray]:
    lat0, lon0 = p.centre
    north = rng.uniform(-p.extent_m, p.extent_m, shape)
    east = rng.uniform(-p.extent_m, p.extent_m, shape)
    return lat0 + north / M_PER_DEG, lon0 + east / (M_PER_DEG * np.cos(np.radians(lat0)))


def _dist_m(lat1, lon1, lat2, lon2):
    dy = (lat2 - lat1) * M_PER_DEG
    dx = (lon2 - lon1) * M_PER_DEG * np.cos(np.radians((lat1 + lat2) / 2))
    return np.hypot(dx, dy)


def simulate(p: SimParams = SimParams()) -> Simulation:
    rng = np.random.default_rng([p.seed, p.first_device])
    nd, nk = p.n_devices, p.n_days
    home_lat, home_lon = _places(rng, p, nd)
    work_lat, work_lon = _places(rng, p, nd)
    oth_lat, oth_lon = _places(rng, p, (nd, p.n_places))

    days = np.arange(nk)
    weekday = np.array([(p.start + timedelta(days=int(k))).weekday() < 5 for k in days])
    weekday = np.broadcast_to(weekday, (nd, nk))
    # place A: work on weekdays, another place on weekends; B: another place ≠ A
    a_idx = rng.integers(0, p.n_places, (nd, nk))
    b_idx = (a_idx + 1 + rng.integers(0, p.n_places - 1, (nd, nk))) % p.n_places
    rows = np.arange(nd)[:, None]
    a_lat = np.where(weekday, work_lat[:, None], oth_lat[rows, a_idx])
    a_lon = np.where(weekday, work_lon[:, None], oth_lon[rows, a_idx])
    b_lat, b_lon = oth_lat[rows, b_idx], oth_lon[rows, b_idx]
    h_lat = np.broadcast_to(home_lat[:, None], (nd, nk))
    h_lon = np.broadcast_to(home_lon[:, None], (nd, nk))

    def travel(lat1, lon1, lat2, lon2):
        return _dist_m(lat1, lon1, lat2, lon2) / p.speed_ms + 120.0

    hour = 3600.0
    base = days[None, :] * 86400.0
    leave = base + np.where(weekday, 7 * hour, 9 * hour) + rng.uniform(0, 2 * hour, (nd, nk))
    arr_a = leave + travel(h_lat, h_lon, a_lat, a_lon)
    dur_a = np.where(
        weekday,
        7.5 * hour + rng.uniform(0, 1.5 * hour, (nd, nk)),
        hour + rng.uniform(0, 2 * hour, (nd, nk)),
    )
    lv_a = arr_a + dur_a
    arr_b = lv_a + travel(a_lat, a_lon, b_lat, b_lon)
    dur_b = np.where(rng.random((nd, nk)) < 0.7, rng.uniform(1200, 2.5 * hour, (nd, nk)), 0.0)
    lv_b = arr_b + dur_b
    arr_h = lv_b + travel(b_lat, b_lon, h_lat, h_lon)

    # boundaries per device: t0 | leave arrA lvA arrB lvB arrH (per day) | t_end
    local = np.stack([leave, arr_a, lv_a, arr_b, lv_b, arr_h], axis=2).reshape(nd, 6 * nk)
    local = np.concatenate([np.zeros((nd, 1)), local, np.full((nd, 1), nk * 86400.0)], axis=1)
    bounds = _local_to_utc_us(local, p.start, p.tz)  # (nd, 6nk+2)
    # segment s spans bounds[s]..bounds[s+1]: even ones are stays (home, A, B, home, …),
    # odd ones moves from the previous stay's place to the next one's
    ns = 6 * nk + 1
    per_day = [a_lat, b_lat, h_lat], [a_lon, b_lon, h_lon]
    place_lat = np.concatenate([home_lat[:, None], np.stack(per_day[0], 2).reshape(nd, -1)], 1)
    place_lon = np.concatenate([home_lon[:, None], np.stack(per_day[1], 2).reshape(nd, -1)], 1)
    seg_from_lat = np.empty((nd, ns))
    seg_from_lon = np.empty((nd, ns))
    seg_to_lat = np.empty((nd, ns))
    seg_to_lon = np.empty((nd, ns))
    # stay segments are the even ones: 0, 2, 4, …; place_lat[:, s//2]
    seg_from_lat[:, 0::2] = place_lat
    seg_to_lat[:, 0::2] = place_lat
    seg_from_lon[:, 0::2] = place_lon
    seg_to_lon[:, 0::2] = place_lon
    seg_from_lat[:, 1::2] = place_lat[:, :-1]
    seg_to_lat[:, 1::2] = place_lat[:, 1:]
    seg_from_lon[:, 1::2] = place_lon[:, :-1]
    seg_to_lon[:, 1::2] = place_lon[:, 1:]

    # pings on a jittered regular grid over the whole period, per device
    t0, t_end = int(bounds[:, 0].min()), int(bounds[:, -1].max())
    step = int(p.interval_s * US)
    k = (t_end - t0) // step
    grid = t0 + np.arange(k, dtype=np.int64) * step
    ts = grid[None, :] + (rng.random((nd, k)) * step).astype(np.int64)
    dev = np.repeat(np.arange(nd), k)
    ts = ts.ravel()
    # segment of each ping: search in per-device offset keys
    span = np.int64(t_end - t0 + 1)
    keys = (bounds - t0) + np.arange(nd, dtype=np.int64)[:, None] * span
    seg = np.searchsorted(keys.ravel(), (ts - t0) + dev * span, side="right") - 1
    seg = seg - dev * (ns + 1)  # index within the device's segments
    inside = (seg >= 0) & (seg < ns)
    dev, ts, seg = dev[inside], ts[inside], seg[inside]
    flat = dev * ns + seg
    s0 = bounds[:, :-1].ravel()[flat]
    s1 = bounds[:, 1:].ravel()[flat]
    frac = np.where(s1 > s0, (ts - s0) / np.maximum(s1 - s0, 1), 0.0)
    lat = seg_from_lat.ravel()[flat] + frac * (
        seg_to_lat.ravel()[flat] - seg_from_lat.ravel()[flat]
    )
    lon = seg_from_lon.ravel()[flat] + frac * (
        seg_to_lon.ravel()[flat] - seg_from_lon.ravel()[flat]
    )

    # sparse nights: drop most pings between 00:00 and 06:00 local
    local_hour = (
        pl.Series(ts).cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(p.tz).dt.hour().to_numpy()
    )
    keep = (local_hour >= 6) | (rng.random(ts.size) < p.night_keep)
    dev, ts, lat, lon = dev[keep], ts[keep], lat[keep], lon[keep]
    coslat = np.cos(np.radians(lat))
    n = ts.size
    lat = lat + rng.normal(0, p.jitter_m, n) / M_PER_DEG
    lon = lon + rng.normal(0, p.jitter_m, n) / (M_PER_DEG * coslat)
    out = rng.random(n) < p.outlier_rate
    ang = rng.uniform(0, 2 * np.pi, n)
    r = rng.uniform(100, 400, n)
    lat = np.where(out, lat + r * np.sin(ang) / M_PER_DEG, lat)
    lon = np.where(out, lon + r * np.cos(ang) / (M_PER_DEG * coslat), lon)

    ids = device_ids(np.arange(p.first_device, p.first_device + nd))
    pings = pl.DataFrame(
        {
            "device": ids[dev],
            "ts": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "lat": lat,
            "lon": lon,
            "accuracy_m": np.full(n, p.jitter_m, np.float32),
        }
    ).with_columns(pl.col("ts").dt.date().alias("date"))

    # true stays: the even segments with positive duration
    st_idx = np.arange(0, ns, 2)
    st_start = bounds[:, st_idx]
    st_end = bounds[:, st_idx + 1]
    kind = np.empty((nd, st_idx.size), dtype=object)
    kind[:, 0::3] = "home"
    kind[:, 1::3] = np.where(weekday, "work", "other")
    kind[:, 2::3] = "other"
    stays = pl.DataFrame(
        {
            "device": np.repeat(ids, st_idx.size),
            "start": pl.Series(st_start.ravel(), dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "end": pl.Series(st_end.ravel(), dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "lat": place_lat.ravel(),
            "lon": place_lon.ravel(),
            "kind": kind.ravel(),
        }
    ).filter(pl.col("end") > pl.col("start"))
    # stays cut by the observation window cannot be recovered exactly: flag them
    stays = stays.with_columns(
        (
            (pl.col("start") <= pl.lit(t0).cast(pl.Datetime("us", "UTC")))
            | (pl.col("end") >= pl.lit(t_end).cast(pl.Datetime("us", "UTC")))
        ).alias("censored")
    )
    homes = pl.DataFrame(
        {
            "device": ids,
            "lat": home_lat,
            "lon": home_lon,
            "work_lat": work_lat,
            "work_lon": work_lon,
        }
    )
    return Simulation(pings=pings, stays=stays, homes=homes)
