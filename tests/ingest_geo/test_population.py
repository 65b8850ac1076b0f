"""`segtool ingest population`: long/wide/Parquet/geometry-file tables, rejects, totals
preserved by apportionment (oracle: PySAL tobler's area_interpolate on independently
built hexagons), GeoParquet areas, byte-identical re-runs, no partial datasets."""

import json

import h3
import numpy as np
import polars as pl
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from segtool.errors import SegtoolError
from segtool.geo.fractions import area_fractions
from segtool.ingest.population import apportion, ingest_population
from segtool.lake import Lake

from .conftest import (
    CITY_HALL_3006,
    CITY_HALL_LATLON,
    SWEREF,
    grid_areas,
    voronoi_areas,
    write_layer,
)

TO_M = Transformer.from_crs("EPSG:4326", SWEREF, always_xy=True)


def read(lake, name):
    return pl.read_parquet(lake / name / "*.parquet")


def manifest(lake, name):
    return json.loads((lake / name / "_manifest.json").read_text())


def test_wide_csv_with_rejects(tmp_path, areas_gpkg, cli):
    csv = tmp_path / "income.csv"
    csv.write_text(
        "deso,name,Q1,Q2\n"
        "A00,x,10,5\n"
        "A01,x,20,5\n"
        "A10,x,30,5\n"
        "A11,x,40,5\n"
        "A20,x,50,5.5\n"
        "A21,x,60,-1\n"  # negative
        "ZZZ,x,1,1\n"  # unknown area
        "A00,x,..,2\n"  # unparseable (SCB's suppression mark)
        ",x,3,3\n"  # empty id
    )
    lake = tmp_path / "lake"
    r = cli("ingest", "population", csv, "--areas", areas_gpkg, "--area-id", "deso", "--lake", lake)
    assert r.code == 0, r.err
    pop = read(lake, "population")
    assert pop.schema == {"unit": pl.String, "group": pl.String, "count": pl.Float64}
    assert pop.height == 10 and pop["count"].sum() == 175.5
    m = manifest(lake, "population")
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (9, 5, 4)
    assert m["rejected_by_reason"] == {
        "empty_area_id": 1,
        "negative_count": 1,
        "unknown_area": 1,
        "unparseable_count": 1,
    }
    rej = read(lake, "_rejects/population").sort("line")
    assert rej["line"].to_list() == [7, 8, 9, 10]
    assert rej["reason"].to_list() == [
        "negative_count",
        "unknown_area",
        "unparseable_count",
        "empty_area_id",
    ]
    assert rej["Q1"].to_list() == ["60", "1", "..", "3"]  # original text kept
    assert rej["source_file"].unique().to_list() == [str(csv)]
    assert "read 9, wrote 5, rejected 4" in r.err
    # the table's groups were found automatically, the name column left out
    assert m["groups"] == ["Q1", "Q2"]
    cells = read(lake, "population_cells")
    assert cells.schema == {"cell": pl.UInt64, "group": pl.String, "count": pl.Float64}
    totals = cells.group_by("group").agg(pl.col("count").sum()).sort("group")
    assert totals["count"].to_list() == pytest.approx([150.0, 25.5], rel=1e-12)


def test_apportionment_matches_tobler_and_preserves_totals(tmp_path):
    import geopandas as gpd
    from tobler.area_weighted import area_interpolate

    ids, polys = voronoi_areas()
    rng = np.random.default_rng(7)
    q1, q2 = rng.integers(0, 500, len(ids)).astype(float), rng.uniform(0, 300, len(ids))
    gpkg = write_layer(tmp_path / "v.gpkg", polys, regso=ids)
    table = pl.DataFrame(
        {"regso": ids * 2, "group": ["low"] * len(ids) + ["high"] * len(ids), "n": [*q1, *q2]}
    )
    table.write_parquet(tmp_path / "long.parquet")
    lake = tmp_path / "lake"
    report = ingest_population(
        tmp_path / "long.parquet", lake, areas=gpkg, area_id="regso", count="n", res=10
    )
    assert report.stats("population").rows_rejected == 0
    cells = read(lake, "population_cells")
    # overall totals preserved
    tot = cells.group_by("group").agg(pl.col("count").sum())
    assert dict(tot.iter_rows()) == pytest.approx({"low": q1.sum(), "high": q2.sum()}, rel=1e-9)
    # per area: apportion each area alone and compare with its count
    fr = area_fractions(np.array(polys, dtype=object), SWEREF, 10)
    fr = fr.with_columns(pl.Series("unit", ids).gather(fr["index"]))
    counts = read(lake, "population")
    for unit in ids:
        one = apportion(counts.filter(pl.col("unit") == unit), fr)
        expect = counts.filter(pl.col("unit") == unit)["count"].sum()
        assert one["count"].sum() == pytest.approx(expect, rel=1e-9, abs=1e-9)
    # cell by cell against PySAL tobler on hexagons built with h3-py + pyproj
    cell_ids = cells["cell"].unique().sort().to_list()
    hexes = []
    for c in cell_ids:
        b = h3.cell_to_boundary(h3.int_to_str(c))
        xs, ys = TO_M.transform([p[1] for p in b], [p[0] for p in b])
        hexes.append(shapely.Polygon(list(zip(xs, ys, strict=True))))
    source = gpd.GeoDataFrame({"low": q1, "high": q2}, geometry=polys, crs=SWEREF)
    target = gpd.GeoDataFrame({"cell": cell_ids}, geometry=hexes, crs=SWEREF)
    ours = cells.pivot(on="group", index="cell", values="count").sort("cell").fill_null(0.0)
    # brute force in float64: every (area, hexagon) pair, weight = overlap / area
    overlap = shapely.area(
        shapely.intersection(np.array(polys, dtype=object)[:, None], np.array(hexes)[None, :])
    )
    weights = overlap / shapely.area(np.array(polys, dtype=object))[:, None]
    assert np.allclose(ours["low"].to_numpy(), q1 @ weights, rtol=1e-9, atol=1e-9)
    assert np.allclose(ours["high"].to_numpy(), q2 @ weights, rtol=1e-9, atol=1e-9)
    # the peer, PySAL tobler, keeps its area table in float32: agreement to ~1e-6
    peer = area_interpolate(source, target, extensive_variables=["low", "high"])
    assert np.allclose(ours["low"].to_numpy(), peer["low"].to_numpy(), rtol=2e-6, atol=1e-6)
    assert np.allclose(ours["high"].to_numpy(), peer["high"].to_numpy(), rtol=2e-6, atol=1e-6)


def test_long_semicolon_csv_with_decimal_comma(tmp_path, areas_gpkg):
    csv = tmp_path / "long.csv"
    csv.write_bytes(
        "omr\u00e5de;grupp;antal\nA00;f\u00f6dd i Sverige;12,5\nA00;utrikes f\u00f6dd;3\nA01;utrikes f\u00f6dd;abc\n".encode(
            "cp1252"
        )
    )
    lake = tmp_path / "lake"
    report = ingest_population(csv, lake, areas=areas_gpkg, area_id="deso", table_id="omr\u00e5de")
    assert "Windows-1252" in " ".join(report.notes)
    pop = read(lake, "population")
    assert pop["group"].to_list() == ["f\u00f6dd i Sverige", "utrikes f\u00f6dd"]
    assert pop["count"].to_list() == [12.5, 3.0]
    assert report.stats("population").rejected_by_reason == {"unparseable_count": 1}


def test_duplicate_rows_are_summed_and_noted(tmp_path, areas_gpkg):
    csv = tmp_path / "dup.csv"
    csv.write_text("deso,group,count\nA00,a,1\nA00,a,2\nA01,a,4\n")
    report = ingest_population(csv, tmp_path / "lake", areas=areas_gpkg, area_id="deso")
    assert read(tmp_path / "lake", "population")["count"].to_list() == [3.0, 4.0]
    assert any("summed 1 duplicate" in n for n in report.notes)


def test_grid_square_layer_with_its_own_counts(tmp_path):
    # SCB-style 250 m squares with counts as attributes: FILE is the areas too
    ids, squares = grid_areas(4, 4, 250.0)
    gpkg = write_layer(tmp_path / "grid.gpkg", squares, rutid=ids, men=[1.0] * 16, women=[2.0] * 16)
    lake = tmp_path / "lake"
    report = ingest_population(gpkg, lake, area_id="rutid", res=11)
    assert report.extra["groups"] == ["men", "women"]
    cells = read(lake, "population_cells")
    assert cells.filter(pl.col("group") == "women")["count"].sum() == pytest.approx(32.0, rel=1e-12)
    assert read(lake, "areas").height == 16


def test_points_in_sweref_land_in_the_cell_of_their_wgs84_position(tmp_path):
    pts = [shapely.Point(*CITY_HALL_3006), shapely.Point(*CITY_HALL_3006), None]
    gpkg = write_layer(tmp_path / "addr.gpkg", pts, a=[1.0, 2.0, 5.0], b=[0.0, 1.0, 1.0])
    lake = tmp_path / "lake"
    report = ingest_population(gpkg, lake, res=12)
    pop = read(lake, "population")
    cell = h3.str_to_int(h3.latlng_to_cell(*CITY_HALL_LATLON, 12))
    assert pop.schema["cell"] == pl.UInt64
    assert pop.to_dict(as_series=False) == {
        "cell": [cell, cell],
        "group": ["a", "b"],
        "count": [3.0, 1.0],
    }
    assert report.stats("population").rejected_by_reason == {"empty_geometry": 1}
    assert read(lake, "population_cells").equals(pop)


def test_areas_geoparquet_opens_in_geopandas(tmp_path, areas_gpkg):
    import geopandas as gpd

    csv = tmp_path / "c.csv"
    csv.write_text("deso,group,count\nA00,a,1\n")
    lake = tmp_path / "lake"
    ingest_population(csv, lake, areas=areas_gpkg, area_id="deso")
    frame = gpd.read_parquet(lake / "areas" / "part-0.parquet")
    # GeoParquet without a "crs" key means OGC:CRS84: WGS84 in (lon, lat) order
    assert frame.crs.equals("OGC:CRS84")
    assert list(frame["area"]) == [f"A{i}{j}" for i in range(3) for j in range(2)]
    ids, squares = grid_areas()
    back = frame.to_crs(SWEREF)
    assert np.allclose(back.area, [s.area for s in squares], rtol=1e-6)
    assert back.geometry.iloc[0].centroid.distance(squares[0].centroid) < 0.01


def test_rerun_is_byte_identical(tmp_path):
    ids, polys = voronoi_areas(seed=3)
    gpkg = write_layer(tmp_path / "v.gpkg", polys, regso=ids)
    csv = tmp_path / "w.csv"
    rows = "\n".join(f"{i},{k * 1.1},{k * 0.7}" for k, i in enumerate(ids))
    csv.write_text("regso,g1,g2\n" + rows + "\nnope,1,1\n")

    def snapshot(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    ingest_population(csv, tmp_path / "lake", areas=gpkg, area_id="regso")
    first = snapshot(tmp_path / "lake")
    ingest_population(csv, tmp_path / "lake", areas=gpkg, area_id="regso")
    assert snapshot(tmp_path / "lake") == first
    assert len(first) == 10  # 5 datasets, each a part file and a manifest


def test_broken_areas_file_exits_1_and_leaves_lake_alone(tmp_path, areas_gpkg, cli):
    csv = tmp_path / "c.csv"
    csv.write_text("deso,group,count\nA00,a,1\n")
    lake = tmp_path / "lake"
    assert (
        cli(
            "ingest", "population", csv, "--areas", areas_gpkg, "--area-id", "deso", "--lake", lake
        ).code
        == 0
    )
    before = {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    broken = tmp_path / "broken.gpkg"
    broken.write_bytes(areas_gpkg.read_bytes()[:3000])
    for args in (
        ("--areas", broken, "--area-id", "deso"),
        ("--areas", areas_gpkg, "--area-id", "DESO"),
        ("--areas", csv, "--area-id", "deso"),
    ):
        r = cli("ingest", "population", csv, *args, "--lake", lake)
        assert r.code == 1, r.err
        assert "Traceback" not in r.err
        assert str(args[1]) in r.err.replace("\n", "")
    assert {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()} == before
    assert not [p for p in lake.rglob(".tmp-*")]


def test_usage_errors(tmp_path, areas_gpkg, cli):
    csv = tmp_path / "c.csv"
    csv.write_text("deso,group,count\nA00,a,1\n")
    lake = tmp_path / "lake"
    r = cli("ingest", "population", csv, "--lake", lake)
    assert r.code == 1 and "--areas" in r.err
    r = cli("ingest", "population", csv, "--areas", areas_gpkg, "--lake", lake)
    assert r.code == 1 and "--area-id" in r.err
    r = cli(
        "ingest",
        "population",
        csv,
        "--areas",
        areas_gpkg,
        "--area-id",
        "deso",
        "--res",
        "13",
        "--lake",
        lake,
    )
    assert r.code == 1
    empty = tmp_path / "e.csv"
    empty.write_text("")
    r = cli(
        "ingest", "population", empty, "--areas", areas_gpkg, "--area-id", "deso", "--lake", lake
    )
    assert r.code == 1 and "e.csv is empty" in r.err
    assert not Lake(lake).datasets()


cell_text = st.one_of(
    st.sampled_from(["", "0", "12", "3.5", "-1", "..", "1e3", "nan", "x", " 7 ", "1,5"]),
    st.text(alphabet="0123456789-.,e ", max_size=5),
)


@pytest.fixture(scope="module")
def prop_areas(tmp_path_factory):
    ids, squares = grid_areas()
    return write_layer(tmp_path_factory.mktemp("areas") / "a.gpkg", squares, deso=ids)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["A00", "A01", "A21", "", "Q9", " A10"]), cell_text, cell_text),
        min_size=1,
        max_size=12,
    ),
    sep=st.sampled_from([",", ";"]),
)
def test_property_every_row_is_accounted_for(tmp_path_factory, prop_areas, rows, sep):
    """Malformed counts never crash: a clean error, or every row written or rejected."""
    tmp = tmp_path_factory.mktemp("prop")
    areas = prop_areas
    quote = lambda v: f'"{v}"' if sep in v else v  # noqa: E731
    text = f"deso{sep}g1{sep}g2\n" + "".join(sep.join(quote(v) for v in row) + "\n" for row in rows)
    (tmp / "t.csv").write_text(text)
    params = dict(areas=areas, area_id="deso", wide=True, groups=("g1", "g2"))
    try:
        report = ingest_population(tmp / "t.csv", tmp / "lake", **params)
    except SegtoolError:
        return  # a clean, named error is fine
    s = report.stats("population")
    assert s.rows_in == len(rows) == s.rows_written + s.rows_rejected
    m = manifest(tmp / "lake", "population")
    assert m["rows_in"] == len(rows) and sum(m["rejected_by_reason"].values()) == s.rows_rejected
    rej = read(tmp / "lake", "_rejects/population")
    assert rej.height == s.rows_rejected
    assert (read(tmp / "lake", "population")["count"] >= 0).all()


def test_features_sharing_an_id_are_merged(tmp_path):
    ids, squares = grid_areas()
    # B is split over two features (listed apart), one of them a multipolygon
    geoms = [squares[0], shapely.MultiPolygon([squares[1], squares[2]]), squares[3], squares[4]]
    names = ["B", "A", "C", "B"]
    gpkg = write_layer(tmp_path / "dup.gpkg", geoms, deso=names)
    csv = tmp_path / "c.csv"
    csv.write_text("deso,group,count\nA,g,10\nB,g,20\nC,g,30\n")
    lake = tmp_path / "lake"
    report = ingest_population(csv, lake, areas=gpkg, area_id="deso", res=10)
    assert report.extra["features_merged"] == 1
    areas = read(lake, "areas")
    assert areas["area"].to_list() == ["A", "B", "C"]
    merged = shapely.from_wkb(areas["geometry"][1])
    from segtool.geo.project import transform_geoms

    back = transform_geoms(np.array([merged]), "EPSG:4326", SWEREF)[0]
    assert back.area == pytest.approx(squares[0].area + squares[4].area, rel=1e-6)
    cells = read(lake, "population_cells")
    assert cells["count"].sum() == pytest.approx(60.0, rel=1e-12)


def test_points_from_table_coordinates(tmp_path, cli):
    e, n = CITY_HALL_3006
    csv = tmp_path / "pts.csv"
    csv.write_text(
        "east;north;a;b\n"
        f"{e};{n};1;2\n"
        f"{str(e).replace('.', ',')};{n};1,5;0\n"  # decimal commas in a ;-file
        f"x;{n};1;1\n"  # unparseable_coordinates
        f"{e};1e12;1;1\n"  # coordinates_out_of_range
        f"{e};{n};-1;1\n"  # negative_count
    )
    lake = tmp_path / "lake"
    r = cli("ingest", "population", csv, "--x", "east", "--y", "north", "--crs", "EPSG:3006",
            "--res", "12", "--lake", lake)  # fmt: skip
    assert r.code == 0, r.err
    pop = read(lake, "population")
    cell = h3.str_to_int(h3.latlng_to_cell(*CITY_HALL_LATLON, 12))
    assert pop.to_dict(as_series=False) == {
        "cell": [cell, cell],
        "group": ["a", "b"],
        "count": [2.5, 2.0],
    }
    assert manifest(lake, "population")["rejected_by_reason"] == {
        "coordinates_out_of_range": 1,
        "negative_count": 1,
        "unparseable_coordinates": 1,
    }
    assert sorted(read(lake, "_rejects/population")["line"].to_list()) == [4, 5, 6]
    r = cli("ingest", "population", csv, "--x", "east", "--lake", lake)
    assert r.code == 1 and "--x and --y" in r.err
