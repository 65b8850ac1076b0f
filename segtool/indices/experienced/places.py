"""Place level: composition τ_gα, segregation S_α (Moro et al. 2021) and ICE_α (Liao et al.
2025), for many replicates at once.

A *unit* α is a place (H3 cell or any place id), or a place × stratum with `--by`.

- Amount of group g at α: A_gα = Σ_i w_i m_ig d_iα (w weight, m group share, d dwell).
- Composition τ_gα = A_gα / Σ_h A_hα.
- Segregation S_α = Σ_g |τ_gα − r_g| / (2 (1 − min_g r_g)). With r_g = 1/K this is Moro
  et al.'s K/(2(K−1)) Σ_g |τ_gα − 1/K| (0 = every group equally present, 1 = one group
  only); with population shares r_g = π_g the same normalisation keeps the maximum at 1.
- ICE_α = (a/s_a − b/s_b) / (a/s_a + b/s_b + o/s_o), with a, b the amounts of the `high`
  and `low` groups, o the rest, s the population shares (Liao et al. 2025, "modified ICE").
  −1 = only `low`, +1 = only `high`, 0 = as mixed as the population.

Replicates (bootstrap multipliers or permuted groups) are extra columns of one compiled
pass over the (device, unit) dwell rows, so all replicates of a block cost one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from segtool.indices.experienced import kernels


@dataclass
class Rows:
    """The (device, unit) dwell rows as the compiled passes read them: device i owns rows
    bounds[i]:bounds[i+1]; share = d_iα / Σ_α d_iα."""

    bounds: np.ndarray  # (n + 1,) int64
    unit: np.ndarray  # int32
    dwell: np.ndarray
    share: np.ndarray
    n_units: int


def rows(du_dev: np.ndarray, du_unit: np.ndarray, dwell: np.ndarray, n_dev: int, n_units: int):
    """Rows sorted by device."""
    tot = np.bincount(du_dev, weights=dwell, minlength=n_dev)
    bounds = np.searchsorted(du_dev, np.arange(n_dev + 1)).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = dwell / tot[du_dev]
    return Rows(bounds, du_unit.astype(np.int32), dwell.astype(np.float64), share, n_units)


def amounts(r: Rows, mass: np.ndarray, code: np.ndarray, shares: np.ndarray, k: int) -> np.ndarray:
    """A (units, K+1, R): A[u, g, r] = Σ_i d_iu · mass[i, r] · m_ig (mass = w_i × the
    replicate's multiplicity), last row the unit total — one compiled pass over the rows
    for a whole block. Hard groups as `code` (n, Rc), soft as `shares` (n, Rc, K) (see
    `encounters.membership`)."""
    return kernels.amounts(
        r.bounds,
        r.unit,
        r.dwell,
        np.ascontiguousarray(mass, dtype=np.float64),
        code,
        shares,
        r.n_units,
        k,
    )


def composition(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """τ (same shape as `a`, NaN where a unit has no mass) and the unit totals."""
    tot = a.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = a / tot[..., None]
    return tau, tot


def segregation(tau: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """S = Σ_g |τ_g − r_g| / (2 (1 − min r)) along the last axis."""
    ref = np.asarray(ref, dtype=float)
    return np.abs(tau - ref).sum(axis=-1) / (2.0 * (1.0 - ref.min()))


def ice(a: np.ndarray, shares: np.ndarray, high: int, low: int) -> np.ndarray:
    """ICE along the last axis of amounts `a` (Liao et al. 2025)."""
    shares = np.asarray(shares, dtype=float)
    tot = a.sum(axis=-1)
    ah = a[..., high] / shares[high]
    al = a[..., low] / shares[low]
    s_o = 1.0 - shares[high] - shares[low]
    other = tot - a[..., high] - a[..., low]
    ao = other / s_o if s_o > 1e-12 else np.zeros_like(tot)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ah - al) / (ah + al + ao)


def weighted_mean_by(values: np.ndarray, weights: np.ndarray, codes: np.ndarray, n_codes: int):
    """Per code (e.g. stratum) and overall weighted means of (units, R) arrays; NaN values
    carry no weight. Returns (n_codes, R) and (R,)."""
    ok = ~np.isnan(values)
    w = np.where(ok, weights, 0.0)
    wv = np.where(ok, values * weights, 0.0)
    ind = sp.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(n_codes, codes.size)
    )
    num, den = np.asarray(ind @ wv), np.asarray(ind @ w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den, wv.sum(0) / w.sum(0)


def row_nanquantiles(values: np.ndarray, qs) -> np.ndarray:
    """`np.nanquantile(values, qs, axis=1)` (linear interpolation, NaN ignored, all-NaN rows
    NaN) with no Python pass per row: rows sorted once (NaN last), then one `np.quantile`
    per distinct count of non-NaN values (at most R + 1 of them, whatever the number of
    rows). values (m, R) → (len(qs), m); the same numbers as `np.nanquantile`."""
    values = np.asarray(values, dtype=float)
    out = np.full((len(qs), values.shape[0]), np.nan)
    if values.size == 0:
        return out
    valid = (~np.isnan(values)).sum(axis=1)
    ordered = np.sort(values, axis=1)
    for c in np.unique(valid[valid > 0]):
        rows = valid == c
        out[:, rows] = np.quantile(ordered[rows, :c], qs, axis=1)
    return out


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs) -> np.ndarray:
    """Weighted quantiles of each column (inverted-CDF definition: the smallest value whose
    cumulative weight reaches q of the total; `np.quantile(..., weights=,
    method="inverted_cdf")` for one column). NaN values carry no weight.

    values, weights: (m, R) → (len(qs), R)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        return weighted_quantiles(values[:, None], np.asarray(weights)[:, None], qs)[:, 0]
    bad = np.isnan(values)
    v = np.where(bad, np.inf, values)
    w = np.where(bad, 0.0, weights)
    order = np.argsort(v, axis=0, kind="stable")
    vs = np.take_along_axis(v, order, 0)
    cum = np.cumsum(np.take_along_axis(w, order, 0), axis=0)
    tot = cum[-1] if cum.shape[0] else np.zeros(values.shape[1])
    cols = np.arange(values.shape[1])
    out = np.full((len(qs), values.shape[1]), np.nan)
    if cum.shape[0] == 0:
        return out
    for j, q in enumerate(qs):
        idx = (cum >= q * tot * (1 - 1e-12)).argmax(axis=0)
        out[j] = np.where(tot > 0, vs[idx, cols], np.nan)
    return out
