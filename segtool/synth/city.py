"""The synthetic city's geography, in SWEREF 99 TM (EPSG:3006) metres around Stockholm.

- register areas: Voronoi cells of a jittered lattice, denser towards the centre, sized
  like Swedish DeSO areas (700–2,700 residents each) and grouped into districts;
- land use: smaller Voronoi blocks with a category (residential, commercial, industrial,
  park, education) by distance from the centre and industrial zones, cut by a river and a
  lake (water) and rail corridors (transport); the layer tiles the city without overlaps;
- POIs: points with a category inside the blocks (shops, offices, schools, parks, …) and
  stations along the rail lines, each with an attractiveness and a number of jobs.

Everything is vectorised with shapely 2; the random draws come from the given generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

CRS = "EPSG:3006"
CENTRE = (674_000.0, 6_580_000.0)  # central Stockholm in SWEREF 99 TM
DENSITY_PER_KM2 = 4_000.0  # mean residents per km² of the city
MUNICIPALITY = "0180"  # Stockholm's municipality code (the first 4 characters of a DeSO id)

LANDUSE = ("residential", "commercial", "industrial", "park", "education", "transport", "water")

# POI categories by the land use of the block they lie in (category, probability).
POI_MIX = {
    "commercial": (
        ("shop", 0.24),
        ("restaurant", 0.15),
        ("cafe", 0.12),
        ("supermarket", 0.07),
        ("office", 0.20),
        ("bar", 0.06),
        ("gym", 0.05),
        ("mall", 0.02),
        ("healthcare", 0.05),
        ("culture", 0.04),
    ),
    "residential": (
        ("supermarket", 0.22),
        ("cafe", 0.14),
        ("school", 0.16),
        ("healthcare", 0.10),
        ("restaurant", 0.14),
        ("gym", 0.09),
        ("shop", 0.15),
    ),
    "industrial": (("industry", 0.6), ("warehouse", 0.25), ("shop", 0.15)),
    "education": (("school", 0.6), ("university", 0.2), ("library", 0.2)),
    "park": (("park", 0.8), ("sports", 0.2)),
}
# Mean number of POIs per block, by land use.
POI_RATE = {
    "commercial": 3.5,
    "residential": 0.35,
    "industrial": 1.2,
    "education": 1.0,
    "park": 0.9,
}
# (attractiveness for leisure visits, jobs) per POI category: multipliers of a lognormal draw.
POI_WEIGHTS = {
    "shop": (1.0, 6),
    "restaurant": (1.2, 8),
    "cafe": (1.0, 4),
    "supermarket": (2.0, 12),
    "office": (0.1, 60),
    "bar": (0.8, 4),
    "gym": (1.0, 3),
    "mall": (6.0, 80),
    "healthcare": (0.6, 30),
    "culture": (1.5, 10),
    "school": (0.2, 25),
    "university": (0.8, 80),
    "library": (0.8, 5),
    "industry": (0.0, 50),
    "warehouse": (0.0, 20),
    "park": (2.0, 1),
    "sports": (1.2, 3),
    "station": (0.3, 5),
}


@dataclass
class Areas:
    """Register areas, in id order."""

    deso: np.ndarray  # str ids like 0180C1001
    district: np.ndarray  # str district names
    geometry: np.ndarray  # shapely polygons, EPSG:3006
    x: np.ndarray  # lattice seed point (inside the area)
    y: np.ndarray
    residents: np.ndarray  # int64, 700–2,700


@dataclass
class Pois:
    poi_id: np.ndarray
    category: np.ndarray
    x: np.ndarray
    y: np.ndarray
    attractiveness: np.ndarray
    jobs: np.ndarray
    area: np.ndarray  # index of the area containing the POI


@dataclass
class Triangles:
    """Triangles covering some polygons, grouped by owner, for uniform point sampling."""

    owner: np.ndarray  # owner index of each triangle, non-decreasing
    coords: np.ndarray  # (m, 3, 2)
    cum: np.ndarray  # cumulative area, global
    start: np.ndarray  # per owner: first triangle index (len = owners + 1)

    def sample(self, owners: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One uniform random point inside the polygons of each entry of `owners`."""
        owners = np.asarray(owners, dtype=np.int64)
        lo = np.where(self.start[owners] > 0, self.cum[self.start[owners] - 1], 0.0)
        hi = self.cum[self.start[owners + 1] - 1]
        u = lo + rng.random(len(owners)) * (hi - lo)
        tri = np.searchsorted(self.cum, u, side="right")
        tri = np.clip(tri, self.start[owners], self.start[owners + 1] - 1)
        a, b, c = self.coords[tri, 0], self.coords[tri, 1], self.coords[tri, 2]
        r1 = rng.random(len(owners))
        r2 = rng.random(len(owners))
        flip = r1 + r2 > 1
        r1 = np.where(flip, 1 - r1, r1)
        r2 = np.where(flip, 1 - r2, r2)
        p = a + r1[:, None] * (b - a) + r2[:, None] * (c - a)
        return p[:, 0], p[:, 1]


def triangulate(geoms: np.ndarray, n_owners: int, owners: np.ndarray | None = None) -> Triangles:
    """Constrained Delaunay triangles of each polygon; `owners[i]` owns `geoms[i]`
    (default: i). Every owner must get at least one triangle."""
    owners = np.arange(len(geoms)) if owners is None else np.asarray(owners)
    order = np.argsort(owners, kind="stable")
    geoms, owners = geoms[order], owners[order]
    tris = shapely.constrained_delaunay_triangles(geoms)
    parts, idx = shapely.get_parts(tris, return_index=True)
    area = shapely.area(parts)
    keep = area > 0
    parts, idx, area = parts[keep], idx[keep], area[keep]
    tri_owner = owners[idx]
    coords = shapely.get_coordinates(shapely.get_exterior_ring(parts)).reshape(-1, 4, 2)[:, :3]
    start = np.searchsorted(tri_owner, np.arange(n_owners + 1), side="left")
    if np.any(np.diff(start) == 0):
        raise AssertionError("an owner has no triangle")
    return Triangles(tri_owner, coords, np.cumsum(area), start)


def _lattice(n: int, rng: np.random.Generator) -> np.ndarray:
    """n jittered hexagonal-lattice points filling the unit disc, centre-first."""
    spacing = np.sqrt(2 * np.pi / (np.sqrt(3) * n)) * 0.98
    m = int(np.ceil(1.3 / spacing)) + 2
    i, j = np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), indexing="ij")
    px = (i + 0.5 * j).ravel() * spacing
    py = (j * np.sqrt(3) / 2).ravel() * spacing
    px = px + rng.uniform(-0.3, 0.3, px.size) * spacing
    py = py + rng.uniform(-0.3, 0.3, py.size) * spacing
    r = np.hypot(px, py)
    order = np.argsort(r, kind="stable")[:n]
    pts = np.column_stack([px[order], py[order]])
    return pts / max(np.hypot(pts[:, 0], pts[:, 1]).max(), 1e-9) * 0.97


def _place(unit: np.ndarray, radius_at, warp: float) -> np.ndarray:
    """Map unit-disc points into the city, denser towards the centre (r -> r**warp)."""
    r = np.hypot(unit[:, 0], unit[:, 1])
    theta = np.arctan2(unit[:, 1], unit[:, 0])
    rr = r**warp * radius_at(theta)
    return np.column_stack([CENTRE[0] + rr * np.cos(theta), CENTRE[1] + rr * np.sin(theta)])


def _voronoi(points: np.ndarray, boundary) -> np.ndarray:
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=boundary, ordered=True)
    cells = shapely.get_parts(cells)
    return shapely.intersection(cells, boundary)


def _largest_polygon(geoms: np.ndarray) -> np.ndarray:
    """Polygons unchanged; of a MultiPolygon its largest part (Voronoi cells clipped to a
    wavy boundary can leave a sliver, which is dropped)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    area = shapely.area(parts)
    order = np.lexsort((-area, idx))
    first = np.ones(len(order), dtype=bool)
    first[1:] = idx[order][1:] != idx[order][:-1]
    out = np.empty(len(geoms), dtype=object)
    out[idx[order][first]] = parts[order][first]
    return out


@dataclass
class City:
    radius: float
    boundary: object
    areas: Areas
    landuse_geometry: np.ndarray
    landuse_category: np.ndarray
    pois: Pois
    homes: Triangles  # residential land of each area


def build_city(n_areas: int, rng: np.random.Generator) -> City:
    """Areas, land use and POIs for a city of `n_areas` register areas."""
    residents = np.round(700 + 2000 * rng.beta(2.2, 2.2, n_areas)).astype(np.int64)
    radius = np.sqrt(residents.sum() / DENSITY_PER_KM2 / np.pi) * 1000.0
    ph = rng.uniform(0, 2 * np.pi, 2)

    def radius_at(theta):
        return radius * (1 + 0.07 * np.sin(3 * theta + ph[0]) + 0.04 * np.sin(5 * theta + ph[1]))

    theta = np.linspace(0, 2 * np.pi, 361)[:-1]
    boundary = shapely.polygons(
        np.column_stack(
            [
                CENTRE[0] + radius_at(theta) * np.cos(theta),
                CENTRE[1] + radius_at(theta) * np.sin(theta),
            ]
        )
    )

    # register areas
    seeds = _place(_lattice(n_areas, rng), radius_at, 1.35)
    geoms = _largest_polygon(_voronoi(seeds, boundary))
    district_idx, n_districts = _districts(seeds, rng)
    angle = np.arctan2(seeds[:, 1] - CENTRE[1], seeds[:, 0] - CENTRE[0])
    order = np.lexsort((angle, np.hypot(*(seeds - CENTRE).T) // (radius / 4), district_idx))
    seeds, geoms, district_idx = seeds[order], geoms[order], district_idx[order]
    deso = np.char.add(f"{MUNICIPALITY}C", np.arange(1001, 1001 + n_areas).astype(str)).astype(
        object
    )
    names = np.char.add("District ", np.char.zfill(np.arange(1, n_districts + 1).astype(str), 2))
    district = names[district_idx].astype(object)
    areas = Areas(deso, district, geoms, seeds[:, 0], seeds[:, 1], residents)

    # water and transport
    water, rivers = _water(radius, boundary, rng)
    rails, lines = _rails(radius, boundary, rng)
    rails = shapely.difference(rails, water)  # bridges count as water
    blocked = shapely.union(water, rails)

    # land-use blocks
    n_blocks = 10 * n_areas
    bseeds = _place(_lattice(n_blocks, rng), radius_at, 1.35)
    blocks = _voronoi(bseeds, boundary)
    category = _block_categories(bseeds, radius, n_areas, rng)
    # the block holding each area's seed is residential: every area has homes
    tree = shapely.STRtree(blocks)
    seed_pt, seed_block = tree.query(shapely.points(seeds), predicate="intersects")
    category[seed_block] = "residential"
    blocks = shapely.difference(blocks, blocked)
    keep = ~shapely.is_empty(blocks) & (shapely.area(blocks) > 50.0)
    blocks, category = blocks[keep], category[keep]
    water_parts = shapely.get_parts(water)
    rail_parts = shapely.get_parts(rails)
    landuse_geometry = np.concatenate([blocks, water_parts, rail_parts])
    landuse_category = np.concatenate(
        [
            category,
            np.full(len(water_parts), "water", object),
            np.full(len(rail_parts), "transport", object),
        ]
    )

    homes = _residential_triangles(areas, blocks, category, water)
    pois = _pois(blocks, category, lines, radius, areas, rng)
    return City(float(radius), boundary, areas, landuse_geometry, landuse_category, pois, homes)


def _districts(seeds: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    from scipy.cluster.vq import kmeans2

    k = int(np.clip(round(len(seeds) / 25), 3, 89))
    k = min(k, len(seeds))
    centroids, labels = kmeans2(seeds - np.array(CENTRE), k, seed=rng, minit="++", iter=20)
    # number districts clockwise from north, inner ones first
    ang = np.mod(np.pi / 2 - np.arctan2(centroids[:, 1], centroids[:, 0]), 2 * np.pi)
    ring = np.hypot(centroids[:, 0], centroids[:, 1]) > np.median(np.hypot(*centroids.T))
    rank = np.empty(k, dtype=np.int64)
    rank[np.lexsort((ang, ring))] = np.arange(k)
    return rank[labels], k


def _water(radius: float, boundary, rng: np.random.Generator):
    """A winding river across the city, off-centre, and a lake in the outer ring."""
    th = rng.uniform(0, np.pi)
    off = 0.25 * radius * rng.choice([-1, 1])
    s = np.linspace(-1.3, 1.3, 200) * radius
    wiggle = 0.06 * radius * np.sin(s / radius * 5 + rng.uniform(0, 6.28))
    d = np.array([np.cos(th), np.sin(th)])
    n = np.array([-d[1], d[0]])
    pts = np.array(CENTRE) + s[:, None] * d + (off + wiggle)[:, None] * n
    river = shapely.linestrings(pts)
    width = float(np.clip(0.03 * radius, 40, 400))
    lake_th = rng.uniform(0, 2 * np.pi)
    lake_c = np.array(CENTRE) + 0.65 * radius * np.array([np.cos(lake_th), np.sin(lake_th)])
    a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    lr = 0.07 * radius * (1 + 0.2 * np.sin(3 * a + rng.uniform(0, 6.28)))
    lake = shapely.polygons(
        np.column_stack([lake_c[0] + lr * np.cos(a), lake_c[1] + lr * np.sin(a)])
    )
    water = shapely.intersection(shapely.union(shapely.buffer(river, width / 2), lake), boundary)
    return water, river


def _rails(radius: float, boundary, rng: np.random.Generator):
    """Rail corridors from the centre outwards."""
    k = 4
    angles = np.arange(k) * 2 * np.pi / k + rng.uniform(0, 2 * np.pi) + rng.uniform(-0.3, 0.3, k)
    lines = shapely.linestrings(
        np.stack(
            [
                np.column_stack([np.full(k, CENTRE[0]), np.full(k, CENTRE[1])]),
                np.column_stack(
                    [
                        CENTRE[0] + 1.2 * radius * np.cos(angles),
                        CENTRE[1] + 1.2 * radius * np.sin(angles),
                    ]
                ),
            ],
            axis=1,
        )
    )
    lines = shapely.intersection(lines, boundary)
    width = float(np.clip(0.004 * radius, 12, 40))
    rails = shapely.intersection(shapely.union_all(shapely.buffer(lines, width / 2)), boundary)
    return rails, lines


def _block_categories(
    pts: np.ndarray, radius: float, n_areas: int, rng: np.random.Generator
) -> np.ndarray:
    r = np.hypot(pts[:, 0] - CENTRE[0], pts[:, 1] - CENTRE[1]) / radius
    n_zones = max(1, round(n_areas / 25))
    zr = rng.uniform(0.45, 0.9, n_zones) * radius
    za = rng.uniform(0, 2 * np.pi, n_zones)
    zx, zy = CENTRE[0] + zr * np.cos(za), CENTRE[1] + zr * np.sin(za)
    dz = np.min(np.hypot(pts[:, 0, None] - zx[None], pts[:, 1, None] - zy[None]), axis=1) / radius
    commercial = 0.42 * np.exp(-((r / 0.2) ** 2)) + 0.06
    industrial = np.where(dz < 0.1, 0.65, 0.02 + 0.05 * (r > 0.5))
    park = np.full_like(r, 0.12)
    education = np.full_like(r, 0.05)
    residential = np.clip(1 - commercial - industrial - park - education, 0.1, None)
    p = np.column_stack([residential, commercial, industrial, park, education])
    p /= p.sum(1, keepdims=True)
    u = rng.random(len(r))
    idx = (np.cumsum(p, axis=1) < u[:, None]).sum(1)
    names = np.array(LANDUSE[:5], dtype=object)
    return names[np.minimum(idx, 4)]


def _residential_triangles(areas: Areas, blocks, category, water) -> Triangles:
    """Triangles of each area's residential land (the area minus water if it has none)."""
    res = blocks[category == "residential"]
    tree = shapely.STRtree(res)
    a_idx, r_idx = tree.query(areas.geometry, predicate="intersects")
    pieces = shapely.intersection(areas.geometry[a_idx], res[r_idx])
    parts, pidx = shapely.get_parts(pieces, return_index=True)
    owner = a_idx[pidx]
    poly = shapely.get_type_id(parts) == 3
    parts, owner = parts[poly], owner[poly]
    area = shapely.area(parts)
    ok = area > 1.0
    parts, owner, area = parts[ok], owner[ok], area[ok]
    n = len(areas.deso)
    res_area = np.bincount(owner, weights=area, minlength=n)
    lacking = np.flatnonzero(res_area < 0.02 * shapely.area(areas.geometry))
    if len(lacking):
        fallback = shapely.difference(areas.geometry[lacking], water)
        fallback = np.where(shapely.is_empty(fallback), areas.geometry[lacking], fallback)
        fparts, fidx = shapely.get_parts(fallback, return_index=True)
        keep_old = ~np.isin(owner, lacking)
        parts = np.concatenate([parts[keep_old], fparts])
        owner = np.concatenate([owner[keep_old], lacking[fidx]])
    return triangulate(parts, n, owner)


def _pois(blocks, category, lines, radius, areas: Areas, rng: np.random.Generator) -> Pois:
    rates = np.array([POI_RATE.get(c, 0.0) for c in category])
    counts = rng.poisson(rates)
    owner = np.repeat(np.arange(len(blocks)), counts)
    cats = np.empty(len(owner), dtype=object)
    for land, mix in POI_MIX.items():  # a loop over five land-use kinds
        sel = np.flatnonzero(category[owner] == land)
        names = np.array([m[0] for m in mix], dtype=object)
        p = np.array([m[1] for m in mix])
        cats[sel] = names[rng.choice(len(names), size=len(sel), p=p / p.sum())]
    used = np.unique(owner)
    tri = triangulate(blocks[used], len(used))
    x, y = tri.sample(np.searchsorted(used, owner), rng)
    # stations along the rail lines
    spacing = float(max(600.0, 0.15 * radius))
    lens = shapely.length(lines)
    n_st = np.floor(lens / spacing).astype(np.int64)
    line_idx = np.repeat(np.arange(len(lines)), n_st)
    dist = (np.arange(n_st.sum()) - np.repeat(np.cumsum(n_st) - n_st, n_st) + 0.5) * spacing
    st = shapely.line_interpolate_point(lines[line_idx], dist)
    sx, sy = shapely.get_x(st), shapely.get_y(st)
    x = np.concatenate([x, sx])
    y = np.concatenate([y, sy])
    cats = np.concatenate([cats, np.full(len(sx), "station", object)])
    n = len(x)
    weights = np.array([POI_WEIGHTS[c] for c in cats], dtype=np.float64).reshape(n, 2)
    attract = weights[:, 0] * rng.lognormal(0.0, 0.8, n)
    jobs = np.ceil(weights[:, 1] * rng.lognormal(0.0, 0.6, n))
    poi_id = np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 6)).astype(object)
    tree = shapely.STRtree(areas.geometry)
    pts = shapely.points(x, y)
    area = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    p_idx, a_idx = tree.query(pts, predicate="intersects")
    np.minimum.at(area, p_idx, a_idx)  # the lowest area index wins on shared borders
    missing = np.flatnonzero(area == np.iinfo(np.int64).max)
    if len(missing):
        area[missing] = tree.query_nearest(pts[missing], return_distance=False, all_matches=False)[
            1
        ]
    return Pois(poi_id, cats, x, y, attract, jobs, area)
