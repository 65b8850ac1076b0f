"""Test tables shared by the residential tests."""

from __future__ import annotations

import numpy as np
import polars as pl


def to_long(counts: np.ndarray, strata: np.ndarray | None = None) -> pl.DataFrame:
    """A units × groups count matrix as the long (unit, group, n) frame, units u000…,
    groups g0…; with `strata`, each unit's stratum as `district` ("s" + its label)."""
    n, k = counts.shape
    data = {
        "unit": np.repeat([f"u{i:03d}" for i in range(n)], k),
        "group": np.tile([f"g{j}" for j in range(k)], n),
        "n": counts.ravel().astype(float),
    }
    if strata is not None:
        data["district"] = np.repeat([f"s{s}" for s in strata], k)
    return pl.DataFrame(data)
