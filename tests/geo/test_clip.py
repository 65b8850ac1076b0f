"""The vectorised Sutherland–Hodgman clip against GEOS (`shapely.intersection`), on
non-convex polygons with holes, multipart leftovers and degenerate touches."""

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.geo.clip import clip_areas, convex_vertices


def hexagon(cx, cy, r, rot=0.0, n=6):
    a = np.radians(rot) + np.arange(n) * 2 * np.pi / n
    return shapely.Polygon(np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)]))


def geos_areas(polys, hexes, pi, hi):
    return shapely.area(shapely.intersection(polys[pi], hexes[hi]))


star_points = st.lists(
    st.tuples(st.floats(0.05, 1.0), st.floats(0, 2 * np.pi)), min_size=3, max_size=25
)


def star(cx, cy, scale, pts, hole):
    pts = sorted(pts, key=lambda p: p[1])
    ring = [(cx + scale * r * np.cos(t), cy + scale * r * np.sin(t)) for r, t in pts]
    poly = shapely.make_valid(shapely.Polygon(ring))
    if hole:
        poly = poly.difference(shapely.Point(cx, cy).buffer(scale * 0.04))
    return poly


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(
        st.tuples(
            st.floats(-300, 300),
            st.floats(-300, 300),
            st.floats(10, 800),
            star_points,
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    rot=st.floats(0, 60),
    pentagon=st.booleans(),
)
def test_clip_matches_geos(shapes, rot, pentagon):
    polys = [star(*s) for s in shapes]
    polys = np.array([p for g in polys for p in shapely.get_parts(g) if p.geom_type == "Polygon"])
    if polys.size == 0:
        return
    hexes = np.array(
        [hexagon(x, y, 120, rot, 5 if pentagon and (x + y) % 3 == 0 else 6)
         for x in range(-600, 601, 180) for y in range(-600, 601, 160)]
    )  # fmt: skip
    pi, hi = np.meshgrid(np.arange(len(polys)), np.arange(len(hexes)), indexing="ij")
    pi, hi = pi.ravel(), hi.ravel()
    ours = clip_areas(polys, convex_vertices(hexes), pi, hi)
    assert np.allclose(ours, geos_areas(polys, hexes, pi, hi), rtol=1e-9, atol=1e-7)


def test_touching_inside_and_outside_cases():
    h = hexagon(0, 0, 100)
    polys = np.array(
        [
            shapely.box(-1000, -1000, 1000, 1000),  # hexagon inside: its own area
            shapely.box(100, -50, 300, 50),  # touches at a vertex only
            shapely.box(500, 500, 600, 600),  # far away
            shapely.box(-1000, -1000, 1000, 1000).difference(shapely.box(-10, -10, 10, 10)),
            shapely.box(-100, -100, 0, 100),  # half, edge through the centre
            shapely.Polygon([(0, 0), (100, 0), (50, 86.60254037844386)]),  # shares two edges
        ]
    )
    hexes = np.array([h])
    pi = np.arange(len(polys))
    ours = clip_areas(polys, convex_vertices(hexes), pi, np.zeros_like(pi))
    assert ours == pytest.approx(geos_areas(polys, hexes, pi, np.zeros_like(pi)), abs=1e-7)
    assert ours[0] == pytest.approx(h.area, rel=1e-12)
    assert ours[3] == pytest.approx(h.area - 400, rel=1e-12)


def test_clockwise_hexagons_and_empty_pairs():
    h = shapely.Polygon(list(hexagon(0, 0, 50).exterior.coords)[::-1])  # clockwise
    cv = convex_vertices(np.array([h]))
    assert clip_areas(np.array([shapely.box(0, 0, 500, 500)]), cv, [0], [0])[0] == pytest.approx(
        h.area / 4, rel=1e-12
    )
    assert clip_areas(np.array([shapely.box(0, 0, 1, 1)]), cv, [], []).size == 0


def test_chunking_gives_the_same_areas(monkeypatch):
    import segtool.geo.clip as clip

    rng = np.random.default_rng(3)
    polys = np.array(
        [shapely.Point(x, y).buffer(r, quad_segs=5) for x, y, r in rng.uniform(0, 400, (30, 3))]
    )
    hexes = np.array([hexagon(x, y, 60) for x in range(0, 401, 90) for y in range(0, 401, 80)])
    pi, hi = shapely.STRtree(hexes).query(polys)
    whole = clip_areas(polys, convex_vertices(hexes), pi, hi)
    monkeypatch.setattr(clip, "CHUNK_VERTICES", 50)  # many chunks, some single pairs
    chunked = clip_areas(polys, convex_vertices(hexes), pi, hi)
    assert np.array_equal(whole, chunked)
    assert np.allclose(whole, geos_areas(polys, hexes, pi, hi), rtol=1e-9, atol=1e-7)
