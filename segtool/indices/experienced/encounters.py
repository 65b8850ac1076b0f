"""Encounters: who is present together, in the same cell and time bin — aggregated per
(cell, bin, group) with leave-self-out algebra, so the cost is linear in visits and no
device × device pair is ever formed.

For a segment b (one cell × one time bin) let x_i = w_i · (seconds device i spends in b)
and P_bg = Σ_i m_ig x_i, P_b = Σ_g P_bg. The others present with i have
O_bh = P_bh − m_ih x_i of group h out of O_b = P_b − x_i, so

    Σ_i m_ig x_i O_bh / O_b = Σ_b P_bh U_bg − Σ_i m_ig m_ih x_i u_i,
    u_i = x_i / O_b,  U_bg = Σ_{i in b} m_ig u_i,

which needs only per-segment and per-device sums. Rows where nobody else is present
(O_b = 0) enter neither numerator nor denominator.

The same algebra gives the economic sums (unweighted counts of co-present others and the
sum and sum of squares of their SES).
"""

from __future__ import annotations

import numpy as np

from segtool.indices.experienced.panel import Presence


def copresence(
    pres: Presence, mass: np.ndarray, member: np.ndarray, code: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Numerator (K, K) and denominator (K,) of the co-presence exposure matrix.

    N_gh = Σ_i Σ_b m_ig x_ib · O_bh(i) / O_b(i),   D_g = Σ_i Σ_b m_ig x_ib [O_b(i) > 0],
    so E_gh = N_gh / D_g. `mass` (n,) is w_i × the replicate multiplier; `member` (n, K);
    `code` (n,) the group codes when membership is hard (a faster path, same result)."""
    k = member.shape[1]
    if pres.rows == 0:
        return np.zeros((k, k)), np.zeros(k)
    x = mass[pres.dev] * pres.amount
    pb = np.add.reduceat(x, pres.starts)
    pb_row = pb[pres.seg]
    o = pb_row - x
    ok = o > 1e-9 * pb_row
    u = np.zeros_like(x)
    np.divide(x, o, out=u, where=ok)
    xo = np.where(ok, x, 0.0)
    if code is not None:
        gi = code[pres.dev]
        idx = pres.seg.astype(np.int64) * k + gi
        size = pres.n_seg * k
        p_bg = np.bincount(idx, weights=x, minlength=size).reshape(pres.n_seg, k)
        u_bg = np.bincount(idx, weights=u, minlength=size).reshape(pres.n_seg, k)
        num = u_bg.T @ p_bg
        num[np.diag_indices(k)] -= np.bincount(gi, weights=x * u, minlength=k)
        den = np.bincount(gi, weights=xo, minlength=k)
        return num, den
    n = member.shape[0]
    p_bg = np.empty((pres.n_seg, k))
    u_bg = np.empty((pres.n_seg, k))
    for g in range(k):
        mg = member[pres.dev, g]
        p_bg[:, g] = np.bincount(pres.seg, weights=x * mg, minlength=pres.n_seg)
        u_bg[:, g] = np.bincount(pres.seg, weights=u * mg, minlength=pres.n_seg)
    xu = np.bincount(pres.dev, weights=x * u, minlength=n)
    xd = np.bincount(pres.dev, weights=xo, minlength=n)
    num = u_bg.T @ p_bg - (member * xu[:, None]).T @ member
    den = member.T @ xd
    return num, den


def ses_sums(
    pres: Presence, count: np.ndarray, ses: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per device: the number of co-present others (summed over segments), the sum and
    the sum of squares of their SES. Devices without SES (NaN) are neither focal nor
    counted among the others. `count` (n,) is the replicate multiplicity (1 for the
    estimate); a device's own copies are never its own others."""
    n = count.size
    if pres.rows == 0:
        z = np.zeros(n)
        return z, z.copy(), z.copy()
    has = ~np.isnan(ses)
    c = np.where(has, count, 0.0)
    s = np.where(has, ses, 0.0)
    ci, si = c[pres.dev], s[pres.dev]
    nb = np.add.reduceat(ci, pres.starts)[pres.seg]
    s1 = np.add.reduceat(ci * si, pres.starts)[pres.seg]
    s2 = np.add.reduceat(ci * si * si, pres.starts)[pres.seg]
    focal = has[pres.dev]
    n_i = np.bincount(pres.dev, weights=np.where(focal, nb - ci, 0.0), minlength=n)
    sy = np.bincount(pres.dev, weights=np.where(focal, s1 - ci * si, 0.0), minlength=n)
    syy = np.bincount(pres.dev, weights=np.where(focal, s2 - ci * si * si, 0.0), minlength=n)
    return n_i, sy, syy
