"""Homes and work places: night-window arithmetic (DST included), the N-nights rule, ties,
areas, and recovery of simulated homes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import polars_h3 as plh3
import pytest

from segtool.errors import UsageError
from segtool.mobility.homes import HomeParams, detect_homes, window_time
from tests.mobility.helpers import ll, stays
from tests.mobility.simulate import SimParams, simulate

STHLM = ZoneInfo("Europe/Stockholm")
UTC = UTC


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STHLM).astimezone(UTC)


def nights(frame: pl.DataFrame, start=22.0, end=6.0) -> pl.DataFrame:
    return (
        window_time(frame.lazy(), start, end, "Europe/Stockholm", 9).collect().sort("device", "day")
    )


def test_night_overlap_of_an_evening_to_morning_stay():
    out = nights(stays([(1, local(2024, 5, 6, 20), local(2024, 5, 7, 8))]))
    assert out["day"].to_list() == [datetime(2024, 5, 6).date()]
    assert out["seconds"].to_list() == [8 * 3600.0]


def test_partial_nights_on_both_ends():
    out = nights(stays([(1, local(2024, 5, 6, 23, 30), local(2024, 5, 8, 1))]))
    # night of the 6th: 23:30–06:00 = 6.5 h; night of the 7th: 22:00–01:00 = 3 h
    assert out["seconds"].to_list() == [6.5 * 3600, 3 * 3600.0]


@pytest.mark.parametrize(
    ("night", "hours"),
    [((2024, 3, 30), 7.0), ((2024, 10, 26), 9.0), ((2024, 5, 6), 8.0)],
)
def test_dst_nights_last_7_or_9_hours(night, hours):
    y, m, d = night
    s = local(y, m, d, 12)
    out = nights(stays([(1, s, s + timedelta(hours=30))]))
    assert out.filter(pl.col("day") == datetime(y, m, d).date())["seconds"][0] == hours * 3600


def test_daytime_window():
    out = nights(stays([(1, local(2024, 5, 6, 8), local(2024, 5, 6, 12))]), 9.0, 17.0)
    assert out["seconds"].to_list() == [3 * 3600.0]


def _at(north, east):
    return ll(north, east)


def cell(point) -> int:
    return pl.select(plh3.latlng_to_cell(pl.lit(point[0]), pl.lit(point[1]), 9)).item()


def test_home_needs_min_nights_and_share_is_of_night_time():
    a = _at(0, 0)
    b = _at(3000, 0)
    rows = []
    for day in (6, 7, 8):  # 2 h at A on three nights
        rows.append((1, local(2024, 5, day, 22), local(2024, 5, day, 23, 59, 59, 999999), *a))
    for day in (9, 10):  # 8 h at B on two nights
        rows.append((1, local(2024, 5, day, 22), local(2024, 5, day + 1, 6), *b))
    frame = stays(rows)
    cell_a, cell_b = cell(a), cell(b)
    home = detect_homes(frame.lazy(), HomeParams())
    assert home["home_cell"].to_list() == [cell_a]
    assert home["nights"].to_list() == [3]
    expected_share = (3 * (2 * 3600 - 1e-6)) / (3 * (2 * 3600 - 1e-6) + 2 * 8 * 3600)
    assert home["home_share"][0] == pytest.approx(expected_share, rel=1e-6)
    assert home.schema["home_share"] == pl.Float32 and home.schema["nights"] == pl.UInt16
    home2 = detect_homes(frame.lazy(), HomeParams(min_nights=2))
    assert home2["home_cell"].to_list() == [cell_b]


def test_no_home_without_enough_nights_and_ties_go_to_the_smaller_cell():
    a, b = _at(0, 0), _at(0, 3000)
    rows = [(1, local(2024, 5, 6, 10), local(2024, 5, 6, 18), *a)]  # daytime only
    for day in (6, 7, 8):
        rows.append((2, local(2024, 5, day, 22), local(2024, 5, day + 1, 2), *a))
        rows.append((2, local(2024, 5, day + 1, 2), local(2024, 5, day + 1, 6), *b))
    home = detect_homes(stays(rows).lazy())
    assert home["device"].to_list() == [2]
    cells = (cell(a), cell(b))
    assert home["home_cell"][0] == min(cells)
    assert home["home_share"][0] == pytest.approx(0.5)


def test_home_area_from_polygons():
    import shapely

    a = _at(0, 0)
    rows = [(1, local(2024, 5, d, 22), local(2024, 5, d + 1, 6), *a) for d in (6, 7, 8)]
    rows += [(2, local(2024, 5, d, 22), local(2024, 5, d + 1, 6), 10.0, 10.0) for d in (6, 7, 8)]
    box = shapely.box(a[1] - 0.01, a[0] - 0.01, a[1] + 0.01, a[0] + 0.01)
    areas = pl.DataFrame({"area": ["A1"], "geometry": [shapely.to_wkb(box)]})
    home = detect_homes(stays(rows).lazy(), HomeParams(), areas)
    assert home.sort("device")["area"].to_list() == ["A1", None]


def test_work_cell_is_the_weekday_daytime_place_outside_home():
    h, w, x = _at(0, 0), _at(2000, 0), _at(-2000, 0)
    rows = [(1, local(2024, 5, d, 20), local(2024, 5, d + 1, 8), *h) for d in range(6, 11)]
    rows += [(1, local(2024, 5, d, 9), local(2024, 5, d, 16), *w) for d in (6, 7, 8)]
    # Ascension Day (Thu 9 May 2024) and a Saturday do not count as work days
    rows += [(1, local(2024, 5, d, 9), local(2024, 5, d, 17), *x) for d in (9, 11, 18)]
    home = detect_homes(stays(rows).lazy(), HomeParams(work=True))
    assert home["work_cell"].to_list() == [cell(w)]
    assert home.schema["work_cell"] == pl.UInt64


def test_bad_parameters():
    with pytest.raises(UsageError):
        HomeParams(res=4)
    with pytest.raises(UsageError):
        HomeParams(tz="Mars/Olympus")
    with pytest.raises(UsageError):
        HomeParams(night_start_h=6, night_end_h=6)


def test_recovers_95_percent_of_simulated_homes():
    from segtool.mobility.stays import generate_stays

    sim = simulate(SimParams(n_devices=150, n_days=7, seed=21, jitter_m=10.0))
    found = detect_homes(generate_stays(sim.pings.lazy()).collect().lazy(), HomeParams(work=True))
    truth = sim.homes.with_columns(
        plh3.latlng_to_cell("lat", "lon", 9).alias("true_home"),
        plh3.latlng_to_cell("work_lat", "work_lon", 9).alias("true_work"),
    ).join(found, on="device", how="left")
    assert (truth["home_cell"] == truth["true_home"]).fill_null(False).mean() >= 0.95
    assert (truth["work_cell"] == truth["true_work"]).fill_null(False).mean() >= 0.9
