"""Newman's assortativity of a weighted directed network on a unit attribute, and its
permutation null (the attribute shuffled over the units).

With e_AB = W_AB / Σ W the share of the network's weight on edge A → B, a_A = Σ_B e_AB
(out) and b_B = Σ_A e_AB (in) (Newman 2003, Phys. Rev. E 67, 026126):

- numeric (eq. 21): r = (Σ_AB e_AB x_A x_B − μ_a μ_b) / (σ_a σ_b), μ_a = Σ a_A x_A,
  σ_a² = Σ a_A x_A² − μ_a² (likewise b) — the weighted Pearson correlation of the
  attribute at the two ends of an edge;
- categorical (eq. 2): with the category mixing matrix E_qr = Σ_{A∈q, B∈r} e_AB and its
  margins α_q, β_r, r = (Σ_q E_qq − Σ_q α_q β_q) / (1 − Σ_q α_q β_q).

networkx's `numeric_assortativity_coefficient` / `attribute_assortativity_coefficient`
compute the same on a multigraph whose edge multiplicities are the weights (the tests
check this). The null permutes the attribute (and with it the category) over the units;
all replicates of the numeric index are one sparse × dense product W X (n × R).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def numeric_assortativity(W: sp.spmatrix, x: np.ndarray) -> np.ndarray | float:
    """r for attribute values x (n,) — or (n, R) columns, one r per column."""
    W = sp.csr_matrix(W)
    total = W.sum()
    a = np.asarray(W.sum(axis=1)).ravel() / total
    b = np.asarray(W.sum(axis=0)).ravel() / total
    X = x[:, None] if x.ndim == 1 else x
    mu_a, mu_b = a @ X, b @ X
    var_a = a @ X**2 - mu_a**2
    var_b = b @ X**2 - mu_b**2
    cross = np.einsum("ir,ir->r", X, np.asarray(W @ X)) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (cross - mu_a * mu_b) / np.sqrt(var_a * var_b)
    return float(r[0]) if x.ndim == 1 else r


def category_mixing(W: sp.spmatrix, q: np.ndarray, k: int) -> np.ndarray:
    """E (k × k): Σ of W over edges from category q_A to category q_B (not normalised)."""
    W = sp.coo_matrix(W)
    E = np.zeros((k, k))
    np.add.at(E, (q[W.row], q[W.col]), W.data)
    return E


def categorical_assortativity(E: np.ndarray) -> float:
    """r from a category mixing matrix (any scale)."""
    e = E / E.sum()
    ab = float(e.sum(axis=1) @ e.sum(axis=0))
    return float((np.trace(e) - ab) / (1 - ab)) if ab < 1 else float("nan")


def same_category_share(E: np.ndarray) -> tuple[float, float]:
    """Observed share of weight within a category, and its expectation Σ α_q β_q."""
    e = E / E.sum()
    return float(np.trace(e)), float(e.sum(axis=1) @ e.sum(axis=0))


def permutations(n: int, replicates: int, seed: int) -> np.ndarray:
    """(R, n) independent permutations of range(n)."""
    rng = np.random.default_rng(seed)
    return rng.permuted(np.tile(np.arange(n), (replicates, 1)), axis=1)


def null_numeric(W: sp.spmatrix, x: np.ndarray, perms: np.ndarray, block: int = 256) -> np.ndarray:
    """Numeric r under each permutation of x over the units (rows of `perms`)."""
    out = [numeric_assortativity(W, x[perms[i : i + block]].T) for i in range(0, len(perms), block)]
    return np.concatenate(out) if out else np.zeros(0)


def null_categorical(W: sp.spmatrix, q: np.ndarray, k: int, perms: np.ndarray):
    """Categorical r and same-category share under each permutation (two (R,) arrays).

    One pass over the edges per replicate: E_qr = Σ_edges [q_A = q][q_B = r] W_AB is a
    bincount of the k² category pairs."""
    W = sp.coo_matrix(W)
    r = np.empty(len(perms))
    s = np.empty(len(perms))
    for i, p in enumerate(perms):  # a loop over replicates, each vectorised over edges
        qp = q[p]
        E = np.bincount(qp[W.row] * k + qp[W.col], weights=W.data, minlength=k * k)
        E = E.reshape(k, k)
        r[i] = categorical_assortativity(E)
        s[i] = same_category_share(E)[0]
    return r, s
