"""Visits: half-hour slot split in local time (midnight, DST), day types, dwell totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.errors import UsageError
from segtool.mobility.visits import VISITS_SCHEMA, VisitParams, generate_visits
from tests.mobility.helpers import stays

STHLM = ZoneInfo("Europe/Stockholm")
UTC = UTC


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STHLM).astimezone(UTC)


def visits(rows, **kw) -> pl.DataFrame:
    return generate_visits(stays(rows).lazy(), VisitParams(**kw)).collect()


def test_stay_spanning_midnight_and_a_slot_boundary():
    # Friday 10 May 2024 23:50 → Saturday 00:20 local
    out = visits([(1, local(2024, 5, 10, 23, 50), local(2024, 5, 11, 0, 20))])
    assert out.schema == VISITS_SCHEMA
    assert out["slot"].to_list() == [47, 0]
    assert out["dwell_s"].to_list() == [600.0, 1200.0]
    assert out["daytype"].to_list() == ["weekday", "weekend"]
    assert out["start"].to_list() == [local(2024, 5, 10, 23, 50), local(2024, 5, 11, 0, 0)]
    assert out["cell"].n_unique() == 1


def test_stay_across_the_spring_dst_change():
    # 31 March 2024 (Easter Sunday): 01:45 CET → 03:15 CEST is 30 real minutes
    s, e = local(2024, 3, 31, 1, 45), local(2024, 3, 31, 3, 15)
    assert e - s == timedelta(minutes=30)
    out = visits([(1, s, e)])
    assert out["slot"].to_list() == [3, 6]  # 01:30–02:00 and 03:00–03:30 local
    assert out["dwell_s"].to_list() == [900.0, 900.0]
    assert set(out["daytype"]) == {"holiday"}


def test_stay_across_the_autumn_dst_change():
    # 27 October 2024: 02:00–03:00 local happens twice; 00:30–01:30 UTC = 02:30 CEST → 02:30 CET
    s = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    out = visits([(1, s, s + timedelta(hours=1))])
    assert out["slot"].to_list() == [5, 4]
    assert out["dwell_s"].sum() == 3600.0
    assert set(out["daytype"]) == {"weekend"}


def test_holiday_labels():
    national_day = (1, local(2024, 6, 6, 10), local(2024, 6, 6, 10, 30))  # Thursday
    midsummer_eve = (1, local(2024, 6, 21, 10), local(2024, 6, 21, 10, 30))  # Friday
    rows = [national_day, midsummer_eve]
    assert visits(rows)["daytype"].to_list() == ["holiday", "weekday"]
    assert visits(rows, holidays="weekend")["daytype"].to_list() == ["weekend", "weekday"]
    assert visits(rows, holidays="weekday")["daytype"].to_list() == ["weekday", "weekday"]
    assert visits(rows, de_facto_holidays=True)["daytype"].to_list() == ["holiday", "holiday"]


def test_zero_length_stay_has_no_visit_and_end_on_a_boundary_adds_nothing():
    t = local(2024, 5, 6, 10)
    assert visits([(1, t, t)]).height == 0
    out = visits([(1, t, t + timedelta(minutes=30))])
    assert out["dwell_s"].to_list() == [1800.0] and out["slot"].to_list() == [20]


def test_resolution_sets_the_cell():
    import polars_h3 as plh3

    t = local(2024, 5, 6, 10)
    for res in (5, 12):
        out = visits([(1, t, t + timedelta(minutes=20))], res=res)
        assert out.select(plh3.get_resolution("cell"))[0, 0] == res


def test_bad_parameters():
    with pytest.raises(UsageError):
        VisitParams(res=13)
    with pytest.raises(UsageError):
        VisitParams(tz="Asia/Kathmandu")  # UTC+5:45: no half-hour slots
    with pytest.raises(UsageError):
        VisitParams(tz="Nowhere/Town")
    with pytest.raises(UsageError):
        VisitParams(country="XX")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(datetime(2023, 1, 1), datetime(2025, 12, 31)),
            st.integers(0, 40 * 3600 * 10**6),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_dwell_per_slot_sums_to_the_stay_and_pieces_stay_in_one_slot(spans):
    rows = []
    for i, (start, dur_us) in enumerate(spans):
        s = start.replace(tzinfo=UTC)
        rows.append((i, s, s + timedelta(microseconds=dur_us)))
    frame = stays(rows)
    out = generate_visits(frame.lazy()).collect()
    per_stay = out.group_by("device").agg(pl.col("dwell_s").sum())
    expected = frame.select(
        "device", ((pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6).alias("d")
    ).join(per_stay, on="device", how="left")
    assert ((expected["dwell_s"].fill_null(0.0) - expected["d"]).abs() < 1e-6).all()
    assert (out["dwell_s"] > 0).all() and (out["dwell_s"] <= 1800.0).all()
    loc = out["start"].dt.convert_time_zone("Europe/Stockholm")
    assert (out["slot"] == (loc.dt.hour() * 2 + loc.dt.minute() // 30)).all()
    # a piece never crosses a local slot boundary
    end_loc = (out["start"] + pl.duration(microseconds=(out["dwell_s"] * 1e6).round() - 1)).dt
    end_slot = (
        pl.select(end_loc.convert_time_zone("Europe/Stockholm").alias("e"))["e"].dt.minute() // 30
    )
    assert (end_slot == loc.dt.minute() // 30).all()


def test_visit_dwell_totals_equal_stay_durations_on_simulated_stays():
    from segtool.mobility.stays import generate_stays
    from tests.mobility.simulate import SimParams, simulate

    sim = simulate(SimParams(n_devices=40, n_days=5, seed=3))
    st_ = generate_stays(sim.pings.lazy()).collect()
    out = generate_visits(st_.lazy()).collect()
    total = (st_["end"] - st_["start"]).dt.total_microseconds().sum() / 1e6
    assert out["dwell_s"].sum() == pytest.approx(total, rel=1e-12)
    per_device = out.group_by("device").agg(pl.col("dwell_s").sum()).sort("device")
    stay_dev = (
        st_.group_by("device")
        .agg(((pl.col("end") - pl.col("start")).dt.total_microseconds().sum() / 1e6).alias("d"))
        .sort("device")
    )
    assert per_device["dwell_s"].to_list() == pytest.approx(stay_dev["d"].to_list())
