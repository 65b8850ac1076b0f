"""Stay detection: a device's consecutive pings within radius r of the stay's running centre.

Algorithm (one sequential pass per device, compiled with numba over the sorted arrays of
*all* devices at once — no Python loop over devices or pings):

1. A candidate stay opens at a ping; its centre is the running mean of its accepted pings.
2. The next ping joins if it lies within `radius_m` of the current centre and no more than
   `max_gap_s` after the last accepted ping. With `use_accuracy` (default) and an
   `accuracy_m` column, a ping may lie farther by its reported accuracy, capped at r (its
   uncertainty circle reaches the stay's circle; at most 2r). With `centre_slack`
   (default) r is widened to r·√(1 + 1/n) while the centre is the mean of n pings (the
   distance of a ping to a mean of n noisy pings has 1 + 1/n times the variance).
3. A ping outside is an *outlier* if a later ping comes back within reach (a GPS glitch)
   before more than `max_outliers` pings lie beyond `noise_band` × reach (default 2:
   pings between reach and 2 × reach are taken for GPS noise and do not count; 1: every
   ping outside counts): the pings in between are skipped (not counted, not averaged) and
   the stay goes on.
   Otherwise the device has left: the candidate closes at its last accepted ping.
4. The next candidate opens at the ping after the last accepted one. Candidates of one
   place are joined again (GPS jitter can split a stay): the next candidate if its centre
   lies within the radius of the stay's centre, or a later one when the pings in between
   span less than `merge_gap_s` (default 15 min: they could not be a stay themselves, so no
   stay is lost) — those pings count as outliers. A joined run is a stay if its pings span
   `min_duration_s` or more (first to last accepted ping) or — a run of two pings or more —
   its gap-filled bounds of step 6 do (a stay seen by few pings between reporting gaps).
5. Long stays (pings spanning `max_stay_s` or more): ``keep`` (default), ``cut`` (close the stay at
   the last ping before `max_stay_s` and open a new one at the next ping, as Infostop's
   `max_staying_time`) or ``drop``.
6. Gap filling: a stay whose first (last) ping follows (precedes) a reporting gap g with
   `fill_gap_s` < g ≤ `max_gap_s` (default 15 min < g ≤ 3 h) starts (ends) ⌊g/2⌋ earlier
   (later), in the middle of the gap: the device arrived (left) somewhere in it, and the
   middle is the estimate with the least expected error (bounds at the pings under-count
   every stay's dwell time). `fill_gap_s` = 0: off, bounds at the pings.

`PING_BOUNDED` holds the settings of the detector before issue 11 that keep stay bounds at
the pings (no noise band, no gap filling); see docs/mobility.md for what the defaults gain
on noisy data with reporting gaps and what they cost in boundary precision on clean data.

Each device's stays depend on its own pings only, so device batches give the same stays.

Distances use the equirectangular approximation around the candidate's first ping
(error < 0.01 % at 30 m); centres are the mean of the accepted pings' lat/lon.

Differences from the peers (with the same thresholds they agree on ≥ 95 % of the stays of
clean simulated traces; with GPS jitter and outliers trackintel splits stays):

- trackintel `generate_staypoints(method="sliding")` (Li et al. 2008) measures distance to
  the window's *first* point (so one jittered first ping shifts the whole stay), ends a
  staypoint at the time of the first ping *outside* it (ours: the last ping inside), drops
  the open window whenever a gap exceeds `gap_threshold` (ours: closes the stay at the gap
  and keeps it if long enough), and has no outlier tolerance.
- Infostop (Aslak & Alessandretti 2020) compares with the running *median* of the group
  and has no gap or outlier rule; its second step clusters stays into stop locations with
  Infomap — here stays are binned to H3 cells instead (`segtool visits`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numba
import numpy as np
import polars as pl

from segtool.errors import UsageError
from segtool.schema import UTC_US, dataset_schema

LongStays = Literal["keep", "cut", "drop"]
_LONG_MODES = {"keep": 0, "cut": 1, "drop": 2}

STAYS_SCHEMA = dataset_schema("stays")

_EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG = _EARTH_RADIUS_M * np.pi / 180.0


@dataclass(frozen=True)
class StayParams:
    """Thresholds of stay detection (SPEC §3 defaults: 30 m, 15 min, 3 h, 12 h)."""

    radius_m: float = 30.0
    min_duration_s: float = 15 * 60.0
    max_gap_s: float = 3 * 3600.0
    max_stay_s: float = 12 * 3600.0
    long_stays: LongStays = "keep"
    max_outliers: int = 1
    merge_gap_s: float = 15 * 60.0
    use_accuracy: bool = True
    fill_gap_s: float = 15 * 60.0  # 0: off, bounds at the pings (PING_BOUNDED)
    noise_band: float = 2.0  # 1: off, every ping beyond r counts (PING_BOUNDED)
    centre_slack: bool = True

    def __post_init__(self) -> None:
        if not self.radius_m > 0:
            raise UsageError(f"the stay radius must be positive, got {self.radius_m} m")
        if self.min_duration_s < 0 or self.max_gap_s <= 0 or self.max_stay_s <= 0:
            raise UsageError("stay durations and gaps must be positive")
        if self.long_stays not in _LONG_MODES:
            raise UsageError(
                f"--long-stays must be one of {', '.join(_LONG_MODES)}, got {self.long_stays!r}"
            )
        if self.max_outliers < 0:
            raise UsageError("--max-outliers must be 0 or more")
        if self.merge_gap_s < 0:
            raise UsageError("--merge-gap must be 0 or more")
        if not self.noise_band >= 1.0:
            raise UsageError(f"--noise-band must be 1 or more, got {self.noise_band}")
        if self.fill_gap_s < 0:
            raise UsageError("--fill-gap must be 0 or more")


PING_BOUNDED = dict(noise_band=1.0, fill_gap_s=0.0)


@dataclass(frozen=True)
class StayCounts:
    """What happened to the pings of one run (counts add up over device batches)."""

    pings: int = 0
    pings_in_stays: int = 0
    outliers_skipped: int = 0
    stays: int = 0
    merged: int = 0
    long_cut: int = 0
    long_dropped: int = 0
    bounds_filled: int = 0

    def __add__(self, other: StayCounts) -> StayCounts:
        return StayCounts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})


@numba.njit(cache=True, nogil=True)
def _candidates(dev, t, lat, lon, reach, max_gap, max_stay, cut, max_outliers, band2, slack):
    """Split the (device, ts)-sorted pings into candidate stays (steps 1–3 of the module
    docstring); ping j is within the stay if its distance to the centre is at most
    reach[j] (degrees of latitude). Returns (label of each ping — its candidate, or -1 for a skipped outlier —,
    number of candidates, number of candidates closed by the `cut` rule)."""
    n = dev.shape[0]
    labels = np.full(n, -1, np.int64)
    n_cut = 0
    cand = 0
    i = 0
    while i < n:
        d = dev[i]
        s = i
        last = i
        sum_lat = lat[i]
        sum_lon = lon[i]
        cnt = 1
        coslat = np.cos(lat[i] * np.pi / 180.0)
        labels[i] = cand
        j = i + 1
        while j < n and dev[j] == d:
            if t[j] - t[last] > max_gap:
                break
            if cut and t[j] - t[s] >= max_stay:
                n_cut += 1
                break
            clat = sum_lat / cnt
            clon = sum_lon / cnt
            # the centre of cnt pings is itself uncertain: r grows by √(1 + 1/cnt)
            grow = slack * (np.sqrt(1.0 + 1.0 / cnt) - 1.0)
            dy = lat[j] - clat
            dx = (lon[j] - clon) * coslat
            rj = reach[j] + grow
            if dx * dx + dy * dy <= rj * rj:
                sum_lat += lat[j]
                sum_lon += lon[j]
                cnt += 1
                last = j
                labels[j] = cand
                j += 1
                continue
            # j lies outside: skipped if a later ping comes back within reach before
            # more than max_outliers pings beyond band × reach (pings in the noise band
            # between reach and band × reach do not count)
            back = -1
            far = 1 if dx * dx + dy * dy > band2 * rj * rj else 0
            m = j + 1
            while far <= max_outliers and m < n and dev[m] == d:
                if t[m] - t[last] > max_gap or (cut and t[m] - t[s] >= max_stay):
                    break
                dy = lat[m] - clat
                dx = (lon[m] - clon) * coslat
                rm = reach[m] + grow
                if dx * dx + dy * dy <= rm * rm:
                    back = m
                    break
                if dx * dx + dy * dy > band2 * rm * rm:
                    far += 1
                m += 1
            if back < 0:
                break
            j = back
        cand += 1
        i = last + 1
    return labels, cand, n_cut


@numba.njit(cache=True, nogil=True)
def _aggregate(labels, dev, t, lat, lon, n_groups):
    """Per label 0 … n_groups−1: device, first/last ts, mean lat/lon, pings, first/last index."""
    g_dev = np.zeros(n_groups, np.uint64)
    start = np.zeros(n_groups, np.int64)
    end = np.zeros(n_groups, np.int64)
    sum_lat = np.zeros(n_groups, np.float64)
    sum_lon = np.zeros(n_groups, np.float64)
    cnt = np.zeros(n_groups, np.int64)
    first = np.zeros(n_groups, np.int64)
    last = np.zeros(n_groups, np.int64)
    for i in range(labels.shape[0]):
        k = labels[i]
        if k < 0:
            continue
        if cnt[k] == 0:
            g_dev[k] = dev[i]
            start[k] = t[i]
            first[k] = i
        end[k] = t[i]
        last[k] = i
        sum_lat[k] += lat[i]
        sum_lon[k] += lon[i]
        cnt[k] += 1
    return g_dev, start, end, sum_lat, sum_lon, cnt, first, last


@numba.njit(cache=True, nogil=True)
def _close(lat_a, lon_a, lat_b, lon_b, r_deg2):
    coslat = np.cos(lat_a * np.pi / 180.0)
    dy = lat_b - lat_a
    dx = (lon_b - lon_a) * coslat
    return dx * dx + dy * dy <= r_deg2


@numba.njit(cache=True, nogil=True)
def _merge(g_dev, start, end, sum_lat, sum_lon, cnt, r_deg2, max_gap, merge_gap, max_stay, cut):
    """Step 4: join candidates of a device whose centre lies within the radius of the
    current stay's centre: the next candidate (gap at most max_gap), or a later one when the
    candidates in between — which become noise, group −1 — span less than merge_gap and
    the gaps around them are at most max_gap. In `cut` mode never across max_stay.
    Returns (group of each candidate, number of groups)."""
    m = g_dev.shape[0]
    group = np.full(m, -1, np.int64)
    g = -1
    c_lat = 0.0
    c_lon = 0.0
    c_n = 0
    c_start = 0
    c_end = 0
    c_dev = g_dev[0] if m else 0
    k = 0
    while k < m:
        back = -1
        if g >= 0 and g_dev[k] == c_dev and start[k] - c_end <= max_gap:
            q = k
            while q < m and g_dev[q] == c_dev:
                if q > k and (
                    end[q - 1] - start[k] >= merge_gap or start[q] - end[q - 1] > max_gap
                ):
                    break
                if not (cut and end[q] - c_start >= max_stay) and _close(
                    c_lat / c_n, c_lon / c_n, sum_lat[q] / cnt[q], sum_lon[q] / cnt[q], r_deg2
                ):
                    back = q
                    break
                q += 1
        if back >= 0:
            c_lat += sum_lat[back]
            c_lon += sum_lon[back]
            c_n += cnt[back]
            c_end = end[back]
            group[back] = g
            k = back + 1
            continue
        g += 1
        c_dev = g_dev[k]
        c_lat = sum_lat[k]
        c_lon = sum_lon[k]
        c_n = cnt[k]
        c_start = start[k]
        c_end = end[k]
        group[k] = g
        k += 1
    return group, g + 1


@numba.njit(cache=True, nogil=True)
def _relabel(labels, group):
    out = np.empty_like(labels)
    for i in range(labels.shape[0]):
        out[i] = group[labels[i]] if labels[i] >= 0 else -1
    return out


@numba.njit(cache=True, nogil=True)
def _order_within_devices(dev, t, lat, lon):
    """(permutation putting each device's pings — dev already grouped — in (ts, lat, lon)
    order, whether it differs from the identity). Sorted runs are left alone, so the usual
    input, in time order per device, costs one pass."""
    n = dev.shape[0]
    perm = np.arange(n)
    changed = False
    i = 0
    while i < n:
        j = i
        ordered = True
        while j + 1 < n and dev[j + 1] == dev[i]:
            if t[j + 1] < t[j] or (
                t[j + 1] == t[j]
                and (lat[j + 1] < lat[j] or (lat[j + 1] == lat[j] and lon[j + 1] < lon[j]))
            ):
                ordered = False
            j += 1
        if not ordered:  # stable sorts by the minor keys first: a lexicographic sort
            seg = np.arange(i, j + 1)
            seg = seg[np.argsort(lon[seg], kind="mergesort")]
            seg = seg[np.argsort(lat[seg], kind="mergesort")]
            seg = seg[np.argsort(t[seg], kind="mergesort")]
            perm[i : j + 1] = seg
            changed = True
        i = j + 1
    return perm, changed


@numba.njit(cache=True, nogil=True)
def _fill_gaps(dev, t, start, end, first, last, fill_gap, max_gap):
    """Step 6: a run whose first (last) ping follows (precedes) a reporting gap g of the
    device with fill_gap < g ≤ max_gap starts (ends) in the middle of it: ⌊g/2⌋ earlier
    (later). Two runs around one gap meet at most in its middle, so they never overlap.
    fill_gap ≤ 0: off. Returns the filled (start, end)."""
    start = start.copy()
    end = end.copy()
    n = t.shape[0]
    if fill_gap <= 0:
        return start, end
    for g in range(start.shape[0]):
        f = first[g]
        if f > 0 and dev[f - 1] == dev[f]:
            gap = t[f] - t[f - 1]
            if fill_gap < gap <= max_gap:
                start[g] = t[f] - gap // 2
        e = last[g]
        if e + 1 < n and dev[e + 1] == dev[e]:
            gap = t[e + 1] - t[e]
            if fill_gap < gap <= max_gap:
                end[g] = t[e] + gap // 2
    return start, end


@numba.njit(cache=True, nogil=True)
def _kernel(
    dev,
    t,
    lat,
    lon,
    reach,
    r_deg2,
    max_gap,
    max_stay,
    merge_gap,
    min_dur,
    mode,
    max_outliers,
    fill_gap,
    band,
    slack,
):
    """Steps 1–6 in one compiled call (one cache load per process).

    Returns (ping labels — stay id 0, 1, … or −1 —, per-stay device, start, end, Σlat,
    Σlon, pings, and counts [outliers skipped, merged, cut, dropped, bounds moved])."""
    cut = mode == 1
    labels, n_cand, n_cut = _candidates(
        dev, t, lat, lon, reach, max_gap, max_stay, cut, max_outliers, band * band, slack
    )
    agg = _aggregate(labels, dev, t, lat, lon, n_cand)
    n_groups = n_cand
    if n_cand > 0:
        group, n_groups = _merge(
            agg[0],
            agg[1],
            agg[2],
            agg[3],
            agg[4],
            agg[5],
            r_deg2,
            max_gap,
            merge_gap,
            max_stay,
            cut,
        )
        labels = _relabel(labels, group)
        agg = _aggregate(labels, dev, t, lat, lon, n_groups)
    g_dev, start, end, sum_lat, sum_lon, cnt, first, last = agg
    f_start, f_end = _fill_gaps(dev, t, start, end, first, last, fill_gap, max_gap)
    new_id = np.full(n_groups, -1, np.int64)
    n_stays = 0
    n_dropped = 0
    outliers = 0
    n_filled = 0
    for g in range(n_groups):
        dur = end[g] - start[g]
        # the pings' own span, or the filled span of a run of two pings or more
        if dur < min_dur and (cnt[g] < 2 or f_end[g] - f_start[g] < min_dur):
            continue
        if mode == 2 and dur >= max_stay:
            n_dropped += 1
            continue
        new_id[g] = n_stays
        n_stays += 1
        outliers += (last[g] - first[g] + 1) - cnt[g]
        n_filled += (f_start[g] != start[g]) + (f_end[g] != end[g])
    keep = new_id >= 0
    labels = _relabel(labels, new_id)
    start, end = f_start, f_end
    counts = np.array([outliers, n_cand - n_groups, n_cut, n_dropped, n_filled], np.int64)
    return (
        labels,
        g_dev[keep],
        start[keep],
        end[keep],
        sum_lat[keep],
        sum_lon[keep],
        cnt[keep],
        counts,
    )


def _arrays(frame: pl.DataFrame):
    dev = frame["device"].cast(pl.UInt64).to_numpy()
    t = frame["ts"].dt.cast_time_unit("us").cast(pl.Int64).to_numpy()
    lat = frame["lat"].cast(pl.Float64).to_numpy()
    lon = frame["lon"].cast(pl.Float64).to_numpy()
    return tuple(np.ascontiguousarray(a) for a in (dev, t, lat, lon))


def _reach(frame: pl.DataFrame, params: StayParams) -> np.ndarray:
    """Per ping, how far from the centre it may lie (degrees of latitude): r, plus its
    reported accuracy capped at r when `use_accuracy` and the column is there."""
    r = params.radius_m
    if params.use_accuracy and "accuracy_m" in frame.columns:
        acc = frame["accuracy_m"].cast(pl.Float64).fill_nan(None).fill_null(0.0)
        acc = acc.clip(0.0, r).to_numpy()
        return np.ascontiguousarray((r + acc) / _M_PER_DEG)
    return np.full(frame.height, r / _M_PER_DEG)


def _detect(pings: pl.DataFrame, params: StayParams, rows: bool = False):
    """Order the pings, run steps 1–5; return (input row of each ordered ping — with
    `rows` —, its label), per-stay arrays and counts."""
    cols = [c for c in ("device", "ts", "lat", "lon", "accuracy_m") if c in pings.columns]
    frame = pings.select(cols)
    if rows:
        frame = frame.with_row_index("_row")
    # stable sort by device; the compiled pass then orders each device's pings
    frame = frame.sort("device", maintain_order=True)
    dev, t, lat, lon = _arrays(frame)
    reach = _reach(frame, params)
    perm, changed = _order_within_devices(dev, t, lat, lon)
    row = frame["_row"].to_numpy() if rows else None
    if changed:
        t, lat, lon, reach = t[perm], lat[perm], lon[perm], reach[perm]
        row = row[perm] if rows else None
    del frame
    labels, g_dev, start, end, sum_lat, sum_lon, cnt, c = _kernel(
        dev,
        t,
        lat,
        lon,
        reach,
        (params.radius_m / _M_PER_DEG) ** 2,
        int(round(params.max_gap_s * 1e6)),
        int(round(params.max_stay_s * 1e6)),
        int(round(params.merge_gap_s * 1e6)),
        int(round(params.min_duration_s * 1e6)),
        _LONG_MODES[params.long_stays],
        int(params.max_outliers),
        int(round(params.fill_gap_s * 1e6)),
        float(params.noise_band),
        params.radius_m / _M_PER_DEG if params.centre_slack else 0.0,
    )
    counts = StayCounts(
        pings=int(dev.size),
        pings_in_stays=int(cnt.sum()),
        outliers_skipped=int(c[0]),
        stays=int(g_dev.size),
        merged=int(c[1]),
        long_cut=int(c[2]),
        long_dropped=int(c[3]),
        bounds_filled=int(c[4]),
    )
    return (row, labels), (g_dev, start, end, sum_lat, sum_lon, cnt), counts


def label_pings(pings: pl.DataFrame, params: StayParams = StayParams()) -> pl.Series:
    """Stay id of each ping, aligned with the rows of `pings` (any order): 0, 1, … in
    (device, time) order; −1 for moving pings, skipped outliers and too-short candidates."""
    (rows, labels), _, _ = _detect(pings, params, rows=True)
    out = np.empty(labels.size, np.int64)
    out[rows] = labels
    return pl.Series("stay", out)


def detect_stays(
    pings: pl.DataFrame, params: StayParams = StayParams()
) -> tuple[pl.DataFrame, StayCounts]:
    """Stays (SPEC §1 `stays/`, sorted by device and start) of pings in any order, and the
    counts of what happened. Per device the pings are taken in (ts, lat, lon) order, so
    identical timestamps give the same stays whatever the input order."""
    _, (g_dev, start, end, sum_lat, sum_lon, cnt), counts = _detect(pings, params)
    frame = pl.DataFrame(
        {
            "device": g_dev,
            "start": pl.Series(start, dtype=pl.Int64).cast(UTC_US),
            "end": pl.Series(end, dtype=pl.Int64).cast(UTC_US),
            "lat": sum_lat / np.maximum(cnt, 1),
            "lon": sum_lon / np.maximum(cnt, 1),
            "n_pings": cnt.astype(np.uint32),
        },
        schema=STAYS_SCHEMA,
    )
    return frame, counts


def ping_columns(pings: pl.LazyFrame) -> pl.LazyFrame:
    """The columns stay detection reads (accuracy_m when present), in the dtypes it reads."""
    has_accuracy = "accuracy_m" in pings.collect_schema().names()
    return pings.select(
        pl.col("device").cast(pl.UInt64),
        pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("lat").cast(pl.Float64),
        pl.col("lon").cast(pl.Float64),
        *([pl.col("accuracy_m").cast(pl.Float32)] if has_accuracy else []),
    )


def generate_stays(pings: pl.LazyFrame, params: StayParams = StayParams()) -> pl.LazyFrame:
    """Stays (SPEC §1 `stays/` schema) of every device in `pings`, sorted by (device, start).

    Lazy: the kernel runs when the frame is collected, on all of its pings at once. For
    bounded memory run it per set of whole devices (`device_batches`); `segtool stays`
    splits the pings by device in one pass first and runs `detect_stays` on each set.
    """
    return ping_columns(pings).map_batches(
        lambda frame: detect_stays(frame, params)[0],
        schema=STAYS_SCHEMA,
        streamable=False,
    )


def device_batches(pings: pl.LazyFrame, n_batches: int) -> list[pl.LazyFrame]:
    """Split pings into `n_batches` disjoint sets of whole devices (device id modulo n).

    Device ids are keyed-hash pseudonyms, so the modulo spreads them evenly.
    """
    if n_batches <= 1:
        return [pings]
    return [pings.filter((pl.col("device") % n_batches) == b) for b in range(n_batches)]
