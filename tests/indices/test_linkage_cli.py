"""`segtool indices linkage`: the JSON contract, suppression, no device ids out, the edge
GeoParquet, same bytes on a re-run, flows, and bad input (a clear message and exit 1, or
a counted exclusion)."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pyarrow.parquet as pq
import pytest

from segtool.lake import Lake
from tests.indices.linkage_world import city, put

EDGE_FIELDS = {"network", "origin", "destination", "observed", "expected", "ratio", "distance_km", "devices", "home"}  # fmt: skip
FAST = ("--permutations", "20", "--bootstrap", "10")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("linkage") / "lake"
    lake, truth = city(root, side=4, per_area=10, visits_per_device=16, seed=2)
    return root, truth


@pytest.fixture
def copy(world, tmp_path):
    dst = tmp_path / "lake"
    shutil.copytree(world[0], dst)
    return dst


def test_edges_json_contract_and_privacy(cli, world):
    root, truth = world
    r = cli("indices", "linkage", "--lake", root, "-f", "json", "-k", "5", *FAST)
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert rows and set(rows[0]) == EDGE_FIELDS
    assert all(row["devices"] >= 5 for row in rows)
    assert {row["network"] for row in rows} == {"visitation", "copresence"}
    for dev in truth["ids"][:50]:
        assert str(int(dev)) not in r.out
    assert "placed in the network" in r.err and "suppressed (< 5 devices" in r.err
    assert "gravity β |Δ attribute|" in r.err


def test_homophily_and_mixing_tables(cli, world, tmp_path):
    root, _ = world
    out = tmp_path / "h.json"
    r = cli("indices", "linkage", "--lake", root, "--table", "homophily", "-o", out, *FAST)
    assert r.code == 0, r.err
    rows = json.loads(out.read_text())
    got = {(x["index"], x.get("network"), x.get("term")) for x in rows}
    for key in [
        ("assortativity", "visitation", "numeric"),
        ("assortativity", "copresence", "quartile"),
        ("same_quartile_share", "visitation", None),
        ("gravity", "visitation", "attribute_difference"),
        ("home_share", "visitation", None),
        ("edges_suppressed", "copresence", None),
    ]:
        assert key in got
    manifest = json.loads((tmp_path / "h.json.manifest.json").read_text())
    assert manifest["rows_in"] == manifest["summary"]["rows_in"]
    assert manifest["rows_rejected"] == 0
    r = cli("indices", "linkage", "--lake", root, "--table", "mixing", "-f", "csv", *FAST)
    mix = pl.read_csv(r.out.encode())
    assert mix.height == 32 and set(mix["origin_quartile"]) == {"Q1", "Q2", "Q3", "Q4"}
    sums = mix.group_by("network", "origin_quartile").agg(pl.col("share").sum())["share"]
    assert ((sums - 1).abs() < 1e-9).all()


def test_edge_lines_geoparquet_and_same_bytes(cli, world, tmp_path):
    import shapely

    root, _ = world
    paths = []
    for k in range(2):
        geo, out = tmp_path / f"e{k}.geoparquet", tmp_path / f"edges{k}.parquet"
        r = cli("indices", "linkage", "--lake", root, "--edges", geo, "-o", out, *FAST)
        assert r.code == 0, r.err
        paths.append((geo, out))
    assert paths[0][1].read_bytes() == paths[1][1].read_bytes()
    assert paths[0][0].read_bytes() == paths[1][0].read_bytes()
    meta = json.loads(pq.read_schema(paths[0][0]).metadata[b"geo"])
    assert meta["columns"]["geometry"]["geometry_types"] == ["LineString"]
    lines = pl.read_parquet(paths[0][0])
    edges = pl.read_parquet(paths[0][1])
    assert lines.height == edges.filter(~pl.col("home")).height
    geoms = shapely.from_wkb(lines["geometry"].to_numpy())
    assert (shapely.get_num_points(geoms) == 2).all()
    assert (tmp_path / "e0.geoparquet.manifest.json").exists()


def test_cells_units(cli, world):
    r = cli(
        "indices",
        "linkage",
        "--lake",
        world[0],
        "--units",
        "cells",
        "--res",
        "8",
        "-f",
        "json",
        *FAST,
    )
    assert r.code == 0, r.err
    assert all(len(x["origin"]) == 15 for x in json.loads(r.out))  # H3 hex strings


def test_flows_input(cli, world, tmp_path):
    flows = tmp_path / "flows.csv"
    pl.DataFrame(
        {
            "origin": ["A00", "A00", "A01", "A02", "A03", "A01", "A02", "A03"],
            "destination": ["A01", "A02", "A00", "A03", "A00", "A03", "A01", "A02"],
            "count": [40.0, 12.0, 33.0, 8.0, 20.0, 0.0, 15.0, 30.0],
        }
    ).write_csv(flows)
    r = cli(
        "indices", "linkage", "--lake", world[0], "--flows", flows, "-f", "json", "-k", "10", *FAST
    )
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert {x["network"] for x in rows} == {"visitation"}
    assert all(x["devices"] >= 10 for x in rows)
    assert "flow rows 8" in r.err and "bad_count 1" in r.err


def test_unknown_home_area_and_missing_residents_are_counted(cli, copy):
    lake = Lake(copy)
    homes = lake.scan("homes").collect()
    n_null = 10
    homes = homes.with_columns(
        pl.when(pl.int_range(pl.len()) < n_null).then(None).otherwise(pl.col("area")).alias("area")
    )
    put(lake, "homes", homes)
    pop = lake.scan("population").collect().filter(pl.col("unit") != "A05")
    put(lake, "population", pop)
    r = cli("indices", "linkage", "--lake", copy, "-f", "json", *FAST)
    assert r.code == 0, r.err
    assert "home_unknown 160" in r.err  # 10 devices × 16 visits
    assert "1 without an attribute, 1 without residents" in r.err


def test_attribute_file_with_missing_values(cli, world, tmp_path):
    att = tmp_path / "income.csv"
    pl.DataFrame(
        {
            "area": [f"A{i:02d}" for i in range(16)],
            "income": [float(i) if i % 5 else None for i in range(16)],
        }
    ).write_csv(att)
    r = cli(
        "indices",
        "linkage",
        "--lake",
        world[0],
        "--attributes",
        att,
        "--attribute",
        "income",
        *FAST,
        "-f",
        "json",
    )
    assert r.code == 0, r.err
    assert "4 without an attribute" in r.err
    bad = cli(
        "indices",
        "linkage",
        "--lake",
        world[0],
        "--attributes",
        att,
        "--attribute",
        "wealth",
        *FAST,
    )
    assert bad.code == 1 and "no column 'wealth'" in bad.err


@pytest.mark.parametrize(
    "args, message",
    [
        (("--units", "cells", "--res", "0"), "at least two units"),
        (("--units", "cells", "--res", "10"), "finer than the visits' resolution"),
        (("--attribute", "share:Q9"), "no group 'Q9'"),
        (("--attribute", "wealth"), "use median, share:<group>"),
    ],
)
def test_bad_options_exit_1_with_a_message(cli, world, args, message):
    r = cli("indices", "linkage", "--lake", world[0], *args, *FAST)
    assert r.code == 1, r.err
    assert message in r.err and "Traceback" not in r.err


def test_missing_datasets(cli, copy, tmp_path):
    shutil.rmtree(copy / "homes")
    r = cli("indices", "linkage", "--lake", copy)
    assert r.code == 1 and "no homes/ dataset" in r.err
    r = cli("indices", "linkage", "--lake", tmp_path / "nowhere")
    assert r.code == 1


def test_help_has_examples(cli):
    r = cli("indices", "linkage", "--help")
    assert r.code == 0 and "Examples" in r.out and "--edges" in r.out
