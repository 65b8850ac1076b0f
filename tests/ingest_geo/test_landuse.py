"""`segtool ingest landuse`: shares of hexagon area by category. Oracles: a single big
polygon covers its interior cells exactly (share 1); shares x cell areas give back the
polygon's area; overlapping polygons are counted once (per category) or split."""

import json

import h3
import numpy as np
import polars as pl
import pytest
import shapely
from pyproj import Transformer

from segtool.ingest.landuse import ingest_landuse, landuse_shares

from .conftest import SWEREF, X0, Y0, write_layer

TO_LL = Transformer.from_crs(SWEREF, "EPSG:4326", always_xy=True)


def read(lake, name):
    return pl.read_parquet(lake / name / "*.parquet")


def full_cells(poly_m, res):
    ll = shapely.transform(poly_m, lambda xy: np.column_stack(TO_LL.transform(*xy.T)))
    shape = h3.geo_to_h3shape(ll)
    return [h3.str_to_int(c) for c in h3.h3shape_to_cells_experimental(shape, res, "full")]


def test_interior_cells_of_one_big_polygon_are_one(tmp_path):
    big = shapely.box(X0, Y0, X0 + 4000, Y0 + 3000)
    gpkg = write_layer(tmp_path / "lu.gpkg", [big], landuse=["forest"])
    lake = tmp_path / "lake"
    ingest_landuse(gpkg, lake, category="landuse", res=9)
    lu = read(lake, "landuse")
    assert lu.schema == {"cell": pl.UInt64, "category": pl.String, "share": pl.Float64}
    inner = lu.filter(pl.col("cell").is_in(full_cells(big, 9)))
    assert inner.height > 100
    assert np.allclose(inner["share"].to_numpy(), 1.0, rtol=0, atol=1e-9)
    edge = lu.filter(~pl.col("cell").is_in(full_cells(big, 9)))
    assert (edge["share"] < 1).all() and (edge["share"] > 0).all()


def test_interior_cells_sum_to_one_across_categories(tmp_path):
    # a patchwork of 4 categories tiling a 4 km square, some polygons overlapping
    tiles, cats = [], []
    for i in range(8):
        for j in range(8):
            tiles.append(
                shapely.box(X0 + i * 500, Y0 + j * 500, X0 + (i + 1) * 500, Y0 + (j + 1) * 500)
            )
            cats.append(["residential", "park", "industrial", "water"][(i * 3 + j) % 4])
    tiles.append(shapely.box(X0 + 200, Y0 + 200, X0 + 900, Y0 + 900))  # overlaps others
    cats.append("park")
    lu_file = write_layer(tmp_path / "lu.fgb", tiles, cat=cats)
    lake = tmp_path / "lake"
    report = ingest_landuse(lu_file, lake, category="cat", res=10)
    assert report.extra["category_overlap_m2"] > 0
    lu = read(lake, "landuse")
    square = shapely.box(X0, Y0, X0 + 4000, Y0 + 4000)
    inner = lu.filter(pl.col("cell").is_in(full_cells(square, 10)))
    sums = inner.group_by("cell").agg(pl.col("share").sum())["share"].to_numpy()
    assert sums.size > 500
    assert np.allclose(sums, 1.0, rtol=0, atol=1e-9)
    all_sums = lu.group_by("cell").agg(pl.col("share").sum())["share"].to_numpy()
    assert (all_sums <= 1 + 1e-9).all()


def test_square_of_known_area_split_between_cells(tmp_path):
    sq = shapely.box(X0 + 37.0, Y0 + 11.0, X0 + 837.0, Y0 + 511.0)  # 0.4 km²
    shares, info = landuse_shares(np.array([sq]), np.array(["x"]), SWEREF, 10)
    from segtool.geo.fractions import hexagons_metric

    cell_m2 = shapely.area(hexagons_metric(shares["cell"].to_numpy(), SWEREF))
    assert (shares["share"].to_numpy() * cell_m2).sum() == pytest.approx(sq.area, rel=1e-6)
    assert info["metric_crs"] == SWEREF


def test_overlaps_within_a_category_count_once_and_priority(tmp_path):
    a = shapely.box(X0, Y0, X0 + 2000, Y0 + 2000)
    b = shapely.box(X0 + 1000, Y0, X0 + 3000, Y0 + 2000)  # half over a
    cells_of = {}
    # same category twice: the union, not the sum
    s1, _ = landuse_shares(np.array([a, b]), np.array(["park", "park"]), SWEREF, 9)
    assert s1["share"].max() <= 1.0
    assert s1.group_by("cell").agg(pl.col("share").sum())["share"].max() <= 1.0 + 1e-12
    # different categories, proportional: overlapping cells split ~half/half
    s2, info = landuse_shares(np.array([a, b]), np.array(["park", "school"]), SWEREF, 9)
    assert info["category_overlap_m2"] == pytest.approx(1000 * 2000, rel=1e-9)
    tot = s2.group_by("cell").agg(pl.col("share").sum())
    assert tot["share"].max() <= 1.0 + 1e-12
    mid = shapely.Point(X0 + 1500, Y0 + 1000)
    ll = TO_LL.transform(mid.x, mid.y)
    mid_cell = h3.str_to_int(h3.latlng_to_cell(ll[1], ll[0], 9))
    cells_of["mid"] = s2.filter(pl.col("cell") == mid_cell)
    assert cells_of["mid"]["share"].to_list() == pytest.approx([0.5, 0.5], abs=1e-9)
    # priority: the first listed wins
    s3, _ = landuse_shares(
        np.array([a, b]), np.array(["park", "school"]), SWEREF, 9, priority=("school",)
    )
    m3 = s3.filter(pl.col("cell") == mid_cell)
    assert m3["category"].to_list() == ["school"] and m3["share"][0] == pytest.approx(1.0, abs=1e-9)


def test_rejects_repairs_and_bbox(tmp_path, cli):
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 500, Y0 + 500), (X0 + 500, Y0), (X0, Y0 + 500)])
    geoms = [
        shapely.box(X0, Y0, X0 + 1000, Y0 + 1000),
        bowtie,  # invalid: repaired
        None,  # empty_geometry
        shapely.LineString([(X0, Y0), (X0 + 10, Y0 + 10)]),  # not_polygonal
        shapely.box(X0, Y0, X0 + 100, Y0 + 100),  # empty_category
        shapely.box(X0 + 50_000, Y0, X0 + 50_100, Y0 + 100),  # outside_bbox
        shapely.box(X0 + 1100, Y0, X0 + 3000, Y0 + 100),  # crosses the bbox: clipped
    ]
    cats = ["a", "b", "a", "a", " ", "a", "c"]
    gpkg = write_layer(tmp_path / "lu.gpkg", geoms, kind=cats)
    lake = tmp_path / "lake"
    x1, _ = TO_LL.transform(X0 + 2000, Y0)
    r = cli(
        "ingest",
        "landuse",
        gpkg,
        "--category",
        "kind",
        "--bbox",
        f"17,59,{x1},60",
        "--lake",
        lake,
        "--format",
        "json",
    )
    assert r.code == 0, r.err
    [row] = json.loads(r.out)
    assert row["rows_in"] == 7 and row["rows_written"] == 3 and row["rows_rejected"] == 4
    m = json.loads((lake / "landuse" / "_manifest.json").read_text())
    assert m["rejected_by_reason"] == {
        "empty_category": 1,
        "empty_geometry": 1,
        "not_polygonal": 1,
        "outside_bbox": 1,
    }
    assert m["geometries_repaired"] == 1
    rej = read(lake, "_rejects/landuse").sort("line")
    assert rej["line"].to_list() == [3, 4, 5, 6]
    assert rej["geometry"][1].startswith("LINESTRING")
    lu = read(lake, "landuse")
    # the clipped polygon keeps only its part inside the bbox (~900 m x 100 m; the bbox
    # edge is a meridian, 2.6° off SWEREF's grid north here, hence the tolerance)
    from segtool.geo.fractions import hexagons_metric

    c = lu.filter(pl.col("category") == "c")
    area = (
        c["share"].to_numpy() * shapely.area(hexagons_metric(c["cell"].to_numpy(), SWEREF))
    ).sum()
    assert area == pytest.approx(900 * 100, rel=5e-3)


def test_rerun_byte_identical_and_errors(tmp_path, cli):
    rng = np.random.default_rng(5)
    polys = [shapely.Point(X0 + x, Y0 + y).buffer(r) for x, y, r in rng.uniform(0, 3000, (40, 3))]
    gpkg = write_layer(tmp_path / "lu.gpkg", polys, cat=[f"c{i % 5}" for i in range(40)])
    lake = tmp_path / "lake"
    assert cli("ingest", "landuse", gpkg, "--category", "cat", "--lake", lake).code == 0
    first = {p: p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()}
    assert cli("ingest", "landuse", gpkg, "--category", "cat", "--lake", lake).code == 0
    assert {p: p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()} == first
    r = cli("ingest", "landuse", gpkg, "--category", "landuse", "--lake", lake)
    assert r.code == 1 and "has no field 'landuse'" in r.err and "lu.gpkg" in r.err
    r = cli("ingest", "landuse", gpkg, "--category", "cat", "--bbox", "1,2,3", "--lake", lake)
    assert r.code == 1 and "--bbox" in r.err
    assert {p: p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()} == first
