"""Issue 11's reporting model: per-axis noise, duty-cycled gaps, bursts — checked against
their definitions on the raw arrays — and the traces generator's true stays."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from segtool.errors import UsageError
from segtool.synth import SynthParams, noise
from segtool.synth.traces import TraceParams, make_traces

T0, DAY = 1_711_324_800, 86_400


def test_per_axis_noise_has_the_given_sigma():
    rng = np.random.default_rng(1)
    n = 200_000
    x, y, acc, low = noise.add_error(np.zeros(n), np.zeros(n), 12.0, 0.0, 0.0, rng, noise_m=15.0)
    assert not low.any()
    assert np.std(x) == pytest.approx(15.0, rel=0.01) and np.std(y) == pytest.approx(15.0, rel=0.01)
    assert np.median(acc) == pytest.approx(12.0, rel=0.05)  # the reported accuracy is unchanged
    # the default ties the error to the reported accuracy: σ = a / 1.51
    x0, _, acc0, _ = noise.add_error(np.zeros(n), np.zeros(n), 12.0, 0.0, 0.0, rng)
    assert np.std(x0 / (acc0 / 1.51)) == pytest.approx(1.0, rel=0.02)


def test_duty_cycled_gaps_have_the_given_share_and_mean():
    rng = np.random.default_rng(2)
    dev, t = noise.ping_times(200, T0, T0 + 7 * DAY, 1.0, 0.3, rng, gap_mean_s=33 * 60.0)
    gaps = np.diff(t)[np.diff(dev) == 0]
    long = gaps[gaps > 10 * 60]  # 1-min pings: a gap over 10 min is a reporting gap
    # off periods are exponential (memoryless): those over 10 min last 10 + 33 min on
    # average, plus about one sampling interval
    assert long.mean() / 60 == pytest.approx(10 + 33 + 1, rel=0.1)
    # observed 70 % of the time; device rates are lognormal(0, 0.35): E[rate] = e^(0.35²/2)
    expected = 200 * 7 * 1440 * (1 - 0.3) * np.exp(0.35**2 / 2)
    assert dev.size == pytest.approx(expected, rel=0.03)


def test_bursts_add_pings_seconds_apart():
    rng = np.random.default_rng(3)
    base = noise.ping_times(100, T0, T0 + 7 * DAY, 10.0, 0.0, np.random.default_rng(3))
    dev, t = noise.ping_times(100, T0, T0 + 7 * DAY, 10.0, 0.0, rng, bursts_per_day=4.0)
    assert np.all((np.diff(dev) > 0) | (np.diff(t) > 0))  # sorted, one ping a second at most
    extra = dev.size - base[0].size
    assert extra == pytest.approx(100 * 7 * 4 * 17.5, rel=0.1)  # 5–30 pings a burst
    gaps = np.diff(t)[np.diff(dev) == 0]
    assert (gaps <= 10).sum() >= 0.9 * extra


def test_synth_params_check_the_new_options():
    for bad in (dict(noise_m=-1), dict(gap_mean_min=0), dict(bursts_per_day=-1)):
        with pytest.raises(UsageError):
            SynthParams(**bad)


def test_traces_pings_follow_their_true_stays():
    tr = make_traces(TraceParams(devices=40, days=3, seed=5, noise_m=15.0, outlier_share=0.0))
    s = tr.stays
    assert (s["end"] > s["start"]).all()
    same = s["device"] == s["device"].shift(1)
    assert (~same.fill_null(False) | (s["start"] >= s["end"].shift(1)).fill_null(True)).all()
    hours = (s["end"] - s["start"]).dt.total_seconds().median() / 3600
    assert 1.2 < hours < 3.0  # the median true stay lasts about 2 h
    # pings inside a true stay scatter around its place with σ ≈ 15 m per axis
    inside = (
        tr.pings.sort("ts")
        .join_asof(
            s.sort("start").rename({"lat": "s_lat", "lon": "s_lon"}),
            left_on="ts",
            right_on="start",
            by="device",
            check_sortedness=False,
        )
        .filter(pl.col("ts") <= pl.col("end"))
    )
    dy = (inside["lat"] - inside["s_lat"]) * 111_195.0
    assert float(dy.std()) == pytest.approx(15.0, rel=0.1)
    again = make_traces(TraceParams(devices=40, days=3, seed=5, noise_m=15.0, outlier_share=0.0))
    assert again.pings.equals(tr.pings) and again.stays.equals(tr.stays)
    other = make_traces(replace(TraceParams(devices=40, days=3, seed=6)))
    assert not other.pings.equals(tr.pings)
