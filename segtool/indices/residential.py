"""Aspatial residential segregation indices from a long table of counts.

Input: a polars DataFrame/LazyFrame in long format, one row per (unit, group) with a
count `n` (as R `segregation` takes it; `segtool.indices.counts` reads files into it).
Output: a tidy frame, one row per index value, with the columns of `RESULT_SCHEMA`:
`index, group, other_group, stratum, component, value, weight, se, ci_low, ci_high,
debiased` (the last five are filled by the bootstrap and by `--within`).

Notation (SPEC §4): unit u, group g of K groups, counts n_ug, unit totals t_u = Σ_g n_ug,
group totals N_g = Σ_u n_ug, T = Σ_g N_g, π_g = N_g/T, π_ug = n_ug/t_u,
I = Σ_g π_g(1 − π_g) (Simpson's interaction), E = −Σ_g π_g ln π_g (entropy, nats).
Two-group indices (``focal=x``) compare x with ``reference=y`` or with the rest of the
population (y_u = t_u − x_u); X, Y are their totals and P = X/(X+Y). With a reference
group every index is computed on the two-group table (x_u, y_u): other groups are
left out, also from the unit totals.

Without a focal group the multigroup version of each index is reported. Isolation,
interaction, correlation ratio and Atkinson have no multigroup form: they are reported
for each group against the rest (``other_group = "(rest)"``).

How it works: the long frame becomes one dense units×K matrix (n×K, never n×n); the
shared intermediates (t_u, N_g, π_ug, …) are computed once in a `Composition` and every
index is a few vectorised passes over it. Gini is O(n log n) by sorting and cumulative
sums. All kernels accept leading batch axes (replicates × units × K), which is how the
multinomial bootstrap evaluates many replicates at once.

References: Massey & Denton 1988 (Social Forces 67:281); Reardon & Firebaugh 2002
(Sociological Methodology 32:33); Theil 1971; Theil & Finizza 1971; Elbers 2023
(Sociological Methods & Research 52:591) and R `segregation`; Hutchens 2004
(International Economic Review 45:555); Frankel & Volij 2011 (J. Econ. Theory 146:1);
Atkinson 1970; Simpson 1949; Cortes, Rey et al. 2020 (PySAL `segregation`, JOSS).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError

REST = "(rest)"

INDICES: tuple[str, ...] = (
    "dissimilarity",
    "gini",
    "atkinson",
    "isolation",
    "interaction",
    "correlation_ratio",
    "entropy",
    "theil_h",
    "mutual_information",
    "normalized_exposure",
    "relative_diversity",
    "squared_cv",
    "simpson_concentration",
    "simpson_interaction",
    "hutchens",
    "exposure",
)
LOCAL_INDICES: tuple[str, ...] = (
    "location_quotient",
    "local_entropy",
    "local_mutual_information",
    "ice",
)

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "index": pl.String(),
    "group": pl.String(),
    "other_group": pl.String(),
    "stratum": pl.String(),
    "component": pl.String(),
    "value": pl.Float64(),
    "weight": pl.Float64(),
    "se": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "debiased": pl.Float64(),
}


@dataclass(frozen=True)
class ResidentialParams:
    """What `compute_residential` computes; serialised into the manifest."""

    indices: tuple[str, ...] = INDICES
    focal: str | None = None
    reference: str | None = None
    atkinson_b: float = 0.5
    within: str | None = None
    bootstrap: int = 0
    seed: int = 0
    level: float = 0.95

    def __post_init__(self) -> None:
        unknown = [i for i in self.indices if i not in INDICES]
        if unknown:
            local = [i for i in unknown if i in LOCAL_INDICES]
            if local:
                raise UsageError(
                    f"{', '.join(local)} is a local (per-unit) score, not an overall index",
                    hint="write local scores to a file with --local FILE",
                )
            raise UsageError(
                f"unknown index {', '.join(repr(i) for i in unknown)}",
                hint=f"choose from: {', '.join(INDICES)}",
            )
        if not 0.0 < self.atkinson_b < 1.0:
            raise UsageError(
                f"--atkinson-b must lie strictly between 0 and 1, not {self.atkinson_b}"
            )
        if self.reference is not None and self.focal is None:
            raise UsageError("--reference needs --focal (the group compared with it)")
        if self.focal is not None and self.focal == self.reference:
            raise UsageError(f"--focal and --reference are both {self.focal!r}")
        if self.bootstrap < 0:
            raise UsageError("--bootstrap must be 0 (off) or a number of replicates")
        if not 0.0 < self.level < 1.0:
            raise UsageError(f"confidence level must lie in (0, 1), not {self.level}")


# --------------------------------------------------------------------------------------
# Shared intermediates


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with 0 where b == 0 (an empty unit or group contributes nothing)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if b.size <= a.size and np.all(b != 0):  # the usual case: one pass, no mask
        return a / b
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    np.divide(a, b, out=out, where=b != 0)
    return out


def _xlogx(x: np.ndarray, axes: int | tuple[int, ...]) -> np.ndarray:
    """Σ x ln x over `axes` with 0 ln 0 = 0."""
    return (x * np.log(np.where(x > 0, x, 1.0))).sum(axis=axes)


def _xlogx_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p · ln(p/q) with 0·ln 0 = 0 (and 0 where q == 0, which implies p == 0)."""
    p, q = np.broadcast_arrays(np.asarray(p, dtype=float), np.asarray(q, dtype=float))
    ok = (p > 0) & (q > 0)
    out = np.zeros(p.shape)
    np.divide(p, q, out=out, where=ok)
    np.log(out, out=out, where=ok)
    out *= p
    return out


def _entropy(p: np.ndarray) -> np.ndarray:
    """−Σ p ln p over the last axis (nats), 0·ln 0 = 0."""
    return -_xlogx_ratio(p, np.ones_like(p)).sum(axis=-1)


@dataclass(frozen=True, eq=False)
class Composition:
    """A units×groups count matrix and the intermediates every index shares.

    `counts` has shape (..., n, K): leading axes are bootstrap replicates. `units`
    labels the n rows (a polars Series, dtype as read), `groups` the K columns.
    `strata` (optional) gives each unit's stratum code (n,), named by `stratum_names`.
    Every derived array is computed at most once (cached).
    """

    counts: np.ndarray
    units: pl.Series
    groups: tuple[str, ...]
    strata: np.ndarray | None = None
    stratum_names: tuple[str, ...] | None = None
    labels: dict = field(default_factory=dict)

    @property
    def K(self) -> int:  # noqa: N802 - the notation of the literature
        return self.counts.shape[-1]

    @cached_property
    def t(self) -> np.ndarray:
        """Unit totals t_u, shape (..., n)."""
        # A product with a ones vector: numpy's sum over a short last axis is slow.
        return self.counts @ np.ones(self.K)

    @cached_property
    def N(self) -> np.ndarray:  # noqa: N802
        """Group totals N_g, shape (..., K)."""
        return np.swapaxes(self.counts, -1, -2) @ np.ones(self.counts.shape[-2])

    @cached_property
    def T(self) -> np.ndarray:  # noqa: N802
        """Grand total T, shape (...)."""
        return self.N.sum(axis=-1)

    @cached_property
    def P(self) -> np.ndarray:  # noqa: N802
        """Overall group shares π_g = N_g/T, shape (..., K)."""
        return _div(self.N, self.T[..., None])

    @cached_property
    def w(self) -> np.ndarray:
        """Unit weights t_u/T, shape (..., n)."""
        return _div(self.t, self.T[..., None])

    @cached_property
    def share(self) -> np.ndarray:
        """Unit compositions π_ug = n_ug/t_u (0 for an empty unit), shape (..., n, K)."""
        return _div(self.counts, self.t[..., None])

    @cached_property
    def log_counts(self) -> np.ndarray:
        """ln n_ug, and 0 for empty cells (so that n ln n = 0 there), shape (..., n, K)."""
        out = np.where(self.counts > 0, self.counts, 1.0)
        return np.log(out, out=out)

    @cached_property
    def cross(self) -> np.ndarray:
        """X_gh = Σ_u n_ug π_uh, shape (..., K, K): one BLAS product that yields the
        exposure matrix (X_gh/N_g) and the variance terms Σ_u t_u π_ug² = X_gg."""
        return np.swapaxes(self.counts, -1, -2) @ self.share

    @cached_property
    def sq_dev(self) -> np.ndarray:
        """Σ_u (t_u/T)(π_ug − π_g)² = X_gg/T − π_g², shape (..., K): shared by the
        variance-ratio indices (normalised exposure, relative diversity, squared CV)."""
        diag = np.diagonal(self.cross, axis1=-2, axis2=-1)
        return np.maximum(_div(diag, self.T[..., None]) - self.P**2, 0.0)

    @cached_property
    def interaction_I(self) -> np.ndarray:  # noqa: N802
        """Simpson's interaction I = Σ_g π_g(1 − π_g), shape (...)."""
        return (self.P * (1.0 - self.P)).sum(axis=-1)

    @cached_property
    def E(self) -> np.ndarray:  # noqa: N802
        """Entropy of the overall composition, shape (...)."""
        return _entropy(self.P)

    @cached_property
    def local_mi(self) -> np.ndarray:
        """ls_u = Σ_g π_ug ln(π_ug/π_g), shape (..., n)."""
        return _xlogx_ratio(self.share, self.P[..., None, :]).sum(axis=-1)

    @cached_property
    def M(self) -> np.ndarray:  # noqa: N802
        """M = Σ_u (t_u/T) ls_u, computed as
        (Σ n ln n − Σ_u t_u ln t_u − Σ_g N_g ln N_g + T ln T) / T (one pass over the cells)."""
        cells = np.einsum("...ij,...ij->...", self.counts, self.log_counts)
        raw = cells - _xlogx(self.t, -1) - _xlogx(self.N, -1) + _xlogx(self.T, ())
        return np.maximum(_div(raw, self.T), 0.0)

    @cached_property
    def exposure(self) -> np.ndarray:
        """gPh = Σ_u (n_ug/N_g)(n_uh/t_u), shape (..., K, K); rows sum to 1."""
        return _div(self.cross, self.N[..., :, None])

    def with_counts(self, counts: np.ndarray) -> Composition:
        """The same units, groups and strata with other counts (e.g. bootstrap draws)."""
        return Composition(
            counts, self.units, self.groups, self.strata, self.stratum_names, self.labels
        )


# --------------------------------------------------------------------------------------
# Building a Composition from the long frame


def _collect(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def composition(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    unit: str = "unit",
    group: str = "group",
    count: str = "n",
    within: str | None = None,
) -> Composition:
    """The units×groups matrix of a long frame (one row per unit and group).

    Rows of the same (unit, group) are summed. Units are ordered by label, groups by
    label too (or in the order of an `Enum` group column, as `read_counts` gives).
    With `within`, every unit must lie in exactly one stratum of that column.
    """
    frame = _collect(frame)
    missing = [c for c in (unit, group, count, within) if c is not None and c not in frame.columns]
    if missing:
        raise InputError(
            f"the table has no column {', '.join(repr(c) for c in missing)}",
            hint=f"its columns are: {', '.join(frame.columns)}",
        )
    if frame.height == 0:
        raise InputError("the table is empty")
    cols = [unit, group, count] + ([within] if within else [])
    frame = frame.select(cols)
    for col in (unit, group):
        if frame[col].null_count():
            raise InputError(f"{frame[col].null_count()} rows have no value in column {col!r}")
    if not frame.schema[count].is_numeric():
        raise InputError(f"count column {count!r} is not numeric ({frame.schema[count]})")
    # Canonical frames (from `read_counts`) are sorted by unit already: O(n) check.
    sorted_units = frame.select((pl.col(unit) >= pl.col(unit).shift(1)).all()).item()
    if not sorted_units:
        frame = frame.sort(unit, maintain_order=True)
    dtype = frame.schema[group]
    if isinstance(dtype, pl.Enum):  # canonical frames: codes are at hand
        groups = tuple(dtype.categories.to_list())
        group_codes = pl.col(group).to_physical()
    else:
        groups = tuple(sorted(frame[group].cast(pl.String).unique().to_list()))
        group_codes = pl.col(group).cast(pl.String).cast(pl.Enum(groups)).to_physical()
    codes = frame.select(pl.col(unit).rle_id().alias("u"), group_codes.alias("g"))
    u = codes["u"].to_numpy()
    g = codes["g"].to_numpy()
    values = frame[count].cast(pl.Float64).to_numpy()
    _check_values(values, count)
    n_units, k = int(u[-1]) + 1, len(groups)
    # One bincount builds the matrix and sums repeated (unit, group) rows.
    cell = u.astype(np.int64) * k + g
    counts = np.bincount(cell, weights=values, minlength=n_units * k).reshape(n_units, k)
    first = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    units = frame[unit].gather(first)
    strata = names = None
    if within is not None:
        s = frame[within].cast(pl.String)
        names = tuple(sorted(s.drop_nulls().unique().to_list()))
        if s.null_count():
            raise InputError(f"{s.null_count()} rows have no stratum in column {within!r}")
        scode = s.cast(pl.Enum(names)).to_physical().to_numpy()
        per_unit = scode[first]
        clash = np.flatnonzero(scode != per_unit[u])
        if clash.size:
            bad = frame[unit][int(clash[0])]
            raise InputError(
                f"unit {bad!r} lies in more than one stratum of {within!r}",
                hint="--within needs every unit nested in one stratum (e.g. tracts in districts)",
            )
        strata = per_unit.astype(np.int64)
    # Empty units and groups carry no information (the reader notes them): drop them.
    keep_u = counts @ np.ones(k) > 0
    keep_g = np.ones(n_units) @ counts > 0
    if not keep_u.all():
        counts, units = counts[keep_u], units.filter(pl.Series(keep_u))
        strata = None if strata is None else strata[keep_u]
    if not keep_g.all():
        counts = counts[:, keep_g]
        groups = tuple(g for g, k in zip(groups, keep_g, strict=True) if k)
    if counts.shape[0] == 0:
        raise InputError("every unit has a zero total: there is nothing to measure")
    return Composition(counts, units, groups, strata, names)


def _check_values(values: np.ndarray, count: str) -> None:
    lo, hi = values.min(), values.max()  # NaN propagates into both
    if lo >= 0 and hi < np.inf:
        return
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{int(bad.sum())} counts in {count!r} are missing, NaN or infinite")
    if (values < 0).any():
        raise InputError(f"{int((values < 0).sum())} counts in {count!r} are negative")


def two_group(comp: Composition, focal: str, reference: str | None = None) -> Composition:
    """The (x, y) table of `focal` against `reference` or against the rest."""
    for name, role in ((focal, "focal"), (reference, "reference")):
        if name is not None and name not in comp.groups:
            raise UsageError(
                f"{role} group {name!r} is not in the table",
                hint=f"its groups are: {', '.join(comp.groups)}",
            )
    x = comp.counts[..., comp.groups.index(focal)]
    if reference is None:
        y = comp.t - x
        other = REST
    else:
        y = comp.counts[..., comp.groups.index(reference)]
        other = reference
    counts = np.stack([x, y], axis=-1)
    for label, total in ((focal, x.sum()), (other, y.sum())):
        if total <= 0:
            raise InputError(f"group {label!r} has no members: two-group indices need both")
    if np.count_nonzero(counts.sum(axis=-1) > 0) < 2:
        raise InputError(
            f"only one unit holds {focal!r} or {other!r}: segregation needs at least two"
        )
    return Composition(
        counts, comp.units, (focal, other), comp.strata, comp.stratum_names, {"two_group": True}
    )


# --------------------------------------------------------------------------------------
# Kernels: each returns a list of (group, other_group, value array) for one index.

Rows = list[tuple[str | None, str | None, np.ndarray]]


def _is_two(c: Composition) -> bool:
    return bool(c.labels.get("two_group"))


def _one(c: Composition, value: np.ndarray) -> Rows:
    if _is_two(c):
        return [(c.groups[0], c.groups[1], value)]
    return [(None, None, value)]


def _per_group(c: Composition, values: np.ndarray) -> Rows:
    """values (..., K): one row per group against the rest (two-group: the focal only)."""
    if _is_two(c):
        return [(c.groups[0], c.groups[1], values[..., 0])]
    return [(g, REST, values[..., k]) for k, g in enumerate(c.groups)]


def _k_dissimilarity(c: Composition, b: float) -> Rows:
    # Σ_u Σ_g t_u |π_ug − π_g| = Σ_u Σ_g |n_ug − t_u π_g|, in one temporary array
    dev = c.t[..., :, None] * c.P[..., None, :]
    np.subtract(c.counts, dev, out=dev)
    d = np.abs(dev, out=dev).sum(axis=(-2, -1))
    return _one(c, _div(d, 2.0 * c.T * c.interaction_I))


def _sorted_with_order(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, x[order]) for a 1-D array of shares x ≥ 0, sorted ascending.

    Fast path: an LSD radix sort of float32(x) — the bits of a non-negative float sort
    like unsigned integers — in two stable passes over 16-bit digits (numpy sorts
    16-bit integers by radix, in linear time): 2–3× faster than `np.argsort` of the
    float64 values. float32 rounding is monotone, so the order can only be off among
    values equal in float32; that is checked exactly and, if it happens, the exact
    `np.argsort` is used instead.
    """
    bits = x.astype(np.float32).view(np.uint32)
    order = np.argsort((bits & 0xFFFF).astype(np.uint16), kind="stable")
    order = order[np.argsort((bits >> 16).astype(np.uint16)[order], kind="stable")]
    xs = x[order]
    if bool((xs[1:] >= xs[:-1]).all()):
        return order, xs
    order = np.argsort(x, kind="stable")
    return order, x[order]


def _gini_mean_difference(x: np.ndarray, w: np.ndarray) -> float:
    """Σ_u Σ_v w_u w_v |x_u − x_v| / 2 for 1-D weights summing to 1, in O(n log n).

    Sorted ascending with cumulative weights C_k, Σ_{i<j} w_i w_j (x_j − x_i) =
    Σ_k w_k x_k (2 C_k − w_k − 1); tied values contribute 0 in any order.
    """
    order, xs = _sorted_with_order(x)
    ws = w[order]
    cum = np.cumsum(ws)
    cum *= 2.0
    cum -= ws
    cum -= 1.0
    ws *= xs
    return float(np.dot(ws, cum))


def _gini_sums(share: np.ndarray, w: np.ndarray, groups: Sequence[int]) -> np.ndarray:
    """Σ over `groups` of the Gini mean difference of each column of `share` (..., n, K),
    for every batch element; the columns are sorted in parallel threads."""
    batch = share.shape[:-2]
    flat_s = share.reshape(-1, *share.shape[-2:])
    flat_w = w.reshape(-1, w.shape[-1])
    jobs = [(b, k) for b in range(flat_s.shape[0]) for k in groups]

    def one(job: tuple[int, int]) -> float:
        b, k = job
        return _gini_mean_difference(np.ascontiguousarray(flat_s[b, :, k]), flat_w[b])

    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        values = list(pool.map(one, jobs))
    out = np.zeros(flat_s.shape[0])
    for (b, _), v in zip(jobs, values, strict=True):
        out[b] += v
    return out.reshape(batch)


def _k_gini(c: Composition, b: float) -> Rows:
    # The two columns of a two-group table give the same sum: compute one, double it.
    if _is_two(c):
        total = 2.0 * _gini_sums(c.share, c.w, [0])
    else:
        total = _gini_sums(c.share, c.w, range(c.K))
    return _one(c, _div(total, c.interaction_I))


def _atkinson_xy(x: np.ndarray, y: np.ndarray, b: float, axis: int = -1, totals=None) -> np.ndarray:
    """1 − [Σ_u (x_u/X)^b (y_u/Y)^(1−b)]^(1/(1−b)), summing over the units `axis`.

    Computed as Σ_u x_u^b y_u^(1−b) / (X^b Y^(1−b)); for b = 0.5 (the default) one
    square root of x·y. `y` may be overwritten; `totals` = (X, Y) when known."""
    x_tot, y_tot = totals if totals is not None else (_sum_units(x, axis), _sum_units(y, axis))
    if b == 0.5:
        terms = np.multiply(x, y, out=y)
        np.sqrt(terms, out=terms)
    else:
        terms = x**b * y ** (1.0 - b)
    s = _div(_sum_units(terms, axis), x_tot**b * y_tot ** (1.0 - b))
    return 1.0 - s ** (1.0 / (1.0 - b))


def _sum_units(a: np.ndarray, axis: int) -> np.ndarray:
    """Sum over the units axis (−1 or −2) as a BLAS product with a ones vector (numpy's
    reductions over an (n, K) array with small K are several times slower)."""
    if axis == -1:
        return a @ np.ones(a.shape[-1])
    return np.ones(a.shape[-2]) @ a


def _k_atkinson(c: Composition, b: float) -> Rows:
    if _is_two(c):
        return _one(c, _atkinson_xy(c.counts[..., 0], c.counts[..., 1].copy(), b))
    # every group against the rest at once: units on axis −2
    rest = c.t[..., :, None] - c.counts
    totals = (c.N, c.T[..., None] - c.N)
    return _per_group(c, _atkinson_xy(c.counts, rest, b, axis=-2, totals=totals))


def _isolation_vec(c: Composition) -> np.ndarray:
    return np.diagonal(c.exposure, axis1=-2, axis2=-1)


def _k_isolation(c: Composition, b: float) -> Rows:
    return _per_group(c, _isolation_vec(c))


def _k_interaction(c: Composition, b: float) -> Rows:
    if _is_two(c):
        return _per_group(c, c.exposure[..., :, 1])
    return _per_group(c, 1.0 - _isolation_vec(c))


def _k_correlation_ratio(c: Composition, b: float) -> Rows:
    return _per_group(c, _div(_isolation_vec(c) - c.P, 1.0 - c.P))


def _k_entropy(c: Composition, b: float) -> Rows:
    return _one(c, c.E)


def _k_theil_h(c: Composition, b: float) -> Rows:
    return _one(c, _div(c.M, c.E))


def _k_mutual_information(c: Composition, b: float) -> Rows:
    return _one(c, c.M)


def _k_normalized_exposure(c: Composition, b: float) -> Rows:
    return _one(c, _div(c.sq_dev, 1.0 - c.P).sum(axis=-1))


def _k_relative_diversity(c: Composition, b: float) -> Rows:
    return _one(c, _div(c.sq_dev.sum(axis=-1), c.interaction_I))


def _k_squared_cv(c: Composition, b: float) -> Rows:
    return _one(c, _div(c.sq_dev, (c.K - 1) * c.P).sum(axis=-1))


def _k_simpson_concentration(c: Composition, b: float) -> Rows:
    return _one(c, (c.P**2).sum(axis=-1))


def _k_simpson_interaction(c: Composition, b: float) -> Rows:
    return _one(c, c.interaction_I)


def _k_hutchens(c: Composition, b: float) -> Rows:
    # Π_g (n_ug/N_g)^(1/K) = exp(mean_g ln n_ug − mean_g ln N_g); 0 if a cell is empty.
    log_n = np.log(np.where(c.N > 0, c.N, 1.0)).mean(axis=-1)
    log_cells = np.where(c.counts > 0, c.log_counts, -np.inf)  # an empty cell → factor 0
    geo = np.exp(log_cells @ np.full(c.K, 1.0 / c.K) - log_n[..., None])
    return _one(c, 1.0 - geo.sum(axis=-1))


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
    from segtool.indices.decompose import decomposition_rows

    out = Evaluated([], [], [])
    decompose = c.strata is not None
    names = [
        n for n in params.indices if not (decompose and n in ("mutual_information", "theil_h"))
    ]  # with strata, M and H are reported with their components below
    rows: dict[str, Rows] = {}
    with ThreadPoolExecutor(max_workers=1) as background:
        # Gini (sorting, GIL released) runs beside the other kernels (numpy passes).
        gini = None
        if "gini" in names:
            c.share, c.w  # noqa: B018 - computed once here, before two threads read them
            gini = background.submit(KERNELS["gini"], c, params.atkinson_b)
        for name in names:
            if name != "gini":
                rows[name] = KERNELS[name](c, params.atkinson_b)
        if gini is not None:
            rows["gini"] = gini.result()
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


def _frame(ev: Evaluated) -> pl.DataFrame:
    cols = list(zip(*ev.keys, strict=True)) if ev.keys else [[], [], [], [], []]
    data = {
        "index": list(cols[0]),
        "group": list(cols[1]),
        "other_group": list(cols[2]),
        "stratum": list(cols[3]),
        "component": list(cols[4]),
        "value": [float(v) for v in ev.values],
        "weight": [None if w is None else float(w) for w in ev.weights],
        "se": [None] * len(ev.keys),
        "ci_low": [None] * len(ev.keys),
        "ci_high": [None] * len(ev.keys),
        "debiased": [None] * len(ev.keys),
    }
    return pl.DataFrame(data, schema=RESULT_SCHEMA)


def prepare(
    frame: pl.DataFrame | pl.LazyFrame | Composition, params: ResidentialParams
) -> Composition:
    """The composition the indices see: all groups, or the two-group table."""
    comp = (
        frame
        if isinstance(frame, Composition)
        else composition(frame, within="stratum" if params.within else None)
    )
    if comp.K < 2:
        raise InputError(
            f"only one group ({comp.groups[0]!r}): segregation needs at least two groups"
        )
    if comp.counts.shape[-2] < 2:
        raise InputError("only one unit: segregation needs at least two units")
    if params.focal is not None:
        comp = two_group(comp, params.focal, params.reference)
    return comp


def compute_residential(
    frame: pl.DataFrame | pl.LazyFrame,
    indices: Sequence[str] | None = None,
    focal: str | None = None,
    reference: str | None = None,
    *,
    atkinson_b: float = 0.5,
    within: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> pl.DataFrame:
    """Residential segregation indices of a long (unit, group, n) frame, as a tidy frame.

    - `indices`: names from `INDICES` (default: all of them).
    - `focal`: two-group indices of this group against `reference` or the rest;
      without it, multigroup indices.
    - `within`: name of a column giving each unit's stratum: M and H are then reported as
      `component` total / between / within, plus each stratum's own M and H (`stratum`,
      with `weight` such that within = Σ weight·value).
    - `bootstrap`: number of multinomial bootstrap replicates (Elbers 2023): fills `se`,
      the percentile CI (`ci_low`, `ci_high`, at `level`) and the `debiased` estimate.

    >>> import polars as pl
    >>> f = pl.DataFrame({"unit": ["a", "a", "b", "b"], "group": ["x", "y", "x", "y"],
    ...                   "n": [10, 0, 0, 10]})
    >>> compute_residential(f, ["dissimilarity"])["value"].to_list()
    [1.0]
    """
    params = ResidentialParams(
        indices=tuple(indices) if indices else INDICES,
        focal=focal,
        reference=reference,
        atkinson_b=atkinson_b,
        within=within,
        bootstrap=bootstrap,
        seed=seed,
        level=level,
    )
    if within is not None:
        frame = _collect(frame)
        if within not in frame.columns:
            raise InputError(f"the table has no stratum column {within!r}")
        frame = frame.rename({within: "stratum"}) if within != "stratum" else frame
    return compute(frame, params)


def compute(
    frame: pl.DataFrame | pl.LazyFrame | Composition,
    params: ResidentialParams,
    *,
    on_replicates: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """`compute_residential` with its parameters in a `ResidentialParams`.

    `on_replicates(k)` is called after each chunk of k bootstrap replicates (progress)."""
    comp = prepare(frame, params)
    ev = evaluate(comp, params)
    result = _frame(ev)
    if params.bootstrap:
        from segtool.indices.inference import bootstrap_residential

        result = bootstrap_residential(comp, params, result, on_replicates=on_replicates)
    return result


# --------------------------------------------------------------------------------------
# One public function per index (each a thin call of `compute_residential`)


def _single(name: str) -> Callable[..., pl.DataFrame]:
    def fn(
        frame: pl.DataFrame | pl.LazyFrame,
        focal: str | None = None,
        reference: str | None = None,
        **kwargs,
    ) -> pl.DataFrame:
        return compute_residential(frame, [name], focal, reference, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    return fn


def _doc(name: str, text: str) -> Callable[..., pl.DataFrame]:
    fn = _single(name)
    fn.__doc__ = text
    return fn


dissimilarity = _doc(
    "dissimilarity",
    """Index of dissimilarity D (Duncan & Duncan 1955; Massey & Denton 1988).

    Two-group: D = Σ_u t_u |p_u − P| / (2 T P (1 − P)), p_u = x_u/t_u.
    Multigroup (Sakoda 1981; Reardon & Firebaugh 2002):
    D = Σ_u Σ_g t_u |π_ug − π_g| / (2 T I). Equals PySAL `Dissim` / `MultiDissim`.
    """,
)
gini = _doc(
    "gini",
    """Gini segregation index G (Massey & Denton 1988; Reardon & Firebaugh 2002).

    Two-group: G = Σ_u Σ_v t_u t_v |p_u − p_v| / (2 T² P(1 − P)).
    Multigroup: G = Σ_g Σ_u Σ_v t_u t_v |π_ug − π_vg| / (2 T² I).
    Computed in O(n log n) by sorting and cumulative sums, never pairwise. Equals PySAL
    `Gini` / `MultiGini` (which build n×n matrices).
    """,
)
atkinson = _doc(
    "atkinson",
    """Atkinson index A(b), 0 < b < 1 (Atkinson 1970; Massey & Denton 1988).

    A = 1 − [Σ_u (x_u/X)^b (y_u/Y)^(1−b)]^(1/(1−b)), algebraically the same as Massey &
    Denton's 1 − P/(1−P)·|Σ_u (1−p_u)^(1−b) p_u^b t_u/(PT)|^(1/(1−b)) used by PySAL
    `Atkinson` (whose class ignores its `b` argument and always uses 0.5; its
    `_atkinson(b=)` function agrees with this one). Without a focal group each group is reported against the rest
    (there is no multigroup Atkinson in PySAL or R `segregation`). Pass `atkinson_b=`.
    """,
)
isolation = _doc(
    "isolation",
    """Isolation xPx = Σ_u (x_u/X)(x_u/t_u) (Massey & Denton 1988; Bell 1954).

    Probability that a random member of x shares a unit with another x. Without a focal
    group: one row per group (the diagonal of the exposure matrix). PySAL `Isolation`.
    """,
)
interaction = _doc(
    "interaction",
    """Interaction xPy = Σ_u (x_u/X)(y_u/t_u) (Massey & Denton 1988).

    With y the rest, xPx + xPy = 1. Without a focal group: each group against the rest.
    PySAL `Interaction`. With a reference group t_u = x_u + y_u (the two-group table).
    """,
)
correlation_ratio = _doc(
    "correlation_ratio",
    """Correlation ratio V = (xPx − P)/(1 − P) (Bell 1954; White 1986; eta²).

    Without a focal group: one row per group against the rest. PySAL `CorrelationR`.
    """,
)
entropy = _doc(
    "entropy",
    """Entropy (diversity) of the overall composition E = −Σ_g π_g ln π_g (Theil 1972).

    Natural log (nats). Two-group: E = −P ln P − (1−P) ln(1−P). PySAL `MultiDiversity`.
    """,
)
theil_h = _doc(
    "theil_h",
    """Theil's information index H = Σ_u t_u (E − E_u)/(T E) = M / E (Theil & Finizza
    1971; Reardon & Firebaugh 2002). 0 = even, 1 = every unit holds one group.

    PySAL `MultiInfoTheory` (multigroup) and `Entropy` (two-group); R `segregation`'s H.
    """,
)
mutual_information = _doc(
    "mutual_information",
    """Mutual information index M = Σ_u (t_u/T) Σ_g π_ug ln(π_ug/π_g) (Theil 1971;
    Mora & Ruiz-Castillo 2011; Frankel & Volij 2011; Elbers 2023).

    Natural log (R `segregation` default base). Decomposes exactly into between and within
    strata (`within=`). PySAL `MultiDivergence` (Roberto 2015) is the same quantity.
    """,
)
normalized_exposure = _doc(
    "normalized_exposure",
    """Normalised exposure P = Σ_u Σ_g t_u (π_ug − π_g)² / (T (1 − π_g)) (James 1986;
    Reardon & Firebaugh 2002) = Σ_g π_g V_g. For two groups it equals V. PySAL
    `MultiNormExposure`.
    """,
)
relative_diversity = _doc(
    "relative_diversity",
    """Relative diversity R = Σ_u Σ_g t_u (π_ug − π_g)² / (T I) (Carlson 1992; Reardon &
    Firebaugh 2002). PySAL `MultiRelativeDiversity`.
    """,
)
squared_cv = _doc(
    "squared_cv",
    """Squared coefficient of variation C = Σ_u Σ_g t_u (π_ug − π_g)² / ((K − 1) T π_g)
    (Reardon & Firebaugh 2002). PySAL `MultiSquaredCoefVar`.
    """,
)
simpson_concentration = _doc(
    "simpson_concentration",
    """Simpson's concentration λ = Σ_g π_g² (Simpson 1949): the chance that two random
    people belong to the same group. A diversity measure. PySAL `SimpsonsConcentration`.
    """,
)
simpson_interaction = _doc(
    "simpson_interaction",
    """Simpson's interaction I = Σ_g π_g (1 − π_g) = 1 − λ (Reardon & Firebaugh 2002):
    the normaliser of D, G and R. PySAL `SimpsonsInteraction`.
    """,
)
hutchens = _doc(
    "hutchens",
    """Hutchens' square-root index S = 1 − Σ_u √((x_u/X)(y_u/Y)) (Hutchens 2004).

    Multigroup: its symmetric generalisation, Frankel & Volij's (2011) symmetric
    Atkinson index 1 − Σ_u Π_g (n_ug/N_g)^(1/K), which equals S for K = 2.
    Not in PySAL; checked against the formula by hand.
    """,
)
exposure = _doc(
    "exposure",
    """Exposure matrix gPh = Σ_u (n_ug/N_g)(n_uh/t_u) (Massey & Denton 1988), one row per
    (group, other_group); each group's row sums to 1 and the diagonal is isolation.
    R `segregation::exposure()` reports the same matrix.
    """,
)

__all__ = [
    "INDICES",
    "LOCAL_INDICES",
    "REST",
    "RESULT_SCHEMA",
    "Composition",
    "ResidentialParams",
    "composition",
    "compute",
    "compute_residential",
    "evaluate",
    "two_group",
    *INDICES,
]


def _check_names(names: Iterable[str]) -> None:  # pragma: no cover - import-time guard
    assert set(names) == set(KERNELS)


_check_names(INDICES)
