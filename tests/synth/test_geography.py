"""The geographic files: areas, land use and POIs as users bring them (EPSG:3006)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyogrio
import shapely

from segtool.geo.crs import from_wgs84
from segtool.synth.city import LANDUSE


def read_layer(path):
    meta, _, wkb, fields = pyogrio.raw.read(path)
    names = list(meta["fields"])
    return meta, shapely.from_wkb(wkb), {n: fields[i] for i, n in enumerate(names)}


def test_areas_are_valid_deso_like_polygons(small_city):
    out, report = small_city
    info = pyogrio.read_info(out / "areas.gpkg")
    assert info["crs"] == "EPSG:3006"
    meta, geoms, fields = read_layer(out / "areas.gpkg")
    assert np.all(shapely.is_valid(geoms))
    assert set(shapely.get_type_id(geoms)) <= {3, 6}  # (Multi)Polygon
    deso = fields["deso"].astype(str)
    assert len(set(deso)) == len(deso) == report.areas
    assert all(len(d) == 9 and d.startswith("0180C") and d[5:].isdigit() for d in deso)
    # around central Stockholm in SWEREF 99 TM
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    assert 640_000 < x0 < x1 < 710_000 and 6_550_000 < y0 < y1 < 6_610_000
    # the areas tile the city: no overlaps
    union = shapely.union_all(geoms)
    assert np.isclose(shapely.area(geoms).sum(), shapely.area(union), rtol=1e-9)
    pop = pl.read_csv(out / "population.csv", schema_overrides={"deso": pl.String})
    assert pop.columns == ["deso", "group", "count"]
    assert set(pop["group"]) == {"Q1", "Q2", "Q3", "Q4"}
    per_area = pop.group_by("deso").agg(pl.col("count").sum())
    assert set(per_area["deso"]) == set(deso)
    assert per_area["count"].min() >= 700 and per_area["count"].max() <= 2700


def test_landuse_tiles_the_city_with_known_categories(small_city):
    out, _ = small_city
    assert pyogrio.read_info(out / "landuse.gpkg")["crs"] == "EPSG:3006"
    _, lu, fields = read_layer(out / "landuse.gpkg")
    cats = fields["category"].astype(str)
    assert set(cats) == set(LANDUSE)
    assert np.all(shapely.is_valid(lu))
    _, areas, _ = read_layer(out / "areas.gpkg")
    city = shapely.union_all(areas)
    # land use covers the city, without overlaps (shares per hexagon can sum to 1)
    assert np.isclose(shapely.area(lu).sum(), shapely.area(city), rtol=1e-6)
    assert np.isclose(shapely.area(shapely.union_all(lu)), shapely.area(city), rtol=1e-6)


def test_pois_are_points_with_categories_inside_the_city(small_city):
    out, report = small_city
    assert pyogrio.read_info(out / "pois.gpkg")["crs"] == "EPSG:3006"
    _, pois, fields = read_layer(out / "pois.gpkg")
    assert len(pois) == report.pois
    assert set(shapely.get_type_id(pois)) == {0}
    assert len(set(fields["category"].astype(str))) >= 8
    _, areas, _ = read_layer(out / "areas.gpkg")
    city = shapely.buffer(shapely.union_all(areas), 1.0)
    assert np.all(shapely.contains(city, pois))


def test_homes_lie_in_residential_land_of_their_area(small_city):
    out, _ = small_city
    devices = pl.read_parquet(out / "truth" / "devices.parquet")
    x, y = from_wgs84(devices["home_lat"].to_numpy(), devices["home_lon"].to_numpy(), "EPSG:3006")
    homes = shapely.buffer(shapely.points(x, y), 0.5)  # WGS84 round trip: well under a metre
    _, lu, lu_fields = read_layer(out / "landuse.gpkg")
    residential = shapely.union_all(lu[lu_fields["category"].astype(str) == "residential"])
    assert np.all(shapely.intersects(residential, homes))
    _, areas, a_fields = read_layer(out / "areas.gpkg")
    by_id = dict(zip(a_fields["deso"].astype(str), areas, strict=True))
    home_area = np.array([by_id[d] for d in devices["home_deso"].to_list()])
    assert np.all(shapely.intersects(home_area, homes))
    # home cells are H3 res 9 cells of the home points
    import polars_h3 as plh3

    cells = devices.select(plh3.latlng_to_cell("home_lat", "home_lon", 9).alias("c"))["c"]
    assert (cells == devices["home_cell"]).all()
