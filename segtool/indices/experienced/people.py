"""Individual level: exposure τ_gi and segregation S_i (Moro et al. 2021).

- τ_gi = Σ_α d_iα τ_gα / Σ_α d_iα — the composition of the places (units) device i
  visits, weighted by the time it spends there;
- S_i = Σ_g |τ_gi − r_g| / (2 (1 − min r)) — the same formula as place segregation.

Leave-one-out: the device's own time is removed from each place it visits,
τ_gα^(−i) = (A_gα − w_i m_ig d_iα) / (A_α − w_i d_iα); places where the device is the
only one present carry no exposure (and a device present only in such places has none).

Summaries by home group: weighted mean, median and quartiles of S_i over the devices of
group g, each device weighted by w_i m_ig (soft membership counts a device in every
group by its share).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from segtool.indices.experienced.encounters import indicator
from segtool.indices.experienced.places import segregation, weighted_quantiles

QUANTILES = {"q25": 0.25, "median": 0.5, "q75": 0.75}
_CHUNK = 250_000  # rows per chunk of the leave-one-out pass


def share_matrix(
    du_dev: np.ndarray, du_unit: np.ndarray, dwell: np.ndarray, n_dev: int, n_units: int
):
    """CSR (devices × units) of each device's share of its own time, d_iα / Σ_α d_iα."""
    tot = np.bincount(du_dev, weights=dwell, minlength=n_dev)
    return sp.csr_matrix((dwell / tot[du_dev], (du_dev, du_unit)), shape=(n_dev, n_units))


def exposures(F, tau: np.ndarray) -> np.ndarray:
    """τ_gi for every replicate: F (n × units) @ τ (units, R, K) → (n, R, K)."""
    u, r, k = tau.shape
    return np.asarray(F @ np.nan_to_num(tau).reshape(u, r * k)).reshape(F.shape[0], r, k)


def exposures_loo(
    du_dev: np.ndarray,
    du_unit: np.ndarray,
    dwell: np.ndarray,
    a: np.ndarray,
    mass: np.ndarray,
    member: np.ndarray,
) -> np.ndarray:
    """Leave-one-out τ_gi (n, R, K); NaN where the device shares no place with anyone.

    Rows (device, unit, dwell) sorted by device, every device having at least one row.
    a: unit amounts (units, R, K); mass (n, R); member (n, K) or (R, n, K)."""
    n, r_count = mass.shape
    k = a.shape[2]
    rows = du_dev.size
    dev_starts = np.flatnonzero(np.r_[True, du_dev[1:] != du_dev[:-1]])
    counts = np.diff(np.append(dev_starts, rows))
    tot = a.sum(axis=-1)
    a_g = [np.ascontiguousarray(a[:, :, g]) for g in range(k)]
    out = np.empty((n, r_count, k))
    step = max(1, _CHUNK)
    d0 = 0
    while d0 < n:
        r0 = int(dev_starts[d0])
        d1 = max(d0 + 1, int(np.searchsorted(dev_starts, r0 + step, side="right")))
        d1 = min(d1, n)
        r1 = int(dev_starts[d1]) if d1 < n else rows
        unit, d = du_unit[r0:r1], dwell[r0:r1, None]
        dev_sum = indicator(dev_starts[d0:d1] - r0, r1 - r0)
        own = np.repeat(mass[d0:d1], counts[d0:d1], axis=0) * d
        t = np.take(tot, unit, axis=0)
        denom = t - own
        valid = denom > 1e-9 * t
        inv = np.zeros_like(denom)
        np.divide(np.broadcast_to(d, denom.shape), denom, out=inv, where=valid)
        norm = dev_sum @ np.where(valid, d, 0.0)
        own_term = dev_sum @ (inv * own)
        with np.errstate(invalid="ignore", divide="ignore"):
            for g in range(k):
                m_g = member[d0:d1, g][:, None] if member.ndim == 2 else member[:, d0:d1, g].T
                num = dev_sum @ (inv * np.take(a_g[g], unit, axis=0)) - own_term * m_g
                out[d0:d1, :, g] = np.where(norm > 0, num / norm, np.nan)
        d0 = d1
    return out


def individual_segregation(t: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """S_i (n, R) from exposures (n, R, K); NaN stays NaN."""
    return segregation(t, ref)


def summaries(
    values: np.ndarray, mass: np.ndarray, member: np.ndarray, quantiles: bool = True
) -> dict:
    """{(group or None, statistic): (R,)} of weighted mean (and q25, median, q75) of
    `values` (n, R) over all devices (group None) and by group (weights mass × share).
    member: (n, K) or (R, n, K)."""
    out = {}
    k = member.shape[-1]
    ok = ~np.isnan(values)
    v0 = np.where(ok, values, 0.0)
    for g in [None, *range(k)]:
        if g is None:
            w = mass
        else:
            w = mass * (member[:, g][:, None] if member.ndim == 2 else member[:, :, g].T)
        ww = np.where(ok, w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[(g, "mean")] = (v0 * ww).sum(0) / ww.sum(0)
        if quantiles:
            qv = weighted_quantiles(values, ww, list(QUANTILES.values()))
            for j, name in enumerate(QUANTILES):
                out[(g, name)] = qv[j]
    return out
