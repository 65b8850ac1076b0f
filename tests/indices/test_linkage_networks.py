"""Linkage networks against hand-computed tables and a brute-force oracle: visitation
V_AB, co-presence C_AB (leave-self-out), devices behind edges, expected/ratio, distance,
suppression, and the median attribute."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.indices.linkage.copresence import copresence
from segtool.indices.linkage.edges import edge_table, haversine_km, suppress, visitation
from segtool.indices.linkage.inputs import LinkageData, attribute_of, quartiles

UNITS = pl.DataFrame(
    {
        "unit": ["A", "B", "C"],
        "lat": [59.0, 60.0, 59.0],
        "lon": [18.0, 18.0, 19.0],
        "residents": [10.0, 10.0, 10.0],
        "attribute": [0.0, 1.0, 2.0],
    }
)


def data(rows: list[tuple]) -> LinkageData:
    frame = pl.DataFrame(
        rows, schema=["device", "origin", "destination", "cell", "bin", "x"], orient="row"
    ).with_columns(pl.col("device", "cell").cast(pl.UInt64), pl.col("bin").cast(pl.Int64))
    return LinkageData(rows=frame.lazy(), units=UNITS)


# d1, d2 live in A, d3 in B, d4 in C. Segment (cell 1, bin 0): d1 10 s, d3 20 s, d4 30 s.
# Segment (cell 2, bin 0): d1 10 s, d2 5 s (both of A). Segment (cell 3, bin 1): d3 alone.
HAND = [
    (1, "A", "B", 1, 0, 10.0),
    (3, "B", "B", 1, 0, 20.0),
    (4, "C", "B", 1, 0, 30.0),
    (1, "A", "A", 2, 0, 10.0),
    (2, "A", "A", 2, 0, 5.0),
    (3, "B", "C", 3, 1, 40.0),
]


def as_dict(frame: pl.DataFrame, col: str) -> dict:
    return {(o, d): v for o, d, v in frame.select("origin", "destination", col).iter_rows()}


def test_visitation_by_hand():
    v = visitation(data(HAND))
    assert as_dict(v, "amount") == pytest.approx(
        {("A", "A"): 15.0, ("A", "B"): 10.0, ("B", "B"): 20.0, ("B", "C"): 40.0, ("C", "B"): 30.0},
        rel=1e-12,
    )
    assert as_dict(v, "devices") == {
        ("A", "A"): 2,
        ("A", "B"): 1,
        ("B", "B"): 1,
        ("B", "C"): 1,
        ("C", "B"): 1,
    }


def test_copresence_by_hand():
    c = copresence(data(HAND), ["A", "B", "C"])
    # segment 1: C_AB = 10·20/50, C_AC = 10·30/50, C_BA = 20·10/40, C_BC = 20·30/40,
    # C_CA = 30·10/30, C_CB = 30·20/30; segment 2: C_AA = 10·5/5 + 5·10/10; d3 alone: nothing
    want = {
        ("A", "B"): 4.0,
        ("A", "C"): 6.0,
        ("B", "A"): 5.0,
        ("B", "C"): 15.0,
        ("C", "A"): 10.0,
        ("C", "B"): 20.0,
        ("A", "A"): 15.0,
    }
    got = as_dict(c, "amount")
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12)
    devices = as_dict(c, "devices")
    assert devices[("A", "A")] == 2 and devices[("A", "B")] == 1 and devices[("C", "B")] == 1


def brute_copresence(rows):
    """C_AB and devices by definition: for every device i and segment b, x_i times the
    share of B's residents among the others present (i excluded)."""
    seg = defaultdict(lambda: defaultdict(float))
    home = {}
    for dev, o, _d, cell, b, x in rows:
        seg[(cell, b)][dev] += x
        home[dev] = o
    amount, met = defaultdict(float), defaultdict(set)
    for members in seg.values():
        total = sum(members.values())
        for i, xi in members.items():
            others = total - xi
            if others <= 0:
                continue
            for j, xj in members.items():
                if j != i:
                    amount[(home[i], home[j])] += xi * xj / others
                    met[(home[i], home[j])].add(i)
    return amount, {k: len(v) for k, v in met.items()}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 8),  # device
            st.integers(1, 4),  # cell
            st.integers(0, 2),  # bin
            st.floats(1.0, 1800.0, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_copresence_matches_brute_force(visits):
    units = ["A", "B", "C"]
    rows = [(d, units[d % 3], "A", c, b, x) for d, c, b, x in visits]
    got = copresence(data(rows), units)
    want, devices = brute_copresence(rows)
    want = {k: v for k, v in want.items() if v > 0}
    g = as_dict(got, "amount")
    assert g.keys() == want.keys()
    for k, v in want.items():
        assert g[k] == pytest.approx(v, rel=1e-9)
    assert as_dict(got, "devices") == devices


def test_edge_table_expected_ratio_distance_and_suppression():
    v = visitation(data(HAND))
    e = edge_table(v, UNITS, "visitation")
    total = 115.0
    out = {"A": 25.0, "B": 60.0, "C": 30.0}
    inn = {"A": 15.0, "B": 60.0, "C": 40.0}
    for o, d, obs, exp, ratio in e.select(
        "origin", "destination", "observed", "expected", "ratio"
    ).iter_rows():
        assert exp == pytest.approx(out[o] * inn[d] / total)
        assert ratio == pytest.approx(obs / exp)
    dist = as_dict(e, "distance_km")
    assert dist[("A", "B")] == pytest.approx(6371.0088 * math.radians(1.0), rel=1e-12)
    assert dist[("A", "A")] == 0.0
    assert e.filter(pl.col("home"))["origin"].to_list() == ["A", "B"]
    pub, info = suppress(e, 2)
    assert pub.select("origin", "destination").rows() == [("A", "A")]
    assert info["edges_suppressed"] == 4 and info["edges_published"] == 1
    assert info["amount_suppressed"] == pytest.approx(100.0)


def test_haversine_matches_the_ellipsoidal_distance():
    """pyproj's WGS84 geodesic as the oracle: the sphere is within 0.5 % of it."""
    from pyproj import Geod

    rng = np.random.default_rng(3)
    lat1, lat2 = rng.uniform(55, 69, (2, 50))
    lon1, lon2 = rng.uniform(11, 24, (2, 50))
    _, _, metres = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    np.testing.assert_allclose(haversine_km(lat1, lon1, lat2, lon2), metres / 1000, rtol=5e-3)


def test_median_attribute_by_hand():
    comp = pl.DataFrame(
        {
            "unit": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
            "group": ["Q1", "Q2", "Q3", "Q4"] * 3,
            "count": [10, 20, 30, 40, 50, 0, 0, 50, 0, 0, 0, 0],
        },
        schema_overrides={"count": pl.Float64},
    )
    got = dict(attribute_of(comp, "median").select("unit", "attribute").iter_rows())
    # a: F = .1 .3 .6 → median in Q3 (rank 2), 2 + (.5 − .3)/.3; b: exactly half in Q1 → 1.0
    assert got["a"] == pytest.approx(2 + 0.2 / 0.3)
    assert got["b"] == pytest.approx(1.0)
    assert got["c"] is None  # no residents
    share = dict(attribute_of(comp, "share:Q4").select("unit", "attribute").iter_rows())
    assert share["a"] == pytest.approx(0.4) and share["b"] == pytest.approx(0.5)


def test_quartiles_split_evenly():
    q = quartiles(np.array([5.0, 1.0, 3.0, 2.0, 8.0, 7.0, 4.0, 6.0]))
    assert q.tolist() == [3, 1, 2, 1, 4, 4, 2, 3]
