"""Groups and weights: median / plurality / soft rules, IPW weights and their trimming
(hand-computed), attributes, coverage and its suppression."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from segtool.errors import InputError, UsageError
from segtool.mobility.groups import (
    GroupParams,
    Register,
    area_groups,
    assign_groups,
    coverage,
    group_order,
    ipw_weights,
)

POP = pl.DataFrame(
    {
        "unit": ["a"] * 4 + ["b"] * 4 + ["c"] * 2,
        "group": ["Q1", "Q2", "Q3", "Q4"] * 2 + ["Q1", "Q4"],
        "count": [10.0, 20, 30, 40, 40, 30, 20, 10, 5, 5],
    }
)
KEY = Register("unit", "area")


def homes(areas: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"device": pl.Series(range(1, len(areas) + 1), dtype=pl.UInt64), "area": areas},
        schema={"device": pl.UInt64, "area": pl.String},
    )


def as_dict(frame: pl.DataFrame) -> dict:
    return dict(zip(frame["unit"], frame["group"], strict=True))


def test_median_resident_rule():
    table, rule, order = area_groups(POP)
    assert rule == "median" and order == ["Q1", "Q2", "Q3", "Q4"]
    # a: cumulative shares .1 .3 .6 → Q3; b: .4 .7 → Q2; c: .5 at Q1 (reaches one half) → Q1
    assert as_dict(table) == {"a": "Q3", "b": "Q2", "c": "Q1"}


def test_plurality_rule_and_ties():
    table, rule, _ = area_groups(POP, GroupParams(rule="plurality"))
    assert rule == "plurality"
    assert as_dict(table) == {"a": "Q4", "b": "Q1", "c": "Q1"}  # c: tie → first in order


def test_auto_picks_plurality_for_unordered_groups():
    pop = pl.DataFrame(
        {"unit": ["a", "a", "a"], "group": ["Sweden", "Europe", "Other"], "count": [1.0, 5, 4]}
    )
    table, rule, order = area_groups(pop)
    assert rule == "plurality" and order == ["Europe", "Other", "Sweden"]
    assert as_dict(table) == {"a": "Europe"}
    table, rule, _ = area_groups(pop, GroupParams(order=("Sweden", "Europe", "Other")))
    assert rule == "median" and as_dict(table) == {"a": "Europe"}  # cum .1, .6


def test_group_order():
    assert group_order(["Q10", "Q2", "Q1"]) == ["Q1", "Q2", "Q10"]
    assert group_order(["b", "a"]) == ["a", "b"]
    with pytest.raises(UsageError):
        group_order(["Q1", "Q2"], ("Q1", "Q3"))


def test_soft_shares():
    table, rule, _ = area_groups(POP, GroupParams(soft=True))
    assert rule == "soft" and table.columns == ["unit", "Q1", "Q2", "Q3", "Q4"]
    row_c = table.filter(pl.col("unit") == "c").row(0)
    assert row_c[1:] == (0.5, 0.0, 0.0, 0.5)
    assert np.allclose(table.select(pl.sum_horizontal("Q1", "Q2", "Q3", "Q4")), 1.0)


def test_weights_are_residents_per_device():
    w, report = ipw_weights(homes(["a", "a", "b"]), POP, KEY)
    assert dict(zip(w["device"], w["weight"], strict=True)) == {1: 50.0, 2: 50.0, 3: 100.0}
    assert report.trimmed == 0


def test_weight_trimming_by_hand():
    pop = pl.DataFrame(
        {"unit": ["a1", "a2", "a3", "a4", "a5"], "group": ["x"] * 5, "count": [1.0] * 4 + [100.0]}
    )
    w, report = ipw_weights(homes(["a1", "a2", "a3", "a4", "a5"]), pop, KEY)
    raw = np.array([1.0, 1, 1, 1, 100])
    # sqrt(CV² + 1) = sqrt(mean(w²)) / mean(w); median = 1
    cap = math.sqrt((raw**2).mean()) / raw.mean() * 3.5 * 1.0
    assert report.cap == pytest.approx(cap) and cap == pytest.approx(7.52673, abs=1e-5)
    assert w.sort("device")["weight"].to_list() == pytest.approx([1, 1, 1, 1, cap])
    assert report.trimmed == 1


def test_assign_hard_groups_and_drop_reasons():
    result = assign_groups(homes(["a", "a", "b", None, "zz"]), POP)
    assert result.devices.columns == ["device", "group", "weight"]
    assert result.devices["group"].to_list() == ["Q3", "Q3", "Q2"]
    assert result.dropped == {"home_outside_areas": 1, "area_without_residents": 1}


def test_assign_soft_groups():
    result = assign_groups(homes(["a", "c"]), POP, GroupParams(soft=True))
    assert result.devices.columns == ["device", "Q1", "Q2", "Q3", "Q4", "weight"]
    assert result.devices.row(1) == (2, 0.5, 0.0, 0.0, 0.5, 10.0)


def test_attribute_groups():
    attrs = pl.DataFrame({"device": [1, 2, 9], "group": ["rich", "poor", "rich"]})
    result = assign_groups(homes(["a", "b", "c"]), POP, attributes=attrs)
    assert result.devices["group"].to_list() == ["rich", "poor"]
    assert result.dropped == {"no_attribute": 1}
    alone = assign_groups(None, None, attributes=attrs)
    assert alone.devices["weight"].to_list() == [1.0, 1.0, 1.0]
    with pytest.raises(InputError):
        assign_groups(None, None, attributes=pl.DataFrame({"device": ["x"], "group": ["a"]}))
    with pytest.raises(InputError):
        assign_groups(None, None)


def test_gridded_population_by_cell():
    import polars_h3 as plh3

    pop = pl.DataFrame(
        {
            "cell": pl.Series([617143123475169279] * 2, dtype=pl.UInt64),
            "group": ["Q1", "Q2"],
            "count": [3.0, 1.0],
        }
    )
    h = pl.DataFrame(
        {
            "device": pl.Series([1], dtype=pl.UInt64),
            "home_cell": pl.Series([617143123475169279], dtype=pl.UInt64),
        }
    )
    result = assign_groups(h, pop)
    assert result.devices["group"].to_list() == ["Q1"] and result.devices["weight"][0] == 4.0
    coarse = h.with_columns(plh3.cell_to_parent("home_cell", 7).alias("home_cell"))
    with pytest.raises(UsageError):
        assign_groups(coarse, pop)


def test_coverage_suppresses_and_correlates():
    pop = pl.DataFrame(
        {"unit": ["a", "b", "c", "d"], "group": ["x"] * 4, "count": [100.0, 200, 300, 400]}
    )
    h = homes(["a"] * 5 + ["b"] * 6 + ["c"] * 7 + ["d"] * 2)
    cov = coverage(h, pop, KEY, k=5)
    assert cov.table["area"].to_list() == ["a", "b", "c"]
    assert cov.suppressed == 1
    assert cov.table["devices_per_1000"].to_list() == pytest.approx([50.0, 30.0, 23.333333])
    # ranks: devices 5,6,7,2 → 2,3,4,1; residents 1,2,3,4; d = 1,1,1,−3
    # ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·12/60 = −0.2
    assert cov.rho == pytest.approx(-0.2)
    assert cov.units == 4
