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
Σ_{b∋i} (N_b − c_i) co-present others, and the sum and sum of squares of their SES.

Every function works on a block of R replicates (columns): multiplicities `mult`
(n, R) small integers (bootstrap) or None (all ones: the estimate and the permutation
null), and group shares `member`, either (n, K) shared by the block or (R, n, K) per
replicate (permutation null). Rows are processed in chunks of whole segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from segtool.indices.experienced.panel import Presence

_CHUNK = 200_000  # rows per chunk (× replicates: ≈ 25 MB per float array for 16)


@dataclass
class HardIndex:
    """Presence rows sorted by (segment, group) for hard groups: runs of one group within
    a segment ("subsegments") start at `starts`."""

    pres: Presence
    starts: np.ndarray  # first row of each subsegment
    seg: np.ndarray  # its segment
    code: np.ndarray  # its group


def hard_index(pres: Presence, code: np.ndarray) -> HardIndex:
    gi = code[pres.dev].astype(np.int64)
    key = pres.seg.astype(np.int64) * (int(code.max()) + 1) + gi
    if key.size and np.any(key[1:] < key[:-1]):  # the panel usually sorts by group already
        order = np.argsort(key, kind="stable")
        pres = Presence(
            pres.dev[order], pres.seg[order], pres.amount[order], pres.starts, pres.n_seg
        )
        gi = gi[order]
    seg = pres.seg
    new = (
        np.r_[True, (seg[1:] != seg[:-1]) | (gi[1:] != gi[:-1])] if seg.size else np.zeros(0, bool)
    )
    starts = np.flatnonzero(new).astype(np.int64)
    return HardIndex(pres, starts, seg[starts].astype(np.int64), gi[starts])


def indicator(starts: np.ndarray, rows: int):
    """CSR (segments × rows) summing runs of rows that start at `starts` (rows sorted):
    `indicator(starts, n) @ x` is a segment sum of x (n, R) — much faster than
    `np.add.reduceat(x, starts, axis=0)` on 2-D arrays."""
    indptr = np.append(starts, rows).astype(np.int64)
    return sp.csr_matrix(
        (np.ones(rows), np.arange(rows, dtype=np.int64), indptr), shape=(starts.size, rows)
    )


def _chunks(pres: Presence, step: int | None = None):
    """Row ranges covering whole segments, about `step` (_CHUNK) rows each (independent
    of the block's width, so results do not depend on how replicates are blocked)."""
    step = max(1, step or _CHUNK)
    s0 = 0
    while s0 < pres.n_seg:
        r0 = int(pres.starts[s0])
        s1 = int(np.searchsorted(pres.starts, r0 + step, side="right"))
        s1 = max(s1, s0 + 1)
        r1 = int(pres.starts[s1]) if s1 < pres.n_seg else pres.rows
        yield r0, r1, s0, s1
        s0 = s1


def _chunk_devices(pres: Presence, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct devices of rows r0:r1 and each row's index among them (cached: the
    chunks are the same for every block)."""
    key = ("devices", r0, r1)
    if key not in pres.cache:
        dev = pres.dev[r0:r1]
        seen = np.bincount(dev)  # no sort: O(rows + devices)
        uniq = np.flatnonzero(seen)
        lookup = np.zeros(seen.size, dtype=np.int32)
        lookup[uniq] = np.arange(uniq.size, dtype=np.int32)
        pres.cache[key] = (uniq, lookup[dev])
    return pres.cache[key]


def _rows_mult(mult: np.ndarray | None, dev: np.ndarray) -> np.ndarray:
    """Multiplicities of each row's device (rows, R), or ones (rows, 1)."""
    if mult is None:
        return np.ones((dev.size, 1))
    return np.take(mult, dev, axis=0).astype(np.float64)


def copresence(
    pres: Presence,
    weight: np.ndarray,
    mult: np.ndarray | None,
    member: np.ndarray,
    hard: HardIndex | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Numerators (R, K, K) and denominators (R, K) of the co-presence exposure matrix.

    N_gh = Σ_i Σ_b m_ig x_ib · O_bh(i) / O_b(i),   D_g = Σ_i Σ_b m_ig x_ib [O_b(i) > 0],
    so E_gh = N_gh / D_g. `hard`: the (segment, group) index, for hard groups shared by
    the block (a faster path with the same result)."""
    per_rep = member.ndim == 3
    if hard is not None and per_rep:
        raise ValueError("the hard index needs group shares shared by the block")
    if hard is not None:
        pres = hard.pres
    k = member.shape[-1]
    r_count = member.shape[0] if per_rep else (1 if mult is None else mult.shape[1])
    num = np.zeros((r_count, k, k))
    den = np.zeros((r_count, k))
    if pres.rows == 0:
        return num, den
    base = weight[pres.dev] * pres.amount
    for r0, r1, s0, s1 in _chunks(pres):
        dev = pres.dev[r0:r1]
        rows = r1 - r0
        starts = pres.starts[s0:s1] - r0
        seg_sum = indicator(starts, rows)
        if mult is None:
            x = base[r0:r1, None].copy()  # (rows, 1)
        else:
            x = np.multiply(np.take(mult, dev, axis=0), base[r0:r1, None], dtype=np.float64)
        o = np.repeat(seg_sum @ x, np.diff(np.append(starts, rows)), axis=0)
        o -= x  # the others' mass O_b − x_i
        ok = o > 1e-9 * x  # someone else is present (relative to rounding)
        o[~ok] = np.inf
        u = np.divide(x, o, out=o)  # x / O, 0 where nobody else is present
        xu = x * u
        x0 = np.where(ok, x, 0.0)
        del ok
        p_dense = np.zeros((r_count, s1 - s0, k))
        u_dense = np.zeros((r_count, s1 - s0, k))
        if hard is not None:
            a, b = np.searchsorted(hard.starts, [r0, r1])
            sub_sum = indicator(hard.starts[a:b] - r0, rows)
            s_of, g_of = hard.seg[a:b] - s0, hard.code[a:b]
            p_dense[:, s_of, g_of] = (sub_sum @ x).T
            u_dense[:, s_of, g_of] = (sub_sum @ u).T
            by_g = np.zeros((k, b - a))
            by_g[g_of, np.arange(b - a)] = 1.0
            num[:, np.arange(k), np.arange(k)] -= (by_g @ (sub_sum @ xu)).T
            den += (by_g @ (sub_sum @ x0)).T
        elif not per_rep:
            m_rows = member[dev]  # (rows, K)
            for g in range(k):
                p_dense[:, :, g] = (seg_sum @ (x * m_rows[:, g : g + 1])).T
                u_dense[:, :, g] = (seg_sum @ (u * m_rows[:, g : g + 1])).T
            pairs = (m_rows[:, :, None] * m_rows[:, None, :]).reshape(rows, k * k)
            num -= (pairs.T @ xu).T.reshape(r_count, k, k)
            den += (m_rows.T @ x0).T
        else:
            m_rows = [np.take(member[:, :, g], dev, axis=1).T for g in range(k)]  # (rows, R)
            for g in range(k):
                p_dense[:, :, g] = (seg_sum @ (x * m_rows[g])).T
                u_dense[:, :, g] = (seg_sum @ (u * m_rows[g])).T
                den[:, g] += (m_rows[g] * x0).sum(axis=0)
                for h in range(k):
                    num[:, g, h] -= (m_rows[g] * m_rows[h] * xu).sum(axis=0)
        for r in range(r_count):  # Σ_b U_bg P_bh, one product per replicate (block-size free)
            num[r] += u_dense[r].T @ p_dense[r]
    return num, den


def ses_sums(
    pres: Presence, mult: np.ndarray | None, ses: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per device and replicate: the number of co-present others (summed over segments),
    the sum and the sum of squares of their SES. ses (n,) shared or (R, n) per replicate,
    NaN where unknown (such devices are neither focal nor counted among the others). A
    device's own copies are never its own others: Σ_{b∋i} (N_b − c_i) = Σ_{b∋i} N_b − B_i c_i.
    Returns three (n, R) arrays."""
    per_rep = ses.ndim == 2
    r_count = ses.shape[0] if per_rep else (1 if mult is None else mult.shape[1])
    has = ~np.isnan(ses)  # (n,) or (R, n)
    s0_ = np.where(has, ses, 0.0)
    width = r_count if (per_rep or mult is not None) else 1
    tot = np.zeros((n, 3 * width))
    for r0, r1, s0, s1 in _chunks(pres, 5 * _CHUNK):
        dev = pres.dev[r0:r1]
        starts = pres.starts[s0:s1] - r0
        uniq, inv = _chunk_devices(pres, r0, r1)
        # (devices × segments) presence of the chunk; rows are sorted by segment
        inc = sp.csc_matrix(
            (np.ones(dev.size), inv, np.append(starts, dev.size)), shape=(uniq.size, s1 - s0)
        )
        own = np.empty((dev.size, 3, width))  # count, SES sum, SES² sum of each row's device
        if per_rep:
            np.copyto(own[:, 0, :], np.take(has, dev, axis=1).T)
            s = np.take(s0_, dev, axis=1).T
        else:
            own[:, 0, :] = has[dev][:, None]
            s = s0_[dev][:, None]
        if mult is not None:
            own[:, 0, :] *= np.take(mult, dev, axis=0)
        np.multiply(own[:, 0, :], s, out=own[:, 1, :])
        np.multiply(own[:, 1, :], s, out=own[:, 2, :])
        local = inc @ (indicator(starts, r1 - r0) @ own.reshape(dev.size, 3 * width))
        tot[uniq] += local
    c_dev = np.ones((n, 1)) if mult is None else mult.astype(np.float64)
    c_dev = c_dev * (has.T if per_rep else has[:, None])
    s_dev = s0_.T if per_rep else s0_[:, None]
    own = np.hstack(
        [np.broadcast_to(v, (n, width)) for v in (c_dev, c_dev * s_dev, c_dev * s_dev**2)]
    )
    b = np.bincount(pres.dev, minlength=n).astype(np.float64)
    tot -= b[:, None] * own
    focal = (has.T if per_rep else has[:, None]) & (b[:, None] > 0)
    out = []
    for j in range(3):
        part = np.where(focal, tot[:, j * width : (j + 1) * width], 0.0)
        out.append(np.ascontiguousarray(np.broadcast_to(part, (n, r_count))))
    return tuple(out)
