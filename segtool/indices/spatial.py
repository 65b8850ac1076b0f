"""Spatial (egohood) residential indices on H3 cells: neighbourhood sums over `grid_disk(k)`.

Each unit u of the table is an H3 cell. Its *egohood* (local environment) holds the
table's cells v within ring distance d(u, v) ≤ k, weighted by w(d):

    flat    w(d) = 1                     (d ≤ k)
    linear  w(d) = 1 − d/(k + 1)         (d ≤ k; 1 at the centre, 1/(k+1) at ring k)
    exp     w(d) = exp(−d/λ)             (d ≤ k; λ = `decay`, in rings)

and w(0) = 1 always (the unit itself). The counts of every unit are replaced by its
neighbourhood sums

    ñ_ug = Σ_v w(d(u, v)) n_vg,   i.e.  ñ = C n  with  C_uv = w(d(u, v)),

C a scipy sparse matrix (n × n with at most 3k(k+1) + 1 entries a row; never dense).
Every aspatial index of `segtool.indices.residential` computed on ñ is its spatial
version (Reardon & O'Sullivan 2004: spatial D, H, M, exposure on local environments).
This is PySAL `segregation`'s approach for a weights object `w`
(`_base._build_local_environment`: `fill_diagonal(w, 1)` sets w_uu = 1, then
`lag_spatial(w, n)`; checked against it to 1e-9 in the tests), except
that PySAL then rounds ñ to whole numbers and segtool does not (ñ is a weighted sum, not
a count; rounding would make the index depend on the scale of the counts).

Spatial proximity SP (White 1983; Massey & Denton 1988), with c_uv = C_uv:

    P_xx = Σ_uv x_u x_v c_uv / X²,  P_yy likewise,  P_tt = Σ_uv t_u t_v c_uv / T²,
    SP = (X P_xx + Y P_yy) / (T P_tt),

x the focal group, y the reference group or the rest, t = x + y. Σ_uv x_u x_v c_uv =
x·(C x) = Σ_u x_u x̃_u comes from the same neighbourhood sums (no pairs are formed).
SP = 1 when groups are as clustered as the population as a whole, > 1 when members of a
group live nearer each other than to the others. PySAL `SpatialProximity` differs: a
dense n × n matrix of centroid distances, c_uv = 1 − exp(−d_uv / Σ_w d_wv) (Euclidean,
column-normalised) and c_uu = 1 − exp(−(0.6·area_u)^0.5): its values are not comparable.

Choices, written down:
- Units are the table's cells only: cells not in the table hold no one and are not
  added (they would contribute 0 to every sum, but would become units of their own).
  Units whose counts are all zero are dropped by the reader as in the aspatial indices,
  so listing empty cells or leaving them out gives the same result.
- Ring distance is H3's grid distance (`polars_h3.grid_distance`); where H3 cannot give
  it (pairs across a pentagon's distortion) it is the smallest d with v in
  `grid_disk(u, d)`. `grid_ring` is not used: polars-h3 0.7.1 loops forever on cells
  next to a pentagon.
- All cells must have the same H3 resolution (a disk of a coarse cell does not contain
  finer cells).
- k = 0 gives C = identity: the aspatial results exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from segtool.errors import InputError, UsageError
from segtool.indices.composition import Composition, composition, safe_div
from segtool.indices.residential import RESULT_SCHEMA, ResidentialParams, prepare, result_frame
from segtool.indices.residential_kernels import evaluate, per_group_rows

KERNELS = ("flat", "linear", "exp")
SP_INDEX = "spatial_proximity"


@dataclass(frozen=True)
class SpatialParams:
    """Egohood of each unit: `grid_disk(k)` with weights w(d) by ring distance d."""

    k: int = 1
    kernel: str = "flat"
    decay: float = 1.0  # λ of the exp kernel, in rings

    def __post_init__(self) -> None:
        if not isinstance(self.k, (int, np.integer)) or self.k < 0:
            raise UsageError(f"--spatial must be a whole number of rings ≥ 0, not {self.k!r}")
        if self.kernel not in KERNELS:
            raise UsageError(
                f"unknown kernel {self.kernel!r}", hint=f"choose from: {', '.join(KERNELS)}"
            )
        if not (np.isfinite(self.decay) and self.decay > 0):
            raise UsageError(f"--decay must be a positive number of rings, not {self.decay}")

    def weight(self, d: np.ndarray) -> np.ndarray:
        """w(d) for ring distances 0 ≤ d ≤ k."""
        d = np.asarray(d, dtype=float)
        if self.kernel == "flat":
            return np.ones_like(d)
        if self.kernel == "linear":
            return 1.0 - d / (self.k + 1)
        return np.exp(-d / self.decay)

    @property
    def label(self) -> str:
        """What was computed, e.g. "grid_disk(2), flat" or "grid_disk(3), exp(λ=1.5)"."""
        kernel = f"exp(λ={self.decay:g})" if self.kernel == "exp" else self.kernel
        return f"grid_disk({self.k}), {kernel}"


# --------------------------------------------------------------------------------------
# Units as H3 cells


def h3_cells(units: pl.Series) -> np.ndarray:
    """The units as H3 cells (uint64): UInt64/Int64 integers, or strings in hex
    ("881f1d4a19fffff") or decimal. Anything else is an `InputError` naming a bad unit."""
    import polars_h3 as plh3

    name = units.name or "unit"
    if (
        units.dtype == pl.String
        or units.dtype == pl.Categorical
        or isinstance(units.dtype, pl.Enum)
    ):
        s = units.cast(pl.String).str.strip_chars()
        hexed = s.str.strip_prefix("0x").str.to_lowercase()
        cells = pl.select(plh3.str_to_int(hexed).alias("c"))["c"]
        if cells.null_count() or not _all_valid(cells):
            dec = s.cast(pl.UInt64, strict=False)
            if dec.null_count() == 0 and _all_valid(dec):
                cells = dec
    elif units.dtype.is_integer():
        if units.dtype.is_signed_integer() and (units < 0).any():
            cells = pl.Series(name, [None], dtype=pl.UInt64)  # falls into the error below
        else:
            cells = units.cast(pl.UInt64)
    else:
        raise InputError(
            f"--spatial needs H3 cells as units, but column {name!r} holds {units.dtype}",
            hint="units must be H3 cell ids: UInt64 integers or hex strings",
        )
    valid = pl.select(plh3.is_valid_cell(cells.fill_null(0)).alias("v"))["v"]
    if not valid.all():
        bad = units.filter(~valid)
        raise InputError(
            f"--spatial needs H3 cells as units, but {bad.len()} of {units.len()} units are "
            f"not valid H3 cells (first: {bad[0]!r})",
            hint="units must be H3 cell ids: UInt64 integers or hex strings such as "
            "'891f1d4a193ffff' (e.g. the lake's population_cells dataset)",
        )
    out = cells.to_numpy().astype(np.uint64)
    res = pl.select(plh3.get_resolution(cells).alias("r"))["r"].unique().sort().to_list()
    if len(res) > 1:
        raise InputError(
            f"--spatial needs every cell at one H3 resolution, but the table mixes "
            f"resolutions {', '.join(map(str, res))}",
            hint="bring the counts to one resolution (e.g. segtool ingest population --res)",
        )
    return out


def _all_valid(cells: pl.Series) -> bool:
    import polars_h3 as plh3

    if cells.null_count():
        return False
    return bool(pl.select(plh3.is_valid_cell(cells).alias("v"))["v"].all())


# --------------------------------------------------------------------------------------
# The neighbourhood matrix


def neighbourhood_matrix(
    cells: np.ndarray, k: int, kernel: str = "flat", decay: float = 1.0
) -> sp.csr_matrix:
    """C_uv = w(d(u, v)) for the table's cells u, v with ring distance d ≤ k (CSR, n × n).

    Built vectorised, in blocks of cells (bounded temporaries): `grid_disk(k)` of every
    cell of the block (polars-h3), exploded;
    neighbours looked up among the table's sorted cells (`np.searchsorted`: the join onto
    row numbers); for the linear and exp kernels ring distances by `grid_distance` on the
    pairs that remain (the flat kernel needs none). Rows come out in order, so the CSR
    arrays are written directly. At most n·(3k(k+1) + 1) entries.
    """
    params = SpatialParams(k, kernel, decay)
    cells = np.ascontiguousarray(cells, dtype=np.uint64)
    n = cells.size
    if n > 1 and bool((cells[1:] >= cells[:-1]).all()):
        order, sorted_cells = None, cells  # the reader's frames: sorted already
    else:
        order = np.argsort(cells, kind="stable")
        sorted_cells = cells[order]
    if n > 1 and bool((sorted_cells[1:] == sorted_cells[:-1]).any()):
        raise InputError("the table lists an H3 cell twice: one row per (cell, group) expected")
    if k == 0 or n == 0:
        return sp.identity(n, format="csr", dtype=float)
    parts = [
        _block(cells, sorted_cells, order, (lo, min(lo + BLOCK_CELLS, n)), params)
        for lo in range(0, n, BLOCK_CELLS)
    ]
    counts = np.concatenate([p[0] for p in parts])
    nnz = int(counts.sum())
    index = np.int32 if max(nnz, n) < 2**31 - 1 else np.int64
    indptr = np.zeros(n + 1, dtype=index)
    np.cumsum(counts, out=indptr[1:])
    cols = np.concatenate([p[1] for p in parts]).astype(index, copy=False)
    data = np.concatenate([p[2] for p in parts])
    del parts
    matrix = sp.csr_matrix((data, cols, indptr), shape=(n, n))
    matrix.sort_indices()
    return matrix


BLOCK_CELLS = 1 << 17  # cells per block of `neighbourhood_matrix`


def _block(cells, sorted_cells, order, bounds, params):
    """Entries of rows lo..hi: (entries per row, column of each, weight of each)."""
    import polars_h3 as plh3

    lo, hi = bounds
    n = sorted_cells.size
    disks = pl.select(plh3.grid_disk(pl.Series("c", cells[lo:hi]), params.k).alias("v"))["v"]
    lengths = disks.list.len().to_numpy()
    nb = disks.explode().to_numpy()
    del disks
    pos = np.searchsorted(sorted_cells, nb)
    np.minimum(pos, n - 1, out=pos)
    hit = sorted_cells[pos] == nb
    index = np.int32 if n < 2**31 - 1 else np.int64
    if hit.all():  # inside a fully covered area every neighbour is a unit
        cols = pos.astype(index)
        per_row = lengths.astype(np.int64)
        rows = None if params.kernel == "flat" else np.repeat(np.arange(hi - lo), lengths)
    else:
        rows = np.repeat(np.arange(hi - lo, dtype=index), lengths)[hit]
        cols = pos[hit].astype(index)
        per_row = np.bincount(rows, minlength=hi - lo)
        nb = nb[hit]
    if order is not None:
        cols = order[cols].astype(index)
    if params.kernel == "flat":
        return per_row, cols, np.ones(cols.size)
    pairs = pl.DataFrame({"a": pl.Series(cells[lo:hi][rows]), "b": pl.Series(nb)})
    d = pairs.select(plh3.grid_distance("a", "b").alias("d"))["d"]
    if d.null_count():
        d = _distance_by_disks(pairs, d, params.k)
    return per_row, cols, params.weight(d.to_numpy())


def _distance_by_disks(pairs: pl.DataFrame, d: pl.Series, k: int) -> pl.Series:
    """Fill the distances H3 cannot give (near pentagons): the smallest d' with
    b in grid_disk(a, d'), for the few pairs concerned (a loop over d' ≤ k only)."""
    import polars_h3 as plh3

    missing = pairs.with_row_index("i").filter(d.is_null())
    found = pl.Series("d", [None] * missing.height, dtype=pl.Int64)
    for ring in range(k, -1, -1):  # from the outside in: the last hit is the smallest
        inside = missing.select(plh3.grid_disk("a", ring).list.contains(pl.col("b")).alias("x"))[
            "x"
        ]
        found = pl.select(pl.when(inside).then(ring).otherwise(found).alias("d"))["d"]
    return d.cast(pl.Int64).scatter(missing["i"], found.fill_null(k))


# --------------------------------------------------------------------------------------
# Neighbourhood sums


def smooth(comp: Composition, matrix: sp.spmatrix) -> Composition:
    """The same units, groups and strata with counts ñ = C n (batch axes allowed)."""
    cols = comp.cols
    flat = cols.reshape(-1, cols.shape[-1])  # (batch·K, n)
    smoothed = np.ascontiguousarray((matrix @ flat.T).T).reshape(cols.shape)
    return comp.with_cols(smoothed)


def egohood_counts(
    frame: pl.DataFrame | pl.LazyFrame,
    k: int,
    kernel: str = "flat",
    decay: float = 1.0,
    *,
    unit: str = "unit",
    group: str = "group",
    count: str = "n",
) -> pl.DataFrame:
    """Long (unit, group, count) frame of neighbourhood sums ñ_ug = Σ_v w(d(u, v)) n_vg
    for every unit u of `frame` (H3 cells; see the module doc). Column names as given.

    >>> import polars as pl, h3
    >>> a = h3.latlng_to_cell(59.33, 18.06, 9); b = h3.grid_ring(a, 1)[0]
    >>> f = pl.DataFrame({"unit": [a, a, b, b], "group": ["x", "y", "x", "y"],
    ...                   "n": [10, 0, 0, 10]})
    >>> egohood_counts(f, 1)["n"].to_list()
    [10.0, 10.0, 10.0, 10.0]
    """
    comp = composition(frame, unit=unit, group=group, count=count)
    matrix = neighbourhood_matrix(h3_cells(comp.units), k, kernel, decay)
    s = smooth(comp, matrix)
    n_units, n_groups = s.n, s.K
    return pl.DataFrame(
        {
            unit: comp.units.gather(np.repeat(np.arange(n_units), n_groups)),
            group: pl.Series(comp.groups, dtype=pl.String).gather(
                np.tile(np.arange(n_groups), n_units)
            ),
            count: s.counts.ravel(),
        }
    )


# --------------------------------------------------------------------------------------
# Spatial proximity


def proximity_values(raw: Composition, smoothed: Composition) -> np.ndarray:
    """SP of each group against the rest, shape (..., K), from the counts n and their
    neighbourhood sums ñ = C n: Σ_uv x_u x_v c_uv = Σ_u x_u x̃_u (C symmetric)."""
    x, xs = raw.cols, smoothed.cols
    t, ts = raw.t, smoothed.t
    xx = np.einsum("...kn,...kn->...k", x, xs)
    tt = np.einsum("...n,...n->...", t, ts)[..., None]
    yy = np.einsum("...kn,...kn->...k", t[..., None, :] - x, ts[..., None, :] - xs)
    big_x = raw.N
    big_y = raw.T[..., None] - big_x
    return safe_div(safe_div(xx, big_x) + safe_div(yy, big_y), safe_div(tt, raw.T[..., None]))


def _proximity_rows(raw: Composition, smoothed: Composition):
    return [(SP_INDEX, g, h, v) for g, h, v in per_group_rows(raw, proximity_values(raw, smoothed))]


def spatial_proximity(
    frame: pl.DataFrame | pl.LazyFrame,
    focal: str | None = None,
    k: int = 1,
    kernel: str = "flat",
    decay: float = 1.0,
    *,
    reference: str | None = None,
    unit: str = "unit",
    group: str = "group",
    count: str = "n",
) -> pl.DataFrame:
    """White's (1983) spatial proximity SP of `focal` against `reference` or the rest,
    or of each group against the rest without a focal group; tidy result frame.

    SP = (X P_xx + Y P_yy)/(T P_tt), P_xx = Σ_uv x_u x_v c_uv / X², c_uv = w(d(u, v))
    over `grid_disk(k)` (see the module doc for how it differs from PySAL's).
    """
    comp = composition(frame, unit=unit, group=group, count=count)
    params = ResidentialParams(indices=(), focal=focal, reference=reference)
    raw = prepare(comp, params)
    matrix = neighbourhood_matrix(h3_cells(raw.units), k, kernel, decay)
    rows = _proximity_rows(raw, smooth(raw, matrix))
    return pl.DataFrame(
        {
            "index": [r[0] for r in rows],
            "group": [r[1] for r in rows],
            "other_group": [r[2] for r in rows],
            "value": [float(r[3]) for r in rows],
        }
    ).select(
        pl.col(c) if c in ("index", "group", "other_group", "value") else pl.lit(None, t).alias(c)
        for c, t in RESULT_SCHEMA.items()
    )


# --------------------------------------------------------------------------------------
# Everything at once (the command's path)


def compute_spatial(
    comp: Composition,
    params: ResidentialParams,
    spatial: SpatialParams,
    *,
    proximity: bool = True,
    matrix: sp.spmatrix | None = None,
    on_replicates: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """The residential indices of `params` on the egohood counts ñ = C n, plus spatial
    proximity (`proximity`), as a tidy frame with a `neighbourhood` column.

    `comp` holds the unit counts (units = H3 cells). With `params.bootstrap`, each
    replicate resamples the unit counts (multinomial, as the aspatial bootstrap) and then
    forms their neighbourhood sums, so the CI reflects sampling of people, not of egohoods.
    """
    estimate_params = ResidentialParams(**{**params.__dict__, "bootstrap": 0})
    raw = prepare(comp, estimate_params)
    if matrix is None:
        matrix = neighbourhood_matrix(h3_cells(raw.units), spatial.k, spatial.kernel, spatial.decay)
    smoothed = smooth(raw, matrix)
    ev = evaluate(smoothed, estimate_params)
    if proximity:
        for name, g, h, v in _proximity_rows(raw, smoothed):
            ev.keys.append((name, g, h, None, None))
            ev.values.append(v)
            ev.weights.append(None)
    result = result_frame(ev)
    if params.bootstrap:
        result = _bootstrap(raw, matrix, params, result, proximity, on_replicates)
    return result.with_columns(neighbourhood=pl.lit(spatial.label, pl.String))


def _bootstrap(raw, matrix, params, estimate, proximity, on_replicates):
    from segtool.indices.inference import multinomial_draws, with_replicate_summaries

    chunks = []
    for counts in multinomial_draws(raw.counts, params.bootstrap, params.seed):
        rep = raw.with_counts(counts)
        rep_s = smooth(rep, matrix)
        values = evaluate(rep_s, params).values
        if proximity:
            values += [v for _, _, _, v in _proximity_rows(rep, rep_s)]
        chunks.append(np.stack([np.broadcast_to(v, counts.shape[:1]) for v in values], 1))
        if on_replicates is not None:
            on_replicates(counts.shape[0])
    return with_replicate_summaries(estimate, np.concatenate(chunks, axis=0), params.level)


def segregation_profile(
    frame: pl.DataFrame | pl.LazyFrame | Composition,
    ks: tuple[int, ...] = (0, 1, 2, 3, 4),
    indices: tuple[str, ...] = ("dissimilarity", "theil_h"),
    kernel: str = "flat",
    decay: float = 1.0,
) -> pl.DataFrame:
    """Segregation by scale (a segregation profile, Reardon et al. 2008, Demography 45:489):
    the multigroup `indices` on egohoods of `grid_disk(k)` for each k in `ks`, k = 0 being
    the cells themselves. `frame`: long (unit, group, n) as for `compute_residential` (or
    a `Composition`); units must be H3 cells of one resolution. Returns one row per
    (k, index): k, radius_m (k × the mean distance between neighbouring cell centres, √3
    × the mean edge length at that resolution), index, value. A profile that falls
    quickly with k means segregation between neighbouring cells only; a flat one,
    segregation between large districts.
    """
    import h3

    params = ResidentialParams(indices=tuple(indices))
    comp = prepare(frame, params)
    cells = h3_cells(comp.units)
    res = h3.get_resolution(h3.int_to_str(int(cells[0])))
    step = float(np.sqrt(3.0) * h3.average_hexagon_edge_length(res, unit="m"))
    rows = []
    for k in ks:  # a handful of scales; each is one sparse product over all cells
        spatial = SpatialParams(int(k), kernel, decay)
        matrix = neighbourhood_matrix(cells, spatial.k, kernel, decay)
        out = compute_spatial(comp, params, spatial, proximity=False, matrix=matrix)
        for index, value in out.filter(pl.col("group").is_null()).select("index", "value").rows():
            rows.append((int(k), k * step, index, value))
    return pl.DataFrame(
        rows,
        schema={"k": pl.Int64, "radius_m": pl.Float64, "index": pl.String, "value": pl.Float64},
        orient="row",
    )


__all__ = [
    "KERNELS",
    "SP_INDEX",
    "SpatialParams",
    "compute_spatial",
    "egohood_counts",
    "h3_cells",
    "neighbourhood_matrix",
    "proximity_values",
    "segregation_profile",
    "smooth",
    "spatial_proximity",
]
