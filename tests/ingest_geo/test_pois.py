"""`segtool ingest pois`: counts per cell and category; a SWEREF 99 TM point lands in the
cell of its known WGS84 position; polygons become points; rejects with reasons."""

import json

import h3
import polars as pl
import shapely

from segtool.ingest.pois import ingest_pois

from .conftest import CITY_HALL_3006, CITY_HALL_LATLON, X0, Y0, write_layer


def read(lake, name):
    return pl.read_parquet(lake / name / "*.parquet")


def test_counts_cells_and_rejects(tmp_path, cli):
    hall = shapely.Point(*CITY_HALL_3006)
    geoms = [
        hall,
        hall,
        shapely.Point(CITY_HALL_3006[0] + 0.5, CITY_HALL_3006[1]),
        hall.buffer(2),  # a building polygon: placed at a point on its surface
        None,  # empty_geometry
        hall,  # empty_category
        shapely.Point(X0 + 300_000, Y0),  # outside_bbox
    ]
    cats = ["cafe", "cafe", "school", "cafe", "cafe", None, "cafe"]
    gpkg = write_layer(tmp_path / "poi.gpkg", geoms, amenity=cats)
    lake = tmp_path / "lake"
    r = cli(
        "ingest",
        "pois",
        gpkg,
        "--category",
        "amenity",
        "--res",
        "12",
        "--bbox",
        "17,59,19,60",
        "--lake",
        lake,
        "--format",
        "json",
    )
    assert r.code == 0, r.err
    [row] = json.loads(r.out)
    assert (row["rows_in"], row["rows_written"], row["rows_rejected"]) == (7, 4, 3)
    pois = read(lake, "pois")
    assert pois.schema == {"cell": pl.UInt64, "category": pl.String, "n": pl.UInt32}
    cell = h3.str_to_int(h3.latlng_to_cell(*CITY_HALL_LATLON, 12))
    assert pois.filter(pl.col("cell") == cell).to_dict(as_series=False) == {
        "cell": [cell, cell],
        "category": ["cafe", "school"],
        "n": [3, 1],
    }
    m = json.loads((lake / "pois" / "_manifest.json").read_text())
    assert m["rejected_by_reason"] == {"empty_category": 1, "empty_geometry": 1, "outside_bbox": 1}
    assert m["converted_to_points"] == 1
    assert sorted(read(lake, "_rejects/pois")["line"].to_list()) == [5, 6, 7]


def test_wrong_crs_gives_out_of_range_rejects(tmp_path):
    # SWEREF metres declared as lon/lat: not on the globe
    geoms = [shapely.Point(*CITY_HALL_3006), shapely.Point(18.05, 59.33)]
    path = write_layer(tmp_path / "p.geojson", geoms, crs="EPSG:4326", kind=["a", "b"])
    report = ingest_pois(path, tmp_path / "lake", category="kind")
    assert report.stats("pois").rejected_by_reason == {"coordinates_out_of_range": 1}


def test_rerun_identical(tmp_path):
    geoms = [shapely.Point(X0 + i * 37.0, Y0 + i * 11.0) for i in range(50)]
    path = write_layer(tmp_path / "p.shp", geoms, kind=[f"k{i % 3}" for i in range(50)])
    ingest_pois(path, tmp_path / "lake", category="kind")
    first = {p: p.read_bytes() for p in sorted((tmp_path / "lake").rglob("*")) if p.is_file()}
    ingest_pois(path, tmp_path / "lake", category="kind")
    assert {
        p: p.read_bytes() for p in sorted((tmp_path / "lake").rglob("*")) if p.is_file()
    } == first
    m = json.loads((tmp_path / "lake" / "pois" / "_manifest.json").read_text())
    assert {i["path"].rsplit(".", 1)[1] for i in m["inputs"]} >= {"shp", "shx", "dbf", "prj"}


def test_help_has_examples(cli):
    for cmd in ("population", "landuse", "pois"):
        r = cli("ingest", cmd, "--help")
        assert r.code == 0 and "Examples" in r.out and f"segtool ingest {cmd}" in r.out
