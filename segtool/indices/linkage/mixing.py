"""The income-quartile mixing matrix: how a network's linkage between distinct units
(A ≠ B) splits over the quartiles of the units' attribute.

    M_qr = Σ_{A ∈ q, B ∈ r, A ≠ B} W_AB,   share_qr = M_qr / M_q·,
    expected_qr = M_·r / M_··  (the destination's margin: independence),   ratio = share / expected.

The diagonal's total share Σ_q M_qq / M_·· against Σ_q (M_q·/M_··)(M_·q/M_··) is the
"same quartile" share of `assortativity.same_category_share`; its excess, scaled by
1 − expected, is the categorical assortativity (an identity the tests check).
"""

from __future__ import annotations

import numpy as np
import polars as pl

LABELS = ("Q1", "Q2", "Q3", "Q4")


def quartile_mixing(E: np.ndarray, network: str) -> pl.DataFrame:
    """Tidy rows of a 4 × 4 mixing matrix E (origin quartile × destination quartile)."""
    k = E.shape[0]
    total = E.sum()
    row = E.sum(axis=1, keepdims=True)
    col = E.sum(axis=0, keepdims=True) / total if total > 0 else np.zeros((1, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(row > 0, E / np.where(row > 0, row, 1.0), np.nan)
        ratio = share / col
    q, r = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    return pl.DataFrame(
        {
            "network": [network] * (k * k),
            "origin_quartile": [LABELS[i] for i in q.ravel()],
            "destination_quartile": [LABELS[j] for j in r.ravel()],
            "observed": E.ravel(),
            "share": share.ravel(),
            "expected": np.broadcast_to(col, (k, k)).ravel(),
            "ratio": ratio.ravel(),
        }
    ).with_columns(pl.col("share", "ratio").fill_nan(None))
