"""Wall-clock schedules to UTC across the switches to and from summer time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.synth.clock import make_clock

STOCKHOLM = ZoneInfo("Europe/Stockholm")
H = 3600


def local(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).astimezone(STOCKHOLM).isoformat()


def test_spring_forward():
    c = make_clock(dt.date(2024, 3, 25), 14)
    d = 6  # Sunday 2024-03-31
    assert local(c.to_utc(d, 1.5 * H)) == "2024-03-31T01:30:00+01:00"
    assert local(c.to_utc(d, 2.5 * H)) == "2024-03-31T03:00:00+02:00"  # missing hour: the switch
    assert local(c.to_utc(d, 3.5 * H)) == "2024-03-31T03:30:00+02:00"
    assert local(c.to_utc(d - 1, 26.5 * H)) == "2024-03-31T03:00:00+02:00"  # past midnight
    assert c.midnight[d + 1] - c.midnight[d] == 23 * H


def test_fall_back():
    c = make_clock(dt.date(2024, 10, 21), 14)
    d = 6  # Sunday 2024-10-27
    assert local(c.to_utc(d, 2.5 * H)) == "2024-10-27T02:30:00+02:00"  # repeated hour: earlier
    assert local(c.to_utc(d, 3.5 * H)) == "2024-10-27T03:30:00+01:00"
    assert c.midnight[d + 1] - c.midnight[d] == 25 * H


def test_workdays_skip_weekends_and_swedish_holidays():
    c = make_clock(dt.date(2024, 3, 25), 14)
    days = [dt.date(2024, 3, 25) + dt.timedelta(days=i) for i in range(14)]
    off = {d for d, w in zip(days, c.workday[:14], strict=True) if not w}
    assert dt.date(2024, 3, 29) in off and dt.date(2024, 4, 1) in off  # Good Friday, Easter Monday
    assert dt.date(2024, 3, 28) not in off
    assert sum(not w for w in c.workday[:14]) == 6


@settings(max_examples=60, deadline=None)
@given(
    start=st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 1)),
    walls=st.lists(st.floats(0, 30 * H), min_size=2, max_size=30),
)
def test_to_utc_is_monotone_and_matches_zoneinfo(start, walls):
    c = make_clock(start, 3)
    walls = np.sort(np.asarray(walls))
    utc = c.to_utc(np.zeros(len(walls), dtype=int), walls)
    assert np.all(np.diff(utc) >= 0)
    for w, u in zip(walls, utc, strict=True):
        day = start + dt.timedelta(days=int(w // 86400))
        naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=float(w % 86400))
        expect = naive.replace(tzinfo=STOCKHOLM, fold=0)
        # existing wall times map to themselves (earlier instant when repeated)
        if expect.astimezone(dt.UTC).astimezone(STOCKHOLM).replace(tzinfo=None) == naive:
            assert abs(u - expect.timestamp()) < 1e-3


@settings(max_examples=30, deadline=None)
@given(start=st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 1)), seed=st.integers(0, 1000))
def test_iso_local_matches_polars_time_zones(start, seed):
    c = make_clock(start, 30)
    t = np.sort(np.random.default_rng(seed).integers(c.t0, c.t1, 500))
    m = c.iso_local(t)
    ours = pl.Series(np.char.decode(np.ascontiguousarray(m).view("S25").ravel(), "ascii"))
    ref = (
        pl.from_epoch(pl.Series(t), time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("Europe/Stockholm")
        .dt.to_string("%Y-%m-%dT%H:%M:%S%:z")
    )
    assert ours.to_list() == ref.to_list()
