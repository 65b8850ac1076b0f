"""Individual level: exposure τ_gi and segregation S_i (Moro et al. 2021).

- τ_gi = Σ_α d_iα τ_gα / Σ_α d_iα — the composition of the places (units) device i
  visits, weighted by the time it spends there;
- S_i = Σ_g |τ_gi − r_g| / (2 (1 − min r)) — the same formula as place segregation.

Leave-one-out: the device's own time is removed from each place it visits,
τ_gα^(−i) = (A_gα − w_i m_ig d_iα) / (A_α − w_i d_iα); places where the device is the
only one present carry no exposure (and a device present only in such places has none).

Both come from one compiled pass over the (device, unit) dwell rows for a whole block
of replicates (`kernels.exposures`).

Summaries by home group: weighted mean, median and quartiles of S_i over the devices of
group g, each device weighted by w_i m_ig (soft membership counts a device in every
group by its share).
"""

from __future__ import annotations

import numpy as np

from segtool.indices.experienced import kernels
from segtool.indices.experienced.places import Rows, weighted_quantiles

QUANTILES = {"q25": 0.25, "median": 0.5, "q75": 0.75}


def exposures(
    r: Rows,
    a: np.ndarray,
    mass: np.ndarray,
    code: np.ndarray,
    shares: np.ndarray,
    ref: np.ndarray,
    *,
    loo: bool = False,
    want_tau: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """S_i (n, R) and, with `loo`, the leave-one-out S_i (NaN where the device shares no
    place with anyone) for every replicate; with `want_tau` also τ_gi and τ_gi^(−i)
    (n, R, K).

    a: unit amounts (units, K+1, R) from `places.amounts`; mass (n, R) = w_i ×
    multiplicity; hard groups as `code` (n, Rc), soft as `shares` (n, Rc, K) (see
    `encounters.membership`)."""
    s, s_loo, t, t_loo = kernels.exposures(
        r.bounds,
        r.unit,
        r.share,
        r.dwell,
        a,
        np.ascontiguousarray(mass, dtype=np.float64),
        code,
        shares,
        np.asarray(ref, dtype=np.float64),
        want_tau,
        loo,
    )
    if not want_tau:
        return s, s_loo, None, None
    return s, s_loo, t.transpose(0, 2, 1), (t_loo.transpose(0, 2, 1) if loo else None)


def summaries(
    values: np.ndarray, mass: np.ndarray, member: np.ndarray, quantiles: bool = True
) -> dict:
    """{(group or None, statistic): (R,)} of weighted mean (and q25, median, q75) of
    `values` (n, R) over all devices (group None) and by group (weights mass × share).
    member: (n, K) or (R, n, K)."""
    out = {}
    k = member.shape[-1]
    m3 = member[None] if member.ndim == 2 else member
    means = kernels.group_means(values, np.ascontiguousarray(mass, dtype=np.float64), m3)
    if quantiles:
        ok = ~np.isnan(values)
    for g in [None, *range(k)]:
        out[(g, "mean")] = means[0 if g is None else g + 1]
        if quantiles:
            if g is None:
                w = mass
            else:
                w = mass * (member[:, g][:, None] if member.ndim == 2 else member[:, :, g].T)
            ww = np.where(ok, w, 0.0)
            qv = weighted_quantiles(values, ww, list(QUANTILES.values()))
            for j, name in enumerate(QUANTILES):
                out[(g, name)] = qv[j]
    return out
