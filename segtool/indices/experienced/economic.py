"""Economic exposure segregation ES (Nilforoshan et al. 2023, Nature), from per-device sums
of the SES of the others each device is co-present with (same cell, same time bin).

Each (shared bin, other device) is one observation y_ij of person i (the SES of j);
x_i is i's own SES. Devices with no co-present other (with SES) are left out.

- Simple ES: the Pearson correlation between x_i and ȳ_i, the mean SES of i's
  co-present others (their "simple means" estimate).
- Variance-component ES: the random-intercept model y_ij = β0 + a·x_i + u_i + e_ij
  fitted by REML (as their `lmer(other_person_ses ~ ses + (1|person))`), and
  ES = a·σ_x / sqrt(a²σ_x² + σ_u²) — the correlation between x and the person's latent
  mean exposure; with x z-scored (σ_x = 1) this is their sqrt(a²/(a² + σ_u²)), but kept
  signed. The fit needs only each person's n_i, ȳ_i and within sum of squares, so it is
  linear in visits.

Differences from their code: co-presence is per shared time bin and cell (one
observation per shared bin), not per distinct pair within 50 m; no downsampling to 10 000
people. Frequency weights (bootstrap multiplicities) weight each person's terms.
"""

from __future__ import annotations

import numpy as np


def _wcorr(x: np.ndarray, y: np.ndarray, f: np.ndarray) -> float:
    sw = f.sum()
    if sw <= 0:
        return float("nan")
    mx, my = (f * x).sum() / sw, (f * y).sum() / sw
    dx, dy = x - mx, y - my
    sxx, syy, sxy = (f * dx * dx).sum(), (f * dy * dy).sum(), (f * dx * dy).sum()
    if sxx <= 0 or syy <= 0:
        return float("nan")
    return float(sxy / np.sqrt(sxx * syy))


def _by_count(n: np.ndarray, f: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weighted sums per distinct n (the only per-person quantity the likelihood's shape
    depends on): rows n, Σf, Σfx, Σfx², Σfy, Σfxy, Σfy² — (7, distinct n). Persons share
    few distinct n (counts of observations), so each likelihood evaluation is cheap."""
    cols = (f, f * x, f * x * x, f * y, f * x * y, f * y * y)
    top = float(n.max()) if n.size else 0.0
    if np.all(n == np.floor(n)) and top <= 4 * n.size + 1024:
        idx = n.astype(np.int64)
        used = np.flatnonzero(np.bincount(idx, minlength=int(top) + 1))
        sums = [np.bincount(idx, weights=c, minlength=int(top) + 1)[used] for c in cols]
        return np.vstack([used.astype(np.float64), *sums])
    values, inv = np.unique(n, return_inverse=True)
    return np.vstack([values, *(np.bincount(inv, weights=c, minlength=values.size) for c in cols)])


def reml_random_intercept(
    x: np.ndarray,
    n: np.ndarray,
    ybar: np.ndarray,
    within: np.ndarray | float,
    f: np.ndarray | None = None,
) -> dict:
    """REML fit of y_ij = β0 + β1 x_i + u_i + e_ij from per-person sufficient statistics
    (n_i observations, mean ȳ_i, within sum of squares Σ_j (y_ij − ȳ_i)² — per person, or
    already summed over persons with the weights), with optional frequency weights f_i.
    Returns beta0, beta1, var_u, var_e.

    With γ = σ_u²/σ_e², person i's mean has weight ω_i = f_i n_i / (1 + n_i γ); the
    profiled REML criterion (N − p) log(Q/(N − p)) + Σ f_i log(1 + n_i γ) + log det X'ΩX,
    Q = within + Σ ω_i (ȳ_i − β0 − β1 x_i)², is minimised over log γ. Persons are grouped
    by n_i (x and ȳ centred first), so an evaluation costs O(distinct n), not O(persons)."""
    from scipy import optimize

    f = np.ones_like(x) if f is None else f
    keep = (n > 0) & (f > 0)
    if np.ndim(within) == 0:
        sw_within = float(within)
    else:
        sw_within = float((f[keep] * np.asarray(within)[keep]).sum())
    x, n, ybar, f = x[keep], n[keep], ybar[keep], f[keep]
    n_obs = float((f * n).sum())
    p = 2
    if keep.sum() < 3 or n_obs <= p + 1:
        nan = float("nan")
        return {"beta0": nan, "beta1": nan, "var_u": nan, "var_e": nan}
    fw = f * n
    mx, my = float((fw * x).sum() / fw.sum()), float((fw * ybar).sum() / fw.sum())
    ns, sf, sx, sxx, sy, sxy, syy = _by_count(n, f, x - mx, ybar - my)

    def fit(gamma: float):
        om = ns / (1.0 + ns * gamma)
        # plain sums, not BLAS dot products: threaded BLAS stalls on a busy machine
        s0, s1, s2 = (om * sf).sum(), (om * sx).sum(), (om * sxx).sum()
        t0, t1 = (om * sy).sum(), (om * sxy).sum()
        det = s0 * s2 - s1 * s1
        if det <= 0:
            return None
        b1 = (s0 * t1 - s1 * t0) / det
        b0 = (t0 - b1 * s1) / s0
        res2 = syy - 2 * b0 * sy - 2 * b1 * sxy + b0 * b0 * sf + 2 * b0 * b1 * sx + b1 * b1 * sxx
        q = sw_within + float((om * res2).sum())
        obj = (
            (n_obs - p) * np.log(max(q, 1e-300) / (n_obs - p))
            + float((sf * np.log1p(ns * gamma)).sum())
            + np.log(det)
        )
        return obj, b0 + my - b1 * mx, b1, q

    def objective(t: float) -> float:
        r = fit(float(np.exp(t)))
        return np.inf if r is None else r[0]

    best = optimize.minimize_scalar(
        objective, bounds=(-25.0, 12.0), method="bounded", options={"xatol": 1e-10, "maxiter": 500}
    )
    gamma = float(np.exp(best.x))
    r0, rb = fit(0.0), fit(gamma)
    if rb is None or (r0 is not None and r0[0] <= rb[0]):
        gamma, rb = 0.0, r0
    if rb is None:
        nan = float("nan")
        return {"beta0": nan, "beta1": nan, "var_u": nan, "var_e": nan}
    _, b0, b1, q = rb
    var_e = q / (n_obs - p)
    return {"beta0": b0, "beta1": b1, "var_u": gamma * var_e, "var_e": var_e}


def economic_segregation(
    x: np.ndarray,
    n: np.ndarray,
    sy: np.ndarray,
    syy: np.ndarray | float,
    f: np.ndarray | None = None,
) -> dict:
    """Both ES estimates from own SES x_i and the per-device sums of others' SES
    (count n_i, sum sy_i, and sum of squares syy_i — per device, or as the total
    Σ_i f_i syy_i over devices with an SES, which is all the model needs). Returns
    correlation, variance_component, the fitted model and the number of devices."""
    f = np.ones_like(x) if f is None else f
    keep = (n > 0) & ~np.isnan(x) & (f > 0)
    xk, nk, fk = x[keep], n[keep], f[keep]
    ybar = sy[keep] / nk
    # Σ f (syy − n ȳ²): the within sum of squares, pooled over persons
    fsyy = float(syy) if np.ndim(syy) == 0 else float((fk * syy[keep]).sum())
    within = max(fsyy - float((fk * nk * ybar * ybar).sum()), 0.0)
    corr = _wcorr(xk, ybar, fk) if keep.sum() > 1 else float("nan")
    model = reml_random_intercept(xk, nk, ybar, within, fk)
    sw = fk.sum()
    if keep.sum() > 1 and sw > 1:
        mx = (fk * xk).sum() / sw
        sd_x = float(np.sqrt((fk * (xk - mx) ** 2).sum() / (sw - 1)))
    else:
        sd_x = float("nan")
    a, vu = model["beta1"], model["var_u"]
    denom = np.sqrt(a * a * sd_x * sd_x + vu) if np.isfinite(a) else float("nan")
    vc = float(a * sd_x / denom) if np.isfinite(denom) and denom > 0 else float("nan")
    return {
        "correlation": corr,
        "variance_component": vc,
        "model": model,
        "devices": int(keep.sum()),
    }


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Percentile ranks in (0, 1] with ties averaged; NaN stays NaN."""
    from scipy.stats import rankdata

    out = np.full(values.shape, np.nan)
    ok = ~np.isnan(values)
    if ok.any():
        out[ok] = rankdata(values[ok], method="average") / ok.sum()
    return out
