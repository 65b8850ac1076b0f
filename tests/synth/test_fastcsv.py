"""The numpy CSV formatter against Python's own formatting."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.synth import fastcsv


def lines(block) -> list[str]:
    return fastcsv.to_bytes(block).decode().splitlines()


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-999.0, 999.0, allow_nan=False), min_size=1, max_size=50),
    decimals=st.integers(0, 7),
)
def test_fixed_point_numbers_parse_back(values, decimals):
    v = np.asarray(values)
    out = lines(fastcsv.join([fastcsv.fixed(v, decimals, 3)]))
    pattern = rf"^-?(0|[1-9]\d*)\.\d{{{decimals}}}$" if decimals else r"^-?(0|[1-9]\d*)$"
    for text, x in zip(out, v, strict=True):
        assert re.match(pattern, text), text
        assert abs(float(text) - x) <= 0.5 * 10.0**-decimals * (1 + 1e-9) + 1e-12
        expected = f"{x:.{decimals}f}"
        if float(expected) == 0:
            expected = expected.lstrip("-")  # no negative zero
        assert text == expected or abs(abs(x * 10**decimals) % 1 - 0.5) < 1e-6  # ties may differ


def test_joined_fields_make_csv_lines():
    ids = np.frombuffer(b"ab", dtype=np.uint8).reshape(2, 1)
    block = fastcsv.join(
        [
            fastcsv.text(ids),
            fastcsv.fixed(np.array([59.3, -0.0000001]), 6, 3),
            fastcsv.fixed(np.array([5, 2500]), 1, 4),
        ]
    )
    assert fastcsv.to_bytes(block) == b"a,59.300000,5.0\nb,0.000000,2500.0\n"
    assert fastcsv.decode(block).to_list() == ["a,59.300000,5.0\n", "b,0.000000,2500.0\n"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abc,-:09 ", max_size=12), min_size=1, max_size=20))
def test_strings_round_trip(texts):
    block = fastcsv.strings(pl.Series(texts, dtype=pl.String))
    assert fastcsv.decode(block).to_list() == texts
    assert fastcsv.to_bytes(block) == "".join(texts).encode()
