"""The kernels of the aspatial residential indices, and their evaluation into keyed rows.

Each kernel takes a `Composition` (any leading batch axes: bootstrap replicates) and
returns rows (group, other_group, values); `evaluate` runs the requested ones, taking
every sum over units they need in one pass, and adds the M / H decomposition over strata
(Theil & Finizza 1971; Elbers 2023) when the composition has strata. The formulas are in
the docstrings of the public functions of `segtool.indices.residential`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segtool.indices.composition import (
    REST,
    UNIT_SUMS,
    Composition,
    is_two_group,
    safe_div,
    shannon_entropy,
    xlogx_ratio,
)

if TYPE_CHECKING:
    from segtool.indices.residential import ResidentialParams

Rows = list[tuple[str | None, str | None, np.ndarray]]


def _one(c: Composition, value: np.ndarray) -> Rows:
    if is_two_group(c):
        return [(c.groups[0], c.groups[1], value)]
    return [(None, None, value)]


def per_group_rows(c: Composition, values: np.ndarray) -> Rows:
    """values (..., K): one row per group against the rest (two-group: the focal only)."""
    if is_two_group(c):
        return [(c.groups[0], c.groups[1], values[..., 0])]
    return [(g, REST, values[..., k]) for k, g in enumerate(c.groups)]


def _k_dissimilarity(c: Composition, b: float) -> Rows:
    # Σ_u Σ_g t_u |π_ug − π_g| (for two groups the two rows are equal: 2 Σ_u t_u |p_u − P|)
    return _one(c, safe_div(c.abs_dev.sum(axis=-1), 2.0 * c.T * c.interaction_I))


_LOW, _HIGH = (0, 1) if sys.byteorder == "little" else (1, 0)  # 16-bit halves of a key


class _GiniRow:
    """The Gini mean difference of a row of n shares with weights, in buffers that a
    thread reuses from row to row (fresh large arrays cost page faults on every use).
    `xw[:, 0]` holds the shares and `xw[:, 1]` the weights, side by side, so that one
    gather brings both into sorted order."""

    def __init__(self, n: int) -> None:
        self.xw = np.empty((n, 2))
        self.sorted = np.empty((n, 2))
        self.key = np.empty(n, np.float32)
        self.halves = np.empty((2, n), np.uint16)

    def sort(self) -> np.ndarray:
        """Sort `xw` by share into `sorted`; return the order.

        Fast path: an LSD radix sort of float32(x) — the bits of a non-negative float
        sort like unsigned integers — as `np.lexsort` of its two 16-bit halves (two
        stable passes; numpy sorts 16-bit integers by radix, in linear time): about 4×
        faster than `np.argsort` of the float64 values. float32 rounding is monotone, so
        the order can only be off among values equal in float32; that is checked
        exactly and, if it happens, the exact `np.argsort` is used instead.
        """
        x = self.xw[:, 0]
        self.key[...] = x
        halves = self.key.view(np.uint16)
        np.copyto(self.halves[0], halves[_LOW::2])
        np.copyto(self.halves[1], halves[_HIGH::2])
        order = np.lexsort(self.halves)  # by the high half, then the low half
        np.take(self.xw, order, axis=0, out=self.sorted)
        xs = self.sorted[:, 0]
        if not bool((xs[1:] >= xs[:-1]).all()):
            order = np.argsort(x, kind="stable")
            np.take(self.xw, order, axis=0, out=self.sorted)
        return order

    def mean_difference(self) -> float:
        """Σ_u Σ_v w_u w_v |x_u − x_v| / 2 for weights summing to 1, in O(n log n).

        Sorted ascending with cumulative weights C_k, Σ_{i<j} w_i w_j (x_j − x_i) =
        Σ_k w_k x_k (2 C_k − w_k − 1); tied values contribute 0 in any order.
        """
        self.sort()
        xs, ws = self.sorted[:, 0], self.sorted[:, 1]
        cum = np.cumsum(ws, out=self.xw[:, 0])  # the unsorted shares are done with
        cum *= 2.0
        cum -= ws
        cum -= 1.0
        ws *= xs
        return float(np.einsum("i,i->", ws, cum))  # not BLAS: no threads woken up


def _sorted_with_order(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, x[order]) for a 1-D array of shares x ≥ 0 (see `_GiniRow.sort`)."""
    row = _GiniRow(x.size)
    row.xw[:, 0] = x
    row.xw[:, 1] = 0.0
    order = row.sort()
    return order, row.sorted[:, 0].copy()


def _gini_mean_difference(x: np.ndarray, w: np.ndarray) -> float:
    """Σ_u Σ_v w_u w_v |x_u − x_v| / 2 for 1-D weights summing to 1, in O(n log n)."""
    row = _GiniRow(x.size)
    row.xw[:, 0] = x
    row.xw[:, 1] = w
    return row.mean_difference()


def _gini_sums(c: Composition, groups: Sequence[int]) -> np.ndarray:
    """Σ over `groups` of the Gini mean difference of π_ug over units weighted by t_u/T,
    for every batch element. The rows are shared between threads (numpy's sorts release
    the GIL); each thread forms its rows' shares in its own reused buffers."""
    cols = c.cols.reshape(-1, c.K, c.n)
    t = c.t.reshape(-1, c.n)
    t = np.where(t > 0, t, 1.0) if not bool((t > 0).all()) else t  # empty unit: π = 0
    w = c.w.reshape(-1, c.n)
    jobs = [(b, k) for b in range(cols.shape[0]) for k in groups]
    workers = min(len(jobs), os.cpu_count() or 1)
    values: dict[tuple[int, int], float] = {}

    def run(share: list[tuple[int, int]]) -> None:
        row = _GiniRow(c.n)
        weights = None
        for b, k in share:
            if weights != b:
                row.xw[:, 1] = w[b]
                weights = b
            np.divide(cols[b, k], t[b], out=row.xw[:, 0])
            values[b, k] = row.mean_difference()

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, [jobs[i::workers] for i in range(workers)]))
    else:
        run(jobs)
    out = np.zeros(cols.shape[0])
    for job in jobs:  # in a fixed order, whichever thread finished first
        out[job[0]] += values[job]
    return out.reshape(c.cols.shape[:-2])


def _k_gini(c: Composition, b: float) -> Rows:
    # The two rows of a two-group table give the same sum: compute one, double it.
    total = 2.0 * _gini_sums(c, [0]) if is_two_group(c) else _gini_sums(c, range(c.K))
    return _one(c, safe_div(total, c.interaction_I))


def _k_atkinson(c: Composition, b: float) -> Rows:
    # 1 − [Σ_u (x_u/X)^b (y_u/Y)^(1−b)]^(1/(1−b)) with y = the rest of the unit (two-group:
    # the other group), from Σ_u x_u^b y_u^(1−b) / (X^b Y^(1−b)).
    x_tot, y_tot = c.N, c.T[..., None] - c.N
    s = safe_div(c.atkinson_terms(b), x_tot**b * y_tot ** (1.0 - b))
    return per_group_rows(c, 1.0 - s ** (1.0 / (1.0 - b)))


def _isolation_vec(c: Composition) -> np.ndarray:
    return np.diagonal(c.exposure, axis1=-2, axis2=-1)


def _k_isolation(c: Composition, b: float) -> Rows:
    return per_group_rows(c, _isolation_vec(c))


def _k_interaction(c: Composition, b: float) -> Rows:
    if is_two_group(c):
        return per_group_rows(c, c.exposure[..., :, 1])
    return per_group_rows(c, 1.0 - _isolation_vec(c))


def _k_correlation_ratio(c: Composition, b: float) -> Rows:
    return per_group_rows(c, safe_div(_isolation_vec(c) - c.P, 1.0 - c.P))


def _k_entropy(c: Composition, b: float) -> Rows:
    return _one(c, c.E)


def _k_theil_h(c: Composition, b: float) -> Rows:
    return _one(c, safe_div(c.M, c.E))


def _k_mutual_information(c: Composition, b: float) -> Rows:
    return _one(c, c.M)


def _k_normalized_exposure(c: Composition, b: float) -> Rows:
    return _one(c, safe_div(c.sq_dev, 1.0 - c.P).sum(axis=-1))


def _k_relative_diversity(c: Composition, b: float) -> Rows:
    return _one(c, safe_div(c.sq_dev.sum(axis=-1), c.interaction_I))


def _k_squared_cv(c: Composition, b: float) -> Rows:
    return _one(c, safe_div(c.sq_dev, (c.K - 1) * c.P).sum(axis=-1))


def _k_simpson_concentration(c: Composition, b: float) -> Rows:
    return _one(c, (c.P**2).sum(axis=-1))


def _k_simpson_interaction(c: Composition, b: float) -> Rows:
    return _one(c, c.interaction_I)


def _k_hutchens(c: Composition, b: float) -> Rows:
    # 1 − Σ_u Π_g (n_ug/N_g)^(1/K); a unit with an empty cell contributes 0.
    return _one(c, 1.0 - c.hutchens_sum)


def _k_exposure(c: Composition, b: float) -> Rows:
    e = c.exposure
    return [(g, h, e[..., i, j]) for i, g in enumerate(c.groups) for j, h in enumerate(c.groups)]


KERNELS: dict[str, Callable[[Composition, float], Rows]] = {
    "dissimilarity": _k_dissimilarity,
    "gini": _k_gini,
    "atkinson": _k_atkinson,
    "isolation": _k_isolation,
    "interaction": _k_interaction,
    "correlation_ratio": _k_correlation_ratio,
    "entropy": _k_entropy,
    "theil_h": _k_theil_h,
    "mutual_information": _k_mutual_information,
    "normalized_exposure": _k_normalized_exposure,
    "relative_diversity": _k_relative_diversity,
    "squared_cv": _k_squared_cv,
    "simpson_concentration": _k_simpson_concentration,
    "simpson_interaction": _k_simpson_interaction,
    "hutchens": _k_hutchens,
    "exposure": _k_exposure,
}


# --------------------------------------------------------------------------------------
# Evaluation: rows with keys, shared by the estimate and the bootstrap replicates

Key = tuple[str, str | None, str | None, str | None, str | None]  # index, g, h, stratum, comp


@dataclass
class Evaluated:
    keys: list[Key]
    values: list[np.ndarray]  # each of the composition's batch shape
    weights: list[np.ndarray | None]


def evaluate(c: Composition, params: ResidentialParams) -> Evaluated:
    """Every requested index (and the M/H decomposition when there are strata)."""
    out = Evaluated([], [], [])
    decompose = c.strata is not None
    names = [
        n for n in params.indices if not (decompose and n in ("mutual_information", "theil_h"))
    ]  # with strata, M and H are reported with their components below
    rows: dict[str, Rows] = {}
    gini = None
    background = ThreadPoolExecutor(max_workers=1) if "gini" in names else None
    try:
        if background is not None:
            # Gini (sorting, GIL released) runs beside the other kernels (numpy passes);
            # what both threads read is computed before.
            c.t, c.w, c.P, c.interaction_I  # noqa: B018
            gini = background.submit(KERNELS["gini"], c, params.atkinson_b)
        # Every sum over units the other indices need, in one pass.
        c.unit_sums(
            {s for name in params.indices for s in UNIT_SUMS.get(name, ())}, params.atkinson_b
        )
        for name in names:
            if name != "gini":
                rows[name] = KERNELS[name](c, params.atkinson_b)
        if gini is not None:
            rows["gini"] = gini.result()
    finally:
        if background is not None:
            background.shutdown()
    for name in names:
        for g, h, v in rows[name]:
            out.keys.append((name, g, h, None, None))
            out.values.append(v)
            out.weights.append(None)
    if decompose:
        wanted = [i for i in ("mutual_information", "theil_h") if i in params.indices]
        for key, v, wt in decomposition_rows(c, wanted):
            out.keys.append(key)
            out.values.append(v)
            out.weights.append(wt)
    return out


# --------------------------------------------------------------------------------------
# The M / H decomposition over strata


def _strata_layout(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The units ordered by stratum, and where each stratum starts in that order."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    return order, starts


def decomposition_rows(
    c: Composition, wanted: Sequence[str]
) -> list[tuple[Key, np.ndarray, np.ndarray | None]]:
    """Rows of the M / H decomposition over `c.strata` (batch axes allowed)."""
    assert c.strata is not None and c.stratum_names is not None
    order, starts = _strata_layout(c.strata)
    names = [c.stratum_names[i] for i in c.strata[order][starts]]
    by_stratum = np.add.reduceat(c.counts[..., order, :], starts, axis=-2)  # (..., S, K)
    between = c.with_counts(by_stratum)
    t_s = between.t  # (..., S)
    p_s = safe_div(by_stratum, t_s[..., None])  # composition of each stratum
    # Each unit against its own stratum's composition.
    p_of_unit = np.empty_like(c.share)
    p_of_unit[..., order, :] = np.repeat(p_s, np.diff(np.r_[starts, len(order)]), axis=-2)
    ls_within = xlogx_ratio(c.share, p_of_unit).sum(axis=-1)  # (..., n)
    m_s = safe_div(np.add.reduceat((c.t * ls_within)[..., order], starts, axis=-1), t_s)
    e_s = shannon_entropy(p_s)
    h_s = safe_div(m_s, e_s)
    share_s = safe_div(t_s, c.T[..., None])
    m_total, m_between = c.M, between.M
    m_within = (c.w * ls_within).sum(axis=-1)
    g, h = (c.groups[0], c.groups[1]) if is_two_group(c) else (None, None)

    rows: list[tuple[Key, np.ndarray, np.ndarray | None]] = []
    if "mutual_information" in wanted:
        rows += [
            (("mutual_information", g, h, None, "total"), m_total, None),
            (("mutual_information", g, h, None, "between"), m_between, None),
            (("mutual_information", g, h, None, "within"), m_within, None),
        ]
        rows += [
            (("mutual_information", g, h, s, "within"), m_s[..., i], share_s[..., i])
            for i, s in enumerate(names)
        ]
    if "theil_h" in wanted:
        e = c.E
        rows += [
            (("theil_h", g, h, None, "total"), safe_div(m_total, e), None),
            (("theil_h", g, h, None, "between"), safe_div(m_between, e), None),
            (("theil_h", g, h, None, "within"), safe_div(m_within, e), None),
        ]
        weight_h = share_s * safe_div(e_s, e[..., None])
        rows += [
            (("theil_h", g, h, s, "within"), h_s[..., i], weight_h[..., i])
            for i, s in enumerate(names)
        ]
    return rows
