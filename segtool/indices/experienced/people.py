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

from segtool.indices.experienced.places import segregation, weighted_quantiles

QUANTILES = {"q25": 0.25, "median": 0.5, "q75": 0.75}


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
    n_dev: int,
) -> np.ndarray:
    """Leave-one-out τ_gi (n, R, K); NaN where the device shares no place with anyone.

    a: unit amounts (units, R, K); mass (n, R); member (R, n, K)."""
    r_count, k = a.shape[1], a.shape[2]
    out = np.full((n_dev, r_count, k), np.nan)
    tot = a.sum(axis=-1)
    for r in range(r_count):
        own = mass[du_dev, r] * dwell
        t = tot[du_unit, r]
        denom = t - own
        valid = denom > 1e-9 * t
        wd = np.where(valid, dwell, 0.0)
        norm = np.bincount(du_dev, weights=wd, minlength=n_dev)
        safe = np.where(valid, denom, 1.0)
        has = norm > 0
        for g in range(k):
            val = (a[du_unit, r, g] - own * member[r, du_dev, g]) / safe
            num = np.bincount(du_dev, weights=wd * val, minlength=n_dev)
            out[has, r, g] = num[has] / norm[has]
    return out


def individual_segregation(t: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """S_i (n, R) from exposures (n, R, K); NaN stays NaN."""
    return segregation(t, ref)


def summaries(values: np.ndarray, mass: np.ndarray, member: np.ndarray) -> dict:
    """{(group or None, statistic): (R,)} of weighted mean, q25, median, q75 of `values`
    (n, R) over all devices (group None) and by group (weights mass × share)."""
    out = {}
    k = member.shape[2]
    for g in [None, *range(k)]:
        w = mass if g is None else mass * member[:, :, g].T
        ok = ~np.isnan(values)
        ww = np.where(ok, w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[(g, "mean")] = np.where(ok, values * w, 0.0).sum(0) / ww.sum(0)
        qv = weighted_quantiles(values, ww, list(QUANTILES.values()))
        for j, name in enumerate(QUANTILES):
            out[(g, name)] = qv[j]
    return out
