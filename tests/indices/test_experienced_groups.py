"""Group level: co-presence exposure, experienced isolation (Athey), residential isolation."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.indices.experienced import experienced_indices, experienced_isolation, exposure_matrix

EPOCH = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)


def frame(devices: dict, visits: list, homes: dict | None = None) -> pl.DataFrame:
    """devices: id -> (weight, {group: share}); visits: [(device, cell, start_s, dwell_s)]."""
    rows = []
    for d, c, s, dw in visits:
        w, shares = devices[d]
        for g, m in shares.items():
            if m > 0:
                row = {
                    "device": d,
                    "place": c,
                    "group": g,
                    "dwell_s": dw * m,
                    "weight": w,
                    "start": EPOCH + timedelta(seconds=s),
                }
                if homes is not None:
                    row["home"] = homes[d]
                rows.append(row)
    return pl.DataFrame(rows)


def direct(devices: dict, visits: list, bin_s: int, groups: list) -> np.ndarray:
    """Test-only oracle with explicit pairs: E[g, h]."""
    pres = defaultdict(float)
    for d, c, s, dw in visits:
        b = math.floor(s / bin_s)
        while b * bin_s < s + dw:
            ov = min(s + dw, (b + 1) * bin_s) - max(s, b * bin_s)
            if ov > 0:
                pres[(d, c, b)] += ov
            b += 1
    k = len(groups)
    num = np.zeros((k, k))
    den = np.zeros(k)
    for (i, c, b), a_i in pres.items():
        wi, si = devices[i]
        x_i = wi * a_i
        others = [
            (j, devices[j][0] * a_j)
            for (j, c2, b2), a_j in pres.items()
            if (c2, b2) == (c, b) and j != i
        ]
        o = sum(x for _, x in others)
        if o <= 0:
            continue
        for gi, g in enumerate(groups):
            m_ig = si.get(g, 0.0)
            den[gi] += m_ig * x_i
            for hi, h in enumerate(groups):
                o_h = sum(x * devices[j][1].get(h, 0.0) for j, x in others)
                num[gi, hi] += m_ig * x_i * o_h / o
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den[:, None]


def matrix(res: pl.DataFrame, groups: list) -> np.ndarray:
    e = res.filter(pl.col("index") == "exposure")
    out = np.full((len(groups), len(groups)), np.nan)
    for r in e.iter_rows(named=True):
        out[groups.index(r["group"]), groups.index(r["other_group"])] = r["value"]
    return out


def test_isolation_by_hand():
    devices = {1: (1.0, {"x": 1}), 2: (1.0, {"x": 1}), 3: (1.0, {"y": 1})}
    visits = [(1, "A", 0, 600), (2, "A", 0, 600), (3, "A", 0, 600)]
    res = experienced_isolation(frame(devices, visits), min_devices=1)
    iso = dict(zip(res["group"], res["value"], strict=True))
    assert iso == pytest.approx({"x": 0.5, "y": 0.0})
    e = matrix(exposure_matrix(frame(devices, visits), min_devices=1), ["x", "y"])
    assert e == pytest.approx(np.array([[0.5, 0.5], [1.0, 0.0]]))


def test_time_bins_separate_people():
    devices = {1: (1.0, {"x": 1}), 2: (1.0, {"y": 1}), 3: (1.0, {"x": 1})}
    # 1 and 2 share 08:00–08:30; 3 comes later, with 1 only in the next hour with --bin 1h
    visits = [(1, "A", 0, 600), (2, "A", 60, 600), (1, "A", 3600, 600), (3, "A", 3660, 60)]
    res = experienced_indices(frame(devices, visits), min_devices=1).indices
    iso = res.filter(pl.col("index") == "experienced_isolation")
    # device 1: half its co-present time with y (bin 0, 600 s), half with x (bin 2, 600 s)
    x = iso.filter(pl.col("group") == "x")["value"][0]
    assert x == pytest.approx((600 * 0 + 600 * 1 + 60 * 1) / (600 + 600 + 60))


@settings(max_examples=25, deadline=None)
@given(
    n_dev=st.integers(2, 10),
    k=st.integers(2, 3),
    soft=st.booleans(),
    bin_min=st.sampled_from([5, 30, 60]),
    seed=st.integers(0, 10_000),
)
def test_against_explicit_pairs(n_dev, k, soft, bin_min, seed):
    rng = np.random.default_rng(seed)
    groups = [f"g{j}" for j in range(k)]
    devices = {}
    for d in range(n_dev):
        if soft:
            sh = dict(zip(groups, map(float, rng.dirichlet(np.ones(k))), strict=True))
        else:
            sh = {groups[(d + seed) % k]: 1.0}
        devices[d] = (float(rng.uniform(0.5, 2.0)), sh)
    visits = [
        (d, f"c{rng.integers(0, 2)}", int(rng.integers(0, 4 * 3600)), int(rng.integers(60, 5000)))
        for d in range(n_dev)
        for _ in range(rng.integers(1, 4))
    ]
    present = sorted({g for d in devices for g, m in devices[d][1].items() if m > 0})
    if len(present) < 2:
        return
    res = experienced_indices(frame(devices, visits), min_devices=1, bin=f"{bin_min}m").indices
    got = matrix(res, present)
    want = direct(devices, visits, bin_min * 60, present)
    assert np.allclose(got, want, atol=1e-9, equal_nan=True)
    rows = got[~np.isnan(got).any(axis=1)]
    assert np.allclose(rows.sum(axis=1), 1.0)


def test_everyone_at_home_experienced_equals_residential():
    rng = np.random.default_rng(5)
    devices, visits, homes = {}, [], {}
    for d in range(60):
        home = f"h{d % 7}"
        shares = rng.dirichlet([0.5, 0.5, 0.5]) if d % 3 else np.eye(3)[d % 3]
        devices[d] = (float(rng.uniform(0.5, 2)), dict(zip("abc", map(float, shares), strict=True)))
        homes[d] = home
        visits += [
            (d, home, day * 86400 + 3600, 1800) for day in range(3)
        ]  # same hours every night
    res = experienced_indices(frame(devices, visits, homes), min_devices=1).indices
    exp = res.filter(pl.col("index") == "experienced_isolation").sort("group")
    resi = res.filter(pl.col("index") == "residential_isolation").sort("group")
    assert resi["component"].unique().to_list() == ["device_homes"]
    assert exp["value"].to_numpy() == pytest.approx(resi["value"].to_numpy(), abs=1e-12)


def test_residential_isolation_from_population_matches_pysal():
    from segregation.singlegroup import Isolation

    rng = np.random.default_rng(2)
    units = [f"u{i}" for i in range(30)]
    counts = rng.integers(0, 200, size=(30, 3)).astype(float)
    pop = pl.DataFrame(
        {
            "unit": [u for u in units for _ in range(3)],
            "group": ["a", "b", "c"] * 30,
            "count": counts.ravel(),
        }
    )
    devices = {d: (1.0, {"abc"[d % 3]: 1.0}) for d in range(9)}
    visits = [(d, "A", 0, 100) for d in range(9)]
    res = experienced_indices(frame(devices, visits), min_devices=1, population=pop).indices
    resi = res.filter(
        (pl.col("index") == "residential_isolation") & (pl.col("component") == "population")
    )
    import pandas as pd

    for j, g in enumerate("abc"):
        df = pd.DataFrame({"x": counts[:, j], "t": counts.sum(axis=1)})
        df = df[df.t > 0]
        want = Isolation(df, group_pop_var="x", total_pop_var="t").statistic
        assert resi.filter(pl.col("group") == g)["value"][0] == pytest.approx(want, abs=1e-9)


def test_without_start_times_copresence_is_skipped_with_a_note():
    df = pl.DataFrame(
        {"device": [1, 2], "place": ["A", "A"], "group": ["x", "y"], "dwell_s": [1.0, 1.0]}
    )
    res = experienced_indices(df, min_devices=1)
    assert "experienced_isolation" not in res.indices["index"].to_list()
    assert any("co-presence" in n for n in res.summary["notes"])
