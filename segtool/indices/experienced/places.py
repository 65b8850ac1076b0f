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

Replicates (bootstrap multipliers or permuted groups) enter as extra columns of one
sparse (units × devices) @ dense (devices × replicates·K) product, so all replicates of a
block cost one pass over the (device, unit) dwell.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def dwell_matrix(
    du_unit: np.ndarray, du_dev: np.ndarray, dwell: np.ndarray, n_units: int, n_dev: int
):
    """CSR (units × devices) of dwell d_iα."""
    return sp.csr_matrix((dwell, (du_unit, du_dev)), shape=(n_units, n_dev))


def split_by_group(D, code: np.ndarray, k: int) -> list:
    """D's columns split by the devices' (hard) group: K matrices whose nnz add up to D's."""
    return [(D @ sp.diags((code == g).astype(float))).tocsr() for g in range(k)]


def amounts(D, mass: np.ndarray, member: np.ndarray, by_group: list | None = None) -> np.ndarray:
    """A[u, r, g] = Σ_i D[u, i] · mass[i, r] · m[i, g] (one sparse product per block).

    mass: (n, R) device multipliers × weights; member: group shares (n, K) shared by the
    block, or (R, n, K) per replicate; `by_group`: D split by hard group (`split_by_group`),
    used when the block shares hard membership (K times fewer products)."""
    n, r = mass.shape
    k = member.shape[-1]
    if by_group is not None and member.ndim == 2:
        return np.stack([np.asarray(dg @ mass) for dg in by_group], axis=-1)
    if member.ndim == 2:
        y = (mass[:, :, None] * member[:, None, :]).reshape(n, r * k)
    else:
        y = (mass.T[:, :, None] * member).transpose(1, 0, 2).reshape(n, r * k)
    return np.asarray(D @ y).reshape(D.shape[0], r, k)


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
