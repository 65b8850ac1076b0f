"""`segtool indices landuse`: the JSON contract, agreement with the experienced indices,
suppression counts, the --places path, the hexagon layer, manifests and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import h3
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from segtool.lake import Lake, Manifest

T0 = datetime(2024, 3, 4, 6, 0, tzinfo=UTC)
CELLS = [h3.str_to_int(c) for c in sorted(h3.grid_disk(h3.latlng_to_cell(59.33, 18.06, 9), 2))]
USES = ["residential", "park", "commercial"]


def make_lake(root, n=90, seed=0):
    """Devices of four groups visiting 10 cells (two visited by few devices), land use
    covering 9 of them (one only 30 %), POIs in a few."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2**40, 2**63, n, dtype=np.uint64)
    groups = np.array(["Q1", "Q2", "Q3", "Q4"])[rng.integers(0, 4, n)]
    rows = []
    for i in range(n):
        for j in range(5):
            c = CELLS[int(rng.integers(0, 8))] if i >= 3 else CELLS[8 + i % 2]
            start = T0 + timedelta(hours=j)
            rows.append((int(ids[i]), c, start, float(rng.integers(600, 3000)), 0, "weekday"))
    visits = pl.DataFrame(
        rows, schema=["device", "cell", "start", "dwell_s", "slot", "daytype"], orient="row"
    ).with_columns(
        pl.col("device").cast(pl.UInt64),
        pl.col("cell").cast(pl.UInt64),
        pl.col("start").cast(pl.Datetime("us", "UTC")),
        pl.col("slot").cast(pl.UInt8),
    )
    devices = pl.DataFrame(
        {"device": ids, "group": groups, "weight": rng.uniform(0.5, 2, n)}
    ).with_columns(pl.col("device").cast(pl.UInt64))
    land_rows = []
    for k, c in enumerate(CELLS[:9]):
        shares = rng.dirichlet(np.ones(3))
        if k == 7:
            shares = shares * 0.3  # low coverage
        land_rows += [(c, u, float(s)) for u, s in zip(USES, shares, strict=True)]
    landuse = pl.DataFrame(
        land_rows, schema=["cell", "category", "share"], orient="row"
    ).with_columns(pl.col("cell").cast(pl.UInt64))
    pois = pl.DataFrame(
        {
            "cell": [CELLS[0], CELLS[0], CELLS[1], CELLS[2]],
            "category": ["cafe", "school", "cafe", "gym"],
            "n": [2, 1, 3, 1],
        }
    ).with_columns(pl.col("cell").cast(pl.UInt64), pl.col("n").cast(pl.UInt32))
    lake = Lake(root)
    for name, frame in (
        ("visits", visits),
        ("devices", devices),
        ("landuse", landuse),
        ("pois", pois),
    ):
        with lake.writing(name, Manifest(command="test")) as tmp:
            frame.write_parquet(tmp / "part-0.parquet")
    return root, ids


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return make_lake(tmp_path_factory.mktemp("lu") / "lake")


ALLOWED = {
    "index", "group", "other_group", "component", "value", "weight", "places",
    "se", "ci_low", "ci_high", "p_value",
}  # fmt: skip


def test_json_contract_counts_and_agreement_with_experienced(cli, tmp_path, lake):
    root, ids = lake
    out = tmp_path / "landuse.json"
    r = cli("indices", "landuse", "--lake", root, "--bootstrap", "50", "--seed", "1", "-o", out)
    assert r.code == 0, r.err
    rows = json.loads(out.read_text())
    assert all(set(row) <= ALLOWED for row in rows)
    names = {row["index"] for row in rows}
    assert names == {
        "mean_place_segregation", "spearman", "regression_coefficient", "regression_r2",
        "places", "suppressed_places", "places_without_landuse", "places_low_coverage",
    }  # fmt: skip
    count = {row["index"]: row["value"] for row in rows if row["places"] is None}
    # cells 8, 9 have 1–2 devices (suppressed), cell 7 has 30 % land use (low coverage)
    assert count["suppressed_places"] == 2
    assert count["places_low_coverage"] == 1
    assert count["places_without_landuse"] == 0
    assert count["places"] == 7
    groups = {row.get("group") for row in rows if row["index"] == "mean_place_segregation"}
    assert groups <= {None, *USES}
    for row in rows:
        if row["index"] in ("mean_place_segregation", "spearman", "regression_coefficient"):
            assert row["ci_low"] <= row["ci_high"]
    manifest = json.loads((tmp_path / "landuse.json.manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["parameters"]["bootstrap"] == 50
    assert manifest["rows_in"] == manifest["rows_written"] + manifest["rows_rejected"]
    text = out.read_text()
    assert not any(str(int(i)) in text for i in ids)

    # With full coverage required off, every published place is analysed, and the overall
    # mean is the experienced indices' dwell-weighted mean of S.
    r = cli("indices", "landuse", "--lake", root, "--bootstrap", "0", "--min-coverage", "0",
            "-f", "json")  # fmt: skip
    assert r.code == 0, r.err
    lu_mean = next(
        row["value"]
        for row in json.loads(r.out)
        if row["index"] == "mean_place_segregation" and row["group"] is None
    )
    r = cli("indices", "experienced", "--lake", root, "--index", "place_segregation",
            "--no-exposure", "-f", "json")  # fmt: skip
    assert r.code == 0, r.err
    exp_mean = next(
        row["value"]
        for row in json.loads(r.out)
        if row["index"] == "place_segregation" and row.get("statistic") == "mean"
    )
    assert lu_mean == pytest.approx(exp_mean, abs=1e-12)


def test_places_file_path_agrees_with_the_lake_path(cli, tmp_path, lake):
    root, _ = lake
    places = tmp_path / "places.geoparquet"
    r = cli("indices", "experienced", "--lake", root, "--index", "place_segregation",
            "--no-exposure", "--places", places, "-f", "json")  # fmt: skip
    assert r.code == 0, r.err
    a = cli("indices", "landuse", "--lake", root, "--bootstrap", "20", "-f", "json")
    b = cli("indices", "landuse", "--lake", root, "--places", places, "--bootstrap", "20",
            "-f", "json")  # fmt: skip
    assert a.code == 0 and b.code == 0, b.err
    ra, rb = json.loads(a.out), json.loads(b.out)
    assert len(ra) == len(rb) > 15
    for x, y in zip(ra, rb, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):
                assert x[k] == pytest.approx(y[k], abs=1e-12), (x, k)
            else:
                assert x[k] == y[k]


def test_hexagon_layer_is_geoparquet_without_device_ids(cli, tmp_path, lake):
    root, ids = lake
    hexes = tmp_path / "hex.geoparquet"
    r = cli("indices", "landuse", "--lake", root, "--bootstrap", "0", "--hexagons", hexes)
    assert r.code == 0, r.err
    assert "places analysed 7" in r.err
    t = pq.read_table(hexes)
    assert b"geo" in t.schema.metadata
    cols = set(t.column_names)
    assert {"place", "segregation", "dominant", "mix_entropy", "pois", "poi_diversity"} <= cols
    assert "device" not in cols and t.num_rows == 7
    assert (tmp_path / "hex.geoparquet.manifest.json").exists()


def test_same_bytes_on_rerun(cli, tmp_path, lake):
    root, _ = lake
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        assert cli("indices", "landuse", "--lake", root, "--bootstrap", "30", "-o", out).code == 0
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.json.manifest.json").read_bytes() == (
        tmp_path / "b.json.manifest.json"
    ).read_bytes()


def test_clear_errors(cli, tmp_path, lake):
    root, _ = lake
    r = cli("indices", "landuse", "--lake", tmp_path / "empty")
    assert r.code == 1 and "landuse" in r.err and "Traceback" not in r.err
    r = cli("indices", "landuse", "--lake", root, "--reference-category", "harbour")
    assert r.code == 1 and "harbour" in r.err
    r = cli("indices", "landuse", "--lake", root, "--hexagons", tmp_path / "x.txt")
    assert r.code == 1 and "--hexagons" in r.err


def test_help_has_an_example(cli):
    r = cli("indices", "landuse", "--help")
    assert r.code == 0 and "segtool indices landuse --lake lake" in r.out
