"""Experienced (exposure) segregation from visits: places, people, groups and encounters.

Input: the canonical long frame — one row per visit (device, place, group, dwell_s
[, weight, start, slot, daytype, home, ses]); soft membership is the device's dwell split
across groups by its shares — or the lake's `visits/` + `devices/`, or aggregated flows
(place level only). Everything is dwell-time weighted and visitors are weighted by their
representativeness weight w_i.

Indices (names as in the output's `index` column):

- `place_segregation` — S_α = Σ_g |τ_gα − r_g| / (2(1 − min r)), τ_gα the share of
  group g in the weighted dwell at unit α; r_g = 1/K gives Moro et al. 2021's
  K/(2(K−1)) Σ_g |τ_gα − 1/K|. City summary: dwell-weighted mean and quartiles.
- `ice` — (a/s_a − b/s_b)/(a/s_a + b/s_b + o/s_o) per unit (Liao et al. 2025).
- `individual_segregation` — S_i of τ_gi = Σ_α d_iα τ_gα / Σ_α d_iα, summarised by home
  group (mean, median, quartiles); component `leave_one_out` removes the device's own time.
- `home_segregation` — S of the device's home area (population composition), summarised
  the same way, to set beside `individual_segregation`.
- `experienced_isolation` — Athey et al. 2021: share of one's own group among the
  others present in the same cell and time bin, averaged over the group's time.
- `residential_isolation` — xPx from population counts (component `population`) or the
  same leave-self-out average over the devices' home cells (component `device_homes`).
- `exposure` — co-presence exposure matrix E_gh (rows sum to 1; E_gg is isolation).
- `economic_segregation` — Nilforoshan et al. 2023: correlation between own SES and the
  mean SES of co-present others (component `correlation`) and the random-intercept
  variance-component estimate (component `variance_component`).

Public API (the CLI `segtool indices experienced` is a thin layer over it)::

    from segtool.indices.experienced import ExperiencedParams, panel_from_long, experienced
    panel = panel_from_long(visits_frame, ExperiencedParams(bootstrap=200, seed=1))
    result = experienced(panel, params)        # .indices, .places, .devices, .summary

Shortcuts from a long frame: `experienced_indices`, `place_segregation`,
`individual_segregation`, `experienced_isolation`, `exposure_matrix`,
`economic_segregation`.
"""

from __future__ import annotations

import polars as pl

from segtool.indices.experienced.compute import ExperiencedResult, experienced
from segtool.indices.experienced.inputs import (
    panel_from_flows,
    panel_from_lake,
    panel_from_long,
    read_table,
)
from segtool.indices.experienced.panel import Panel
from segtool.indices.experienced.params import ExperiencedParams

__all__ = [
    "ExperiencedParams",
    "ExperiencedResult",
    "Panel",
    "economic_segregation",
    "experienced",
    "experienced_indices",
    "experienced_isolation",
    "exposure_matrix",
    "individual_segregation",
    "panel_from_flows",
    "panel_from_lake",
    "panel_from_long",
    "place_segregation",
    "read_table",
]


def experienced_indices(
    long: pl.DataFrame | pl.LazyFrame,
    params: ExperiencedParams | None = None,
    *,
    population: pl.DataFrame | None = None,
    **kwargs,
) -> ExperiencedResult:
    """Every index of a long visits frame. Keyword arguments are ExperiencedParams fields."""
    params = params or ExperiencedParams(**kwargs)
    return experienced(panel_from_long(long, params, population=population), params)


def _rows(result: ExperiencedResult, *names: str) -> pl.DataFrame:
    return result.indices.filter(pl.col("index").is_in(list(names)))


def place_segregation(long: pl.DataFrame | pl.LazyFrame, **kwargs) -> pl.DataFrame:
    """Per unit: devices, visits, dwell, τ_g (columns `tau_<group>`), segregation S_α
    (and `ice` with ice_high/ice_low)."""
    return experienced_indices(long, **kwargs).places


def individual_segregation(long: pl.DataFrame | pl.LazyFrame, **kwargs) -> pl.DataFrame:
    """Per device: weight, group, τ_gi (`tau_<group>`), S_i (`segregation`; with
    leave_one_out=True also `tau_loo_<group>`, `segregation_loo`). Holds device ids:
    keep it in the lake."""
    return experienced_indices(long, **kwargs).devices


def experienced_isolation(long: pl.DataFrame | pl.LazyFrame, **kwargs) -> pl.DataFrame:
    """Rows `experienced_isolation` and `residential_isolation` per group."""
    return _rows(
        experienced_indices(long, **kwargs), "experienced_isolation", "residential_isolation"
    )


def exposure_matrix(long: pl.DataFrame | pl.LazyFrame, **kwargs) -> pl.DataFrame:
    """Rows `exposure` (group, other_group, value): E_gh, rows sum to 1."""
    return _rows(experienced_indices(long, **kwargs), "exposure")


def economic_segregation(long: pl.DataFrame | pl.LazyFrame, **kwargs) -> pl.DataFrame:
    """Rows `economic_segregation` (components correlation, variance_component); the long
    frame needs an `ses` column."""
    return _rows(experienced_indices(long, **kwargs), "economic_segregation")
