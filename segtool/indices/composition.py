"""The units × groups count table every aspatial index reads, and its shared sums.

`composition` (long frame) and `from_wide` (one row per unit) build a `Composition`:
the counts n_ug group-major (K × n, never n × n) with the intermediates the indices of
`segtool.indices.residential`, `spatial` and `decompose` share (t_u, N_g, π_g, I, E, M,
…), each computed at most once. `two_group` reduces it to a focal group against a
reference or the rest. The small numeric helpers (`safe_div`, `xlogx_ratio`,
`shannon_entropy`) keep 0·ln 0 = 0 and x/0 = 0 in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError

REST = "(rest)"


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with 0 where b == 0 (an empty unit or group contributes nothing)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if b.size <= a.size and np.all(b != 0):  # the usual case: one pass, no mask
        return a / b
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    np.divide(a, b, out=out, where=b != 0)
    return out


def xlogx_sum(x: np.ndarray, axes: int | tuple[int, ...]) -> np.ndarray:
    """Σ x ln x over `axes` with 0 ln 0 = 0."""
    return (x * np.log(np.where(x > 0, x, 1.0))).sum(axis=axes)


def xlogx_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p · ln(p/q) with 0·ln 0 = 0 (and 0 where q == 0, which implies p == 0)."""
    p, q = np.broadcast_arrays(np.asarray(p, dtype=float), np.asarray(q, dtype=float))
    ok = (p > 0) & (q > 0)
    out = np.zeros(p.shape)
    np.divide(p, q, out=out, where=ok)
    np.log(out, out=out, where=ok)
    out *= p
    return out


def shannon_entropy(p: np.ndarray) -> np.ndarray:
    """−Σ p ln p over the last axis (nats), 0·ln 0 = 0."""
    return -xlogx_ratio(p, np.ones_like(p)).sum(axis=-1)


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


def one_blas_thread():
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
        return safe_div(self.N, self.T[..., None])

    @cached_property
    def w(self) -> np.ndarray:
        """Unit weights t_u/T, shape (..., n)."""
        return safe_div(self.t, self.T[..., None])

    @cached_property
    def share_cols(self) -> np.ndarray:
        """Unit compositions π_ug = n_ug/t_u (0 for an empty unit), shape (..., K, n)."""
        return safe_div(self.cols, self.t[..., None, :])

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
        inv_p = safe_div(1.0, p)  # an absent group (bootstrap): its cells are 0 anyway
        size = min(n, max(1024, BLOCK_CELLS // (k * int(np.prod(batch, dtype=np.int64)))))
        share_buf = np.empty((*batch, k, size))
        work_buf = np.empty((*batch, k, size))
        with one_blas_thread():
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
            out["hutchens_sum"] = safe_div(out["hutchens_sum"], self.T)
        return {key: value for key, value in out.items() if key in todo}

    @cached_property
    def sq_dev(self) -> np.ndarray:
        """Σ_u (t_u/T)(π_ug − π_g)² = X_gg/T − π_g², shape (..., K): shared by the
        variance-ratio indices (normalised exposure, relative diversity, squared CV)."""
        diag = np.diagonal(self.cross, axis1=-2, axis2=-1)
        return np.maximum(safe_div(diag, self.T[..., None]) - self.P**2, 0.0)

    @cached_property
    def interaction_I(self) -> np.ndarray:  # noqa: N802
        """Simpson's interaction I = Σ_g π_g(1 − π_g), shape (...)."""
        return (self.P * (1.0 - self.P)).sum(axis=-1)

    @cached_property
    def E(self) -> np.ndarray:  # noqa: N802
        """Entropy of the overall composition, shape (...)."""
        return shannon_entropy(self.P)

    @cached_property
    def local_mi(self) -> np.ndarray:
        """ls_u = Σ_g π_ug ln(π_ug/π_g), shape (..., n)."""
        return xlogx_ratio(self.share_cols, self.P[..., :, None]).sum(axis=-2)

    @cached_property
    def M(self) -> np.ndarray:  # noqa: N802
        """M = Σ_u (t_u/T) ls_u = Σ_u Σ_g (n_ug/T) ln(π_ug/π_g), summed cell by cell (well
        conditioned: no difference of large terms such as Σ n ln n − Σ t ln t)."""
        return np.maximum(safe_div(self.mi_cells, self.T), 0.0)

    @cached_property
    def exposure(self) -> np.ndarray:
        """gPh = Σ_u (n_ug/N_g)(n_uh/t_u), shape (..., K, K); rows sum to 1."""
        return safe_div(self.cross, self.N[..., :, None])

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


def collect_frame(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
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
    frame = collect_frame(frame)
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
    frame = collect_frame(frame)
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


def is_two_group(c: Composition) -> bool:
    return bool(c.labels.get("two_group"))
