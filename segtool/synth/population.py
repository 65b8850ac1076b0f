"""Who lives where: residents by income quartile per area, with planted segregation, and
the panel of devices sampled from them.

Income varies smoothly over space — a city-wide gradient, a few broad hills and valleys,
a district effect and a little area noise — so there are richer and poorer districts,
not a checkerboard. Each area gets its population-weighted income rank u ∈ (0, 1); the
share of quartile g (centre c_g = (g + ½)/4) in an area is

    π_ag ∝ exp(−(c_g − u_a)² / (2 w²)),   w = 0.22 ((1 − s) / s)^0.55   for segregation s,

raked (iterative proportional fitting) so that each quartile holds a quarter of the city's
residents. s = 0 gives every area the city's mix (w = ∞); s = 1 gives each area only the
quartile its rank falls in (w = 0). Counts are the expected counts rounded per area by
largest remainders, so the planted D and M are exact, without sampling noise. The widths are chosen so that
multigroup D is close to s (D ≈ 0.08, 0.23, 0.49, 0.75, 1 at s = 0.1, 0.25, 0.5, 0.75, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segtool.synth.city import CENTRE, Areas
from segtool.synth.params import GROUPS

K = len(GROUPS)
CENTRES = (np.arange(K) + 0.5) / K
EMPLOYMENT = np.array([0.70, 0.80, 0.85, 0.88])  # share with a work place, by quartile


def income_field(areas: Areas, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth income score per area (mean 0, arbitrary scale)."""
    x = (areas.x - CENTRE[0]) / radius
    y = (areas.y - CENTRE[1]) / radius
    direction = rng.uniform(0, 2 * np.pi)
    z = 0.8 * (x * np.cos(direction) + y * np.sin(direction))
    n_hills = 5
    hx, hy = rng.uniform(-0.9, 0.9, n_hills), rng.uniform(-0.9, 0.9, n_hills)
    amp = rng.normal(0, 1, n_hills)
    width = rng.uniform(0.2, 0.45, n_hills)
    z = z + (amp * np.exp(-((x[:, None] - hx) ** 2 + (y[:, None] - hy) ** 2) / (2 * width**2))).sum(
        1
    )
    _, district = np.unique(areas.district, return_inverse=True)
    z = z + rng.normal(0, 0.4, district.max() + 1)[district]
    return z + rng.normal(0, 0.25, len(z))


def weighted_rank(z: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Population-weighted mid-rank of each area in (0, 1)."""
    order = np.argsort(z, kind="stable")
    w = weight[order] / weight.sum()
    mid = np.cumsum(w) - w / 2
    u = np.empty_like(mid)
    u[order] = mid
    return u


def group_shares(u: np.ndarray, segregation: float) -> np.ndarray:
    """Quartile shares per area (rows sum to 1) before raking."""
    n = len(u)
    if segregation <= 0:
        return np.full((n, K), 1.0 / K)
    if segregation >= 1:
        q = np.minimum((u * K).astype(np.int64), K - 1)
        return np.eye(K)[q]
    w = 0.22 * ((1 - segregation) / segregation) ** 0.55
    logit = -((CENTRES[None, :] - u[:, None]) ** 2) / (2 * w**2)
    e = np.exp(logit - logit.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def rake(shares: np.ndarray, residents: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Expected counts with row sums = residents and equal column sums (IPF)."""
    e = shares * residents[:, None]
    target = residents.sum() / K
    for _ in range(iterations):
        col = e.sum(0)
        if np.all(np.abs(col - target) < 1e-9 * target):
            break
        e = e * np.where(col > 0, target / np.where(col > 0, col, 1), 1.0)[None, :]
        row = e.sum(1)
        e = e * (residents / np.where(row > 0, row, 1))[:, None]
    return e


def round_counts(expected: np.ndarray, residents: np.ndarray) -> np.ndarray:
    """Integer counts per row summing to `residents` (largest remainders, stable ties)."""
    base = np.floor(expected).astype(np.int64)
    short = residents - base.sum(1)
    frac = expected - base
    order = np.argsort(-frac, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(K)[None, :].repeat(len(base), 0), axis=1)
    return base + (rank < short[:, None]).astype(np.int64)


def population_counts(u: np.ndarray, residents: np.ndarray, segregation: float) -> np.ndarray:
    """Residents by quartile per area, shape (areas, K)."""
    return round_counts(rake(group_shares(u, segregation), residents), residents)


def dissimilarity(counts: np.ndarray) -> float:
    """Multigroup D = Σ_u Σ_g t_u |π_ug − π_g| / (2 T I), I = Σ_g π_g (1 − π_g)."""
    t = counts.sum(1)
    total = t.sum()
    pg = counts.sum(0) / total
    pug = counts / np.where(t > 0, t, 1)[:, None]
    interaction = (pg * (1 - pg)).sum()
    return float((t[:, None] * np.abs(pug - pg)).sum() / (2 * total * interaction))


def mutual_information(counts: np.ndarray) -> float:
    """M = Σ_u (t_u/T) Σ_g π_ug ln(π_ug/π_g) (nats)."""
    t = counts.sum(1)
    total = t.sum()
    pg = counts.sum(0) / total
    pug = counts / np.where(t > 0, t, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(pug > 0, pug * np.log(pug / pg[None, :]), 0.0)
    return float(((t / total) * term.sum(1)).sum())


def area_group(counts: np.ndarray) -> np.ndarray:
    """The quartile of each area's median resident (index 0 … K-1)."""
    cum = np.cumsum(counts, axis=1)
    return (cum < counts.sum(1, keepdims=True) / 2).sum(1)


@dataclass
class Devices:
    """The panel: one row per device, in device order."""

    device_id: np.ndarray  # str, UUID-like advertising ids
    area: np.ndarray  # home area index
    group: np.ndarray  # quartile index 0 … K-1
    employed: np.ndarray  # bool
    home_x: np.ndarray
    home_y: np.ndarray


def device_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Lower-case UUID-4-like strings, vectorised (no loop over devices)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2] = hexdigits[raw >> 4]
    chars[:, 1::2] = hexdigits[raw & 0x0F]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    s = np.hstack(
        [
            chars[:, :8],
            dash,
            chars[:, 8:12],
            dash,
            chars[:, 12:16],
            dash,
            chars[:, 16:20],
            dash,
            chars[:, 20:],
        ]
    )
    return np.ascontiguousarray(s).view("S36").ravel().astype(str).astype(object)


def sample_devices(
    n: int, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(area, group, employed) of n devices drawn from the residents, with a panel
    penetration that varies by area (lognormal, σ = 0.3) as real panels do."""
    residents = counts.sum(1)
    p = residents * rng.lognormal(0.0, 0.3, len(residents))
    area = rng.choice(len(residents), size=n, p=p / p.sum())
    cum = np.cumsum(counts[area], axis=1) / residents[area][:, None]
    group = (cum < rng.random(n)[:, None]).sum(1)
    group = np.minimum(group, K - 1)
    employed = rng.random(n) < EMPLOYMENT[group]
    return area, group, employed
