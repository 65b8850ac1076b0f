"""Dissolving only what overlaps, and the land-use shares built on it, against global
unions computed with GEOS (the straightforward, slow way)."""

import numpy as np
import polars as pl
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.geo.dissolve import dissolve, overlap_components
from segtool.geo.fractions import hexagons_metric
from segtool.ingest.landuse import landuse_shares

SWEREF = "EPSG:3006"
X0, Y0 = 674_000.0, 6_580_000.0


def test_components_ignore_touching_and_follow_groups():
    a = shapely.box(0, 0, 10, 10)
    b = shapely.box(10, 0, 20, 10)  # touches a
    c = shapely.box(15, 5, 30, 20)  # overlaps b
    d = shapely.box(2, 2, 3, 3)  # inside a
    e = shapely.box(100, 100, 101, 101)  # alone
    geoms = np.array([a, b, c, d, e])
    labels = overlap_components(geoms)
    assert labels[0] == labels[3] and labels[1] == labels[2]
    assert len({labels[0], labels[1], labels[4]}) == 3
    split = overlap_components(geoms, np.array([0, 0, 1, 0, 0]))
    assert split[1] != split[2] and split[0] == split[3]
    out, lab = dissolve(geoms, labels)
    assert out.size == 3
    for g, lbl in zip(out, lab, strict=True):
        assert g.area == pytest.approx(shapely.union_all(geoms[labels == lbl]).area)


blobs = st.lists(
    st.tuples(st.floats(0, 2500), st.floats(0, 2500), st.floats(30, 500), st.integers(0, 2)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=12, deadline=None)
@given(blobs=blobs)
def test_shares_sum_to_the_covered_share_and_categories_are_unions(blobs):
    geoms = np.array([shapely.Point(X0 + x, Y0 + y).buffer(r, quad_segs=6) for x, y, r, _ in blobs])
    cats = np.array([f"k{c}" for *_, c in blobs], dtype=object)
    shares, info = landuse_shares(geoms, cats, SWEREF, 9)
    cells = shares["cell"].unique().sort().to_numpy()
    hexes = hexagons_metric(cells, SWEREF)
    covered = shapely.area(shapely.intersection(hexes, shapely.union_all(geoms))) / shapely.area(
        hexes
    )
    total = shares.group_by("cell").agg(pl.col("share").sum()).sort("cell")["share"].to_numpy()
    assert np.allclose(total, covered, rtol=1e-9, atol=1e-9)
    # where a cell meets one category only, its share is that category's union's
    single = shares.group_by("cell").agg(pl.len(), pl.first("category"), pl.first("share"))
    single = single.filter(pl.col("len") == 1)
    for cell, cat, share in single.select("cell", "category", "share").iter_rows():
        hexagon = hexagons_metric(np.array([cell], dtype=np.uint64), SWEREF)[0]
        union = shapely.union_all(geoms[cats == cat])
        assert share == pytest.approx(union.intersection(hexagon).area / hexagon.area, abs=1e-9)
    union_all = shapely.union_all(geoms)
    per_cat = sum(shapely.union_all(geoms[cats == c]).area for c in set(cats))
    assert info["category_overlap_m2"] == pytest.approx(per_cat - union_all.area, abs=1e-3)
