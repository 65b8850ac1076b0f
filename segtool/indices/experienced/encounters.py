"""Encounters: who is present together, in the same cell and time bin — aggregated per
(cell, bin, group) with leave-self-out algebra, so the cost is linear in visits and no
device × device pair is ever formed.

For a segment b (one cell × one time bin) let x_i = c_i w_i · (seconds device i spends
in b) (c_i the replicate multiplicity, 1 for the estimate) and P_bg = Σ_i m_ig x_i,
P_b = Σ_g P_bg. The others present with i have O_bh = P_bh − m_ih x_i of group h out of
O_b = P_b − x_i, so

    Σ_i m_ig x_i O_bh / O_b = Σ_b P_bh U_bg − Σ_i m_ig m_ih x_i u_i,
    u_i = x_i / O_b,  U_bg = Σ_{i in b} m_ig u_i,

which needs only per-segment sums and one sum over rows. Rows where nobody else is
present (O_b = 0) enter neither numerator nor denominator.

The economic sums use the same leave-self-out algebra on unweighted counts: per device
Σ_{b∋i} (N_b − c_i) co-present others and the sum of their SES; the sums of squares are
only needed as one total per replicate (Σ_i c_i Σ_{b∋i} (Q_b − c_i s_i²) = Σ_b (N_b Q_b −
Σ_{i∈b} c_i² s_i²), Q_b = Σ_{i∈b} c_i s_i²), so they cost no per-device pass.

Every function works on a block of R replicates (columns): multiplicities `mult`
(n, R) small integers (bootstrap) or None (all ones: the estimate and the permutation
null), and group shares `member`, either (n, K) shared by the block or (R, n, K) per
replicate (permutation null). The passes are compiled (`kernels.py`): one sweep over the
(device, segment) rows per block, the replicates in the innermost loop.
"""

from __future__ import annotations

import numpy as np

from segtool.indices.experienced import kernels
from segtool.indices.experienced.panel import Presence


def _rows(pres: Presence, weight: np.ndarray | None = None):
    """Segment bounds (n_seg + 1,) and, with `weight`, each row's w_i × seconds (cached:
    the same for every block)."""
    if "bounds" not in pres.cache:
        pres.cache["bounds"] = np.append(pres.starts, pres.rows).astype(np.int64)
    if weight is None:
        return pres.cache["bounds"]
    if "y" not in pres.cache:
        pres.cache["y"] = weight[pres.dev] * pres.amount
    return pres.cache["bounds"], pres.cache["y"]


def multiplicities(mult: np.ndarray | None, n: int, r_count: int) -> np.ndarray:
    """(n, R) multiplicities for the kernels: uint8 when they fit, ones when None."""
    if mult is None:
        return np.ones((n, r_count), dtype=np.uint8)
    if mult.dtype == np.uint8:
        return np.ascontiguousarray(mult)
    if mult.size and mult.min() >= 0 and mult.max() < 256 and np.all(mult == np.round(mult)):
        return np.ascontiguousarray(mult, dtype=np.uint8)
    return np.ascontiguousarray(mult, dtype=np.float64)


def membership(member: np.ndarray, hard: bool) -> tuple[np.ndarray, np.ndarray]:
    """Group codes (n, Rc) int32 for hard groups, or shares (n, Rc, K); the other empty."""
    shared = member.ndim == 2
    if hard:
        code = member.argmax(axis=-1).astype(np.int32)  # (n,) or (R, n)
        code = code[:, None] if shared else np.ascontiguousarray(code.T)
        return code, np.zeros((0, 0, 0))
    m = member[:, None, :] if shared else member.transpose(1, 0, 2)
    return np.zeros((0, 0), np.int32), np.ascontiguousarray(m, dtype=np.float64)


def copresence(
    pres: Presence,
    weight: np.ndarray,
    mult: np.ndarray | None,
    member: np.ndarray,
    hard: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Numerators (R, K, K) and denominators (R, K) of the co-presence exposure matrix.

    N_gh = Σ_i Σ_b m_ig x_ib · O_bh(i) / O_b(i),   D_g = Σ_i Σ_b m_ig x_ib [O_b(i) > 0],
    so E_gh = N_gh / D_g. `hard`: every device in one group (a faster pass, same result)."""
    per_rep = member.ndim == 3
    k = member.shape[-1]
    n = weight.size
    r_count = member.shape[0] if per_rep else (1 if mult is None else mult.shape[1])
    if pres.rows == 0:
        return np.zeros((r_count, k, k)), np.zeros((r_count, k))
    bounds, y = _rows(pres, weight)
    c = multiplicities(mult, n, r_count)
    code, shares = membership(member, hard)
    if hard:
        num, den = kernels.copresence_hard(bounds, pres.dev, y, code, c, k)
    else:
        num, den = kernels.copresence_soft(bounds, pres.dev, y, shares, c)
    return num.transpose(2, 0, 1), den.T


def ses_sums(
    pres: Presence, mult: np.ndarray | None, ses: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per device and replicate: the number of co-present others (summed over segments)
    and the sum of their SES, (n, R) each; and per replicate the total over devices of
    c_i × the sum of squares of their others' SES (R,). ses (n,) shared or (R, n) per
    replicate, NaN where unknown (such devices are neither focal nor counted among the
    others). A device's own copies are never its own others."""
    per_rep = ses.ndim == 2
    r_count = ses.shape[0] if per_rep else (1 if mult is None else mult.shape[1])
    has = ~np.isnan(ses)
    s0 = np.where(has, ses, 0.0)
    if per_rep:
        has_c, s_c = np.ascontiguousarray(has.T, dtype=np.float64), np.ascontiguousarray(s0.T)
    else:
        has_c, s_c = has.astype(np.float64)[:, None], s0[:, None]
    if pres.rows == 0:
        z = np.zeros((n, r_count))
        return z, z.copy(), np.zeros(r_count)
    c = multiplicities(mult, n, r_count)
    out, fsyy = kernels.ses_sums(_rows(pres), pres.dev, has_c, s_c, c, n)
    if "segments" not in pres.cache:
        pres.cache["segments"] = np.bincount(pres.dev, minlength=n).astype(np.float64)
    n_i, sy = kernels.ses_focal(out, pres.cache["segments"], has_c, s_c, c)
    return n_i, sy, fsyy
