"""Inference shared by every index family: summaries of bootstrap replicates and of
permutation nulls. The resampling itself lives next to the data it resamples
(multinomial counts for residential, devices for experienced).

Bootstrap summary (se and debiased estimate as R `segregation` reports them, Elbers 2023):
  se = sd(replicates), CI = percentile interval, bias = mean(replicates) − estimate,
  debiased estimate = estimate − bias = 2·estimate − mean(replicates).
  (R `segregation`'s CI is instead the quantiles of 2·estimate − replicates, i.e. the
  percentile interval reflected about the estimate: [2·est − ci_high, 2·est − ci_low].)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class BootstrapSummary:
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    bias: float
    debiased: float


def summarize_replicates(
    estimate: float, replicates: np.ndarray, level: float = 0.95
) -> BootstrapSummary:
    """Summarise bootstrap replicates of one statistic (NaN replicates are ignored)."""
    reps = np.asarray(replicates, dtype=float)
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        nan = float("nan")
        return BootstrapSummary(estimate, nan, nan, nan, nan, nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    bias = float(reps.mean() - estimate)
    se = float(reps.std(ddof=1)) if reps.size > 1 else float("nan")
    return BootstrapSummary(estimate, se, float(lo), float(hi), bias, float(estimate - bias))


def summarize_null(estimate: float, null_values: np.ndarray) -> dict[str, float]:
    """Expected value under the null, the excess over it, and a one-sided p-value
    (share of null values ≥ the estimate, with the +1 correction)."""
    null = np.asarray(null_values, dtype=float)
    null = null[~np.isnan(null)]
    if null.size == 0:
        return {"null_mean": float("nan"), "excess": float("nan"), "p_value": float("nan")}
    mean = float(null.mean())
    p = float((1 + np.sum(null >= estimate)) / (1 + null.size))
    return {"null_mean": mean, "excess": float(estimate - mean), "p_value": p}


# --------------------------------------------------------------------------------------
# Residential: multinomial bootstrap of a units × groups count table


def multinomial_draws(
    counts: np.ndarray, replicates: int, seed: int, *, max_cells: int = 2_000_000
):
    """Yield bootstrap tables of `counts`' shape, stacked on a leading replicate axis.

    As R `segregation` (Elbers 2023): each replicate draws T = Σ counts individuals from
    one multinomial over all cells with probabilities n_ug / T, so unit totals and group
    totals vary as they would in a new sample. Non-integer totals are rounded to the
    nearest whole number of individuals. Draws are vectorised over replicates
    (``Generator.multinomial(size=m)``), in chunks of about `max_cells` cells; the stream
    of draws depends only on `seed`, so results are reproducible.
    """
    flat = np.asarray(counts, dtype=float).ravel()
    nonzero = np.flatnonzero(flat > 0)
    total = flat[nonzero].sum()
    n_draw = int(round(total))
    p = flat[nonzero] / total
    rng = np.random.default_rng(seed)
    chunk = max(1, max_cells // max(1, nonzero.size))
    done = 0
    while done < replicates:
        m = min(chunk, replicates - done)
        draws = rng.multinomial(n_draw, p, size=m)
        out = np.zeros((m, flat.size))
        out[:, nonzero] = draws
        yield out.reshape((m, *np.shape(counts)))
        done += m


def bootstrap_residential(comp, params, estimate, *, on_replicates=None):
    """Fill `se`, `ci_low`, `ci_high` and `debiased` of a residential result frame.

    `comp` is the (possibly two-group) `Composition` the estimate was computed from and
    `params` its `ResidentialParams`; every replicate is evaluated with the same kernels
    (batched over replicates), row for row. `on_replicates(k)` reports progress.
    """

    from segtool.indices.residential_kernels import evaluate

    chunks = []
    for counts in multinomial_draws(comp.counts, params.bootstrap, params.seed):
        ev = evaluate(comp.with_counts(counts), params)
        chunks.append(np.stack([np.broadcast_to(v, counts.shape[:1]) for v in ev.values], 1))
        if on_replicates is not None:
            on_replicates(counts.shape[0])
    return with_replicate_summaries(estimate, np.concatenate(chunks, axis=0), params.level)


def with_replicate_summaries(
    estimate: pl.DataFrame, reps: np.ndarray, level: float
) -> pl.DataFrame:
    """`estimate` with `se`, `ci_low`, `ci_high` and `debiased` columns from the bootstrap
    replicates `reps` (replicates × rows of `estimate`, same row order)."""
    sums = [
        summarize_replicates(est, reps[:, j], level)
        for j, est in enumerate(estimate["value"].to_list())
    ]
    return estimate.with_columns(
        pl.Series("se", [s.se for s in sums], dtype=pl.Float64),
        pl.Series("ci_low", [s.ci_low for s in sums], dtype=pl.Float64),
        pl.Series("ci_high", [s.ci_high for s in sums], dtype=pl.Float64),
        pl.Series("debiased", [s.debiased for s in sums], dtype=pl.Float64),
    )


def excess_interval(
    excess: float, replicates: np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """Interval of an excess over a null (estimate − E[null]) from bootstrap replicates of
    the estimate: the excess plus the centred percentiles of the replicates. The null mean
    already removes the small-sample bias, so only the bootstrap's spread is used (a
    percentile interval would carry the bootstrap's own upward bias of bounded indices)."""
    reps = np.asarray(replicates, dtype=float)
    reps = reps[~np.isnan(reps)]
    if reps.size == 0 or np.isnan(excess):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps - reps.mean(), [alpha, 1.0 - alpha])
    return float(excess + lo), float(excess + hi)
