"""Place level: composition, Moro's S, Liao's ICE, strata, suppression — hand-computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.errors import InputError, UsageError
from segtool.indices.experienced import (
    ExperiencedParams,
    experienced,
    experienced_indices,
    panel_from_long,
    place_segregation,
)
from segtool.indices.experienced.places import row_nanquantiles, segregation, weighted_quantiles

T0 = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)


def visits(spec, start=T0):
    """spec: [(device, place, group, dwell_s, weight)]"""
    return pl.DataFrame(
        [
            {
                "device": d,
                "place": p,
                "group": g,
                "dwell_s": float(s),
                "weight": float(w),
                "start": start,
            }
            for d, p, g, s, w in spec
        ]
    )


def value(frame, **where):
    f = frame
    for k, v in where.items():
        f = f.filter(pl.col(k).is_null() if v is None else pl.col(k) == v)
    assert f.height == 1, f
    return f["value"][0]


def test_moro_four_groups_by_hand():
    # place A: only Q1; place B: all four equally; place C: Q1 and Q2 half each
    spec = [(i, "A", "Q1", 100, 1) for i in range(4)]
    spec += [(10 + i, "B", f"Q{i + 1}", 100, 1) for i in range(4)]
    spec += [(20, "C", "Q1", 300, 1), (21, "C", "Q2", 300, 1)]
    # Q3/Q4 devices also elsewhere so that K = 4 everywhere
    p = place_segregation(visits(spec), min_devices=1).sort("place")
    assert p["segregation"].to_list() == pytest.approx([1.0, 0.0, 2 / 3])
    assert p["tau_Q1"].to_list() == pytest.approx([1.0, 0.25, 0.5])
    assert p["devices"].to_list() == [4, 4, 2]
    r = experienced_indices(visits(spec), min_devices=1).indices
    # dwell-weighted mean: (400·1 + 400·0 + 600·2/3) / 1400
    assert value(r, index="place_segregation", statistic="mean") == pytest.approx(800 / 1400)


def test_weights_and_dwell_weight_the_composition():
    spec = [(1, "A", "x", 100, 3.0), (2, "A", "y", 300, 1.0)]  # x: 300, y: 300 → even
    p = place_segregation(visits(spec), min_devices=1)
    assert p["tau_x"][0] == pytest.approx(0.5)
    assert p["segregation"][0] == pytest.approx(0.0)
    assert p["weighted_dwell"][0] == pytest.approx(600.0)
    assert p["dwell_s"][0] == pytest.approx(400.0)


def test_population_reference_shares():
    spec = [(1, "A", "x", 100, 1), (2, "A", "y", 100, 1), (3, "B", "x", 100, 1)]
    pop = pl.DataFrame({"unit": ["u", "u"], "group": ["x", "y"], "count": [75.0, 25.0]})
    p = place_segregation(visits(spec), min_devices=1, reference="population", population=pop)
    # r = (0.75, 0.25); S = Σ|τ − r| / (2(1 − 0.25)): A: 0.5/1.5, B: 0.5/1.5
    assert p.sort("place")["segregation"].to_list() == pytest.approx([1 / 3, 1 / 3])
    # without population the reference comes from the weighted devices: (2/3, 1/3)
    p2 = place_segregation(visits(spec), min_devices=1, reference="population").sort("place")
    assert p2["segregation"].to_list() == pytest.approx(
        [(1 / 6 + 1 / 6) / (4 / 3), (2 / 3) / (4 / 3)]
    )


def test_ice_by_hand_with_population_shares():
    # amounts: hi 3, lo 1, other 1 ; shares 0.2 / 0.3 / 0.5
    spec = [(1, "A", "hi", 300, 1), (2, "A", "lo", 100, 1), (3, "A", "mid", 100, 1)]
    pop = pl.DataFrame(
        {"unit": ["u"] * 3, "group": ["hi", "lo", "mid"], "count": [20.0, 30.0, 50.0]}
    )
    p = place_segregation(visits(spec), min_devices=1, ice_high="hi", ice_low="lo", population=pop)
    expected = (3 / 0.2 - 1 / 0.3) / (3 / 0.2 + 1 / 0.3 + 1 / 0.5)
    assert p["ice"][0] == pytest.approx(expected)
    r = experienced_indices(
        visits(spec), min_devices=1, ice_high="hi", ice_low="lo", population=pop
    )
    assert value(r.indices, index="ice", statistic="mean") == pytest.approx(expected)


def test_ice_extremes_two_groups():
    spec = [
        (1, "A", "hi", 100, 1),
        (2, "B", "lo", 100, 1),
        (3, "C", "hi", 100, 1),
        (4, "C", "lo", 100, 1),
    ]
    p = place_segregation(visits(spec), min_devices=1, ice_high="hi", ice_low="lo").sort("place")
    assert p["ice"].to_list() == pytest.approx([1.0, -1.0, 0.0])


def test_ice_needs_known_groups():
    spec = [(1, "A", "x", 100, 1), (2, "A", "y", 100, 1)]
    with pytest.raises(UsageError, match="not a group"):
        experienced_indices(visits(spec), min_devices=1, ice_high="x", ice_low="zz")
    with pytest.raises(UsageError, match="both"):
        ExperiencedParams(ice_high="x")


def test_suppression_sets_small_places_aside_everywhere():
    spec = [(i, "big", "xy"[i % 2], 100, 1) for i in range(6)]
    spec += [(0, "small", "x", 500, 1), (1, "small", "y", 50, 1)]
    res = experienced_indices(visits(spec), min_devices=3)
    assert res.places["place"].to_list() == ["big"]
    s = res.summary
    assert (s["units_suppressed"], s["visits_suppressed"], s["dwell_suppressed_s"]) == (1, 2, 550.0)
    assert (s["units"], s["visits"]) == (1, 6)
    # the small place is absent from the individual exposures too: devices 0 and 1 only see "big"
    d = res.devices.sort("device")
    assert d["tau_x"].to_list() == pytest.approx([0.5] * 6)


def test_nothing_left_is_a_clear_error():
    spec = [(1, "A", "x", 100, 1), (2, "A", "y", 100, 1)]
    with pytest.raises(InputError, match="at least 5 distinct devices"):
        experienced_indices(visits(spec))


def test_by_slot_and_daytype_strata():
    mon = datetime(2024, 3, 4, 7, 10, tzinfo=UTC)  # 08:10 Stockholm, Monday
    sat = datetime(2024, 3, 9, 7, 40, tzinfo=UTC)  # 08:40 Stockholm, Saturday
    df = pl.concat(
        [
            visits([(1, "A", "x", 60, 1), (2, "A", "x", 60, 1)], mon),
            visits([(1, "A", "x", 60, 1), (3, "A", "y", 60, 1)], sat),
        ]
    )
    p = place_segregation(df, min_devices=1, by=("daytype", "slot")).sort("stratum")
    assert p["stratum"].to_list() == ["weekday 08:00", "weekend 08:30"]
    assert p["segregation"].to_list() == pytest.approx([1.0, 0.0])
    r = experienced_indices(df, min_devices=1, by=("hour",)).indices
    assert set(r.filter(pl.col("index") == "place_segregation")["stratum"].drop_nulls()) == {
        "08:00"
    }
    # daytype uses Swedish public holidays: 6 June is National Day
    hol = visits([(1, "A", "x", 60, 1)], datetime(2024, 6, 6, 10, 0, tzinfo=UTC))
    assert place_segregation(
        pl.concat([hol, visits([(2, "A", "y", 60, 1)], datetime(2024, 6, 6, 10, 0, tzinfo=UTC))]),
        min_devices=1,
        by=("daytype",),
    )["stratum"].to_list() == ["holiday"]


def test_by_needs_time_information():
    spec = visits([(1, "A", "x", 60, 1), (2, "A", "y", 60, 1)]).drop("start")
    with pytest.raises(InputError, match="needs column"):
        place_segregation(spec, min_devices=1, by=("slot",))


def test_bad_rows_are_counted_by_reason():
    df = pl.DataFrame(
        {
            "device": [1, 2, 3, None, 5, 6],
            "place": ["A", "A", "A", "A", None, "A"],
            "group": ["x", "y", None, "x", "x", "y"],
            "dwell_s": [10.0, 10.0, 10.0, 10.0, 10.0, -1.0],
        }
    )
    res = experienced_indices(df, min_devices=1)
    assert res.summary["rejected_by_reason"] == {
        "bad_dwell": 1,
        "empty_id": 1,
        "missing_group": 1,
        "missing_place": 1,
    }
    assert res.summary["rows_in"] == 6 and res.summary["visits"] == 2


def test_missing_columns_error():
    with pytest.raises(InputError, match="lacks column"):
        experienced_indices(pl.DataFrame({"device": [1], "place": ["A"]}))


def test_needs_two_groups():
    with pytest.raises(InputError, match="two groups"):
        experienced_indices(visits([(1, "A", "x", 10, 1), (2, "A", "x", 10, 1)]), min_devices=1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3), st.integers(2, 6))
def test_segregation_bounds_and_uniform_formula(raw, k):
    rng = np.random.default_rng(int(sum(raw) * 1000))
    tau = rng.dirichlet(np.ones(k) * (0.1 + raw[0]), size=5)
    s = segregation(tau, np.full(k, 1 / k))
    assert np.all(s >= -1e-12) and np.all(s <= 1 + 1e-12)
    moro = k / (2 * (k - 1)) * np.abs(tau - 1 / k).sum(axis=1)
    assert np.allclose(s, moro, atol=1e-12)
    assert segregation(np.eye(k)[0], np.full(k, 1 / k)) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10_000))
def test_weighted_quantiles_match_numpy(m, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=m)
    w = rng.integers(0, 4, size=m).astype(float)
    if w.sum() == 0:
        w[0] = 1.0
    got = weighted_quantiles(v, w, [0.25, 0.5, 0.75])
    want = [np.quantile(v, q, weights=w, method="inverted_cdf") for q in (0.25, 0.5, 0.75)]
    assert np.allclose(got, want)


def test_invariant_to_scaling_weights_and_dwell():
    rng = np.random.default_rng(3)
    spec = [
        (int(d), f"p{rng.integers(0, 4)}", "xyz"[d % 3], float(rng.integers(1, 100)), 1.0)
        for d in range(40)
        for _ in range(3)
    ]
    base = experienced_indices(visits(spec), min_devices=1).indices
    scaled = experienced_indices(
        visits([(d, p, g, s * 7, w * 2.5) for d, p, g, s, w in spec]), min_devices=1
    ).indices
    assert np.allclose(base["value"].to_numpy(), scaled["value"].to_numpy(), equal_nan=True)


def test_panel_reuse_with_two_parameter_sets():
    spec = visits([(i, "A", "xy"[i % 2], 100, 1) for i in range(6)])
    params = ExperiencedParams(min_devices=1)
    panel = panel_from_long(spec, params)
    a = experienced(panel, params).indices
    b = experienced(panel, ExperiencedParams(min_devices=1, reference="population")).indices
    assert a.height == b.height


def test_visits_spanning_days_count_once_per_place():
    spec = visits([(1, "A", "x", 100, 1)], T0).vstack(
        visits([(1, "A", "x", 100, 1)], T0 + timedelta(days=1))
    )
    spec = spec.vstack(visits([(2, "A", "y", 200, 1)]))
    p = place_segregation(spec, min_devices=1)
    assert (p["devices"][0], p["visits"][0]) == (2, 3)
    assert p["segregation"][0] == pytest.approx(0.0)


def test_row_nanquantiles_equal_numpy_nanquantile():
    """The per-place bootstrap CIs: the same numbers as np.nanquantile along rows, with
    NaN replicates ignored and all-NaN rows NaN."""
    rng = np.random.default_rng(7)
    b = rng.random((300, 40))
    b[rng.random(b.shape) < 0.1] = np.nan
    b[0] = np.nan
    b[1, 1:] = np.nan
    b[2] = 0.5  # ties
    qs = [0.025, 0.5, 0.975]
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanquantile(b, qs, axis=1)
    got = row_nanquantiles(b, qs)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got[:, 0]).all() and np.all(got[:, 1] == b[1, 0])
    assert row_nanquantiles(np.zeros((0, 5)), qs).shape == (3, 0)
