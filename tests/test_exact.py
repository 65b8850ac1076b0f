"""`seconds_sum`: exact and the same whatever order the rows come in."""

from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from segtool.exact import seconds_sum


def test_seconds_sum_is_exact_and_order_independent():
    rng = np.random.default_rng(3)
    us = rng.integers(1, 10**12, 500_000)  # whole microseconds, up to ~11 days each
    seconds = us / 1e6
    total_us = sum(us.tolist())  # Python integers: exact
    exact = float(Fraction(total_us, 10**6))
    assert total_us * 1000 > 2**63  # too big for 64-bit nanoseconds: 128 bits needed
    totals = set()
    plain = set()
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(us.size)
        frame = pl.DataFrame({"dwell_s": seconds[order]})
        totals.add(frame.select(seconds_sum("dwell_s")).item())
        plain.add(float(np.cumsum(seconds[order])[-1]))
    assert len(totals) == 1 and totals.pop() == pytest.approx(exact, rel=1e-15)
    assert len(plain) > 1  # a plain float sum does depend on the order: the reason for it


def test_seconds_sum_in_group_by_rounds_shares_to_the_nanosecond():
    frame = pl.DataFrame({"k": [1, 1, 2], "dwell_s": [0.12345640049, 0.2, 3.0]})
    out = frame.group_by("k").agg(seconds_sum("dwell_s")).sort("k")
    got = out["dwell_s"].to_list()
    assert got[0] == pytest.approx(0.3234564, rel=1e-15) and got[1] == 3.0
    assert got[0] != pytest.approx(0.32345640049, rel=1e-12)  # rounded to the ns
