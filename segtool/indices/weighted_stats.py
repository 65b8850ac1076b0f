"""Weighted statistics under bootstrap multiplicities, batched over replicates.

A replicate is a row of multiplicities m (how often each of n places was drawn; see
`place_multiplicities`). Every statistic here takes a block of replicates (R, n) at once
with matrix products — no loop over replicates or places: weighted means by code,
mid-ranks and Spearman's ρ (the Pearson correlation of mid-ranks; Spearman 1904), and
least squares through the normal equations (XᵀMX) β = XᵀMy with R². Used by
`segtool.indices.landuse` (Efron & Tibshirani 1993 for the percentile bootstrap).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def weighted_means_by(values, weights, codes, n_codes, mult):
    """Σ m w v / Σ m w per code and overall, for multiplicities `mult` (R, n):
    returns (R, n_codes) and (R,). Matrix products with an (n, codes) indicator."""
    onehot = np.zeros((codes.size, n_codes))
    onehot[np.arange(codes.size), codes] = 1.0
    wv = weights * values
    num, den = mult @ (onehot * wv[:, None]), mult @ (onehot * weights[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den, (mult @ wv) / (mult @ weights)


class Ranker:
    """Mid-ranks of one variable under bootstrap multiplicities; the distinct values are
    found once (sorting), each block then costs one sparse product and a cumulative sum."""

    def __init__(self, x: np.ndarray):
        uniq, self.inv = np.unique(np.asarray(x, dtype=float), return_inverse=True)
        self.indicator = sp.csc_matrix(
            (np.ones(self.inv.size), (np.arange(self.inv.size), self.inv)),
            shape=(self.inv.size, uniq.size),
        )

    def ranks(self, mult: np.ndarray) -> np.ndarray:
        """Mid-ranks (R, n) in the sample that repeats place j `mult[r, j]` times: rank of
        value v = (weight of values < v) + (weight of v + 1)/2, the average rank that ties
        get (as scipy.stats.rankdata)."""
        per_value = np.asarray((self.indicator.T @ mult.T).T)  # (R, U) weight of each value
        below = np.cumsum(per_value, axis=1) - per_value
        return (below + (per_value + 1.0) / 2.0)[:, self.inv]


def midranks(x: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """Mid-ranks of `x` for each row of multiplicities (see `Ranker.ranks`)."""
    return Ranker(x).ranks(mult)


def rank_moments(r: np.ndarray, mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """N = Σ m and the centred sum of squares Σ m (r − (N+1)/2)² of mid-ranks: their
    weighted mean is always (N+1)/2 (ranks 1…N, ties averaged)."""
    n = mult.sum(1)
    c = (n + 1.0) / 2.0
    return n, np.einsum("rn,rn,rn->r", mult, r, r) - n * c * c


def spearman_from_ranks(rx, ry, ssy, mult) -> np.ndarray:
    """Weighted Pearson correlation of mid-ranks rx, ry (R, n), given ry's moments."""
    n, ssx = rank_moments(rx, mult)
    c = (n + 1.0) / 2.0
    cov = np.einsum("rn,rn,rn->r", mult, rx, ry) - n * c * c
    # A constant variable has (up to rounding) no rank variance: ρ is undefined.
    tiny = 1e-10 * n * c * c
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = cov / np.sqrt(ssx * ssy)
    return np.where((ssx <= tiny) | (ssy <= tiny), np.nan, rho)


def spearman_replicates(x: np.ndarray, y: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """Spearman's ρ of (x, y) for each row of multiplicities (R, n): the weighted Pearson
    correlation of weighted mid-ranks, equal to scipy.stats.spearmanr on the expanded
    sample. NaN where either variable is constant in a replicate."""
    ry = Ranker(y).ranks(mult)
    return spearman_from_ranks(Ranker(x).ranks(mult), ry, rank_moments(ry, mult)[1], mult)


def ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients (scipy.linalg.lstsq) and R²; NaN when X is rank-deficient."""
    from scipy.linalg import lstsq

    beta, _, rank, _ = lstsq(X, y)
    if rank < X.shape[1]:
        return np.full(X.shape[1], np.nan), float("nan")
    resid = y - X @ beta
    tss = float(((y - y.mean()) ** 2).sum())
    return beta, (1.0 - float(resid @ resid) / tss) if tss > 0 else float("nan")


class Normal:
    """What batched least squares needs from X and y once: the products x_p x_q, x_p y
    and y² per place, so that every block of replicates is three matrix products."""

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.p = X.shape[1]
        self.xx = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)  # (n, p²)
        self.xy = X * y[:, None]
        self.y, self.yy = y, y * y

    def solve(self, mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, p = mult.shape[0], self.p
        xtx = (mult @ self.xx).reshape(r, p, p)
        xty = mult @ self.xy
        # Singular when a column is (near) constant zero or collinear in a replicate.
        cond = np.linalg.cond(xtx)
        ok = np.isfinite(cond) & (cond < 1e12)
        beta = np.full((r, p), np.nan)
        if ok.any():
            beta[ok] = np.linalg.solve(xtx[ok], xty[ok][..., None])[..., 0]
        n, sy, syy = mult.sum(1), mult @ self.y, mult @ self.yy
        # RSS = yᵀMy − 2βᵀXᵀMy + βᵀXᵀMXβ, TSS = yᵀMy − (Σ m y)²/N: no (R, n) pass.
        rss = syy - 2 * np.einsum("rp,rp->r", beta, xty)
        rss += np.einsum("rp,rpq,rq->r", beta, xtx, beta)
        tss = syy - sy * sy / n
        with np.errstate(invalid="ignore", divide="ignore"):
            return beta, np.where(tss > 0, 1.0 - rss / tss, np.nan)


def ols_replicates(X: np.ndarray, y: np.ndarray, mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares for each row of multiplicities (R, n) at once: batched normal
    equations (XᵀMX) β = XᵀMy. Returns β (R, p) and R² (R,); NaN where a replicate's
    design is singular (e.g. a category drawn in no place)."""
    return Normal(X, y).solve(mult)


def place_multiplicities(n: int, replicates: int, seed: int, *, max_cells: int = 2_000_000):
    """Yield bootstrap multiplicities (m, n) of n places, m replicates per block: each
    replicate draws n places with replacement. The draws depend only on the seed and n."""
    rng = np.random.default_rng(seed)
    chunk = max(1, max_cells // max(1, n))
    done = 0
    while done < replicates:
        m = min(chunk, replicates - done)
        idx = rng.integers(0, n, size=(m, n)) + (np.arange(m) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=m * n).reshape(m, n).astype(float)
        done += m
