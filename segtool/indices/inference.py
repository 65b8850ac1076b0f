"""Inference shared by every index family: summaries of bootstrap replicates and of
permutation nulls. The resampling itself lives next to the data it resamples
(multinomial counts for residential, devices for experienced).

Bootstrap summary (as R `segregation` reports it, Elbers 2023):
  se = sd(replicates), CI = percentile interval, bias = mean(replicates) − estimate,
  debiased estimate = estimate − bias = 2·estimate − mean(replicates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
