"""From true stays to what a phone reports: irregular sampling, gaps, GPS error, outliers.

- Sampling: each device pings at its own mean interval (lognormal around
  `ping_interval_min`, σ = 0.35); intervals are gamma(2) distributed, whole seconds,
  at least 1 s. Pings fall during stays and, sparser relative to time, during travel
  (positions interpolated along the straight line between the stays).
- Gaps: alternating observed / unobserved periods (exponential, mean unobserved
  `gap_mean_s`, 2 h by default) so that a share `gap_share` of the time has no pings. A
  short mean gap gives duty-cycled, app-style reporting: e.g. 33 min off and a share of
  0.3 → a gap about every 78 minutes.
- Bursts: `bursts_per_day` times a day on average (Poisson, any time, gaps included: the
  app in the foreground) a device sends 5–30 pings 1–10 s apart.
- Error: reported accuracy a = `accuracy_m` × lognormal(0, 0.45), clipped to 3–80 m;
  error per axis N(0, (a / 1.51)²), i.e. `a` is the 68 % radius as on Android. With
  `noise_m` > 0 the error per axis is N(0, noise_m²) instead, whatever the reported
  accuracy says (many apps report a constant or uninformative accuracy).
- Outliers: `outlier_share` of pings jump 150–1500 m (reported accuracy unchanged).
- Low accuracy: `low_accuracy_share` of pings are network fixes with a = 120–2500 m and
  an error to match (these are the planted `low_accuracy` rejects).

Vectorised over all pings of a chunk (numpy); no loop over devices or pings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

GAP_MEAN_S = 2 * 3600.0
KEY = np.int64(1) << np.int64(
    27
)  # > seconds in 366 days + 1 day: device × KEY + time is a sort key


@dataclass
class Pings:
    """Pings of a chunk, sorted by device and time."""

    dev: np.ndarray  # local device index
    t: np.ndarray  # UTC epoch seconds (int64)
    x: np.ndarray  # EPSG:3006 metres, with error
    y: np.ndarray
    accuracy: np.ndarray  # metres, 0.1 m resolution
    low_accuracy: np.ndarray  # bool


def expected_pings(days: int, interval_min: float, gap_share: float) -> float:
    """Expected pings per device over the period."""
    return days * 1440.0 / interval_min * (1 - gap_share)


def ping_times(
    n: int,
    t0: int,
    t1: int,
    interval_min: float,
    gap_share: float,
    rng: np.random.Generator,
    gap_mean_s: float = GAP_MEAN_S,
    bursts_per_day: float = 0.0,
):
    """(dev, t) of every observed ping, sorted by device then time (one ping a second at
    most)."""
    span = t1 - t0
    mean = interval_min * 60.0 * rng.lognormal(0.0, 0.35, n)
    count = np.ceil(span / mean * 1.2 + 30).astype(np.int64)
    dev = np.repeat(np.arange(n), count)
    step = np.rint(rng.standard_gamma(2.0, int(count.sum())) * np.repeat(mean / 2.0, count))
    step = np.maximum(1, step).astype(np.int64)
    first = np.cumsum(count) - count
    cs = np.cumsum(step)
    base = np.repeat(cs[first] - step[first], count)
    offset = np.repeat(np.floor(rng.random(n) * mean).astype(np.int64), count)
    t = t0 + offset + cs - base
    keep = t < t1
    dev, t = dev[keep], t[keep]
    if gap_share > 0:
        dev, t = _drop_gaps(dev, t, n, t0, t1, gap_share, rng, gap_mean_s)
    if bursts_per_day > 0:
        dev, t = _add_bursts(dev, t, n, t0, t1, bursts_per_day, rng)
    return dev, t


def _add_bursts(dev, t, n, t0, t1, per_day, rng):
    """Merge in bursts: Poisson(per_day × days) per device, uniform in time, 5–30 pings
    1–10 s apart (cut at t1; a second already taken is not repeated)."""
    k = rng.poisson(per_day * (t1 - t0) / 86400.0, n)
    b_dev = np.repeat(np.arange(n), k)
    b_t0 = rng.integers(t0, t1, b_dev.size)
    size = rng.integers(5, 31, b_dev.size)
    p_dev = np.repeat(b_dev, size)
    first = np.cumsum(size) - size
    step = rng.integers(1, 11, int(size.sum()))
    cs = np.cumsum(step)
    offset = cs - np.repeat(cs[first], size)  # 0 at each burst's first ping
    p_t = np.repeat(b_t0, size) + offset
    keep = p_t < t1
    key = np.unique(np.concatenate([dev * KEY + (t - t0), p_dev[keep] * KEY + (p_t[keep] - t0)]))
    return key // KEY, key % KEY + t0


def _drop_gaps(dev, t, n, t0, t1, gap_share, rng, gap_mean_s=GAP_MEAN_S):
    mean_off = gap_mean_s
    mean_on = mean_off * (1 - gap_share) / gap_share
    warmup = 86400
    cycles = int(np.ceil((t1 - t0 + warmup) / (mean_on + mean_off) * 1.5 + 6))
    dur = np.empty((n, 2 * cycles))
    dur[:, 0::2] = rng.exponential(mean_on, (n, cycles))
    dur[:, 1::2] = rng.exponential(mean_off, (n, cycles))
    bounds = np.cumsum(dur, axis=1) - warmup  # relative to t0; state is "on" before bounds[0]
    rel = np.clip(np.floor(bounds), -1, t1 - t0 + 1).astype(np.int64) + 1
    keys = (np.arange(n, dtype=np.int64)[:, None] * KEY + rel).ravel()
    pkeys = dev * KEY + (t - t0) + 1
    k = np.searchsorted(keys, pkeys, side="right") - dev * (2 * cycles)
    on = k % 2 == 0
    return dev[on], t[on]


def locate(
    dev: np.ndarray, t: np.ndarray, stays: pl.DataFrame, px: np.ndarray, py: np.ndarray, t0: int
):
    """True position of each ping: at the stay's place, or on the way to the next one."""
    sdev = stays["dev"].to_numpy()
    start = stays["start"].to_numpy()
    end = stays["end"].to_numpy()
    place = stays["place"].to_numpy()
    sx, sy = px[place], py[place]
    skey = sdev * KEY + np.floor(start - t0).astype(np.int64)
    i = np.searchsorted(skey, dev * KEY + (t - t0), side="right") - 1
    nxt = np.minimum(i + 1, len(sdev) - 1)
    moving = (t >= end[i]) & (sdev[nxt] == sdev[i]) & (nxt != i)
    span = np.maximum(start[nxt] - end[i], 1e-9)
    f = np.where(moving, np.clip((t - end[i]) / span, 0.0, 1.0), 0.0)
    x = sx[i] + f * (sx[nxt] - sx[i])
    y = sy[i] + f * (sy[nxt] - sy[i])
    return x, y


def add_error(
    x,
    y,
    accuracy_m: float,
    outlier_share: float,
    low_share: float,
    rng: np.random.Generator,
    noise_m: float = 0.0,
) -> tuple:
    """(x, y, accuracy, low_accuracy mask) after GPS error, outliers and network fixes."""
    n = len(x)
    acc = np.clip(accuracy_m * rng.lognormal(0.0, 0.45, n), 3.0, 80.0)
    low = rng.random(n) < low_share
    acc = np.where(low, np.exp(rng.uniform(np.log(120), np.log(2500), n)), acc)
    acc = np.round(acc, 1)
    sigma = np.minimum(acc, 2000.0) / 1.51
    if noise_m > 0:
        sigma = np.where(low, sigma, noise_m)
    ex, ey = rng.normal(0, 1, n) * sigma, rng.normal(0, 1, n) * sigma
    out = (rng.random(n) < outlier_share) & ~low
    dist = rng.uniform(150, 1500, n)
    th = rng.uniform(0, 2 * np.pi, n)
    ex = np.where(out, dist * np.cos(th), ex)
    ey = np.where(out, dist * np.sin(th), ey)
    return x + ex, y + ey, acc, low
