"""True stays: a coherent daily life (nights at home, work on workdays), EPR, homophily."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from segtool.synth import SynthParams, generate_city
from segtool.synth.clock import make_clock
from segtool.synth.mobility import EPR, RHO

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_stays_tile_each_device_timeline(small_city):
    out, _ = small_city
    stays = pl.read_parquet(out / "truth" / "stays.parquet").sort("device_id", "start")
    assert stays.schema["start"] == pl.Datetime("us", "UTC")
    g = stays.with_columns(
        next_start=pl.col("start").shift(-1).over("device_id"),
        next_place=pl.col("place_id").shift(-1).over("device_id"),
    )
    assert (g["end"] > g["start"]).all()
    inner = g.filter(pl.col("next_start").is_not_null())
    assert (inner["next_start"] >= inner["end"]).all()  # travel in between, never overlap
    assert (inner["next_place"] != inner["place_id"]).all()  # consecutive stays differ
    first = stays.group_by("device_id").agg(pl.col("start").min())["start"]
    begin = dt.datetime(2024, 3, 25, tzinfo=STOCKHOLM).astimezone(dt.UTC)
    assert (first == begin).all()


def test_nights_at_home_and_work_on_workdays(small_city):
    out, _ = small_city
    stays = pl.read_parquet(out / "truth" / "stays.parquet")
    devices = pl.read_parquet(out / "truth" / "devices.parquet")
    clock = make_clock(dt.date(2024, 3, 25), 7)
    for d in range(7):
        # where is everyone at 03:30 local time?
        day = dt.date(2024, 3, 25) + dt.timedelta(days=d)
        t = dt.datetime.combine(day, dt.time(3, 30), tzinfo=STOCKHOLM).astimezone(dt.UTC)
        at = stays.filter((pl.col("start") <= t) & (pl.col("end") > t))
        assert at.height >= 0.95 * devices.height
        assert (at["place_kind"] == "home").mean() > 0.95
        # and at 11:00?
        t = dt.datetime.combine(day, dt.time(11, 0), tzinfo=STOCKHOLM).astimezone(dt.UTC)
        at = stays.filter((pl.col("start") <= t) & (pl.col("end") > t))
        at_work = at.filter(pl.col("place_kind") == "work").height / devices["employed"].sum()
        if clock.workday[d]:
            assert at_work > 0.7, (day, at_work)
        else:  # weekend and Good Friday (2024-03-29)
            assert at_work < 0.05, (day, at_work)
    # work stays are at the device's own work place
    work = stays.filter(pl.col("place_kind") == "work").join(devices, on="device_id")
    assert (work["place_id"] == work["work_place_id"]).all()


def test_epr_explores_less_as_places_accumulate():
    """P(new place) = ρ S^-γ: the count of distinct places grows sublinearly."""
    from segtool.synth.mobility import Places

    rng = np.random.default_rng(0)
    n_poi = 400
    places = Places(
        rng.uniform(0, 5000, n_poi),
        rng.uniform(0, 5000, n_poi),
        rng.lognormal(0, 1, n_poi),
        np.ones(n_poi),
        np.full((n_poi, 4), 0.25),
        3000.0,
    )
    n = 2000
    epr = EPR(n)
    group = rng.integers(0, 4, n)
    x = np.full(n, 2500.0)
    y = np.full(n, 2500.0)
    distinct = []
    for _ in range(60):
        epr.step(np.ones(n, bool), x, y, group, places, 0.0, rng)
        distinct.append(epr.distinct.mean())
    assert distinct[0] == 1
    # expected S(t) ~ t^(1/(1+γ)) for EPR (Song et al. 2010): sublinear, far below t
    assert distinct[-1] < 0.6 * 60
    ratio = np.log(distinct[-1] / distinct[9]) / np.log(60 / 10)
    assert 0.6 < ratio < 0.95, ratio
    assert RHO == 0.6


def own_group_share(out) -> float:
    """Dwell-weighted share of a device's own group among the others at the places it
    visits (leave-one-out place composition, 'other' stays only)."""
    st = pl.read_parquet(out / "truth" / "stays.parquet").filter(pl.col("place_kind") == "other")
    dev = pl.read_parquet(out / "truth" / "devices.parquet").select("device_id", "group")
    st = st.join(dev, on="device_id").with_columns(
        w=(pl.col("end") - pl.col("start")).dt.total_seconds()
    )
    by_group = st.group_by("place_id", "group").agg(pl.col("w").sum().alias("pg"))
    total = by_group.group_by("place_id").agg(pl.col("pg").sum().alias("pt"))
    own = (
        st.group_by("device_id", "place_id", "group")
        .agg(pl.col("w").sum().alias("me"))
        .join(by_group, on=["place_id", "group"])
        .join(total, on="place_id")
        .filter(pl.col("pt") > pl.col("me"))
        .with_columns(s=(pl.col("pg") - pl.col("me")) / (pl.col("pt") - pl.col("me")))
    )
    return float((own["s"] * own["me"]).sum() / own["me"].sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_homophily_shows_in_who_meets_whom(tmp_path, seed):
    shares = []
    for h in (0.0, 2.0, 5.0):
        out = tmp_path / f"h{h}"
        generate_city(
            SynthParams(
                devices=200, days=7, seed=seed, segregation=0.5, homophily=h, ping_interval_min=120
            ),
            out,
        )
        shares.append(own_group_share(out))
    assert shares[0] < shares[1] < shares[2], shares
    assert shares[2] - shares[0] > 0.15, shares
