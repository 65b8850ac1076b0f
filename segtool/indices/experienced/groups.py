"""Group level: experienced isolation (Athey et al. 2021), the co-presence exposure matrix,
and residential isolation to compare with.

- Exposure E_gh: the dwell-weighted average, over group-g devices' time, of the share of
  group h among the *others* present in the same cell and time bin (see `encounters.py`
  for the leave-self-out algebra). Rows sum to 1.
- Experienced isolation of g (Athey et al. 2021): E_gg — the share of one's own group
  among the others one is present with, averaged over group-g devices' time.
- Residential isolation xPx of g:
  * from population counts per unit (`population/` or `--population`):
    Σ_u (n_ug / N_g)(n_ug / t_u) — the classic Massey & Denton index;
  * otherwise from the devices' home cells: the same leave-self-out average as
    experienced isolation, with everyone present in their home cell (weights w_i). When
    everyone stays at home for the same time, experienced and residential isolation are
    then equal by construction.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def exposure_from(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """E_gh = N_gh / D_g (NaN rows for groups never present with anyone); num (…, K, K),
    den (…, K)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den[..., None]


def residential_isolation_population(
    population: pl.DataFrame, groups: tuple[str, ...]
) -> np.ndarray:
    """xPx per group from (key, group, count): Σ_u (n_ug/N_g)(n_ug/t_u)."""
    pop = population.filter(pl.col("count") > 0)
    t = pop.group_by("key").agg(pl.col("count").sum().alias("t"))
    n_g = pop.group_by("group").agg(pl.col("count").sum().alias("N"))
    frame = (
        pop.join(t, on="key")
        .join(n_g, on="group")
        .group_by("group")
        .agg((pl.col("count") / pl.col("N") * pl.col("count") / pl.col("t")).sum().alias("xpx"))
    )
    d = dict(zip(frame["group"], frame["xpx"], strict=True))
    return np.array([d.get(g, np.nan) for g in groups])


def population_shares(population: pl.DataFrame, groups: tuple[str, ...]) -> np.ndarray:
    tot = population.group_by("group").agg(pl.col("count").sum())
    d = dict(zip(tot["group"], tot["count"], strict=True))
    v = np.array([float(d.get(g, 0.0)) for g in groups])
    if v.sum() <= 0:
        return np.full(len(groups), np.nan)
    return v / v.sum()
