"""Compiled passes behind the co-presence, economic and individual indices, for a block of
R replicates at once (numba, no GIL: blocks run on both cores).

Every kernel reads its row structure once per block and keeps the replicates in the
innermost loop, so the per-replicate work is a few arithmetic operations per row and no
(rows × R) temporary is ever materialised. Each replicate is summed in the same row order
whatever the block, so results do not depend on how replicates are blocked.

Shapes: `mult` (n, R) multiplicities (uint8 or float64; ones for the estimate and the
permutation null); hard groups `code` (n, Rc) int32, soft shares `member` (n, Rc, K),
with Rc = 1 (shared by the block) or R (one permutation per replicate).
"""

from __future__ import annotations

import numba
import numpy as np

_NJIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_NJIT)
def copresence_hard(bounds, dev, y, code, mult, k):
    """Numerators (R, K, K) and denominators (R, K) of the co-presence exposure for hard
    groups (see `encounters.copresence`): segment b = rows bounds[b]:bounds[b+1], row j of
    device dev[j] with x = mult · y[j] (y = weight × seconds)."""
    n_seg = bounds.size - 1
    r_count = mult.shape[1]
    per = 1 if code.shape[1] > 1 else 0
    num = np.zeros((k, k, r_count))
    den = np.zeros((k, r_count))
    p = np.zeros((k, r_count))
    u = np.zeros((k, r_count))
    ptot = np.zeros(r_count)
    for b in range(n_seg):
        j0, j1 = bounds[b], bounds[b + 1]
        p[:] = 0.0
        u[:] = 0.0
        for j in range(j0, j1):
            i = dev[j]
            yj = y[j]
            if per:
                for r in range(r_count):
                    p[code[i, r], r] += mult[i, r] * yj
            else:
                g = code[i, 0]
                for r in range(r_count):
                    p[g, r] += mult[i, r] * yj
        ptot[:] = 0.0
        for g in range(k):
            for r in range(r_count):
                ptot[r] += p[g, r]
        for j in range(j0, j1):
            i = dev[j]
            yj = y[j]
            if per:
                for r in range(r_count):
                    g = code[i, r]
                    x = mult[i, r] * yj
                    o = ptot[r] - x
                    if x > 0.0 and o > 1e-9 * x:  # someone else is present
                        q = x / o
                        u[g, r] += q
                        num[g, g, r] -= x * q
                        den[g, r] += x
            else:
                g = code[i, 0]
                for r in range(r_count):
                    x = mult[i, r] * yj
                    o = ptot[r] - x
                    ok = x > 0.0 and o > 1e-9 * x  # someone else is present
                    q = x / o if ok else 0.0
                    u[g, r] += q
                    num[g, g, r] -= x * q
                    den[g, r] += x if ok else 0.0
        for g in range(k):
            for h in range(k):
                for r in range(r_count):
                    num[g, h, r] += u[g, r] * p[h, r]
    return num, den


@numba.njit(**_NJIT)
def copresence_soft(bounds, dev, y, member, mult):
    """`copresence_hard` for group shares member (n, Rc, K)."""
    n_seg = bounds.size - 1
    r_count = mult.shape[1]
    k = member.shape[2]
    per = 1 if member.shape[1] > 1 else 0
    num = np.zeros((k, k, r_count))
    den = np.zeros((k, r_count))
    p = np.zeros((k, r_count))
    u = np.zeros((k, r_count))
    ptot = np.zeros(r_count)
    for b in range(n_seg):
        j0, j1 = bounds[b], bounds[b + 1]
        p[:] = 0.0
        u[:] = 0.0
        ptot[:] = 0.0
        for j in range(j0, j1):
            i = dev[j]
            yj = y[j]
            for r in range(r_count):
                x = mult[i, r] * yj
                ptot[r] += x
                for g in range(k):
                    p[g, r] += member[i, r * per, g] * x
        for j in range(j0, j1):
            i = dev[j]
            yj = y[j]
            for r in range(r_count):
                x = mult[i, r] * yj
                o = ptot[r] - x
                if x > 0.0 and o > 1e-9 * x:
                    q = x / o
                    xq = x * q
                    for g in range(k):
                        m_g = member[i, r * per, g]
                        if m_g == 0.0:
                            continue
                        u[g, r] += m_g * q
                        den[g, r] += m_g * x
                        for h in range(k):
                            num[g, h, r] -= m_g * member[i, r * per, h] * xq
        for g in range(k):
            for h in range(k):
                for r in range(r_count):
                    num[g, h, r] += u[g, r] * p[h, r]
    return num, den


@numba.njit(**_NJIT)
def ses_sums(bounds, dev, has, ses, mult, n):
    """Economic sums for every device and replicate: out (n, 2, R) holds Σ_{b∋i} N_b and
    Σ_{b∋i} S_b over the device's segments (N_b = Σ_{j∈b} c_j h_j the count of devices
    with SES, S_b = Σ c_j h_j s_j the sum of their SES — the device's own copies still
    included: subtract b_i × own afterwards); fsyy (R,) = Σ_i c_i h_i Σ_{b∋i} (Q_b −
    c_i h_i s_i²), Q_b = Σ c_j h_j s_j², the frequency-weighted total of the others' sums
    of squares. has/ses (n, Rc): 1.0 where the device has an SES, and its value (0 where
    unknown)."""
    n_seg = bounds.size - 1
    r_count = mult.shape[1]
    per = has.shape[1] > 1
    out = np.zeros((n, 2, r_count))
    fsyy = np.zeros(r_count)
    t = np.zeros((4, r_count))
    for b in range(n_seg):
        j0, j1 = bounds[b], bounds[b + 1]
        t[:] = 0.0
        for j in range(j0, j1):
            i = dev[j]
            if per:
                for r in range(r_count):
                    c = mult[i, r] * has[i, r]
                    cs = c * ses[i, r]
                    css = cs * ses[i, r]
                    t[0, r] += c
                    t[1, r] += cs
                    t[2, r] += css
                    t[3, r] += c * css
            else:
                h = has[i, 0]
                hs = h * ses[i, 0]
                hss = hs * ses[i, 0]
                for r in range(r_count):
                    c = mult[i, r]
                    t[0, r] += c * h
                    t[1, r] += c * hs
                    t[2, r] += c * hss
                    t[3, r] += c * c * hss
        for r in range(r_count):
            fsyy[r] += t[0, r] * t[2, r] - t[3, r]
        for j in range(j0, j1):
            i = dev[j]
            for r in range(r_count):
                out[i, 0, r] += t[0, r]
                out[i, 1, r] += t[1, r]
    return out, fsyy


@numba.njit(**_NJIT)
def ses_focal(out, segments, has, ses, mult):
    """The others of each focal device from `ses_sums`' out (n, 2, R): the count
    N − b·own and the SES sum S − b·own·s (own = c_i h_i, the device's own copies,
    counted in each of its b segments); 0 where the device has no SES or no segment.
    Returns (n, R) each, in the same arithmetic as the numpy expressions it replaces."""
    n, _, r_count = out.shape
    per = 1 if has.shape[1] > 1 else 0
    n_i = np.empty((n, r_count))
    sy = np.empty((n, r_count))
    for i in range(n):
        b = segments[i]
        for r in range(r_count):
            h = has[i, r * per]
            own = mult[i, r] * h
            if h > 0.0 and b > 0.0:
                n_i[i, r] = out[i, 0, r] - b * own
                sy[i, r] = out[i, 1, r] - b * own * ses[i, r * per]
            else:
                n_i[i, r] = 0.0
                sy[i, r] = 0.0
    return n_i, sy


@numba.njit(**_NJIT)
def amounts(dev_bounds, unit, dwell, mass, code, member, n_units, k):
    """A (units, K+1, R): A[u, g, r] = Σ_i d_iu · mass[i, r] · m_ig over the (device, unit)
    rows (device i owns rows dev_bounds[i]:dev_bounds[i+1]), and A[u, K, r] the unit's
    total over groups. Hard `code` (n, Rc) or soft `member` (n, Rc, K)."""
    n = dev_bounds.size - 1
    r_count = mass.shape[1]
    hard = code.shape[0] > 0
    per = 1 if (code.shape[1] > 1 if hard else member.shape[1] > 1) else 0
    out = np.zeros((n_units, k + 1, r_count))
    for i in range(n):
        for j in range(dev_bounds[i], dev_bounds[i + 1]):
            u = unit[j]
            d = dwell[j]
            if hard and not per:
                g = code[i, 0]
                for r in range(r_count):
                    out[u, g, r] += d * mass[i, r]
            elif hard:
                for r in range(r_count):
                    out[u, code[i, r], r] += d * mass[i, r]
            else:
                for g in range(k):
                    for r in range(r_count):
                        out[u, g, r] += d * mass[i, r] * member[i, r * per, g]
    for u in range(n_units):
        for g in range(k):
            for r in range(r_count):
                out[u, k, r] += out[u, g, r]
    return out


@numba.njit(**_NJIT)
def exposures(dev_bounds, unit, share, dwell, a, mass, code, member, ref, want_tau, loo):
    """Individual exposure τ_gi and S_i, and with `loo` the leave-one-out versions, for
    every device and replicate, from the (device, unit) rows (device-sorted: device i owns
    rows dev_bounds[i]:dev_bounds[i+1]; share = d_iα / Σ_α d_iα, dwell = d_iα).

    a (U, K+1, R) unit amounts by group and (last) their total, mass (n, R) = w_i ×
    multiplicity; hard `code` (n, Rc) or soft `member` (n, Rc, K) (the other one empty).
    Returns S (n, R), S_loo (n, R) (NaN where the device shares no place with anyone), and
    with `want_tau` τ and τ_loo (n, K, R) (else empty)."""
    n = dev_bounds.size - 1
    r_count = a.shape[2]
    k = a.shape[1] - 1
    hard = code.shape[0] > 0
    per = 1 if (code.shape[1] > 1 if hard else member.shape[1] > 1) else 0
    norm_s = 1.0 / (2.0 * (1.0 - ref.min()))
    s_out = np.empty((n, r_count))
    s_loo = np.full((n, r_count), np.nan)
    t_out = np.empty((n if want_tau else 0, k, r_count))
    t_loo = np.full((n if want_tau and loo else 0, k, r_count), np.nan)
    t = np.empty((k, r_count))
    num = np.empty((k, r_count))
    nrm = np.empty(r_count)
    own_term = np.empty(r_count)
    inv_t = np.empty(r_count)
    inv = np.empty(r_count)
    acc = np.empty(r_count)
    m = np.empty((k, r_count))
    for i in range(n):
        t[:] = 0.0
        num[:] = 0.0
        nrm[:] = 0.0
        own_term[:] = 0.0
        for j in range(dev_bounds[i], dev_bounds[i + 1]):
            uj = unit[j]
            f = share[j]
            d = dwell[j]
            for r in range(r_count):
                tt = a[uj, k, r]
                inv_t[r] = f / tt if tt > 0.0 else 0.0
            for g in range(k):
                for r in range(r_count):
                    t[g, r] += a[uj, g, r] * inv_t[r]
            if loo:
                for r in range(r_count):
                    tt = a[uj, k, r]
                    own = mass[i, r] * d
                    den = tt - own
                    ok = den > 1e-9 * tt
                    inv[r] = d / den if ok else 0.0
                    nrm[r] += d if ok else 0.0
                    own_term[r] += inv[r] * own
                for g in range(k):
                    for r in range(r_count):
                        num[g, r] += inv[r] * a[uj, g, r]
        if hard:
            m[:] = 0.0
            for r in range(r_count):
                m[code[i, r * per], r] = 1.0
        else:
            for g in range(k):
                for r in range(r_count):
                    m[g, r] = member[i, r * per, g]
        acc[:] = 0.0
        for g in range(k):
            for r in range(r_count):
                acc[r] += abs(t[g, r] - ref[g])
        for r in range(r_count):
            s_out[i, r] = acc[r] * norm_s
        if want_tau:
            t_out[i] = t
        if loo:
            acc[:] = 0.0
            for g in range(k):
                for r in range(r_count):
                    num[g, r] = (num[g, r] - own_term[r] * m[g, r]) / nrm[r]
                    acc[r] += abs(num[g, r] - ref[g])
            for r in range(r_count):
                if nrm[r] > 0.0:
                    s_loo[i, r] = acc[r] * norm_s
                    if want_tau:
                        for g in range(k):
                            t_loo[i, g, r] = num[g, r]
    return s_out, s_loo, t_out, t_loo


@numba.njit(**_NJIT)
def group_means(values, mass, member):
    """Weighted means of values (n, R) over all devices (row 0) and by group g (row g + 1,
    weights mass × m_ig), NaN values carrying no weight; member (Rc, n, K)."""
    n, r_count = values.shape
    k = member.shape[2]
    per = 1 if member.shape[0] > 1 else 0
    num = np.zeros((k + 1, r_count))
    den = np.zeros((k + 1, r_count))
    for i in range(n):
        for r in range(r_count):
            v = values[i, r]
            if np.isnan(v):
                continue
            w = mass[i, r]
            num[0, r] += v * w
            den[0, r] += w
            for g in range(k):
                m = member[r * per, i, g]
                if m != 0.0:
                    num[g + 1, r] += v * w * m
                    den[g + 1, r] += w * m
    return num / den
