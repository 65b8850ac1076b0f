"""Spatial (egohood) indices: hand tables, k = 0 = aspatial, PySAL oracle, properties, CLI."""

from __future__ import annotations

import json
import warnings

import h3
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.errors import InputError, UsageError
from segtool.indices.residential import INDICES, compute_residential
from segtool.indices.spatial import (
    SpatialParams,
    egohood_counts,
    h3_cells,
    neighbourhood_matrix,
    segregation_profile,
    spatial_proximity,
)

CENTER = h3.latlng_to_cell(59.33, 18.06, 8)
NEIGHBOUR = h3.grid_ring(CENTER, 1)[0]
FAR = h3.grid_ring(CENTER, 5)[0]


def two_cells(a: str, b: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"unit": [a, a, b, b], "group": ["x", "y", "x", "y"], "n": [10.0, 0.0, 0.0, 10.0]}
    )


def value(frame: pl.DataFrame, index: str, group: str | None = None) -> float:
    rows = frame.filter(pl.col("index") == index)
    if group is not None:
        rows = rows.filter(pl.col("group") == group)
    return rows["value"][0]


def patch(radius: int = 6, groups: int = 3, seed: int = 0) -> pl.DataFrame:
    """Random integer counts on grid_disk(CENTER, radius) at res 8 (UInt64 cells)."""
    rng = np.random.default_rng(seed)
    cells = np.array(sorted(h3.str_to_int(c) for c in h3.grid_disk(CENTER, radius)), np.uint64)
    n = rng.integers(0, 30, size=(cells.size, groups)).astype(float)
    n[:, 0] += rng.integers(0, 40, size=cells.size) * (np.arange(cells.size) % 3 == 0)
    names = [f"g{i}" for i in range(groups)]
    return pl.DataFrame(
        {
            "unit": pl.Series(np.repeat(cells, groups), dtype=pl.UInt64),
            "group": names * cells.size,
            "n": n.ravel(),
        }
    )


# --------------------------------------------------------------------------------------
# Hand-computed


def test_adjacent_cells_flat_k1_are_one_egohood():
    ego = egohood_counts(two_cells(CENTER, NEIGHBOUR), 1)
    assert ego["n"].to_list() == [10.0, 10.0, 10.0, 10.0]
    d = compute_residential(ego, ["dissimilarity"], focal="x")
    assert value(d, "dissimilarity") == pytest.approx(0.0, abs=1e-15)


def test_far_apart_cells_stay_segregated():
    ego = egohood_counts(two_cells(CENTER, FAR), 2)
    mine = ego.filter(pl.col("unit") == CENTER)
    assert mine["group"].to_list() == ["x", "y"] and mine["n"].to_list() == [10.0, 0.0]
    assert ego.filter(pl.col("unit") == FAR)["n"].to_list() == [0.0, 10.0]
    d = compute_residential(ego, ["dissimilarity", "theil_h"])
    assert value(d, "dissimilarity") == pytest.approx(1.0)
    assert value(d, "theil_h") == pytest.approx(1.0)


def test_spatial_proximity_hand_values():
    # Far apart: Pxx = Pyy = 1, Ptt = 1/2 -> SP = (10 + 10)/(20 · 1/2) = 2.
    far = spatial_proximity(two_cells(CENTER, FAR), "x", k=1)
    assert value(far, "spatial_proximity") == pytest.approx(2.0, abs=1e-14)
    # Adjacent, flat k = 1: c = all ones, Pxx = Pyy = Ptt = 1 -> SP = 1.
    near = spatial_proximity(two_cells(CENTER, NEIGHBOUR), "x", k=1)
    assert value(near, "spatial_proximity") == pytest.approx(1.0, abs=1e-14)
    # Without a focal group: each group against the rest (the same for two groups).
    both = spatial_proximity(two_cells(CENTER, NEIGHBOUR), k=1)
    assert both["group"].to_list() == ["x", "y"] and both["other_group"].to_list() == ["(rest)"] * 2


def test_kernel_weights_by_ring():
    cells = np.array(
        [h3.str_to_int(c) for c in (CENTER, NEIGHBOUR, h3.grid_ring(CENTER, 2)[0])], np.uint64
    )
    lin = neighbourhood_matrix(cells, 2, "linear").toarray()
    assert lin[0].tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])
    ex = neighbourhood_matrix(cells, 2, "exp", 1.5).toarray()
    assert ex[0].tolist() == pytest.approx([1.0, np.exp(-1 / 1.5), np.exp(-2 / 1.5)])
    flat = neighbourhood_matrix(cells, 1, "flat").toarray()
    assert flat[0].tolist() == [1.0, 1.0, 0.0]  # ring 2 lies outside grid_disk(1)
    assert SpatialParams(3, "exp", 1.5).label == "grid_disk(3), exp(λ=1.5)"


def test_pentagon_neighbourhood_is_complete_and_symmetric():
    pent = h3.get_pentagons(8)[0]
    cells = np.array([h3.str_to_int(c) for c in h3.grid_disk(pent, 3)], np.uint64)
    m = neighbourhood_matrix(cells, 2)
    # Row of the pentagon: itself, 5 neighbours, 10 cells at distance 2.
    row = cells.tolist().index(h3.str_to_int(pent))
    assert m[row].nnz == len(h3.grid_disk(pent, 2))
    assert abs(m - m.T).max() == 0


# --------------------------------------------------------------------------------------
# k = 0 and invariances


def test_k0_equals_aspatial():
    f = patch(4, 4)
    aspatial = compute_residential(f)
    spatial = compute_residential(egohood_counts(f, 0))
    np.testing.assert_allclose(spatial["value"], aspatial["value"], rtol=0, atol=1e-12)


def test_segregation_profile_rows_are_the_spatial_indices_at_each_k():
    f = patch(5, 3, seed=4)
    prof = segregation_profile(f, ks=(0, 1, 3))
    assert prof["k"].to_list() == [0, 0, 1, 1, 3, 3]
    for k in (0, 1, 3):
        direct = compute_residential(egohood_counts(f, k), indices=["dissimilarity", "theil_h"])
        got = prof.filter(pl.col("k") == k)
        for index in ("dissimilarity", "theil_h"):
            assert value(got, index) == pytest.approx(value(direct, index), abs=1e-12)
    edge = h3.average_hexagon_edge_length(8, unit="m")
    assert prof.filter(pl.col("k") == 3)["radius_m"][0] == pytest.approx(3 * np.sqrt(3) * edge)
    d = prof.filter(pl.col("index") == "dissimilarity")["value"]
    assert d[0] > d[1] > d[2]  # random counts: smoothing mixes them


def test_scaling_counts_leaves_indices_unchanged():
    f = patch(3, 3, seed=2)
    a = compute_residential(egohood_counts(f, 2, "exp", 0.7))
    b = compute_residential(egohood_counts(f.with_columns(pl.col("n") * 7.5), 2, "exp", 0.7))
    skip = ["entropy", "simpson_concentration", "simpson_interaction"]
    np.testing.assert_allclose(b["value"], a["value"], rtol=1e-12, atol=1e-12)
    assert not a.filter(~pl.col("index").is_in(skip))["value"].is_nan().any()
    sp1 = spatial_proximity(f, k=2, kernel="linear")["value"]
    sp2 = spatial_proximity(f.with_columns(pl.col("n") * 7.5), k=2, kernel="linear")["value"]
    np.testing.assert_allclose(sp2, sp1, rtol=1e-12)


def test_smoothing_reduces_segregation_on_a_random_patch():
    f = patch(5, 3, seed=3)
    d = [value(compute_residential(egohood_counts(f, k), ["dissimilarity"]), "dissimilarity")
         for k in (0, 1, 2)]  # fmt: skip
    assert d[0] > d[1] > d[2] > 0


# --------------------------------------------------------------------------------------
# Input checks


def test_units_must_be_h3_cells():
    f = two_cells("a", "b")
    with pytest.raises(InputError, match="not valid H3 cells"):
        egohood_counts(f, 1)
    with pytest.raises(InputError, match="one H3 resolution"):
        egohood_counts(two_cells(CENTER, h3.cell_to_parent(FAR, 6)), 1)
    with pytest.raises(UsageError, match="kernel"):
        egohood_counts(two_cells(CENTER, FAR), 1, "gauss")
    with pytest.raises(UsageError, match="--spatial"):
        SpatialParams(-1)
    with pytest.raises(UsageError, match="--decay"):
        SpatialParams(1, "exp", 0.0)


def test_cells_as_hex_decimal_and_integers():
    ints = [h3.str_to_int(CENTER), h3.str_to_int(FAR)]
    expect = np.array(ints, np.uint64)
    assert (h3_cells(pl.Series([CENTER, FAR])) == expect).all()
    assert (h3_cells(pl.Series([str(i) for i in ints])) == expect).all()
    assert (h3_cells(pl.Series(ints, dtype=pl.UInt64)) == expect).all()
    assert (h3_cells(pl.Series(ints, dtype=pl.Int64)) == expect).all()
    with pytest.raises(InputError, match="holds Float64"):
        h3_cells(pl.Series("cell", [1.0, 2.0]))


# --------------------------------------------------------------------------------------
# PySAL oracle: W from the same neighbour lists, PySAL's local environment


def _pysal_frame(f: pl.DataFrame, k: int):
    geopandas = pytest.importorskip("geopandas")
    libpysal = pytest.importorskip("libpysal")
    from shapely.geometry import Polygon

    wide = f.pivot(on="group", index="unit", values="n").sort("unit")
    cells = [h3.int_to_str(int(c)) for c in wide["unit"]]
    polys = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    pdf = wide.drop("unit").to_pandas()
    gdf = geopandas.GeoDataFrame(pdf, geometry=polys, crs="EPSG:4326").to_crs("EPSG:3006")
    index = {c: i for i, c in enumerate(cells)}
    neighbors = {
        i: [index[v] for v in h3.grid_disk(c, k) if v in index and v != c]
        for i, c in enumerate(cells)
    }
    weights = {i: [1.0] * len(v) for i, v in neighbors.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = libpysal.weights.W(neighbors, weights, silence_warnings=True)
    return gdf, w


@pytest.mark.parametrize("k", [1, 2])
def test_pysal_multigroup_oracle(k):
    from segregation import multigroup, singlegroup

    f = patch(6, 3, seed=k)
    gdf, w = _pysal_frame(f, k)
    groups = ["g0", "g1", "g2"]
    ours = compute_residential(egohood_counts(f, k), ["dissimilarity", "theil_h"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md = multigroup.MultiDissim(gdf, groups, w=w).statistic
        mi = multigroup.MultiInfoTheory(gdf, groups, w=w).statistic
    assert value(ours, "dissimilarity") == pytest.approx(md, abs=1e-9)
    assert value(ours, "theil_h") == pytest.approx(mi, abs=1e-9)
    # PySAL's fill_diagonal *sets* w_uu = 1 (it does not add 1): a W that lists each
    # cell among its own neighbours gives the same value.
    import libpysal

    own = {i: [*v, i] for i, v in w.neighbors.items()}
    w_self = libpysal.weights.W(
        own, {i: [1.0] * len(v) for i, v in own.items()}, silence_warnings=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert multigroup.MultiDissim(gdf, groups, w=w_self).statistic == pytest.approx(md)
    # The spatial index really differs from the aspatial one (W was used).
    aspatial = compute_residential(f, ["dissimilarity"])
    assert abs(value(aspatial, "dissimilarity") - md) > 1e-3

    # Two-group: g0 against the rest.
    gdf2 = gdf.assign(x=gdf["g0"], t=gdf[groups].sum(axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d2 = singlegroup.Dissim(gdf2, "x", "t", w=w).statistic
    ours2 = compute_residential(egohood_counts(f, k), ["dissimilarity"], focal="g0")
    assert value(ours2, "dissimilarity") == pytest.approx(d2, abs=1e-9)


# --------------------------------------------------------------------------------------
# Properties


@settings(max_examples=25, deadline=None)
@given(
    lat=st.floats(-60, 70),
    lng=st.floats(-179, 179),
    res=st.integers(5, 11),
    radius=st.integers(1, 4),
    k=st.integers(0, 3),
    kernel=st.sampled_from(["flat", "linear", "exp"]),
    decay=st.floats(0.2, 5.0),
    seed=st.integers(0, 2**16),
)
def test_matrix_properties(lat, lng, res, radius, k, kernel, decay, seed):
    rng = np.random.default_rng(seed)
    disk = np.array([h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(lat, lng, res), radius)], np.uint64)  # fmt: skip
    cells = disk[rng.random(disk.size) < 0.7]
    if cells.size < 2:
        return
    rng.shuffle(cells)
    m = neighbourhood_matrix(cells, k, kernel, decay)
    n = cells.size
    assert m.shape == (n, n)
    assert abs(m - m.T).max() == 0 if m.nnz else True
    assert m.nnz <= n * (3 * k * (k + 1) + 1)
    assert (m.diagonal() == 1.0).all()
    # Every entry is w(grid_distance) for a pair within k (checked with h3-py).
    coo = m.tocoo()
    pick = rng.integers(0, coo.nnz, size=min(30, coo.nnz))
    params = SpatialParams(k, kernel, decay)
    for i in pick:
        a, b = h3.int_to_str(int(cells[coo.row[i]])), h3.int_to_str(int(cells[coo.col[i]]))
        assert coo.data[i] == pytest.approx(params.weight(h3.grid_distance(a, b)))
    # Totals: Σ ñ = Σ_u Σ_v w n_v.
    counts = rng.integers(0, 50, size=(n, 3)).astype(float)
    counts[0] += 1
    f = pl.DataFrame(
        {
            "unit": pl.Series(np.repeat(cells, 3), dtype=pl.UInt64),
            "group": ["a", "b", "c"] * n,
            "n": counts.ravel(),
        }
    )
    ego = egohood_counts(f, k, kernel, decay)
    keep = counts.sum(axis=1) > 0  # zero-total units are not units of the analysis
    expect = (neighbourhood_matrix(cells[keep], k, kernel, decay) @ counts[keep]).sum()
    assert ego["n"].sum() == pytest.approx(expect, rel=1e-12)
    assert ego["n"].sum() >= counts.sum() - 1e-9


# --------------------------------------------------------------------------------------
# CLI


@pytest.fixture
def cells_parquet(tmp_path):
    f = patch(4, 3, seed=5).rename({"unit": "cell", "n": "count"})
    path = tmp_path / "population_cells.parquet"
    f.write_parquet(path)
    return path, f


CMD = ("indices", "residential")


def test_cli_spatial_json(cli, cells_parquet):
    path, f = cells_parquet
    r = cli(*CMD, path, "--spatial", "2", "--kernel", "linear", "-f", "json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert {x["neighbourhood"] for x in rows} == {"grid_disk(2), linear"}
    names = {x["index"] for x in rows}
    assert names == set(INDICES) | {"spatial_proximity"}
    ours = compute_residential(
        egohood_counts(f.rename({"cell": "unit", "count": "n"}), 2, "linear"), ["dissimilarity"]
    )
    d = next(x for x in rows if x["index"] == "dissimilarity")
    assert d["value"] == pytest.approx(value(ours, "dissimilarity"), abs=1e-12)
    sp = [x for x in rows if x["index"] == "spatial_proximity"]
    assert [x["group"] for x in sp] == ["g0", "g1", "g2"]


def test_cli_spatial_zero_is_aspatial(cli, cells_parquet):
    path, _ = cells_parquet
    a = json.loads(cli(*CMD, path, "-f", "json").out)
    r = cli(*CMD, path, "--spatial", "0", "-f", "json", "-i", "dissimilarity", "-i", "theil_h")
    b = json.loads(r.out)
    assert r.code == 0, r.err
    assert all("neighbourhood" not in x for x in a)  # the aspatial contract is unchanged
    assert {x["neighbourhood"] for x in b} == {"grid_disk(0), flat"}
    av = {x["index"]: x["value"] for x in a if x["index"] in ("dissimilarity", "theil_h")}
    assert {x["index"]: x["value"] for x in b} == pytest.approx(av, abs=1e-12)


def test_cli_spatial_focal_bootstrap_local_within(cli, cells_parquet, tmp_path):
    path, f = cells_parquet
    pl.read_parquet(path).with_columns(district=(pl.col("cell") % 2).cast(pl.String)).write_parquet(
        path
    )
    local = tmp_path / "local.csv"
    args = (*CMD, path, "--spatial", "1", "--focal", "g0", "--bootstrap", "20", "--seed", "3",
            "--within", "district", "--local", local, "-f", "json", "-o", tmp_path / "o.json")  # fmt: skip
    r = cli(*args)
    assert r.code == 0, r.err
    rows = json.loads((tmp_path / "o.json").read_text())
    sp = [x for x in rows if x["index"] == "spatial_proximity"]
    assert len(sp) == 1 and sp[0]["group"] == "g0" and sp[0]["se"] > 0
    assert {x.get("component") for x in rows if x["index"] == "mutual_information"} >= {
        "between",
        "within",
    }
    manifest = json.loads((tmp_path / "o.json.manifest.json").read_text())
    assert "grid_disk(1), flat" in json.dumps(manifest)
    assert "neighbourhood" in local.read_text().splitlines()[0]
    # Same seed, same bytes.
    first = (tmp_path / "o.json").read_bytes()
    assert cli(*args).code == 0 and (tmp_path / "o.json").read_bytes() == first


def test_cli_spatial_errors(cli, tmp_path, cells_parquet):
    p = tmp_path / "pop.csv"
    p.write_text("tract,group,n\na,A,1\na,B,2\nb,A,3\nb,B,1\n")
    r = cli(*CMD, p, "--spatial", "1")
    err = " ".join(r.err.split())  # the console wraps long lines
    assert r.code == 1 and "not valid H3 cells (first: 'a')" in err and "Traceback" not in err
    path, _ = cells_parquet
    r = cli(*CMD, path, "-i", "spatial_proximity")
    assert r.code == 1 and "--spatial" in r.err
    r = cli(*CMD, path, "--kernel", "exp")
    assert r.code == 1 and "--spatial" in r.err
    r = cli(*CMD, path, "--spatial", "1", "--kernel", "gauss")
    assert r.code == 1


@pytest.mark.parametrize("kernel", ["flat", "linear", "exp"])
def test_blocks_give_the_same_matrix(monkeypatch, kernel):
    import segtool.indices.spatial as spatial

    cells = np.array([h3.str_to_int(c) for c in h3.grid_disk(CENTER, 5)], np.uint64)
    cells = cells[np.random.default_rng(1).permutation(cells.size)][:80]
    one = neighbourhood_matrix(cells, 2, kernel, 0.8)
    monkeypatch.setattr(spatial, "BLOCK_CELLS", 7)
    many = neighbourhood_matrix(cells, 2, kernel, 0.8)
    assert one.nnz > 80 and (one != many).nnz == 0
    assert np.array_equal(one.indptr, many.indptr) and np.array_equal(one.indices, many.indices)
    # One cell a block: interior cells take the path where every neighbour is a unit.
    full = np.array(sorted(h3.str_to_int(c) for c in h3.grid_disk(CENTER, 4)), np.uint64)
    monkeypatch.setattr(spatial, "BLOCK_CELLS", 1 << 17)
    whole = neighbourhood_matrix(full, 2, kernel, 0.8)
    monkeypatch.setattr(spatial, "BLOCK_CELLS", 1)
    single = neighbourhood_matrix(full, 2, kernel, 0.8)
    assert (whole != single).nnz == 0 and np.array_equal(whole.indices, single.indices)
    assert whole.getnnz(axis=1).max() == 19
