"""M and H into between- and within-strata parts, and per-unit (local) scores.

Decomposition (Theil 1971; Mora & Ruiz-Castillo 2011; Elbers 2023, R `segregation`
`mutual_total(within=)` / `mutual_within()`): with units u nested in strata s,

    M_total = M_between + M_within,   M_within = Σ_s (T_s/T) M_s
    H_total = H_between + H_within,   H_within = Σ_s (T_s/T)(E_s/E) H_s

where M_between is M of the strata × groups table, M_s the M of stratum s on its own
(units of s against the composition of s), E_s its entropy and H_s = M_s/E_s (0 when
E_s = 0, as in R `segregation`). H_between = M_between/E and H_within = M_within/E.
Stratum rows carry `weight` (T_s/T for M, (T_s/T)(E_s/E) for H) so that the within
component is Σ weight·value.

Local scores, one row per unit (and group):
- `location_quotient` LQ_ug = π_ug/π_g (Isard 1960; PySAL `MultiLocationQuotient`)
- `local_entropy` E_u = −Σ_g π_ug ln π_ug in nats (PySAL `MultiLocalEntropy` divides
  by ln K)
- `local_mutual_information` ls_u = Σ_g π_ug ln(π_ug/π_g), with Σ_u (t_u/T) ls_u = M
  (Theil 1971; Elbers 2023, R `segregation::mutual_local()`'s `ls`)
- `ice` ICE_u = (high_u − low_u)/t_u, the index of concentration at the extremes
  (Massey 2001; Krieger et al. 2016), in [−1, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from segtool.errors import UsageError
from segtool.indices.composition import (
    Composition,
    collect_frame,
    composition,
    safe_div,
    shannon_entropy,
)
from segtool.indices.residential import LOCAL_INDICES, compute_residential

LOCAL_SCHEMA: dict[str, pl.DataType] = {
    "index": pl.String(),
    "group": pl.String(),
    "value": pl.Float64(),
    "unit_total": pl.Float64(),
    "unit_share": pl.Float64(),
}


def decompose_mutual_information(
    frame: pl.DataFrame | pl.LazyFrame,
    within: str,
    focal: str | None = None,
    reference: str | None = None,
    **kwargs,
) -> pl.DataFrame:
    """M and H of a long (unit, group, n, <within>) frame split into between-strata and
    within-strata components, with each stratum's own M and H (see the module doc).

    >>> import polars as pl
    >>> f = pl.DataFrame({"unit": list("aabbccdd"), "group": list("xyxyxyxy"),
    ...                   "n": [5, 5, 5, 5, 9, 1, 1, 9], "district": list("AAAABBBB")})
    >>> r = decompose_mutual_information(f, "district")
    >>> r.filter(index="mutual_information", stratum=None)["component"].to_list()
    ['total', 'between', 'within']
    """
    return compute_residential(
        frame, ["mutual_information", "theil_h"], focal, reference, within=within, **kwargs
    )


# --------------------------------------------------------------------------------------
# Local scores


def local_scores(
    frame: pl.DataFrame | pl.LazyFrame | Composition,
    indices: Sequence[str] | None = None,
    *,
    ice_high: str | None = None,
    ice_low: str | None = None,
) -> pl.DataFrame:
    """Per-unit scores of a long (unit, group, n) frame as a tidy frame with columns
    `unit, index, group, value, unit_total, unit_share` (group only for the location
    quotient). `ice` needs `ice_high` and `ice_low`; by default every local score that
    applies is computed (ice only when both groups are given).
    """
    c = frame if isinstance(frame, Composition) else composition(collect_frame(frame))
    if (ice_high is None) != (ice_low is None):
        raise UsageError("ICE needs both --ice-high and --ice-low")
    if indices is None:
        indices = [i for i in LOCAL_INDICES if i != "ice" or ice_high is not None]
    unknown = [i for i in indices if i not in LOCAL_INDICES]
    if unknown:
        raise UsageError(
            f"unknown local score {', '.join(map(repr, unknown))}",
            hint=f"choose from: {', '.join(LOCAL_INDICES)}",
        )
    if "ice" in indices:
        if ice_high is None:
            raise UsageError("the ice score needs --ice-high and --ice-low")
        for g in (ice_high, ice_low):
            if g not in c.groups:
                raise UsageError(
                    f"ICE group {g!r} is not in the table",
                    hint=f"its groups are: {', '.join(c.groups)}",
                )
        if ice_high == ice_low:
            raise UsageError(f"--ice-high and --ice-low are both {ice_high!r}")

    n, k = c.counts.shape
    parts: list[pl.DataFrame] = []

    def per_unit(name: str, values: np.ndarray) -> None:
        parts.append(
            pl.DataFrame(
                {
                    "unit": c.units,
                    "index": pl.repeat(name, n, eager=True, dtype=pl.String),
                    "group": pl.repeat(None, n, eager=True, dtype=pl.String),
                    "value": values,
                    "unit_total": c.t,
                    "unit_share": c.w,
                }
            )
        )

    for name in indices:
        if name == "location_quotient":
            lq = safe_div(c.share, c.P[None, :])
            rows = np.repeat(np.arange(n), k)
            parts.append(
                pl.DataFrame(
                    {
                        "unit": c.units.gather(rows),
                        "index": pl.repeat(name, n * k, eager=True, dtype=pl.String),
                        "group": pl.Series(c.groups, dtype=pl.String).gather(
                            np.tile(np.arange(k), n)
                        ),
                        "value": lq.ravel(),
                        "unit_total": c.t[rows],
                        "unit_share": c.w[rows],
                    }
                )
            )
        elif name == "local_entropy":
            per_unit(name, shannon_entropy(c.share))
        elif name == "local_mutual_information":
            per_unit(name, c.local_mi)
        elif name == "ice":
            hi = c.counts[:, c.groups.index(ice_high)]
            lo = c.counts[:, c.groups.index(ice_low)]
            per_unit(name, safe_div(hi - lo, c.t))
    if not parts:
        return pl.DataFrame(schema={"unit": c.units.dtype, **LOCAL_SCHEMA})
    return pl.concat(parts)


def location_quotient(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """LQ_ug = π_ug / π_g per unit and group (1 = the city's share). PySAL
    `MultiLocationQuotient`."""
    return local_scores(frame, ["location_quotient"])


def local_entropy(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """E_u = −Σ_g π_ug ln π_ug per unit (nats; PySAL `MultiLocalEntropy` = E_u / ln K)."""
    return local_scores(frame, ["local_entropy"])


def local_mutual_information(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """ls_u = Σ_g π_ug ln(π_ug/π_g) per unit; Σ_u (t_u/T) ls_u = M (R `segregation`
    `mutual_local()`)."""
    return local_scores(frame, ["local_mutual_information"])


def ice(frame: pl.DataFrame | pl.LazyFrame, high: str, low: str) -> pl.DataFrame:
    """ICE_u = (n_u,high − n_u,low)/t_u per unit (Massey 2001), in [−1, 1]."""
    return local_scores(frame, ["ice"], ice_high=high, ice_low=low)
