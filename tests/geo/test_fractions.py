"""Exact hexagon area fractions: oracles are shapely's own polygon areas, h3-py's overlap
containment and a per-pair brute force with independently built hexagons."""

import h3
import numpy as np
import polars as pl
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from segtool.geo.fractions import area_fractions, sum_by
from segtool.geo.grid import candidate_cells

SWEREF = "EPSG:3006"
TO_LL = Transformer.from_crs(SWEREF, "EPSG:4326", always_xy=True)
TO_M = Transformer.from_crs("EPSG:4326", SWEREF, always_xy=True)


def hexagon_3006(cell: int) -> shapely.Polygon:
    """A hexagon built independently of segtool: h3-py boundary, pyproj per vertex."""
    lat_lng = h3.cell_to_boundary(h3.int_to_str(int(cell)))
    xs, ys = TO_M.transform([p[1] for p in lat_lng], [p[0] for p in lat_lng])
    return shapely.Polygon(list(zip(xs, ys, strict=True)))


def h3_overlap_cells(poly_m: shapely.Geometry, res: int) -> set[int]:
    """h3-py's own 'overlap' containment, on the polygon moved to lon/lat."""
    poly_ll = shapely.transform(poly_m, lambda xy: np.column_stack(TO_LL.transform(*xy.T)))
    shape = h3.geo_to_h3shape(poly_ll)
    return {h3.str_to_int(c) for c in h3.h3shape_to_cells_experimental(shape, res, "overlap")}


def test_square_split_between_cells_preserves_its_area():
    # a 1.3 km x 0.7 km rectangle in SWEREF 99 TM, cut by many hexagons at res 9
    square = shapely.box(674_013.0, 6_580_021.0, 675_313.0, 6_580_721.0)
    fr = area_fractions(np.array([square]), SWEREF, 9)
    assert fr.height > 10
    # shares x cell areas add up to the polygon's area
    share = fr["overlap_m2"] / fr["cell_m2"]
    assert (share * fr["cell_m2"]).sum() == pytest.approx(square.area, rel=1e-6)
    assert fr["overlap_m2"].sum() == pytest.approx(square.area, rel=1e-9)
    assert ((share > 0) & (share <= 1 + 1e-12)).all()


def test_each_overlap_matches_a_brute_force_with_independent_hexagons():
    poly = shapely.Point(675_000, 6_581_000).buffer(900, quad_segs=64)
    poly = poly.difference(shapely.box(674_900, 6_580_800, 675_300, 6_581_050))  # a bite
    fr = area_fractions(np.array([poly]), SWEREF, 9)
    cells = h3_overlap_cells(poly, 9)
    expected = {c: shapely.intersection(poly, hexagon_3006(c)).area for c in cells}
    expected = {c: a for c, a in expected.items() if a > 1e-6}
    got = dict(zip(fr["cell"].to_list(), fr["overlap_m2"].to_list(), strict=True))
    assert set(got) == set(expected)
    for c, a in expected.items():
        assert got[c] == pytest.approx(a, rel=1e-9, abs=1e-6)
        assert fr.filter(pl.col("cell") == c)["cell_m2"][0] == pytest.approx(
            hexagon_3006(c).area, rel=1e-9
        )


def test_interior_cells_are_fully_covered():
    big = shapely.box(670_000, 6_575_000, 676_000, 6_581_000)
    fr = area_fractions(np.array([big]), SWEREF, 9)
    full = {
        h3.str_to_int(c)
        for c in h3.h3shape_to_cells_experimental(
            h3.geo_to_h3shape(
                shapely.transform(big, lambda xy: np.column_stack(TO_LL.transform(*xy.T)))
            ),
            9,
            "full",
        )
    }
    inner = fr.filter(pl.col("cell").is_in(list(full)))
    assert inner.height > 300
    share = inner["overlap_m2"] / inner["cell_m2"]
    assert np.allclose(share.to_numpy(), 1.0, rtol=0, atol=1e-12)


def test_multipolygon_hole_and_missing_geometries():
    outer = shapely.box(674_000, 6_580_000, 677_000, 6_583_000)
    holed = outer.difference(shapely.Point(675_500, 6_581_500).buffer(800))
    multi = shapely.MultiPolygon([holed, shapely.box(680_000, 6_580_000, 680_300, 6_580_300)])
    geoms = np.array([None, multi, shapely.Polygon(), shapely.Point(0, 0)], dtype=object)
    fr = area_fractions(geoms, SWEREF, 9)
    assert fr["index"].unique().to_list() == [1]
    assert fr["overlap_m2"].sum() == pytest.approx(multi.area, rel=1e-9)


def test_lonlat_input_is_measured_in_local_utm():
    box_ll = shapely.box(18.00, 59.30, 18.02, 59.31)
    fr = area_fractions(np.array([box_ll]), "EPSG:4326", 10)
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32634", always_xy=True)
    box_utm = shapely.transform(box_ll, lambda xy: np.column_stack(to_utm.transform(*xy.T)))
    assert fr["overlap_m2"].sum() == pytest.approx(box_utm.area, rel=1e-9)


def test_empty_input_has_the_schema():
    fr = area_fractions(np.array([None], dtype=object), SWEREF, 9)
    assert fr.height == 0
    assert fr.schema == {
        "index": pl.UInt32,
        "cell": pl.UInt64,
        "overlap_m2": pl.Float64,
        "cell_m2": pl.Float64,
    }


polygons = st.builds(
    lambda x, y, w, h, angle, hole: _poly(x, y, w, h, angle, hole),
    st.floats(600_000, 700_000),
    st.floats(6_500_000, 6_600_000),
    st.floats(50, 3_000),
    st.floats(50, 3_000),
    st.floats(0, 90),
    st.booleans(),
)


def _poly(x, y, w, h, angle, hole):
    p = shapely.affinity.rotate(shapely.box(x, y, x + w, y + h), angle)
    if hole:
        p = p.difference(p.centroid.buffer(min(w, h) / 4))
    return p


@settings(max_examples=15, deadline=None)
@given(polys=st.lists(polygons, min_size=1, max_size=4), res=st.integers(7, 10))
def test_property_totals_preserved_and_candidates_cover_h3_overlap(polys, res):
    geoms = np.array(polys, dtype=object)
    fr = area_fractions(geoms, SWEREF, res)
    per = fr.group_by("index").agg(pl.col("overlap_m2").sum()).sort("index")
    assert per["index"].to_list() == list(range(len(polys)))
    assert np.allclose(per["overlap_m2"].to_numpy(), shapely.area(geoms), rtol=1e-9)
    # the candidate cells include every cell H3 itself says overlaps the polygon
    cand = set(candidate_cells(shapely.bounds(geoms), SWEREF, res).tolist())
    for p in polys:
        assert h3_overlap_cells(p, res) <= cand


def test_sum_by_is_order_fixed_and_exact_on_integers():
    frame = pl.DataFrame({"a": ["x", "y", "x", "y", "x"], "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out = sum_by(frame, ["a"], "v")
    assert out.to_dict(as_series=False) == {"a": ["x", "y"], "v": [9.0, 6.0]}
    assert sum_by(frame.head(0), ["a"], "v").height == 0


def test_numpy_and_geos_engines_agree(monkeypatch):
    import segtool.geo.fractions as fractions

    rng = np.random.default_rng(11)
    pts = shapely.points(rng.uniform(670_000, 676_000, 40), rng.uniform(6_578_000, 6_584_000, 40))
    frame = shapely.box(670_000, 6_578_000, 676_000, 6_584_000)
    areas = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame))
    areas = shapely.segmentize(shapely.intersection(areas, frame), 25.0)
    ours = area_fractions(areas, SWEREF, 10)
    monkeypatch.setattr(fractions, "EXACT_ENGINE", "geos")
    geos = area_fractions(areas, SWEREF, 10)
    assert ours["cell"].equals(geos["cell"]) and ours["index"].equals(geos["index"])
    assert np.allclose(ours["overlap_m2"], geos["overlap_m2"], rtol=1e-9, atol=1e-6)


def test_invalid_input_is_repaired_not_a_crash():
    bowtie = shapely.Polygon(
        [(674_000, 6_580_000), (675_000, 6_581_000), (675_000, 6_580_000), (674_000, 6_581_000)]
    )
    assert not bowtie.is_valid
    fr = area_fractions(np.array([bowtie]), SWEREF, 9)
    assert fr["overlap_m2"].sum() == pytest.approx(shapely.make_valid(bowtie).area, rel=1e-9)
