"""Issue 11: the noise band, the centre slack and gap filling by hand, the quality scorer
against hand-computed cases, and recovery of true stays on generated noisy traces."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.errors import UsageError
from segtool.mobility.stays import PING_BOUNDED, StayParams, detect_stays
from segtool.mobility.stays_quality import observable_share, score_stays
from segtool.synth.traces import TraceParams, make_traces
from tests.mobility.helpers import T0, ll, pings
from tests.mobility.reference import assert_kernel_matches_reference
from tests.mobility.test_stays import traces

OFF = dict(noise_band=1.0, centre_slack=False, fill_gap_s=0.0)  # the rules before issue 11


def detect(rows, **kw) -> pl.DataFrame:
    return detect_stays(pings(rows), StayParams(**kw))[0]


def still(start, end, step=2, north=0.0):
    return [(1, m, north, 0.0) for m in range(start, end + 1, step)]


def away(after):
    return [(1, after + 2 * k, 800.0 * (k + 1), 0.0) for k in range(1, 4)]


# --- the noise band ------------------------------------------------------------------------


def test_two_noisy_pings_in_the_band_do_not_end_the_stay():
    rows = still(0, 60)
    rows[10] = (1, rows[10][1], 45.0, 0.0)  # 45 m: beyond r = 30, within 2r
    rows[11] = (1, rows[11][1], -40.0, 10.0)
    out = detect(rows, merge_gap_s=0, noise_band=2.0)
    assert out.height == 1 and out["n_pings"][0] == len(rows) - 2
    assert detect(rows, merge_gap_s=0).height == 1  # the default band is 2
    assert detect(rows, merge_gap_s=0, noise_band=1.0).height == 2  # band off: two stays
    far = still(0, 60)
    far[10], far[11] = (1, far[10][1], 95.0, 0.0), (1, far[11][1], -90.0, 0.0)
    assert detect(far, merge_gap_s=0, noise_band=2.0).height == 2  # beyond 2r: outliers


def test_pings_left_in_the_band_end_the_stay_at_the_last_ping_inside():
    rows = still(0, 30) + [(1, 32 + 2 * k, 45.0, 0.0) for k in range(10)] + away(52)
    out = detect(rows, noise_band=2.0)
    assert out["end"][0] == T0 + timedelta(minutes=30)


# --- the centre slack ------------------------------------------------------------------------


def test_a_young_centre_accepts_a_ping_up_to_r_sqrt2():
    rows = [(1, 0, 0.0, 0.0), (1, 8, 40.0, 0.0), (1, 16, 20.0, 0.0)] + away(16)
    # 40 m ≤ 30·√2 = 42.4 m from the one-ping centre: one stay of 16 min
    out = detect(rows, noise_band=1.0)
    assert out.height == 1 and out["n_pings"][0] == 3
    # without the slack the 40 m ping is skipped as an outlier
    assert detect(rows, noise_band=1.0, centre_slack=False)["n_pings"].to_list() == [2]


# --- gap filling -------------------------------------------------------------------------


def test_bounds_move_to_the_middle_of_reporting_gaps():
    # moving at −40 min, the stay's pings 0 … 30 min, a 40 min gap, elsewhere at 70 min
    rows = [(1, -40, 5000.0, 0.0)] + still(0, 30) + [(1, 70, 3000.0, 0.0)]
    out = detect(rows, fill_gap_s=900)
    assert out["start"][0] == T0 - timedelta(minutes=20)
    assert out["end"][0] == T0 + timedelta(minutes=50)
    assert detect(rows)["end"][0] == T0 + timedelta(minutes=50)  # on by default (15 min)
    assert detect(rows, fill_gap_s=0)["end"][0] == T0 + timedelta(minutes=30)  # off
    # a gap not longer than --fill-gap (10 min) or longer than --max-gap is not filled
    short = [(1, -10, 5000.0, 0.0)] + still(0, 30) + [(1, 40, 3000.0, 0.0)]
    out = detect(short, fill_gap_s=600)
    assert out["start"][0] == T0 and out["end"][0] == T0 + timedelta(minutes=30)
    assert detect(rows, fill_gap_s=900, max_gap_s=1800)["end"][0] == T0 + timedelta(minutes=30)


def test_a_stay_seen_by_two_pings_between_gaps_counts_by_its_filled_bounds():
    # moving, 40 min gap, two pings 10 min apart at one place, 40 min gap, elsewhere
    rows = [(1, -40, 5000.0, 0.0), (1, 0, 0.0, 0.0), (1, 10, 5.0, 0.0), (1, 50, 3000.0, 0.0)]
    out = detect(rows)  # the pings span 10 min < 15; the filled bounds 50 min
    assert out.height == 1 and out["n_pings"][0] == 2
    assert out["start"][0] == T0 - timedelta(minutes=20)
    assert out["end"][0] == T0 + timedelta(minutes=30)
    assert detect(rows, fill_gap_s=0).height == 0  # bounds at the pings: too short
    # one ping alone between two gaps is no stay, however long the gaps
    lone = [(1, -40, 5000.0, 0.0), (1, 0, 0.0, 0.0), (1, 50, 3000.0, 0.0)]
    assert detect(lone).height == 0
    # filled bounds shorter than --min-duration: no stay (a 16 min gap before, filled by
    # 8 min; 4 min of pings; a 10 min gap after, not over --fill-gap: 12 min < 15)
    near = [(1, -16, 5000.0, 0.0), (1, 0, 0.0, 0.0), (1, 4, 5.0, 0.0), (1, 14, 3000.0, 0.0)]
    assert detect(near).height == 0
    assert detect(near, fill_gap_s=300)["start"][0] == T0 - timedelta(minutes=8)  # 8+4+5


def test_two_stays_around_one_gap_meet_in_its_middle():
    rows = still(0, 30) + still(71, 101, north=3000.0)  # 41 min gap between the stays
    out = detect(rows, fill_gap_s=900)
    assert out.height == 2
    assert out["end"][0] == T0 + timedelta(minutes=50, seconds=30)
    assert out["start"][1] == T0 + timedelta(minutes=50, seconds=30)


def test_new_options_are_checked():
    with pytest.raises(UsageError):
        StayParams(noise_band=0.5)
    with pytest.raises(UsageError):
        StayParams(fill_gap_s=-1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 90), min_size=2, max_size=40), st.integers(0, 3))
def test_filled_stays_never_overlap_and_hold_their_pings(steps, seed):
    rng = np.random.default_rng(seed)
    t = np.cumsum(steps)
    place = (t // 120) % 2 * 500.0  # two places, two hours each
    rows = [
        (1, int(m), p + rng.normal(0, 15), rng.normal(0, 15)) for m, p in zip(t, place, strict=True)
    ]
    out = detect(rows)
    starts, ends = out["start"].to_list(), out["end"].to_list()
    assert all(s < e for s, e in zip(starts, ends, strict=True))
    assert all(
        e <= s for e, s in zip(ends, starts[1:], strict=False)
    )  # in order, never overlapping
    frame = pings(rows)
    for s, e in zip(out["start"], out["end"], strict=True):
        inside = frame.filter((pl.col("ts") >= s) & (pl.col("ts") <= e)).height
        assert inside >= 2


# --- the scorer on hand-computed cases -----------------------------------------------------

U = pl.Datetime("us", "UTC")


def stays(rows):
    """rows: (device, start_h, end_h, north_m) → a stays-like frame."""
    lat = [ll(r[3], 0.0)[0] for r in rows]
    lon = [ll(r[3], 0.0)[1] for r in rows]
    base = datetime(2024, 5, 6, tzinfo=UTC)
    return pl.DataFrame(
        {
            "device": pl.Series([r[0] for r in rows], dtype=pl.UInt64),
            "start": pl.Series([base + timedelta(hours=r[1]) for r in rows], dtype=U),
            "end": pl.Series([base + timedelta(hours=r[2]) for r in rows], dtype=U),
            "lat": lat,
            "lon": lon,
        }
    )


def test_scores_by_hand():
    truth = stays([(1, 0, 4, 0.0), (1, 5, 7, 0.0), (2, 0, 2, 100.0)])
    det = stays([(1, 1, 4, 10.0), (1, 5, 5.5, 0.0), (1, 6, 6.9, 0.0), (2, 3, 4, 0.0)])
    q = score_stays(det, truth)
    # stay 1: 3 h of 4 covered by one detection → recalled (error 10 m); stay 2: 0.5 + 0.9
    # h of 2, no piece more than half → missed; stay 3: nothing → missed
    assert q.recall == pytest.approx(1 / 3)
    assert q.time_covered == pytest.approx((3 + 0.5 + 0.9) / 8)
    assert q.precision == pytest.approx(3 / 4)  # device 2's detection lies outside
    assert q.median_error_m == pytest.approx(10.0, abs=0.01)
    perfect = score_stays(truth, truth)
    assert (perfect.recall, perfect.time_covered, perfect.precision) == (1.0, 1.0, 1.0)
    assert perfect.median_error_m == pytest.approx(0.0, abs=1e-6)


def test_observable_share_by_hand():
    truth = stays([(1, 0, 1, 0.0), (1, 2, 3, 0.0)])
    ts = [T0.replace(hour=0, minute=m) for m in (0, 20)] + [T0.replace(hour=2, minute=5)]
    p = pl.DataFrame(
        {"device": pl.Series([1, 1, 1], dtype=pl.UInt64), "ts": pl.Series(ts, dtype=U)}
    )
    # the first stay holds two pings 20 min apart, the second only one
    assert observable_share(truth, p) == 0.5


# --- recovery on generated noisy traces ------------------------------------------------------

SMALL = TraceParams(devices=150, days=4, seed=3)


@pytest.fixture(scope="module")
def noisy():
    return make_traces(SMALL)


def test_recovers_noisy_stays_at_the_defaults(noisy):
    pings_ = noisy.pings.drop("accuracy_m")
    q = score_stays(detect_stays(pings_, StayParams())[0], noisy.stays, noisy.pings)
    # the goal of issue 11, met by the defaults in bench/results/stays_quality.md (15 m,
    # app gaps: recall 0.850, time 0.919, precision 0.978, 5.7 m) and on this smaller
    # sample (measured 0.856, 0.927, 0.979, 5.8 m)
    assert q.recall >= 0.83, q  # the goal: 0.80
    assert q.time_covered >= 0.90, q  # the goal: 0.80
    assert q.precision >= 0.95, q
    assert q.median_error_m <= 15.0, q
    before = score_stays(detect_stays(pings_, StayParams(**OFF))[0], noisy.stays)
    assert q.recall >= before.recall + 0.10, (q, before)
    assert q.time_covered >= before.time_covered + 0.05, (q, before)
    # with the bounds at the pings the centre slack alone gains a little
    plain = score_stays(detect_stays(pings_, StayParams(**PING_BOUNDED))[0], noisy.stays)
    assert plain.recall >= before.recall + 0.01, (plain, before)


def test_more_noise_scores_lower(noisy):
    loud = make_traces(replace(SMALL, noise_m=30.0))
    a = score_stays(detect_stays(noisy.pings, StayParams())[0], noisy.stays)
    b = score_stays(detect_stays(loud.pings, StayParams())[0], loud.stays)
    assert b.recall < a.recall and b.median_error_m > a.median_error_m


# --- the kernel against the plain-Python reference, new rules on ---------------------------


@settings(max_examples=100, deadline=None)
@given(
    traces(),
    st.sampled_from([1.0, 1.5, 2.0]),
    st.booleans(),
    st.sampled_from([0.0, 300.0, 900.0]),
    st.integers(0, 2),
)
def test_kernel_equals_the_reference_with_the_new_rules(rows, band, slack, fill, outliers):
    params = StayParams(
        min_duration_s=600.0,
        max_gap_s=3600.0,
        max_outliers=outliers,
        noise_band=band,
        centre_slack=slack,
        fill_gap_s=fill,
    )
    assert_kernel_matches_reference(pings(rows), params)
