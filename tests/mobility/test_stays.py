"""Stay detection: hand-made edge cases, the reference oracle, invariants, recovery of
simulated true stays, and agreement with trackintel."""

from __future__ import annotations

from datetime import UTC, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segtool.errors import UsageError
from segtool.mobility.stays import (
    STAYS_SCHEMA,
    StayParams,
    detect_stays,
    device_batches,
    generate_stays,
    label_pings,
)
from tests.mobility.helpers import T0, pings
from tests.mobility.recovery import agreement, match_stays, recovery_rate
from tests.mobility.reference import assert_kernel_matches_reference
from tests.mobility.simulate import SimParams, simulate


def detect(frame: pl.DataFrame, **kw) -> pl.DataFrame:
    return generate_stays(frame.lazy(), StayParams(**kw)).collect()


def still(dev, start_min, end_min, step=2, north=0.0, east=0.0):
    return [(dev, m, north, east) for m in range(start_min, end_min + 1, step)]


def test_schema_and_a_plain_stay():
    out = detect(pings(still(1, 0, 30)))
    assert out.schema == STAYS_SCHEMA
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["start"] == T0 and row["end"] == T0 + timedelta(minutes=30)
    assert row["n_pings"] == 16


def test_a_stay_across_the_dst_change_lasts_its_real_duration():
    from datetime import datetime

    # 31 March 2024, 01:30 CET (00:30 UTC) → 03:30 CEST (01:30 UTC): one real hour
    t0 = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)
    out = detect(pings(still(1, 0, 60), t0=t0))
    assert out["start"].to_list() == [t0]
    assert out["end"][0] - out["start"][0] == timedelta(hours=1)
    local = out["end"].dt.convert_time_zone("Europe/Stockholm").dt.hour()
    assert local.to_list() == [3]


def test_device_with_one_ping_has_no_stay():
    out = detect(pings([(7, 0, 0, 0)]))
    assert out.height == 0 and out.schema == STAYS_SCHEMA


def test_empty_input():
    empty = pings([]).clear()
    assert detect(empty).height == 0


def test_min_duration_boundary_is_inclusive():
    assert detect(pings(still(1, 0, 15, step=5))).height == 1  # exactly 15 min
    assert detect(pings(still(1, 0, 14, step=7))).height == 0


def test_pings_out_of_time_order_give_the_same_stays():
    rows = (
        still(1, 0, 40)
        + [(1, 41 + k, 500.0 + 300 * k, 0.0) for k in range(5)]
        + still(1, 50, 90, north=2000.0)
    )
    ordered = detect(pings(rows))
    shuffled = detect(pings(rows).sample(fraction=1.0, shuffle=True, seed=3))
    assert ordered.height == 2
    assert ordered.equals(shuffled)


def test_identical_timestamps_are_deterministic():
    rows = still(1, 0, 30) + [(1, 10, 5.0, 0.0), (1, 10, -5.0, 0.0), (1, 20, 1.0, 1.0)]
    a = detect(pings(rows))
    b = detect(pings(rows[::-1]))
    assert a.equals(b)
    assert a.height == 1 and a["n_pings"][0] == len(rows)


def test_lone_outlier_inside_a_stay_is_skipped():
    rows = still(1, 0, 60)
    rows[10] = (1, rows[10][1], 300.0, 0.0)  # one ping 300 m away, then back
    out = detect(pings(rows))
    assert out.height == 1
    assert out["n_pings"][0] == len(rows) - 1
    assert out["end"][0] == T0 + timedelta(minutes=60)
    # without outlier tolerance nor merging the stay breaks in two
    assert detect(pings(rows), max_outliers=0, merge_gap_s=0).height == 2


def test_two_outliers_in_a_row_are_joined_by_the_merge():
    rows = still(1, 0, 60)
    rows[10] = (1, rows[10][1], 300.0, 0.0)
    rows[11] = (1, rows[11][1], -250.0, 40.0)
    out = detect(pings(rows))
    assert out.height == 1
    assert out["start"][0] == T0 and out["end"][0] == T0 + timedelta(minutes=60)
    assert detect(pings(rows), merge_gap_s=0).height == 2


def test_gps_jitter_does_not_split_a_stay():
    rng = np.random.default_rng(1)
    n = 240  # 8 h at 2 min
    north = rng.normal(0, 8, n)
    east = rng.normal(0, 8, n)
    rows = [(1, 2 * k, north[k], east[k]) for k in range(n)]
    out = detect(pings(rows))
    assert out.height == 1
    assert out["n_pings"][0] >= n - 3


def test_reported_accuracy_widens_the_radius_up_to_2r():
    # a stay 0–28 min, then the last ping before leaving 45 m off at 30 min, then away
    rows = still(1, 0, 28) + [(1, 30, 45.0, 0.0)]
    rows += [(1, 40 + 2 * k, 500.0 * (k + 1), 0.0) for k in range(3)]
    frame = pings(rows)
    acc = [5.0] * len(rows)
    acc[15] = 20.0  # its accuracy circle (30 + 20 m) reaches the stay's centre
    with_acc = frame.with_columns(pl.Series("accuracy_m", acc, dtype=pl.Float32))
    at = [T0 + timedelta(minutes=30)]
    before = [T0 + timedelta(minutes=28)]
    assert detect(with_acc)["end"].to_list() == at
    assert detect(with_acc, use_accuracy=False)["end"].to_list() == before
    assert detect(frame)["end"].to_list() == before  # no accuracy column
    # 65 m off is beyond 2r whatever the reported accuracy
    far = pings(rows[:15] + [(1, 30, 65.0, 0.0)] + rows[16:])
    far = far.with_columns(pl.Series("accuracy_m", [5.0] * 15 + [500.0] + [5.0] * 3))
    assert detect(far)["end"].to_list() == before


def test_sparse_sampling_within_the_gap_keeps_the_stay():
    rows = [(1, m, 0.0, 0.0) for m in (0, 50, 120, 170, 300)]  # gaps up to 130 min
    out = detect(pings(rows))
    assert out.height == 1 and out["end"][0] == T0 + timedelta(minutes=300)


def test_a_gap_longer_than_max_gap_ends_the_stay():
    rows = still(1, 0, 30) + still(1, 30 + 181, 30 + 181 + 30)
    out = detect(pings(rows))
    assert out.height == 2
    assert out["end"][0] == T0 + timedelta(minutes=30)


def test_leaving_ends_the_stay_at_the_last_ping_inside():
    rows = still(1, 0, 30) + [(1, 32, 200.0, 0.0), (1, 34, 400.0, 0.0), (1, 36, 600.0, 0.0)]
    out = detect(pings(rows))
    assert out.height == 1 and out["end"][0] == T0 + timedelta(minutes=30)


def test_slow_drift_is_not_one_long_stay():
    rows = [(1, 2 * k, 3.0 * k, 0.0) for k in range(100)]  # 1.5 m/min for 200 min
    out = detect(pings(rows))
    assert out.height >= 2
    assert (out["end"] - out["start"]).max() < timedelta(minutes=100)


@pytest.mark.parametrize("mode", ["keep", "cut", "drop"])
def test_long_stays(mode):
    rows = still(1, 0, 14 * 60, step=10)
    out = detect(pings(rows), long_stays=mode)
    if mode == "keep":
        assert out.height == 1 and out["end"][0] - out["start"][0] == timedelta(hours=14)
    elif mode == "drop":
        assert out.height == 0
    else:
        assert out.height == 2
        assert (out["end"] - out["start"]).max() < timedelta(hours=12)
        assert out["start"][1] == out["end"][0] + timedelta(minutes=10)
        assert out["n_pings"].sum() == len(rows)


def test_stays_of_two_devices_do_not_mix():
    rows = still(1, 0, 30) + still(2, 31, 60)  # same place; device 2 starts after device 1
    out = detect(pings(rows))
    assert out["device"].to_list() == [1, 2]


def test_label_pings_matches_stays():
    rows = still(1, 0, 30) + [(1, 40, 900.0, 0.0)] + still(1, 50, 80, north=2000.0)
    frame = pings(rows).sample(fraction=1.0, shuffle=True, seed=1)
    labels = label_pings(frame)
    stays, _ = detect_stays(frame)
    # labels follow the input rows: the far ping is the only one outside a stay
    assert labels.filter(frame["ts"] == T0 + timedelta(minutes=40)).to_list() == [-1]
    assert labels.max() == stays.height - 1
    assert (labels == -1).sum() == 1
    counts = labels.filter(labels >= 0).value_counts().sort("stay")["count"].to_list()
    assert counts == stays["n_pings"].to_list()


def test_bad_parameters_are_usage_errors():
    with pytest.raises(UsageError):
        StayParams(radius_m=0)
    with pytest.raises(UsageError):
        StayParams(long_stays="chop")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        StayParams(max_outliers=-1)


# --- the reference oracle on random traces ------------------------------------------------

ANCHORS = [(0.0, 0.0), (25.0, 10.0), (400.0, -100.0), (410.0, -80.0)]


@st.composite
def traces(draw):
    rows = []
    for dev in range(draw(st.integers(1, 3))):
        t = 0
        for _ in range(draw(st.integers(0, 40))):
            t += draw(st.sampled_from([0, 1, 2, 3, 5, 8, 20, 200]))
            north, east = draw(st.sampled_from(ANCHORS))
            north += draw(st.floats(-25, 25))
            east += draw(st.floats(-25, 25))
            if draw(st.integers(0, 9)) == 0:  # an outlier
                north += draw(st.sampled_from([-300.0, 300.0]))
            rows.append((dev, t, north, east))
    return rows


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    traces(),
    st.sampled_from(["keep", "cut", "drop"]),
    st.integers(0, 2),
    st.sampled_from([0.0, 600.0]),
)
def test_kernel_equals_the_reference(rows, mode, max_outliers, merge_gap):
    params = StayParams(
        min_duration_s=600.0,
        max_gap_s=3600.0,
        max_stay_s=3600.0,
        long_stays=mode,
        max_outliers=max_outliers,
        merge_gap_s=merge_gap,
    )
    assert_kernel_matches_reference(pings(rows), params)


@settings(max_examples=60, deadline=None)
@given(traces())
def test_invariants(rows):
    params = StayParams(min_duration_s=600.0, max_gap_s=3600.0)
    out, counts = detect_stays(pings(rows), params)
    assert (out["end"] >= out["start"]).all()
    assert ((out["end"] - out["start"]).dt.total_seconds() >= 600).all()
    assert (out["n_pings"] >= 2).all()
    # stays of a device never overlap and come in time order
    prev_end = out["end"].shift(1)
    same = out["device"] == out["device"].shift(1)
    assert (~same.fill_null(False) | (out["start"] >= prev_end).fill_null(True)).all()
    assert counts.pings_in_stays == out["n_pings"].sum()
    assert counts.stays == out.height
    assert counts.pings_in_stays + counts.outliers_skipped <= counts.pings


def test_device_batches_give_the_same_stays():
    sim = simulate(SimParams(n_devices=30, n_days=3, seed=5))
    whole = detect(sim.pings)
    parts = pl.concat(
        [generate_stays(b, StayParams()).collect() for b in device_batches(sim.pings.lazy(), 4)]
    ).sort("device", "start")
    assert parts.equals(whole.sort("device", "start"))


# --- simulated ground truth ----------------------------------------------------------------


@pytest.fixture(scope="module")
def city():
    return simulate(SimParams(n_devices=120, n_days=8, seed=11, jitter_m=10.0))


def test_recovers_95_percent_of_true_stays(city):
    detected = detect(city.pings)
    truth = city.stays.filter(~pl.col("censored"))
    rate = recovery_rate(detected, truth, tolerance_s=300, min_duration_s=1800)
    assert rate >= 0.95, rate
    # and most detected stays are true ones (precision, against all true stays)
    assert (
        match_stays(truth, detected.filter(pl.col("start") > truth["start"].min()))[
            "matched"
        ].mean()
        >= 0.9
    )


def test_recovery_checker_fails_on_shifted_stays(city):
    truth = city.stays.filter(~pl.col("censored"))
    shifted = truth.with_columns(pl.col("end") + timedelta(minutes=6))
    assert recovery_rate(shifted, truth) == 0.0
    assert recovery_rate(truth, truth) == 1.0


def test_agrees_with_trackintel_sliding():
    gpd = pytest.importorskip("geopandas")
    ti = pytest.importorskip("trackintel")
    sim = simulate(
        SimParams(n_devices=8, n_days=3, seed=2, jitter_m=4.0, outlier_rate=0.0, night_keep=1.0)
    )
    frame = sim.pings.sort("device", "ts")
    pfs = gpd.GeoDataFrame(
        {
            "user_id": frame["device"].reinterpret(signed=True).to_numpy(),
            "tracked_at": frame["ts"].to_pandas(),
        },
        geometry=gpd.points_from_xy(frame["lon"].to_numpy(), frame["lat"].to_numpy()),
        crs="EPSG:4326",
    )
    pfs = ti.Positionfixes(pfs)
    _, sp = pfs.generate_staypoints(
        method="sliding",
        dist_threshold=30,
        time_threshold=15,
        gap_threshold=180,
        include_last=True,
        print_progress=False,
    )
    theirs = pl.DataFrame(
        {
            "device": pl.Series(sp["user_id"].to_numpy()).reinterpret(signed=False),
            "start": pl.from_pandas(sp["started_at"]).dt.convert_time_zone("UTC"),
            "end": pl.from_pandas(sp["finished_at"]).dt.convert_time_zone("UTC"),
        }
    ).with_columns(pl.col("start", "end").dt.cast_time_unit("us"))
    ours = detect(frame)
    # trackintel ends a staypoint at the first ping outside it (ours: the last inside),
    # one sampling interval (2 min) later: within the 5 min tolerance
    found_theirs, found_ours = agreement(ours, theirs, tolerance_s=300)
    assert found_theirs >= 0.95, found_theirs
    assert found_ours >= 0.95, found_ours
