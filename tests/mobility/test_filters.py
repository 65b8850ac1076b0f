"""Device filters: active days (midnight counts twice), distinct places, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from segtool.mobility.filters import DeviceFilter, device_activity, filter_devices
from tests.mobility.helpers import ll, stays

UTC = UTC


def activity(rows):
    return device_activity(stays(rows).lazy(), 9, "Europe/Stockholm").collect().sort("device")


def test_days_and_places():
    a, b = ll(0, 0), ll(2000, 0)
    t = datetime(2024, 5, 6, 20, tzinfo=UTC)  # 22:00 local
    rows = [
        (1, t, t + timedelta(hours=4), *a),  # 22:00 → 02:00 local: two days
        (1, t + timedelta(days=3), t + timedelta(days=3, hours=1), *b),
        (2, t - timedelta(hours=2), t - timedelta(hours=1), *a),  # 20:00–21:00 local
        # ends exactly at local midnight: the next day has no time in it
        (3, t, t + timedelta(hours=2), *a),
    ]
    out = activity(rows)
    assert out["days"].to_list() == [3, 1, 1]
    assert out["places"].to_list() == [2, 1, 1]


def test_filter_reasons_in_order():
    act = pl.DataFrame(
        {
            "device": pl.Series([1, 2, 3, 4], dtype=pl.UInt64),
            "days": pl.Series([7, 6, 10, 1], dtype=pl.UInt32),
            "places": pl.Series([2, 5, 1, 1], dtype=pl.UInt32),
        }
    )
    kept, dropped = filter_devices(act, DeviceFilter())
    assert kept["device"].to_list() == [1]
    assert dropped == {"fewer_days": 2, "fewer_places": 1}
    kept, dropped = filter_devices(act, DeviceFilter(min_days=0, min_places=0))
    assert kept.height == 4 and sum(dropped.values()) == 0
