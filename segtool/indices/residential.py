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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from segtool.errors import InputError, UsageError
from segtool.indices.composition import (
    REST,
    Composition,
    collect_frame,
    composition,
    from_wide,
    two_group,
)
from segtool.indices.residential_kernels import KERNELS, Evaluated, evaluate

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


def result_frame(ev: Evaluated) -> pl.DataFrame:
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
        frame = collect_frame(frame)
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
    result = result_frame(ev)
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
