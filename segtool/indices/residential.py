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

How it works: the long frame (or a wide one, `from_wide`) becomes one dense table of
counts, kept group-major (K × n: each group's counts contiguous; never n × n). The
shared intermediates (t_u, N_g, π_g, …) are computed once in a `Composition`, and every
sum over units the requested indices need is taken in one pass over cache-sized blocks
of units (`Composition.unit_sums`). Gini is O(n log n) by sorting and cumulative sums.
Everything accepts leading batch axes (replicates × K × n), which is how the
multinomial bootstrap evaluates many replicates at once.

References: Massey & Denton 1988 (Social Forces 67:281); Reardon & Firebaugh 2002
(Sociological Methodology 32:33); Theil 1971; Theil & Finizza 1971; Elbers 2023
(Sociological Methods & Research 52:591) and R `segregation`; Hutchens 2004
(International Economic Review 45:555); Frankel & Volij 2011 (J. Econ. Theory 146:1);
Atkinson 1970; Simpson 1949; Cortes, Rey et al. 2020 (PySAL `segregation`, JOSS).
"""

from __future__ import annotations

import os
import sys
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


TINY = np.finfo(float).tiny
BLOCK_CELLS = 1 << 17  # cells per block of `Composition.unit_sums` (1 MB per float buffer)
# Sums over units each index needs (`Composition.unit_sums`), computed in one pass.
UNIT_SUMS: dict[str, tuple[str, ...]] = {
    "dissimilarity": ("abs_dev",),
    "atkinson": ("atkinson",),
    "isolation": ("cross",),
    "interaction": ("cross",),
    "correlation_ratio": ("cross",),
    "normalized_exposure": ("cross",),
    "relative_diversity": ("cross",),
    "squared_cv": ("cross",),
    "exposure": ("cross",),
    "theil_h": ("mi_cells",),
    "mutual_information": ("mi_cells",),
    "hutchens": ("hutchens_sum",),
}
_BLAS = None


def _one_blas_thread():
    """BLAS limited to one thread: the products here are (K × B)·(B × K) for small K,
    and OpenBLAS's threads cost more CPU waking up and spinning than they save."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


@dataclass(frozen=True, eq=False)
class Composition:
    """A units×groups count table and the intermediates every index shares.

    `cols` holds the counts group-major, shape (..., K, n): row g is group g's count in
    each of the n units, contiguous, so that every per-group pass, sum over units and
    sort (Gini) runs over contiguous memory and sums over groups add K rows. Leading
    axes are bootstrap replicates. `counts` is the same data seen as (..., n, K).
    `units` labels the n units (a polars Series, dtype as read), `groups` the K groups.
    `strata` (optional) gives each unit's stratum code (n,), named by `stratum_names`.
    Every derived array is computed at most once (cached).
    """

    cols: np.ndarray
    units: pl.Series
    groups: tuple[str, ...]
    strata: np.ndarray | None = None
    stratum_names: tuple[str, ...] | None = None
    labels: dict = field(default_factory=dict)

    @classmethod
    def from_counts(
        cls,
        counts: np.ndarray,
        units: pl.Series,
        groups: Sequence[str],
        strata: np.ndarray | None = None,
        stratum_names: tuple[str, ...] | None = None,
        labels: dict | None = None,
    ) -> Composition:
        """A composition of a (..., n, K) count array (copied into the group-major layout)."""
        cols = np.ascontiguousarray(np.swapaxes(np.asarray(counts, dtype=float), -1, -2))
        return cls(cols, units, tuple(groups), strata, stratum_names, labels or {})

    def _seed(self, **known: np.ndarray) -> Composition:
        """Fill cached intermediates that the caller already has (e.g. t_u and N_g
        from building the matrix), so that they are not computed again."""
        self.__dict__.update(known)
        return self

    @property
    def counts(self) -> np.ndarray:
        """Counts n_ug, shape (..., n, K) (a view of `cols`)."""
        return np.swapaxes(self.cols, -1, -2)

    @property
    def K(self) -> int:  # noqa: N802 - the notation of the literature
        return self.cols.shape[-2]

    @property
    def n(self) -> int:
        return self.cols.shape[-1]

    @cached_property
    def t(self) -> np.ndarray:
        """Unit totals t_u, shape (..., n): the sum of the K group rows."""
        return self.cols.sum(axis=-2)

    @cached_property
    def N(self) -> np.ndarray:  # noqa: N802
        """Group totals N_g, shape (..., K)."""
        return self.cols.sum(axis=-1)

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
    def share_cols(self) -> np.ndarray:
        """Unit compositions π_ug = n_ug/t_u (0 for an empty unit), shape (..., K, n)."""
        return _div(self.cols, self.t[..., None, :])

    @property
    def share(self) -> np.ndarray:
        """Unit compositions π_ug, shape (..., n, K) (a view of `share_cols`)."""
        return np.swapaxes(self.share_cols, -1, -2)

    @cached_property
    def cross(self) -> np.ndarray:
        """X_gh = Σ_u n_ug π_uh, shape (..., K, K): yields the exposure matrix (X_gh/N_g)
        and the variance terms Σ_u t_u π_ug² = X_gg."""
        return self.unit_sums(["cross"])["cross"]

    @cached_property
    def abs_dev(self) -> np.ndarray:
        """Σ_u t_u |π_ug − π_g|, shape (..., K) (dissimilarity)."""
        return self.unit_sums(["abs_dev"])["abs_dev"]

    @cached_property
    def mi_cells(self) -> np.ndarray:
        """Σ_u Σ_g n_ug ln(π_ug/π_g) = T·M, shape (...)."""
        return self.unit_sums(["mi_cells"])["mi_cells"]

    @cached_property
    def hutchens_sum(self) -> np.ndarray:
        """Σ_u Π_g (n_ug/N_g)^(1/K), shape (...)."""
        return self.unit_sums(["hutchens_sum"])["hutchens_sum"]

    def atkinson_terms(self, b: float) -> np.ndarray:
        """Σ_u n_ug^b (t_u − n_ug)^(1−b), shape (..., K) (each group against the rest)."""
        return self.unit_sums(["atkinson"], b)[("atkinson", b)]

    def unit_sums(self, wanted: Iterable[str], b: float = 0.5) -> dict:
        """The sums over units named in `wanted` (`UNIT_SUMS`; "atkinson" with shape `b`),
        all computed in one pass over blocks of units and cached.

        Each block of B units (K×B cells, about `BLOCK_CELLS`) goes through every
        requested sum while it is in cache: its shares π_ug = n_ug/t_u once, then
        |π_ug − π_g| (dissimilarity), the K×K product with the counts (exposure),
        n_ug^b (t_u − n_ug)^(1−b) (Atkinson), ln(π_ug/π_g) (M, and Hutchens through
        Π_g (n_ug/N_g)^(1/K) = (t_u/T) exp(mean_g ln(π_ug/π_g))). Temporaries are two
        block-sized buffers, reused, instead of several n×K arrays.
        """
        cache = self.__dict__
        todo = {("atkinson", b) if w == "atkinson" else w for w in wanted}
        todo = {w for w in todo if w not in cache}
        if todo:
            cache.update(self._unit_pass(todo, b))
        return cache

    def _unit_pass(self, todo: set, b: float) -> dict:
        cols, t, k = self.cols, self.t, self.K
        batch, n = cols.shape[:-2], self.n
        atkinson = ("atkinson", b) in todo
        logs = bool(todo & {"mi_cells", "hutchens_sum"})
        shares = logs or bool(todo & {"abs_dev", "cross"})
        out = {
            "abs_dev": np.zeros((*batch, k)),
            "cross": np.zeros((*batch, k, k)),
            ("atkinson", b): np.zeros((*batch, k)),
            "mi_cells": np.zeros(batch),
            "hutchens_sum": np.zeros(batch),
        }
        t_div = t if bool((t > 0).all()) else np.where(t > 0, t, 1.0)  # empty unit: π = 0
        p = self.P[..., :, None]
        inv_p = _div(1.0, p)  # an absent group (bootstrap): its cells are 0 anyway
        size = min(n, max(1024, BLOCK_CELLS // (k * int(np.prod(batch, dtype=np.int64)))))
        share_buf = np.empty((*batch, k, size))
        work_buf = np.empty((*batch, k, size))
        with _one_blas_thread():
            for lo in range(0, n, size):
                hi = min(lo + size, n)
                c, tb = cols[..., lo:hi], t[..., lo:hi]
                share, work = share_buf[..., : hi - lo], work_buf[..., : hi - lo]
                if shares:
                    np.divide(c, t_div[..., None, lo:hi], out=share)
                if "abs_dev" in todo:
                    np.subtract(share, p, out=work)
                    out["abs_dev"] += _wsum(np.abs(work, out=work), tb)
                if "cross" in todo:
                    out["cross"] += c @ np.swapaxes(share, -1, -2)
                if atkinson:
                    np.subtract(tb[..., None, :], c, out=work)  # the rest of the unit
                    if b == 0.5:
                        np.sqrt(np.multiply(work, c, out=work), out=work)
                    else:
                        np.power(work, 1.0 - b, out=work)
                        work *= c**b
                    out[("atkinson", b)] += work.sum(axis=-1)
                if logs:
                    np.multiply(share, inv_p, out=work)
                    np.maximum(work, TINY, out=work)  # an empty cell: n ln(...) = 0
                    np.log(work, out=work)
                    if "mi_cells" in todo:
                        out["mi_cells"] += np.einsum("...kn,...kn->...", c, work)
                    if "hutchens_sum" in todo:
                        geo = work.sum(axis=-2)
                        geo /= k
                        np.exp(geo, out=geo)
                        geo *= tb
                        geo[c.min(axis=-2) <= 0] = 0.0  # an empty cell makes the product 0
                        out["hutchens_sum"] += geo.sum(axis=-1)
        if "hutchens_sum" in todo:
            out["hutchens_sum"] = _div(out["hutchens_sum"], self.T)
        return {key: value for key, value in out.items() if key in todo}

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
        return _xlogx_ratio(self.share_cols, self.P[..., :, None]).sum(axis=-2)

    @cached_property
    def M(self) -> np.ndarray:  # noqa: N802
        """M = Σ_u (t_u/T) ls_u = Σ_u Σ_g (n_ug/T) ln(π_ug/π_g), summed cell by cell (well
        conditioned: no difference of large terms such as Σ n ln n − Σ t ln t)."""
        return np.maximum(_div(self.mi_cells, self.T), 0.0)

    @cached_property
    def exposure(self) -> np.ndarray:
        """gPh = Σ_u (n_ug/N_g)(n_uh/t_u), shape (..., K, K); rows sum to 1."""
        return _div(self.cross, self.N[..., :, None])

    def with_cols(self, cols: np.ndarray) -> Composition:
        """The same units, groups and strata with other counts in the (..., K, n) layout."""
        return Composition(
            cols, self.units, self.groups, self.strata, self.stratum_names, self.labels
        )

    def with_counts(self, counts: np.ndarray) -> Composition:
        """The same units, groups and strata with other (..., n, K) counts (e.g. bootstrap
        draws)."""
        return Composition.from_counts(
            counts, self.units, self.groups, self.strata, self.stratum_names, self.labels
        )


def _wsum(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Σ_u a[..., u]·v[..., u] over the units (last) axis as a BLAS product; `a` may
    carry a group axis before it ((..., K, n) → (..., K))."""
    if v.ndim == 1:
        return a @ v
    if a.ndim == v.ndim:
        return np.einsum("...n,...n->...", a, v)
    return (a @ v[..., :, None])[..., 0]


# --------------------------------------------------------------------------------------
# Building a Composition from the long frame


def _require(frame: pl.DataFrame, columns: list[str]) -> None:
    """A clear error when `frame` lacks one of `columns` or has no rows."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"the table has no column {', '.join(repr(c) for c in missing)}",
            hint=f"its columns are: {', '.join(frame.columns)}",
        )
    if frame.height == 0:
        raise InputError("the table is empty")


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

    Fast path (the frames `read_counts` gives): rows sorted by unit (known from the
    column's sorted flag, else checked in one pass), each unit with every group once in
    group order, so the matrix is the count column reshaped; unit runs and labels come
    from one run-length encoding of the unit column. Anything else goes through one
    `np.bincount` (which also sums repeated rows).
    """
    frame = _collect(frame)
    _require(frame, [c for c in (unit, group, count, within) if c is not None])
    frame = frame[[unit, group, count] + ([within] if within else [])]
    for col in (unit, group):
        if frame[col].null_count():
            raise InputError(f"{frame[col].null_count()} rows have no value in column {col!r}")
    if not frame.schema[count].is_numeric():
        raise InputError(f"count column {count!r} is not numeric ({frame.schema[count]})")
    # Canonical frames (from `read_counts`) are sorted by unit and flagged so.
    ucol = frame[unit]
    if not (ucol.flags["SORTED_ASC"] or (ucol >= ucol.shift(1)).all()):
        frame = frame.sort(unit, maintain_order=True)
        ucol = frame[unit]
    runs = ucol.rle()  # one pass: each unit's label and its number of rows
    lengths = runs.struct.field("len").to_numpy().astype(np.int64)
    units = runs.struct.field("value").alias(unit)
    dtype = frame.schema[group]
    if isinstance(dtype, pl.Enum):  # canonical frames: codes are at hand
        groups = tuple(dtype.categories.to_list())
        g = frame[group].to_physical().to_numpy()
    else:
        groups = tuple(sorted(frame[group].cast(pl.String).unique().to_list()))
        g = frame[group].cast(pl.String).cast(pl.Enum(groups)).to_physical().to_numpy()
    values = frame[count].cast(pl.Float64).to_numpy()
    n_units, k = len(lengths), len(groups)
    row_unit = None  # unit index of every row, when needed
    if (lengths == k).all() and np.array_equal(g, np.tile(np.arange(k, dtype=g.dtype), n_units)):
        cols = np.empty((k, n_units))
        for j in range(k):  # row j of the table is every k-th count, from j
            cols[j] = values[j::k]
    else:  # one bincount builds the matrix and sums repeated (unit, group) rows
        row_unit = np.repeat(np.arange(n_units), lengths)
        cell = g.astype(np.int64) * n_units + row_unit
        cols = np.bincount(cell, weights=values, minlength=k * n_units).reshape(k, n_units)
    strata = names = None
    if within is not None:
        s = frame[within].cast(pl.String)
        names = tuple(sorted(s.drop_nulls().unique().to_list()))
        if s.null_count():
            raise InputError(f"{s.null_count()} rows have no stratum in column {within!r}")
        scode = s.cast(pl.Enum(names)).to_physical().to_numpy()
        first = np.cumsum(lengths) - lengths
        per_unit = scode[first]
        if row_unit is None:
            row_unit = np.repeat(np.arange(n_units), lengths)
        clash = np.flatnonzero(scode != per_unit[row_unit])
        if clash.size:
            bad = frame[unit][int(clash[0])]
            raise InputError(
                f"unit {bad!r} lies in more than one stratum of {within!r}",
                hint="--within needs every unit nested in one stratum (e.g. tracts in districts)",
            )
        strata = per_unit.astype(np.int64)
    t, totals = cols.sum(axis=0), cols.sum(axis=1)
    _check_values(values, count, totals)
    # Empty units and groups carry no information (the reader notes them): drop them.
    cols, t, totals, units, groups, strata = _drop_empty(cols, t, totals, units, groups, strata)
    return Composition(cols, units, groups, strata, names)._seed(t=t, N=totals)


def _drop_empty(cols, t, totals, units, groups, strata=None):
    """Drop units with a zero total and groups with nobody (K × n `cols`, unit totals `t`,
    group totals `totals`); an error when no unit is left."""
    keep_u, keep_g = t > 0, totals > 0
    if not keep_u.all():
        cols, t, units = cols[:, keep_u], t[keep_u], units.filter(pl.Series(keep_u))
        strata = None if strata is None else strata[keep_u]
        totals = cols.sum(axis=1)
    if not keep_g.all():
        cols, totals = np.ascontiguousarray(cols[keep_g]), totals[keep_g]
        groups = tuple(g for g, k in zip(groups, keep_g, strict=True) if k)
    if cols.shape[1] == 0:
        raise InputError("every unit has a zero total: there is nothing to measure")
    return cols, t, totals, units, groups, strata


def from_wide(
    frame: pl.DataFrame | pl.LazyFrame,
    groups: Sequence[str],
    *,
    unit: str = "unit",
) -> Composition:
    """The units×groups matrix of a wide frame: one row per unit and one count column
    per group (as PySAL `segregation` takes it). Units must be distinct; units whose
    counts are all zero and groups with no members are dropped, as in `composition`.

    >>> import polars as pl
    >>> f = pl.DataFrame({"unit": ["a", "b"], "x": [10, 0], "y": [0, 10]})
    >>> from_wide(f, ["x", "y"]).counts.tolist()
    [[10.0, 0.0], [0.0, 10.0]]
    """
    frame = _collect(frame)
    groups = tuple(groups)
    _require(frame, [unit, *groups])
    text = [g for g in groups if not frame.schema[g].is_numeric()]
    if text:
        raise InputError(f"count column {text[0]!r} is not numeric ({frame.schema[text[0]]})")
    units = frame[unit]
    if units.null_count():
        raise InputError(f"{units.null_count()} rows have no value in column {unit!r}")
    # Units in increasing order are distinct (one comparison pass); else count them.
    if not (units > units.shift(1)).all() and units.n_unique() != units.len():
        raise InputError(f"column {unit!r} repeats a unit: a wide table has one row per unit")
    # polars returns a column-major (n, K) array: its transpose is the (K, n) layout.
    cols = np.ascontiguousarray(frame.select(pl.col(groups).cast(pl.Float64)).to_numpy().T)
    t, totals = cols.sum(axis=0), cols.sum(axis=1)
    _check_values(cols, "the group columns", totals)
    cols, t, totals, units, groups, _ = _drop_empty(cols, t, totals, units, groups)
    return Composition(cols, units, groups)._seed(t=t, N=totals)


def _check_values(values: np.ndarray, count: str, totals: np.ndarray) -> None:
    """Counts must be finite and ≥ 0 (`totals`, their sums by group, are finite then)."""
    if values.min() >= 0 and np.isfinite(totals).all():  # a NaN fails both
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
    x = comp.cols[..., comp.groups.index(focal), :]
    if reference is None:
        t = comp.t  # the unit totals stay those of all groups
        y = t - x
        other = REST
    else:
        y = comp.cols[..., comp.groups.index(reference), :]
        t = x + y
        other = reference
    cols = np.stack([x, y], axis=-2)
    totals = cols.sum(axis=-1)
    for label, total in zip((focal, other), np.moveaxis(totals, -1, 0), strict=True):
        if np.sum(total) <= 0:
            raise InputError(f"group {label!r} has no members: two-group indices need both")
    if np.count_nonzero(t > 0) < 2:
        raise InputError(
            f"only one unit holds {focal!r} or {other!r}: segregation needs at least two"
        )
    return Composition(
        cols, comp.units, (focal, other), comp.strata, comp.stratum_names, {"two_group": True}
    )._seed(t=t, N=totals)


# --------------------------------------------------------------------------------------
# Kernels: each returns a list of (group, other_group, value array) for one index.
# Arrays are group-major (..., K, n): every pass runs over contiguous rows of n units.

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
    # Σ_u Σ_g t_u |π_ug − π_g| (for two groups the two rows are equal: 2 Σ_u t_u |p_u − P|)
    return _one(c, _div(c.abs_dev.sum(axis=-1), 2.0 * c.T * c.interaction_I))


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
    total = 2.0 * _gini_sums(c, [0]) if _is_two(c) else _gini_sums(c, range(c.K))
    return _one(c, _div(total, c.interaction_I))


def _k_atkinson(c: Composition, b: float) -> Rows:
    # 1 − [Σ_u (x_u/X)^b (y_u/Y)^(1−b)]^(1/(1−b)) with y = the rest of the unit (two-group:
    # the other group), from Σ_u x_u^b y_u^(1−b) / (X^b Y^(1−b)).
    x_tot, y_tot = c.N, c.T[..., None] - c.N
    s = _div(c.atkinson_terms(b), x_tot**b * y_tot ** (1.0 - b))
    return _per_group(c, 1.0 - s ** (1.0 / (1.0 - b)))


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
    from segtool.indices.decompose import decomposition_rows

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
    if comp.n < 2:
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
    "from_wide",
    "compute",
    "compute_residential",
    "evaluate",
    "two_group",
    *INDICES,
]


def _check_names(names: Iterable[str]) -> None:  # pragma: no cover - import-time guard
    assert set(names) == set(KERNELS)


_check_names(INDICES)
