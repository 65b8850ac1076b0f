"""Area of polygon ∩ convex polygon for many pairs at once: Sutherland–Hodgman in numpy.

Why not `shapely.intersection`: GEOS builds a full overlay per pair (~30 µs each), which
dominated the time of `area_fractions`. Here the rings of every pair are clipped
against the six half-planes of its hexagon in six vectorised passes over one flat
vertex array, and the clipped rings' signed areas (shoelace) are summed.

Why the area is exact for any polygon (non-convex, with holes): clipping a closed ring
against a half-plane replaces each excursion outside by a segment along the boundary
line. The excursion and its replacement form a closed loop outside the open half-plane,
which winds zero times around every point inside it, so the clipped ring has the same
winding number as the original at every point of the half-plane and zero outside.
Its signed area is therefore ∫_half-plane w(x) dx; over the six passes, ∫_hexagon w. With
exteriors counter-clockwise (w = +1 inside) and holes clockwise, the sum over a
polygon's rings is |P ∩ H|. Coordinates are taken relative to each hexagon's first
vertex, so the shoelace sums stay small and precise.
"""

from __future__ import annotations

import numpy as np

CHUNK_VERTICES = 2_000_000  # vertices (summed over pairs) handled per pass: bounds memory


def convex_vertices(polys: np.ndarray, n: int = 6) -> np.ndarray:
    """(len(polys), n, 2) counter-clockwise vertices of convex polygons with ≤ n vertices
    (H3 hexagons; pentagons padded by repeating their last vertex: a zero-length edge
    clips nothing)."""
    import shapely

    coords, idx = shapely.get_coordinates(shapely.get_exterior_ring(polys), return_index=True)
    counts = np.bincount(idx, minlength=len(polys)) - 1  # drop the closing vertex
    starts = np.r_[0, np.cumsum(counts + 1)[:-1]]
    k = np.minimum(np.arange(n)[None, :], counts[:, None] - 1)
    out = coords[starts[:, None] + k]
    x, y = out[..., 0], out[..., 1]
    signed = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)
    clockwise = signed < 0
    out[clockwise] = out[clockwise][:, ::-1]
    return out


def polygon_rings(polys: np.ndarray):
    """Rings of polygons oriented for signed areas (exteriors CCW, holes CW).

    Returns (x, y, ring_start, ring_len, ring_owner): flat vertex coordinates without
    the closing vertex, each ring's slice, and the polygon each ring belongs to.
    """
    import shapely

    oriented = shapely.orient_polygons(polys, exterior_cw=False)
    rings, owner = shapely.get_rings(oriented, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    n = np.bincount(ring_of, minlength=len(rings))
    keep = np.ones(coords.shape[0], dtype=bool)
    keep[np.cumsum(n) - 1] = False  # closing vertices
    coords = coords[keep]
    ring_len = n - 1
    ring_start = np.r_[0, np.cumsum(ring_len)[:-1]]
    return coords[:, 0].copy(), coords[:, 1].copy(), ring_start, ring_len, owner


def clip_areas(
    polys: np.ndarray, convex: np.ndarray, poly_idx: np.ndarray, convex_idx: np.ndarray
) -> np.ndarray:
    """|polys[poly_idx[i]] ∩ convex[convex_idx[i]]| for each pair i.

    `polys`: shapely Polygons (holes allowed, any shape); `convex`: the (m, n, 2) array
    of `convex_vertices`.
    """
    poly_idx = np.asarray(poly_idx, dtype=np.int64)
    convex_idx = np.asarray(convex_idx, dtype=np.int64)
    out = np.zeros(poly_idx.size, dtype=np.float64)
    if poly_idx.size == 0:
        return out
    x, y, ring_start, ring_len, ring_owner = polygon_rings(polys)
    # rings of each polygon: polygons' rings are contiguous in ring order
    rings_per_poly = np.bincount(ring_owner, minlength=len(polys))
    first_ring = np.r_[0, np.cumsum(rings_per_poly)[:-1]]
    verts_per_poly = np.bincount(ring_owner, weights=ring_len, minlength=len(polys)).astype(
        np.int64
    )
    work = verts_per_poly[poly_idx]
    bounds = np.searchsorted(
        np.cumsum(work), np.arange(1, 1 + work.sum() // CHUNK_VERTICES) * CHUNK_VERTICES
    )
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, poly_idx.size], strict=True):
        if hi > lo:
            out[lo:hi] = _clip_chunk(
                x, y, ring_start, ring_len, rings_per_poly, first_ring,
                poly_idx[lo:hi], convex[convex_idx[lo:hi]],
            )  # fmt: skip
    return out


def _ring_neighbours(lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the previous and next vertex of each vertex within its (cyclic) ring."""
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    ends = starts + lens - 1
    n = int(lens.sum())
    nxt = np.arange(1, n + 1)
    nxt[ends] = starts
    prv = np.arange(-1, n - 1)
    prv[starts] = ends
    return prv, nxt


def _compress_runs(vx, vy, lens, pair_of_ring, pair_of_vert, hx, hy):
    """Drop vertices in the middle of runs that lie beyond the same side of the pair's
    hexagon's bounding box. Such a run's path stays in that (convex) outer half-plane,
    as does the straight segment joining its first and last vertex, so the swap leaves
    the ring's winding number unchanged everywhere inside the box: the clipped area is
    the same, with far fewer vertices to clip for pieces much larger than a hexagon."""
    if vx.size == 0:
        return vx, vy, lens, pair_of_ring, pair_of_vert
    p = pair_of_vert
    code = np.zeros(vx.size, dtype=np.int8)
    code[vy > hy.max(axis=1)[p]] = 4
    code[vy < hy.min(axis=1)[p]] = 3
    code[vx > hx.max(axis=1)[p]] = 2
    code[vx < hx.min(axis=1)[p]] = 1
    prv, nxt = _ring_neighbours(lens)
    keep = (code == 0) | (code != code[prv]) | (code != code[nxt])
    ring_id = np.repeat(np.arange(lens.size), lens)
    new_lens = np.bincount(ring_id, weights=keep, minlength=lens.size).astype(np.int64)
    alive = new_lens >= 3  # fewer vertices enclose nothing
    keep &= np.repeat(alive, lens)
    lens = new_lens[alive]
    pair_of_ring = pair_of_ring[alive]
    return vx[keep], vy[keep], lens, pair_of_ring, np.repeat(pair_of_ring, lens)


def _clip_chunk(x, y, ring_start, ring_len, rings_per_poly, first_ring, poly_idx, hexes):
    n_pairs = poly_idx.size
    # rings of every pair
    nr = rings_per_poly[poly_idx]
    pair_of_ring = np.repeat(np.arange(n_pairs), nr)
    ring = np.repeat(first_ring[poly_idx] - np.r_[0, np.cumsum(nr)[:-1]], nr) + np.arange(nr.sum())
    lens = ring_len[ring]
    # their vertices, relative to the pair's hexagon's first vertex
    vert = np.repeat(ring_start[ring] - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(
        lens.sum()
    )
    pair_of_vert = np.repeat(pair_of_ring, lens)
    ox, oy = hexes[:, 0, 0], hexes[:, 0, 1]
    vx = x[vert] - ox[pair_of_vert]
    vy = y[vert] - oy[pair_of_vert]
    hx = hexes[..., 0] - ox[:, None]
    hy = hexes[..., 1] - oy[:, None]
    vx, vy, lens, pair_of_ring, pair_of_vert = _compress_runs(
        vx, vy, lens, pair_of_ring, pair_of_vert, hx, hy
    )
    n_edges = hexes.shape[1]
    for k in range(n_edges):  # six half-planes (a fixed, tiny loop)
        if vx.size == 0:
            break
        ax, ay = hx[:, k], hy[:, k]
        dx, dy = hx[:, (k + 1) % n_edges] - ax, hy[:, (k + 1) % n_edges] - ay
        p = pair_of_vert
        s = dx[p] * (vy - ay[p]) - dy[p] * (vx - ax[p])  # ≥ 0: inside (left of the edge)
        starts = np.r_[0, np.cumsum(lens)[:-1]]
        nxt = np.arange(1, vx.size + 1)
        nxt[starts + lens - 1] = starts
        inside = s >= 0
        in_next = inside[nxt]
        cross = inside != in_next
        count = cross.astype(np.int64) + in_next
        pos = np.cumsum(count) - count
        total = int(count.sum())
        nx_ = np.empty(total)
        ny_ = np.empty(total)
        c = np.flatnonzero(cross)
        t = s[c] / (s[c] - s[nxt[c]])
        nx_[pos[c]] = vx[c] + t * (vx[nxt[c]] - vx[c])
        ny_[pos[c]] = vy[c] + t * (vy[nxt[c]] - vy[c])
        keep = np.flatnonzero(in_next)
        at = pos[keep] + cross[keep]
        nx_[at] = vx[nxt[keep]]
        ny_[at] = vy[nxt[keep]]
        ring_id = np.repeat(np.arange(lens.size), lens)
        new_lens = np.bincount(ring_id, weights=count, minlength=lens.size).astype(np.int64)
        # rings with fewer than 3 vertices enclose nothing: drop them
        alive = new_lens >= 3
        vert_alive = np.repeat(alive, new_lens)
        vx, vy = nx_[vert_alive], ny_[vert_alive]
        lens = new_lens[alive]
        pair_of_ring = pair_of_ring[alive]
        pair_of_vert = np.repeat(pair_of_ring, lens)
    if vx.size == 0:
        return np.zeros(n_pairs)
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    nxt = np.arange(1, vx.size + 1)
    nxt[starts + lens - 1] = starts
    twice = vx * vy[nxt] - vx[nxt] * vy
    return np.bincount(pair_of_vert, weights=twice, minlength=n_pairs) / 2.0
