"""Individual level: τ_gi, S_i, leave-one-out against a direct loop, soft membership,
summaries by home group."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.indices.experienced import experienced_indices, individual_segregation


def direct(devices: dict, visits: list, groups: list, loo: bool) -> dict:
    """Test-only oracle, written as loops. devices: id -> (weight, {group: share});
    visits: [(device, place, dwell)]. Returns id -> (tau list or None, S or None)."""
    k = len(groups)
    dwell_at = defaultdict(float)
    for d, p, s in visits:
        dwell_at[(d, p)] += s
    out = {}
    for i in devices:
        num = [0.0] * k
        den = 0.0
        for (d, p), s_ip in dwell_at.items():
            if d != i:
                continue
            amount = [0.0] * k
            for (j, q), s_jq in dwell_at.items():
                if q != p or (loo and j == i):
                    continue
                w, shares = devices[j]
                for gi, g in enumerate(groups):
                    amount[gi] += w * shares.get(g, 0.0) * s_jq
            total = sum(amount)
            if total <= 1e-12:
                continue
            for gi in range(k):
                num[gi] += s_ip * amount[gi] / total
            den += s_ip
        if den == 0:
            out[i] = (None, None)
            continue
        tau = [x / den for x in num]
        s_val = k / (2 * (k - 1)) * sum(abs(t - 1 / k) for t in tau)
        out[i] = (tau, s_val)
    return out


def long_frame(devices: dict, visits: list) -> pl.DataFrame:
    """Canonical long frame: each visit split across the device's groups by its shares."""
    rows = []
    for d, p, s in visits:
        w, shares = devices[d]
        for g, m in shares.items():
            if m > 0:
                rows.append({"device": d, "place": p, "group": g, "dwell_s": s * m, "weight": w})
    return pl.DataFrame(rows)


def check(devices, visits, groups, loo):
    res = individual_segregation(long_frame(devices, visits), min_devices=1, leave_one_out=loo)
    want = direct(devices, visits, groups, loo)
    for row in res.iter_rows(named=True):
        tau_w, s_w = want[row["device"]]
        tcols = [f"tau_loo_{g}" if loo else f"tau_{g}" for g in groups]
        scol = "segregation_loo" if loo else "segregation"
        if tau_w is None:
            assert row[scol] is None
        else:
            assert [row[c] for c in tcols] == pytest.approx(tau_w, abs=1e-9)
            assert row[scol] == pytest.approx(s_w, abs=1e-9)


def test_individual_by_hand():
    # A: x 100, y 100 → τ_x 0.5 ; B: x only
    devices = {1: (1.0, {"x": 1.0}), 2: (1.0, {"y": 1.0}), 3: (1.0, {"x": 1.0})}
    visits = [(1, "A", 100.0), (2, "A", 100.0), (1, "B", 300.0), (3, "B", 50.0)]
    r = individual_segregation(long_frame(devices, visits), min_devices=1, leave_one_out=True).sort(
        "device"
    )
    # device 1: 1/4 of its time at A (τ_x .5), 3/4 at B (τ_x 1) → τ_x = 0.875, S = |.875−.5|+|.125−.5| = .75
    assert r["tau_x"].to_list() == pytest.approx([0.875, 0.5, 1.0])
    assert r["segregation"].to_list() == pytest.approx([0.75, 0.0, 1.0])
    # leave-one-out: device 1 at A sees only y (τ_x 0), at B only x → τ_x = 0.75
    # device 2 at A sees only device 1 (x) → τ_x 1; device 3 at B sees device 1 → 1
    assert r["tau_loo_x"].to_list() == pytest.approx([0.75, 1.0, 1.0])


def test_loo_alone_everywhere_has_no_exposure():
    devices = {1: (1.0, {"x": 1.0}), 2: (1.0, {"y": 1.0})}
    visits = [(1, "A", 10.0), (2, "B", 10.0), (2, "A", 10.0)]
    r = individual_segregation(long_frame(devices, visits), min_devices=1, leave_one_out=True).sort(
        "device"
    )
    assert r["segregation_loo"].to_list()[0] == pytest.approx(1.0)  # A without device 1: only y
    check(devices, visits, ["x", "y"], loo=True)


@settings(max_examples=25, deadline=None)
@given(
    n_dev=st.integers(2, 12),
    n_places=st.integers(1, 5),
    k=st.integers(2, 4),
    soft=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_against_direct_loops(n_dev, n_places, k, soft, seed):
    rng = np.random.default_rng(seed)
    groups = [f"g{j}" for j in range(k)]
    devices = {}
    for d in range(n_dev):
        if soft:
            shares = rng.dirichlet(np.ones(k))
            sh = {g: float(s) for g, s in zip(groups, shares, strict=True)}
        else:
            sh = {groups[rng.integers(0, k)]: 1.0}
        devices[d] = (float(rng.uniform(0.5, 3.0)), sh)
    visits = [
        (d, f"p{rng.integers(0, n_places)}", float(rng.integers(1, 1000)))
        for d in range(n_dev)
        for _ in range(rng.integers(1, 4))
    ]
    present = {g for d, _, _ in visits for g, m in devices[d][1].items() if m > 0}
    if len(present) < 2:
        return
    groups = sorted(present)
    check(devices, visits, groups, loo=False)
    check(devices, visits, groups, loo=True)


def test_summaries_by_home_group():
    # x devices at places with S 1, 1, 0 (dwell weights equal); y at 0
    rows = []
    for d, place in enumerate(["A", "A", "C"]):
        rows.append({"device": d, "place": place, "group": "x", "dwell_s": 10.0})
    rows.append({"device": 9, "place": "C", "group": "y", "dwell_s": 10.0})
    rows.append({"device": 8, "place": "B", "group": "y", "dwell_s": 10.0})
    res = experienced_indices(pl.DataFrame(rows), min_devices=1).indices
    ind = res.filter(pl.col("index") == "individual_segregation")

    def get(group, stat):
        f = ind.filter(pl.col("group").is_null() if group is None else pl.col("group") == group)
        return f.filter(pl.col("statistic") == stat)["value"][0]

    assert get("x", "mean") == pytest.approx(2 / 3)
    assert get("x", "median") == pytest.approx(1.0)
    assert get("x", "q25") == pytest.approx(0.0)
    assert get("y", "mean") == pytest.approx(0.5)  # devices at C (0) and B (1)
    assert get(None, "mean") == pytest.approx(3 / 5)


def test_soft_membership_counts_devices_in_each_group_by_share():
    rows = [
        {"device": 1, "place": "A", "group": "x", "dwell_s": 30.0},
        {"device": 1, "place": "A", "group": "y", "dwell_s": 10.0},  # shares 0.75 / 0.25
        {"device": 2, "place": "A", "group": "y", "dwell_s": 40.0},
    ]
    res = experienced_indices(pl.DataFrame(rows), min_devices=1)
    assert res.summary["membership"] == "soft"
    p = res.places
    assert p["tau_x"][0] == pytest.approx(30 / 80)
    d = res.devices.sort("device")
    assert d["share_x"].to_list() == pytest.approx([0.75, 0.0])


def test_home_segregation_by_hand():
    # homes: h1 all x (S = 1), h2 even (S = 0); population keyed by the home place
    pop = pl.DataFrame(
        {
            "cell": ["h1", "h1", "h2", "h2"],
            "group": ["x", "y", "x", "y"],
            "count": [10.0, 0.0, 5.0, 5.0],
        }
    )
    rows = [
        {"device": 1, "place": "A", "group": "x", "dwell_s": 10.0, "home": "h1"},
        {"device": 2, "place": "A", "group": "x", "dwell_s": 10.0, "home": "h2"},
        {"device": 3, "place": "A", "group": "y", "dwell_s": 10.0, "home": "h2"},
        {"device": 4, "place": "A", "group": "y", "dwell_s": 10.0, "home": None},
    ]
    res = experienced_indices(pl.DataFrame(rows), min_devices=1, population=pop)
    home = res.indices.filter(
        (pl.col("index") == "home_segregation") & (pl.col("statistic") == "mean")
    )
    got = {r["group"]: r["value"] for r in home.iter_rows(named=True)}
    assert got == pytest.approx({None: 1 / 3, "x": 0.5, "y": 0.0})
    d = res.devices.sort("device")
    assert d["home_segregation"].to_list()[:3] == pytest.approx([1.0, 0.0, 0.0])
    assert d["home_segregation"][3] is None
    # population xPx by hand: x: (10/15)(10/10) + (5/15)(5/10) = 5/6
    resi = res.indices.filter(
        (pl.col("index") == "residential_isolation") & (pl.col("component") == "population")
    )
    assert resi.filter(pl.col("group") == "x")["value"][0] == pytest.approx(5 / 6)
