"""Reading geometry files: every format the same, and clear errors naming the file."""

import numpy as np
import pytest
import shapely

from segtool.errors import InputError, UsageError
from segtool.ingest.geofile import read_geofile

from .conftest import SWEREF, grid_areas, write_layer


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson", ".fgb", ".parquet"])
def test_formats_read_alike(tmp_path, suffix):
    ids, geoms = grid_areas()
    crs = "EPSG:4326" if suffix == ".geojson" else SWEREF
    if crs == "EPSG:4326":
        from segtool.geo.project import transform_geoms

        geoms = list(transform_geoms(np.array(geoms), SWEREF, crs))
    path = write_layer(tmp_path / f"a{suffix}", geoms, crs=crs, deso=ids, n=list(range(6)))
    layer = read_geofile(path, fields=["deso"])
    assert layer.crs == crs
    assert layer.attributes.columns == ["deso"]
    # FlatGeobuf's writer orders features by its spatial index: compare by id
    got = dict(zip(layer.attributes["deso"].to_list(), layer.geometry, strict=True))
    assert sorted(got) == ids and len(layer) == 6
    for i, g in zip(ids, geoms, strict=True):
        assert shapely.equals_exact(got[i].normalize(), g.normalize(), tolerance=1e-9)
    assert read_geofile(path, all_fields=True).attributes.columns == ["deso", "n"]


def test_missing_field_names_file_and_fields(tmp_path, areas_gpkg):
    with pytest.raises(InputError) as e:
        read_geofile(areas_gpkg, fields=["DeSO"])
    msg = str(e.value)
    assert str(areas_gpkg) in msg and "'DeSO'" in msg and "deso" in msg


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_missing_crs(tmp_path):
    ids, geoms = grid_areas()
    path = write_layer(tmp_path / "nocrs.shp", geoms, crs=None, deso=ids)
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(InputError, match="nocrs.shp declares no coordinate reference system"):
        read_geofile(path, fields=["deso"])
    assert read_geofile(path, fields=["deso"], crs="EPSG:3006").crs == "EPSG:3006"


def test_crs_option_never_overrides_a_declared_one(areas_gpkg):
    with pytest.raises(UsageError, match="contradicts"):
        read_geofile(areas_gpkg, fields=["deso"], crs="EPSG:4326")


def test_not_a_geometry_file(tmp_path):
    junk = tmp_path / "junk.gpkg"
    junk.write_text("this is not a GeoPackage\n")
    with pytest.raises(InputError, match="junk.gpkg is not a geometry file"):
        read_geofile(junk)
    table = tmp_path / "plain.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="plain.csv is a table without geometry"):
        read_geofile(table)
    pq = tmp_path / "plain.parquet"
    import polars as pl

    pl.DataFrame({"a": [1]}).write_parquet(pq)
    with pytest.raises(InputError, match="plain.parquet is a Parquet table without geometry"):
        read_geofile(pq)


def test_empty_files(tmp_path):
    zero = tmp_path / "zero.gpkg"
    zero.write_bytes(b"")
    with pytest.raises(InputError, match="zero.gpkg is empty"):
        read_geofile(zero)
    path = write_layer(tmp_path / "nofeatures.gpkg", [], deso=[])
    with pytest.raises(InputError, match="nofeatures.gpkg has no features"):
        read_geofile(path, fields=["deso"])
    with pytest.raises(InputError, match="no such file"):
        read_geofile(tmp_path / "absent.gpkg")


def test_several_layers_need_layer(tmp_path):
    import geopandas as gpd
    import pyogrio

    ids, geoms = grid_areas()
    path = tmp_path / "two.gpkg"
    frame = gpd.GeoDataFrame({"deso": ids}, geometry=geoms, crs=SWEREF)
    pyogrio.write_dataframe(frame, path, layer="deso")
    pyogrio.write_dataframe(frame, path, layer="regso", append=True)
    with pytest.raises(UsageError, match="holds 2 layers"):
        read_geofile(path, fields=["deso"])
    assert read_geofile(path, fields=["deso"], layer="regso").layer == "regso"
    with pytest.raises(InputError, match="no layer 'kommun'"):
        read_geofile(path, fields=["deso"], layer="kommun")


def test_geoparquet_without_crs_key_is_crs84_and_null_crs_is_missing(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    geoms = [shapely.box(18.0, 59.3, 18.01, 59.31)]
    table = pa.table({"id": ["a"], "geometry": shapely.to_wkb(geoms)})
    meta = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"]}},
    }
    pq.write_table(
        table.replace_schema_metadata({b"geo": json.dumps(meta).encode()}), tmp_path / "a.parquet"
    )
    assert read_geofile(tmp_path / "a.parquet", fields=["id"]).crs == "EPSG:4326"
    meta["columns"]["geometry"]["crs"] = None
    pq.write_table(
        table.replace_schema_metadata({b"geo": json.dumps(meta).encode()}), tmp_path / "b.parquet"
    )
    with pytest.raises(InputError, match="b.parquet declares no coordinate reference system"):
        read_geofile(tmp_path / "b.parquet")


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
@pytest.mark.parametrize("command", ["landuse", "pois"])
def test_broken_geometry_files_exit_1_naming_the_file(tmp_path, cli, command):
    ids, geoms = grid_areas()
    cases = {}
    cases["junk.gpkg"] = tmp_path / "junk.gpkg"
    cases["junk.gpkg"].write_text("not a geopackage")
    cases["zero.fgb"] = tmp_path / "zero.fgb"
    cases["zero.fgb"].write_bytes(b"")
    cases["table.csv"] = tmp_path / "table.csv"
    cases["table.csv"].write_text("kind,x\na,1\n")
    cases["nocrs.shp"] = write_layer(tmp_path / "nocrs.shp", geoms, crs=None, kind=ids)
    cases["nofeat.gpkg"] = write_layer(tmp_path / "nofeat.gpkg", [], kind=[])
    cases["nofield.gpkg"] = write_layer(tmp_path / "nofield.gpkg", geoms, other=ids)
    lake = tmp_path / "lake"
    for name, path in cases.items():
        r = cli("ingest", command, path, "--category", "kind", "--lake", lake)
        assert r.code == 1, (name, r.err)
        assert name in r.err and "Traceback" not in r.err, r.err
    assert not lake.exists() or not any(lake.rglob("*.parquet"))
