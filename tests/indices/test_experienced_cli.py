"""`segtool indices experienced`: the lake and --visits paths agree, the JSON contract, no
device id in published outputs, suppression counts, places files, flows, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import h3
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from segtool.lake import Lake, Manifest

T0 = datetime(2024, 3, 4, 6, 0, tzinfo=UTC)  # a Monday, 07:00 Stockholm
CENTRE = h3.latlng_to_cell(59.33, 18.06, 9)
CELLS = [h3.str_to_int(c) for c in sorted(h3.grid_disk(CENTRE, 2))][:8]
INDEX_NAMES = {
    "place_segregation",
    "individual_segregation",
    "experienced_isolation",
    "residential_isolation",
    "exposure",
    "ice",
    "economic_segregation",
    "home_segregation",
    "places",
    "suppressed_places",
}


def world(seed=0, n=80):
    """Devices (ids are large pseudonyms) with homes, visits and a population by cell."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2**40, 2**63, n, dtype=np.uint64)
    groups = np.array(["Q1", "Q2", "Q3", "Q4"])[rng.integers(0, 4, n)]
    home = np.array(CELLS[:4], dtype=np.uint64)[rng.integers(0, 4, n)]
    rows = []
    for i in range(n):
        for _ in range(6):
            cell = int(home[i]) if rng.random() < 0.5 else CELLS[int(rng.integers(0, len(CELLS)))]
            start = T0 + timedelta(minutes=30 * int(rng.integers(0, 6)) + 5)
            rows.append((int(ids[i]), cell, start, float(rng.integers(300, 1500))))
    visits = pl.DataFrame(
        rows, schema=["device", "cell", "start", "dwell_s"], orient="row"
    ).with_columns(
        pl.col("device").cast(pl.UInt64),
        pl.col("cell").cast(pl.UInt64),
        pl.col("start").cast(pl.Datetime("us", "UTC")),
    )
    local = pl.col("start").dt.convert_time_zone("Europe/Stockholm")
    visits = visits.with_columns(
        (local.dt.hour().cast(pl.UInt8) * 2 + (local.dt.minute() >= 30).cast(pl.UInt8)).alias(
            "slot"
        ),
        pl.lit("weekday").alias("daytype"),
    )
    devices = pl.DataFrame(
        {
            "device": ids,
            "group": groups,
            "weight": rng.uniform(0.5, 2, n),
            "ses": rng.normal(size=n),
        }
    ).with_columns(pl.col("device").cast(pl.UInt64))
    homes = pl.DataFrame(
        {
            "device": ids,
            "home_cell": home,
            "nights": np.full(n, 5, dtype=np.uint16),
            "home_share": np.full(n, 0.8, dtype=np.float32),
        }
    ).with_columns(pl.col("device").cast(pl.UInt64), pl.col("home_cell").cast(pl.UInt64))
    population = pl.DataFrame(
        {
            "cell": [c for c in CELLS[:4] for _ in range(4)],
            "group": ["Q1", "Q2", "Q3", "Q4"] * 4,
            "count": rng.integers(10, 100, 16).astype(float),
        }
    ).with_columns(pl.col("cell").cast(pl.UInt64))
    return visits, devices, homes, population


def write_lake(root, visits, devices, homes=None, population=None):
    lake = Lake(root)
    for name, frame in (
        ("visits", visits),
        ("devices", devices),
        ("homes", homes),
        ("population", population),
    ):
        if frame is not None:
            with lake.writing(name, Manifest(command="test")) as tmp:
                frame.write_parquet(tmp / "part-0.parquet")
    return root


def flat(visits, devices, homes):
    return (
        visits.join(devices, on="device")
        .join(homes.select("device", pl.col("home_cell").alias("home")), on="device")
        .select(
            "device",
            pl.col("cell").alias("place"),
            "group",
            "dwell_s",
            "weight",
            "start",
            "slot",
            "daytype",
            "home",
            "ses",
        )
    )


@pytest.fixture(scope="module")
def data():
    return world()


ARGS = [
    "--min-devices",
    "3",
    "--ice-high",
    "Q4",
    "--ice-low",
    "Q1",
    "--leave-one-out",
    "--by",
    "slot",
    "--bootstrap",
    "8",
    "--null",
    "6",
    "--seed",
    "3",
    "-f",
    "json",
]


def test_lake_and_visits_paths_agree(cli, tmp_path, data):
    visits, devices, homes, population = data
    lake = write_lake(tmp_path / "lake", visits, devices, homes, population)
    r1 = cli("indices", "experienced", "--lake", lake, *ARGS)
    assert r1.code == 0, r1.err
    table = tmp_path / "visits.parquet"
    flat(visits, devices, homes).write_parquet(table)
    pop = tmp_path / "population.parquet"
    population.write_parquet(pop)
    r2 = cli(
        "indices",
        "experienced",
        "--visits",
        table,
        "--population",
        pop,
        "--lake",
        tmp_path / "none",
        *ARGS,
    )
    assert r2.code == 0, r2.err
    a, b = json.loads(r1.out), json.loads(r2.out)
    assert len(a) == len(b) > 50
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):
                assert x[k] == pytest.approx(y[k], abs=1e-12, rel=1e-12), (x, k)
            else:
                assert x[k] == y[k]
    names = {row["index"] for row in a}
    assert names == INDEX_NAMES
    comps = {row.get("component") for row in a if row["index"] == "residential_isolation"}
    assert comps == {"population", "device_homes"}
    # the lake path writes per-device results to the lake only
    assert (lake / "exposure" / "_manifest.json").exists()
    exp = pl.read_parquet(lake / "exposure" / "part-0.parquet")
    assert {"device", "segregation", "segregation_loo", "home_segregation"} <= set(exp.columns)
    assert not (tmp_path / "none" / "exposure").exists()


def test_json_contract_and_no_device_ids(cli, tmp_path, data):
    visits, devices, homes, population = data
    lake = write_lake(tmp_path / "lake", visits, devices, homes, population)
    out = tmp_path / "exp.json"
    places = tmp_path / "places.parquet"
    r = cli("indices", "experienced", "--lake", lake, *ARGS, "-o", out, "--places", places)
    assert r.code == 0, r.err
    rows = json.loads(out.read_text())
    allowed = {
        "index",
        "group",
        "other_group",
        "stratum",
        "component",
        "statistic",
        "value",
        "se",
        "ci_low",
        "ci_high",
        "debiased",
        "null_mean",
        "excess",
        "excess_ci_low",
        "excess_ci_high",
        "p_value",
    }
    for row in rows:
        assert {"index", "value"} <= row.keys() <= allowed
    ex = [r_ for r_ in rows if r_["index"] == "exposure"]
    assert {r_["other_group"] for r_ in ex} == {"Q1", "Q2", "Q3", "Q4"}
    assert all("se" in r_ and "null_mean" in r_ and "excess" in r_ for r_ in ex)
    # no device id anywhere in what is published
    ids = {str(int(d)) for d in devices["device"]}
    text = out.read_text() + (out.parent / "exp.json.manifest.json").read_text()
    assert not any(i in text for i in ids)
    p = pl.read_parquet(places)
    assert "device" not in p.columns
    assert not any(i in p.write_csv() for i in ids)
    assert (tmp_path / "places.parquet.manifest.json").exists()


def test_suppression_counts_are_published(cli, tmp_path, data):
    visits, devices, homes, population = data
    lake = write_lake(tmp_path / "lake", visits, devices)
    r = cli("indices", "experienced", "--lake", lake, "-k", "1000", "-f", "json")
    assert r.code == 1 and "at least 1000" in r.err
    counts = visits.group_by("cell").agg(pl.col("device").n_unique().alias("n"))
    k = int(counts["n"].median()) + 1
    r = cli("indices", "experienced", "--lake", lake, "-k", k, "-f", "json")
    assert r.code == 0, r.err
    rows = {
        row["index"]: row["value"] for row in json.loads(r.out) if row["index"].endswith("places")
    }
    assert rows["suppressed_places"] == counts.filter(pl.col("n") < k).height
    assert rows["places"] == counts.filter(pl.col("n") >= k).height
    assert "suppressed" in r.err


def test_geoparquet_places(cli, tmp_path, data):
    import shapely

    visits, devices, *_ = data
    lake = write_lake(tmp_path / "lake", visits, devices)
    out = tmp_path / "places.geoparquet"
    r = cli("indices", "experienced", "--lake", lake, "-k", "2", "--places", out, "-f", "csv")
    assert r.code == 0, r.err
    meta = json.loads(pq.read_schema(out).metadata[b"geo"])
    assert meta["primary_column"] == "geometry"
    t = pl.read_parquet(out)
    geoms = shapely.from_wkb(t["geometry"].to_numpy())
    assert (shapely.get_type_id(geoms) == 3).all()
    assert set(t["place"].to_list()) <= set(CELLS)
    c = shapely.centroid(geoms[0])
    assert abs(c.x - 18.06) < 0.05 and abs(c.y - 59.33) < 0.05  # lon/lat order


def test_geojson_places_read_back_with_pyogrio(cli, tmp_path, data):
    """--places x.geojson: the same places, values and hexagons as the GeoParquet layer,
    read back through GDAL; cells as H3 strings (a JSON number cannot hold 64 bits)."""
    import h3
    import shapely

    from segtool.geo.geojson import read_geojson

    visits, devices, *_ = data
    lake = write_lake(tmp_path / "lake", visits, devices)
    gj, gp = tmp_path / "places.geojson", tmp_path / "places.geoparquet"
    for out in (gj, gp):
        r = cli("indices", "experienced", "--lake", lake, "-k", "2", "--places", out, "-f", "csv")
        assert r.code == 0, r.err
    raw = json.loads(gj.read_text())
    assert raw["type"] == "FeatureCollection" and raw["features"]
    assert isinstance(raw["features"][0]["properties"]["place"], str)
    back = (
        read_geojson(gj)
        .with_columns(pl.col("place").map_elements(h3.str_to_int, return_dtype=pl.UInt64))
        .sort("place")
    )
    ref = pl.read_parquet(gp).sort("place")
    assert back["place"].to_list() == ref["place"].to_list()
    assert np.allclose(back["segregation"].to_numpy(), ref["segregation"].to_numpy(), atol=1e-12)
    a = shapely.from_wkb(back["geometry"].to_numpy())
    b = shapely.from_wkb(ref["geometry"].to_numpy())
    assert (shapely.get_type_id(a) == 3).all()
    assert shapely.equals_exact(a, b, tolerance=1e-6).all()  # RFC 7946: 7 decimals (~1 cm)
    assert (tmp_path / "places.geojson.manifest.json").exists()
    again = tmp_path / "again.geojson"
    cli("indices", "experienced", "--lake", lake, "-k", "2", "--places", again, "-f", "csv")
    assert again.read_bytes() == gj.read_bytes()  # a re-run gives the same bytes


def test_geo_needs_h3_places(cli, tmp_path):
    table = tmp_path / "v.csv"
    pl.DataFrame(
        {
            "device": [1, 2, 3],
            "place": ["shop", "shop", "shop"],
            "group": ["a", "b", "a"],
            "dwell_s": [1.0] * 3,
        }
    ).write_csv(table)
    r = cli(
        "indices",
        "experienced",
        "--visits",
        table,
        "-k",
        "1",
        "--places",
        tmp_path / "p.parquet",
        "--geo",
    )
    assert r.code == 1 and "H3" in r.err and "Traceback" not in r.err


def test_reruns_give_identical_bytes(cli, tmp_path, data):
    visits, devices, *_ = data
    lake = write_lake(tmp_path / "lake", visits, devices)
    outs = []
    for i in range(2):
        out = tmp_path / f"r{i}.csv"
        assert (
            cli(
                "indices",
                "experienced",
                "--lake",
                lake,
                "-k",
                "2",
                "--bootstrap",
                "5",
                "--seed",
                "9",
                "-o",
                out,
            ).code
            == 0
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_user_mistakes_exit_1(cli, tmp_path):
    table = tmp_path / "v.csv"
    pl.DataFrame({"device": [1], "place": ["A"]}).write_csv(table)
    for args in (
        ["--visits", table],
        ["--visits", tmp_path / "missing.csv"],
        ["--visits", table, "--flows", table],
        ["--lake", tmp_path / "empty"],
        ["--visits", table, "--bin", "soon"],
        ["--visits", table, "--ice-high", "a"],
    ):
        r = cli("indices", "experienced", *args)
        assert r.code == 1, (args, r.err)
        assert "Traceback" not in r.err


def test_help_has_an_example(cli):
    r = cli("indices", "experienced", "--help")
    assert r.code == 0
    assert "Examples" in r.out and "segtool indices experienced" in r.out


def test_index_filter(cli, tmp_path, data):
    visits, devices, *_ = data
    lake = write_lake(tmp_path / "lake", visits, devices)
    r = cli(
        "indices", "experienced", "--lake", lake, "-k", "2", "--index", "exposure", "-f", "json"
    )
    rows = json.loads(r.out)
    assert {x["index"] for x in rows} == {"exposure", "places", "suppressed_places"}
    r = cli("indices", "experienced", "--lake", lake, "-k", "2", "--index", "nope")
    assert r.code == 1


def test_flows_three_shapes(cli, tmp_path):
    by_group = pl.DataFrame(
        {
            "destination": ["A", "A", "B", "B"],
            "group": ["x", "y", "x", "y"],
            "count": [30.0, 10.0, 5.0, 5.0],
        }
    )
    shares = pl.DataFrame(
        {"destination": ["A", "B"], "x": [0.75, 0.5], "y": [0.25, 0.5], "count": [40.0, 10.0]}
    )
    origin = pl.DataFrame(
        {"origin": ["o1", "o2"], "destination": ["A", "B"], "count": [40.0, 10.0]}
    )
    pop = pl.DataFrame(
        {
            "unit": ["o1", "o1", "o2", "o2"],
            "group": ["x", "y", "x", "y"],
            "count": [75.0, 25.0, 1.0, 1.0],
        }
    )
    pop_file = tmp_path / "pop.csv"
    pop.write_csv(pop_file)
    for i, f in enumerate((by_group, shares, origin)):
        path = tmp_path / f"f{i}.csv"
        f.write_csv(path)
        places = tmp_path / f"p{i}.parquet"
        extra = ["--population", pop_file] if i == 2 else []
        r = cli(
            "indices",
            "experienced",
            "--flows",
            path,
            *extra,
            "-k",
            "1",
            "--places",
            places,
            "-f",
            "json",
        )
        assert r.code == 0, r.err
        p = pl.read_parquet(places).sort("place")
        assert p["segregation"].to_list() == pytest.approx([0.5, 0.0])
        assert p["count"].to_list() == pytest.approx([40.0, 10.0])
        rows = json.loads(r.out)
        mean = [
            x for x in rows if x["index"] == "place_segregation" and x.get("statistic") == "mean"
        ][0]
        assert mean["value"] == pytest.approx(0.4)
        assert {x["index"] for x in rows} == {"place_segregation", "places", "suppressed_places"}
    # suppression on flows counts people: B (count 10) goes with -k 20
    path = tmp_path / "f0.csv"
    r = cli("indices", "experienced", "--flows", path, "-k", "20", "-f", "json")
    rows = {x["index"]: x["value"] for x in json.loads(r.out) if x["index"].endswith("places")}
    assert rows == {"places": 1.0, "suppressed_places": 1.0}


def test_soft_devices_in_the_lake(cli, tmp_path, data):
    visits, devices, *_ = data
    rng = np.random.default_rng(1)
    shares = rng.dirichlet(np.ones(3), devices.height)
    soft = devices.select("device", "weight").with_columns(
        pl.Series("low", shares[:, 0]),
        pl.Series("mid", shares[:, 1]),
        pl.Series("high", shares[:, 2]),
    )
    lake = write_lake(tmp_path / "lake", visits, soft)
    r = cli(
        "indices",
        "experienced",
        "--lake",
        lake,
        "-k",
        "2",
        "-f",
        "json",
        "--index",
        "experienced_isolation",
    )
    assert r.code == 0, r.err
    assert {x.get("group") for x in json.loads(r.out) if x["index"] == "experienced_isolation"} == {
        "low",
        "mid",
        "high",
    }


def test_flows_from_the_lake(cli, tmp_path):
    lake = Lake(tmp_path / "lake")
    flows = pl.DataFrame(
        {
            "origin": ["o1", "o2", "o1"],
            "destination": [CELLS[0], CELLS[0], CELLS[1]],
            "count": [30.0, 10.0, 8.0],
        }
    ).with_columns(pl.col("destination").cast(pl.UInt64))
    pop = pl.DataFrame(
        {
            "unit": ["o1", "o1", "o2", "o2"],
            "group": ["x", "y", "x", "y"],
            "count": [9.0, 1.0, 1.0, 9.0],
        }
    )
    for name, frame in (("flows", flows), ("population", pop)):
        with lake.writing(name, Manifest(command="test")) as tmp:
            frame.write_parquet(tmp / "part-0.parquet")
    out = tmp_path / "p.geoparquet"
    r = cli(
        "indices",
        "experienced",
        "--lake",
        lake.root,
        "--use-flows",
        "-k",
        "1",
        "--places",
        out,
        "-f",
        "json",
    )
    assert r.code == 0, r.err
    p = pl.read_parquet(out).sort("tau_x")
    # cell 0: x = 27 + 1 = 28 of 40; cell 1: x = 7.2 of 8
    assert p["tau_x"].to_list() == pytest.approx([28 / 40, 0.9])
    assert "flow rows" in r.err
