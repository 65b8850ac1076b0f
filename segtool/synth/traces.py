"""Phone traces with known true stays, for stay-detection benchmarks and tests.

Lighter than the synthetic city (no areas, groups or files): each device moves between
`places` places of its own (uniform in a disc of `extent_m` around central Stockholm,
place k chosen with weight 1/(k+1), never the same place twice in a row). Stays last
lognormal(ln `stay_median_min`, `stay_sigma`) minutes, at least 5; trips take the
straight-line distance at 7 m/s plus 5 min. What the phone reports comes from the city's
reporting model (`segtool.synth.noise`): gamma-distributed intervals around
`ping_interval_min`, duty-cycled gaps (`gap_share`, mean `gap_mean_min`), bursts, per-axis
GPS noise `noise_m` and outliers; the reported accuracy follows `accuracy_m` (and says
nothing about the actual error when `noise_m` > 0).

The defaults emulate the noisy benchmark of issue 11 (1,000 devices, 7 days, ~1M pings,
15 m noise per axis, a gap about every 78 min, ~6 stays a day with a median of 2 h).
Vectorised numpy over all devices; the same parameters give the same traces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from segtool.synth import noise

_M_PER_DEG = 6_371_008.8 * np.pi / 180.0
_SPEED_MS = 7.0
_TRIP_EXTRA_S = 300.0


@dataclass(frozen=True)
class TraceParams:
    devices: int = 1000
    days: int = 7
    seed: int = 0
    t0: int = 1_711_324_800  # 2024-03-25 00:00 UTC
    places: int = 12
    stay_median_min: float = 120.0
    stay_sigma: float = 1.1
    ping_interval_min: float = 8.5
    gap_share: float = 0.3
    gap_mean_min: float = 33.0
    bursts_per_day: float = 1.0
    noise_m: float = 15.0
    accuracy_m: float = 12.0
    outlier_share: float = 0.002
    extent_m: float = 10_000.0
    centre: tuple[float, float] = (59.33, 18.06)


@dataclass
class Traces:
    pings: pl.DataFrame  # device UInt64, ts Datetime(us, UTC), lat, lon, accuracy_m Float32
    stays: pl.DataFrame  # device, start, end (Datetime us UTC), lat, lon (the place)


def _ids(index: np.ndarray) -> np.ndarray:
    """SplitMix64 of the device index: uniform UInt64 ids like the lake's pseudonyms."""
    z = index.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _stays(p: TraceParams, rng: np.random.Generator):
    """(stays frame with dev, start, end, place — seconds —, place x, place y)."""
    n, k = p.devices, p.places
    r = p.extent_m * np.sqrt(rng.random((n, k)))
    th = rng.uniform(0, 2 * np.pi, (n, k))
    px, py = (r * np.cos(th)).ravel(), (r * np.sin(th)).ravel()
    span = p.days * 86400.0
    mean_stay = p.stay_median_min * 60.0 * np.exp(p.stay_sigma**2 / 2)
    m = int(np.ceil(span / (mean_stay + _TRIP_EXTRA_S) * 1.5 + 20))
    w = 1.0 / np.arange(1, k + 1)
    choice = rng.choice(k, size=(n, m), p=w / w.sum())
    same = np.zeros((n, m), bool)
    same[:, 1:] = choice[:, 1:] == choice[:, :-1]
    choice = np.where(same, (choice + 1) % k, choice)  # never the same place twice in a row
    # a shifted place may now equal the next one: shifting once more is enough for k ≥ 3
    again = np.zeros((n, m), bool)
    again[:, 1:] = choice[:, 1:] == choice[:, :-1]
    choice = np.where(again, (choice + 1) % k, choice)
    place = choice + np.arange(n)[:, None] * k
    dur = np.maximum(300.0, p.stay_median_min * 60.0 * rng.lognormal(0, p.stay_sigma, (n, m)))
    dist = np.hypot(np.diff(px[place], axis=1), np.diff(py[place], axis=1))
    trip = np.concatenate([dist / _SPEED_MS + _TRIP_EXTRA_S, np.zeros((n, 1))], axis=1)
    offset = rng.random(n) * dur[:, 0]  # the first stay began before t0
    end = np.cumsum(dur + trip, axis=1) - trip - offset[:, None]
    start = end - dur
    keep = start < span
    dev = np.broadcast_to(np.arange(n)[:, None], (n, m))[keep]
    frame = pl.DataFrame(
        {
            "dev": dev,
            "start": np.maximum(start[keep], 0.0) + p.t0,
            "end": np.minimum(end[keep], span) + p.t0,
            "place": place[keep],
        }
    ).filter(pl.col("end") > pl.col("start"))
    return frame, px, py


def make_traces(p: TraceParams = TraceParams()) -> Traces:
    """Pings and true stays of `p.devices` devices over `p.days` days (see the module)."""
    rng = np.random.default_rng([p.seed, 11])
    stays, px, py = _stays(p, rng)
    t1 = p.t0 + p.days * 86400
    dev, t = noise.ping_times(
        p.devices,
        p.t0,
        t1,
        p.ping_interval_min,
        p.gap_share,
        rng,
        gap_mean_s=p.gap_mean_min * 60.0,
        bursts_per_day=p.bursts_per_day,
    )
    x, y = noise.locate(dev, t, stays, px, py, p.t0)
    x, y, acc, _ = noise.add_error(x, y, p.accuracy_m, p.outlier_share, 0.0, rng, p.noise_m)
    lat0, lon0 = p.centre
    cos0 = np.cos(np.radians(lat0))
    ids = _ids(np.arange(p.devices))
    utc = pl.Datetime("us", "UTC")
    pings = pl.DataFrame(
        {
            "device": ids[dev],
            "ts": pl.Series(t * 1_000_000, dtype=pl.Int64).cast(utc),
            "lat": lat0 + y / _M_PER_DEG,
            "lon": lon0 + x / (_M_PER_DEG * cos0),
            "accuracy_m": acc.astype(np.float32),
        }
    )
    place = stays["place"].to_numpy()
    truth = pl.DataFrame(
        {
            "device": ids[stays["dev"].to_numpy()],
            "start": pl.Series(np.rint(stays["start"].to_numpy() * 1e6).astype(np.int64)).cast(utc),
            "end": pl.Series(np.rint(stays["end"].to_numpy() * 1e6).astype(np.int64)).cast(utc),
            "lat": lat0 + py[place] / _M_PER_DEG,
            "lon": lon0 + px[place] / (_M_PER_DEG * cos0),
        }
    )
    return Traces(pings=pings, stays=truth)
