"""Daily life: where each device is, when — the true stays.

Schedules are built in local wall-clock time (see `clock.py`) and vectorised over all
devices of a chunk; the only Python loops run over days and over the (at most four)
activity slots of a day.

- Nights at home. On workdays (Monday–Friday, not a Swedish public holiday) employed
  devices commute to their work place (start ≈ 08:00 ± 0.7 h, ≈ 8.3 h), absent 7 % of days;
  afterwards 0–3 evening activities. Days off: leave home ≈ 10:30 ± 1.3 h for 0–4
  activities. Any activity may instead be a break at home (20 %).
- Where to go: exploration and preferential return (EPR; Song et al. 2010, Nature Physics
  6:818; as used by Moro et al. 2021, Nature Communications 12:4633). A device that has
  visited S distinct places explores a new one with probability ρ S^(−γ) (ρ = 0.6,
  γ = 0.21), else returns to a visited place with probability ∝ its past visits.
  Exploring: a jump of length Δr ~ (Δr + r₀)^(−1−β) (β = 0.8, r₀ = max(250 m, 0.1 R),
  truncated at 1.5 R) from the current place, then one of the 12 POIs nearest the landing
  point, weighted by attractiveness × (K φ_g)^h — φ the POI's group flavour, g the device's
  group, h the homophily (h = 0: groups choose alike).
- Work places are chosen once, the same way, from a commute distance (lognormal, median
  0.4 R) and the POIs' jobs.
- Travel: straight lines at 1.3 m/s (walking, under 1.2 km) or 7 m/s plus 5 min.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from segtool.synth.city import Pois
from segtool.synth.clock import Clock
from segtool.synth.population import K

RHO, GAMMA = 0.6, 0.21  # Song et al. 2010
BETA = 0.8
SMAX = 64  # distinct non-home places remembered per device
CANDIDATES = 12
SLOTS = 4
HOME, WORK, OTHER = 0, 1, 2
KINDS = ("home", "work", "other")
HOUR = 3600.0


@dataclass
class Places:
    """POIs as destinations: coordinates, weights, group flavours, nearest-neighbour trees."""

    x: np.ndarray
    y: np.ndarray
    attractiveness: np.ndarray
    jobs: np.ndarray
    flavour: np.ndarray  # (P, K), rows sum to 1
    radius: float

    def __post_init__(self) -> None:
        self.leisure = np.flatnonzero(self.attractiveness > 0)
        self.work = np.flatnonzero(self.jobs > 0)
        xy = np.column_stack([self.x, self.y])
        self.leisure_tree = cKDTree(xy[self.leisure])
        self.work_tree = cKDTree(xy[self.work])

    def choose(
        self,
        kind: str,
        tx: np.ndarray,
        ty: np.ndarray,
        group: np.ndarray,
        homophily: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """A POI near each target point, weighted by attractiveness (or jobs) × (K φ_g)^h."""
        idx, tree, weight = (
            (self.leisure, self.leisure_tree, self.attractiveness)
            if kind == "leisure"
            else (self.work, self.work_tree, self.jobs)
        )
        k = min(CANDIDATES, len(idx))
        _, nb = tree.query(np.column_stack([tx, ty]), k=k, workers=-1)
        cand = idx[np.asarray(nb).reshape(len(tx), k)]
        w = weight[cand] * (K * self.flavour[cand, group[:, None]]) ** homophily
        cum = np.cumsum(w, axis=1)
        r = rng.random(len(tx)) * cum[:, -1]
        j = np.minimum((cum < r[:, None]).sum(1), k - 1)
        return cand[np.arange(len(tx)), j]


def place_flavours(pois: Pois, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Group flavour of each POI: half the residential mix of its area, half a random taste
    (Dirichlet(0.7)), so places differ in clientele even in an unsegregated city."""
    local = counts[pois.area] / counts[pois.area].sum(1, keepdims=True)
    taste = rng.dirichlet(np.full(K, 0.7), size=len(pois.x))
    return 0.5 * local + 0.5 * taste


def jump(ox: np.ndarray, oy: np.ndarray, r0: float, rmax: float, rng: np.random.Generator):
    """Targets at a truncated power-law distance and uniform direction from (ox, oy)."""
    top = 1 - (1 + rmax / r0) ** (-BETA)
    u = rng.random(len(ox)) * top
    dr = r0 * ((1 - u) ** (-1 / BETA) - 1)
    th = rng.uniform(0, 2 * np.pi, len(ox))
    return ox + dr * np.cos(th), oy + dr * np.sin(th)


def choose_work(
    home_x: np.ndarray,
    home_y: np.ndarray,
    group: np.ndarray,
    places: Places,
    homophily: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Work POI of each device (commute ~ lognormal, median 0.4 R, at most 1.6 R)."""
    dist = np.clip(
        0.4 * places.radius * rng.lognormal(0, 0.6, len(home_x)), 200, 1.6 * places.radius
    )
    th = rng.uniform(0, 2 * np.pi, len(home_x))
    return places.choose(
        "work", home_x + dist * np.cos(th), home_y + dist * np.sin(th), group, homophily, rng
    )


class EPR:
    """Exploration and preferential return state of n devices (vectorised)."""

    def __init__(self, n: int):
        self.visited = np.full((n, SMAX), -1, dtype=np.int64)
        self.count = np.zeros((n, SMAX))
        self.distinct = np.zeros(n, dtype=np.int64)

    def step(
        self,
        active: np.ndarray,
        ox: np.ndarray,
        oy: np.ndarray,
        group: np.ndarray,
        places: Places,
        homophily: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        n = len(active)
        u_new, u_ret = rng.random(n), rng.random(n)
        p_new = RHO * np.maximum(self.distinct, 1) ** (-GAMMA)
        explore = active & ((self.distinct == 0) | ((u_new < p_new) & (self.distinct < SMAX)))
        ret = active & ~explore
        place = np.full(n, -1, dtype=np.int64)
        ri = np.flatnonzero(ret)
        if ri.size:
            cum = np.cumsum(self.count[ri], axis=1)
            j = np.minimum((cum < (u_ret[ri] * cum[:, -1])[:, None]).sum(1), SMAX - 1)
            place[ri] = self.visited[ri, j]
            self.count[ri, j] += 1
        ei = np.flatnonzero(explore)
        if ei.size:
            r0 = max(250.0, 0.1 * places.radius)
            tx, ty = jump(ox[ei], oy[ei], r0, 1.5 * places.radius, rng)
            chosen = places.choose("leisure", tx, ty, group[ei], homophily, rng)
            place[ei] = chosen
            hit = self.visited[ei] == chosen[:, None]
            known = hit.any(1)
            j = np.where(known, hit.argmax(1), np.minimum(self.distinct[ei], SMAX - 1))
            self.visited[ei, j] = chosen
            self.count[ei, j] += 1
            self.distinct[ei] += ~known
        return place


def travel_time(ax, ay, bx, by) -> np.ndarray:
    d = np.hypot(bx - ax, by - ay)
    return np.where(d < 1.0, 0.0, np.where(d < 1200, d / 1.3, d / 7.0 + 300.0))


@dataclass
class Chunk:
    """The devices simulated together (all arrays of length n)."""

    first: int  # global index of the first device
    group: np.ndarray
    employed: np.ndarray
    home_x: np.ndarray
    home_y: np.ndarray
    work: np.ndarray  # POI index, -1 if none


def simulate(
    chunk: Chunk, places: Places, clock: Clock, homophily: float, rng: np.random.Generator
) -> pl.DataFrame:
    """True stays of a chunk: dev (local index), start, end (UTC epoch s), place, kind.

    `place` < P is a POI index; P + global device index is that device's home. Stays
    are contiguous in time except for travel, sorted by device and start, cover the whole
    period [clock.t0, clock.t1), and consecutive stays are at different places.
    """
    n = len(chunk.group)
    n_poi = len(places.x)
    home = n_poi + chunk.first + np.arange(n)
    employed = chunk.employed & (chunk.work >= 0)
    wx = np.where(employed, places.x[np.maximum(chunk.work, 0)], chunk.home_x)
    wy = np.where(employed, places.y[np.maximum(chunk.work, 0)], chunk.home_y)
    work_start = np.clip(rng.normal(8.0, 0.7, n), 6.0, 11.0) * HOUR
    work_len = np.clip(rng.normal(8.3, 0.8, n), 4.0, 10.0) * HOUR
    commute = travel_time(chunk.home_x, chunk.home_y, wx, wy)
    epr = EPR(n)
    dev = np.arange(n)
    parts: list[tuple] = []
    arrived = np.full(n, float(clock.t0))
    for d in range(clock.days):
        day_end = clock.midnight[d + 1]
        works = employed & bool(clock.workday[d]) & (rng.random(n) > 0.07)
        dep = np.where(
            works,
            work_start + rng.normal(0, 0.25, n) * HOUR - commute,
            np.clip(rng.normal(10.5, 1.3, n), 7.0, 15.0) * HOUR,
        )
        dep = np.maximum(dep, arrived - clock.midnight[d] + HOUR)
        ws = dep + commute
        we = ws + work_len + rng.normal(0, 0.3, n) * HOUR
        n_act = np.where(
            works,
            rng.choice(4, size=n, p=[0.40, 0.35, 0.18, 0.07]),
            rng.choice(5, size=n, p=[0.12, 0.28, 0.30, 0.18, 0.12]),
        )
        leaves = works | (n_act > 0)
        dep_utc = np.where(leaves, clock.to_utc(d, dep), day_end)
        parts.append((dev, arrived, dep_utc, home, np.full(n, HOME)))
        wi = np.flatnonzero(works)
        parts.append(
            (
                wi,
                clock.to_utc(d, ws[wi]),
                clock.to_utc(d, we[wi]),
                chunk.work[wi],
                np.full(wi.size, WORK),
            )
        )
        t = np.where(works, we, dep)
        cx, cy = np.where(works, wx, chunk.home_x), np.where(works, wy, chunk.home_y)
        at_home = ~works
        median = np.where(works, 60.0, 80.0) * 60
        for m in range(SLOTS):
            active = (m < n_act) & (t < 22.5 * HOUR)
            brk = active & ~at_home & (rng.random(n) < 0.2)
            explorer = active & ~brk
            place = epr.step(explorer, cx, cy, chunk.group, places, homophily, rng)
            place = np.where(brk, home, place)
            px = np.where(brk, chunk.home_x, places.x[np.clip(place, 0, n_poi - 1)])
            py = np.where(brk, chunk.home_y, places.y[np.clip(place, 0, n_poi - 1)])
            start = t + travel_time(cx, cy, px, py)
            dur = np.where(
                brk, 90 * 60 * rng.lognormal(0, 0.4, n), median * rng.lognormal(0, 0.6, n)
            )
            end = start + np.clip(dur, 20 * 60, 5 * HOUR)
            ai = np.flatnonzero(active)
            kind = np.where(brk[ai], HOME, OTHER)
            parts.append(
                (ai, clock.to_utc(d, start[ai]), clock.to_utc(d, end[ai]), place[ai], kind)
            )
            t = np.where(active, end, t)
            cx, cy = np.where(active, px, cx), np.where(active, py, cy)
            at_home = np.where(active, brk, at_home)
        back = np.where(at_home, t, t + travel_time(cx, cy, chunk.home_x, chunk.home_y))
        arrived = np.where(leaves, clock.to_utc(d, back), day_end)
    parts.append((dev, arrived, np.full(n, float(clock.t1)), home, np.full(n, HOME)))
    return _merge(parts, clock)


def _merge(parts: list[tuple], clock: Clock) -> pl.DataFrame:
    cols = list(zip(*parts, strict=True))
    frame = pl.DataFrame(
        {
            "dev": np.concatenate(cols[0]).astype(np.int64),
            "start": np.minimum(np.concatenate(cols[1]), clock.t1),
            "end": np.minimum(np.concatenate(cols[2]), clock.t1),
            "place": np.concatenate(cols[3]).astype(np.int64),
            "kind": np.concatenate(cols[4]).astype(np.int8),
        }
    ).with_row_index("seq")
    return (
        frame.filter(pl.col("end") > pl.col("start"))
        .sort("dev", "start", "seq")
        .with_columns(pl.struct("dev", "place").rle_id().alias("run"))
        .group_by("run", maintain_order=True)
        .agg(
            pl.col("dev").first(),
            pl.col("start").min(),
            pl.col("end").max(),
            pl.col("place").first(),
            pl.col("kind").first(),
        )
        .drop("run")
    )
