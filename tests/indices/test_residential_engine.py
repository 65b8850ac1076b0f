"""The engine under the residential indices: the units × groups table built from long and
wide frames, the blocked pass over units, batched (bootstrap) evaluation and the
numerical accuracy of M against a 50-digit reference."""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segtool.errors import InputError
from segtool.indices import composition as c_mod
from segtool.indices import residential as r
from segtool.indices.residential import (
    INDICES,
    ResidentialParams,
    composition,
    compute,
    compute_residential,
    evaluate,
    from_wide,
)
from tests.indices.tables import to_long

SETTINGS = settings(max_examples=30, deadline=None)


def to_wide(counts: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"unit": [f"u{i:03d}" for i in range(len(counts))]}
        | {f"g{j}": counts[:, j].astype(float) for j in range(counts.shape[1])}
    )


@st.composite
def tables(draw, max_units=30, max_groups=5):
    n = draw(st.integers(2, max_units))
    k = draw(st.integers(2, max_groups))
    counts = draw(arrays(np.int64, (n, k), elements=st.integers(0, 60)))
    counts[:, 0] += counts.sum(axis=1) == 0
    counts[0] += 1
    return counts.astype(float)


# --------------------------------------------------------------------------------------
# Building the table


@SETTINGS
@given(tables(), st.randoms(use_true_random=False), st.booleans())
def test_long_frame_in_any_order_with_split_rows_gives_the_same_table(counts, rnd, drop):
    frame = to_long(counts)
    canonical = composition(frame)  # sorted, complete: the reshape path
    assert np.array_equal(canonical.counts, counts)
    assert canonical.units.to_list() == [f"u{i:03d}" for i in range(len(counts))]
    # Shuffled, some rows split in two and (optionally) zero rows left out: the bincount path.
    rows = frame.with_columns(half=pl.col("n") / 2)
    split = pl.concat(
        [
            rows.select("unit", "group", pl.col("half").alias("n")),
            rows.select("unit", "group", (pl.col("n") - pl.col("half")).alias("n")),
        ]
    )
    if drop:
        split = split.filter(pl.col("n") > 0)
    perm = list(range(split.height))
    rnd.shuffle(perm)
    other = composition(split[perm])
    assert other.units.to_list() == canonical.units.to_list()
    assert other.groups == canonical.groups
    np.testing.assert_allclose(other.counts, counts, rtol=1e-15)


def test_sorted_flag_is_trusted_and_unflagged_frames_are_checked():
    counts = np.array([[3.0, 1.0], [0.0, 4.0], [2.0, 2.0]])
    frame = to_long(counts)
    reversed_rows = frame.reverse()  # units out of order, not flagged
    assert not reversed_rows["unit"].flags["SORTED_ASC"]
    assert np.array_equal(composition(reversed_rows).counts, counts)
    flagged = frame.with_columns(pl.col("unit").set_sorted())
    assert np.array_equal(composition(flagged).counts, counts)


def test_reader_frames_take_the_fast_path(tmp_path, monkeypatch):
    from segtool.indices.counts import read_counts

    path = tmp_path / "t.csv"
    path.write_text("unit,group,n\nb,x,1\na,y,2\na,x,3\nb,y,4\n")
    frame = read_counts(path).frame
    assert frame["unit"].flags["SORTED_ASC"]
    calls = []
    monkeypatch.setattr(c_mod.np, "bincount", lambda *a, **k: calls.append(1))
    c = composition(frame)
    assert not calls  # reshaped, no bincount
    assert c.counts.tolist() == [[3.0, 2.0], [1.0, 4.0]]


@SETTINGS
@given(tables())
def test_wide_frame_gives_the_same_table_and_indices_as_the_long_one(counts):
    wide = from_wide(to_wide(counts), [f"g{j}" for j in range(counts.shape[1])])
    long = composition(to_long(counts))
    assert np.array_equal(wide.cols, long.cols)
    assert wide.units.to_list() == long.units.to_list()
    a = compute(wide, ResidentialParams())
    b = compute(long, ResidentialParams())
    assert a.equals(b)


def test_wide_frame_drops_empty_units_and_groups():
    frame = pl.DataFrame({"unit": ["a", "b", "c"], "x": [1, 0, 3], "y": [2, 0, 0], "z": [0, 0, 0]})
    c = from_wide(frame, ["x", "y", "z"])
    assert c.units.to_list() == ["a", "c"] and c.groups == ("x", "y")
    assert c.counts.tolist() == [[1.0, 2.0], [3.0, 0.0]]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"unit": ["a", "a"], "x": [1, 2], "y": [2, 1]}), "repeats a unit"),
        (pl.DataFrame({"unit": ["a", "b"], "x": [1, -2], "y": [2, 1]}), "negative"),
        (pl.DataFrame({"unit": ["a", "b"], "x": [1.0, None], "y": [2, 1]}), "NaN"),
        (pl.DataFrame({"unit": ["a", "b"], "x": ["1", "2"], "y": [2, 1]}), "not numeric"),
        (pl.DataFrame({"unit": ["a", None], "x": [1, 2], "y": [2, 1]}), "no value"),
        (pl.DataFrame({"unit": ["a", "b"], "x": [1, 2]}), "no column 'y'"),
        (pl.DataFrame({"unit": ["a", "b"], "x": [0, 0], "y": [0, 0]}), "zero total"),
    ],
)
def test_wide_frame_errors(frame, message):
    with pytest.raises(InputError, match=message):
        from_wide(frame, ["x", "y"])


# --------------------------------------------------------------------------------------
# The blocked pass and batches


def test_results_do_not_depend_on_the_block_size(monkeypatch):
    rng = np.random.default_rng(3)
    counts = rng.poisson(rng.dirichlet(np.full(4, 0.6), 500) * 40).astype(float)
    counts[counts.sum(axis=1) == 0, 0] = 1
    frame = to_long(counts)
    one_block = compute_residential(frame, atkinson_b=0.3)
    monkeypatch.setattr(c_mod, "BLOCK_CELLS", 4 * 37)  # blocks of 37 units, a partial last one
    many = compute_residential(frame, atkinson_b=0.3)
    np.testing.assert_allclose(many["value"], one_block["value"], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("focal", [None, "g1"])
def test_a_batch_of_tables_gives_each_table_its_own_values(monkeypatch, focal):
    # Bootstrap replicates are evaluated stacked on a leading axis, with empty units and
    # groups: each must come out as if evaluated alone.
    monkeypatch.setattr(c_mod, "BLOCK_CELLS", 3 * 3 * 11)
    rng = np.random.default_rng(5)
    tables = rng.poisson(3.0, size=(3, 40, 3)).astype(float)
    tables[1, :, 2] = 0.0  # a group absent from one replicate
    tables[2, :5] = 0.0  # empty units
    base = composition(to_long(tables[0] + 1))
    params = ResidentialParams(indices=INDICES, focal=focal)
    prep = r.prepare(base, params)
    stacked = base.with_counts(tables)
    if focal:
        stacked = r.two_group(stacked, focal)
    batch = evaluate(stacked, params)
    for i in range(len(tables)):
        one = base.with_counts(tables[i])
        one = r.two_group(one, focal) if focal else one
        alone = evaluate(one, params)
        assert batch.keys == alone.keys == evaluate(prep, params).keys
        for key, v, w in zip(batch.keys, batch.values, alone.values, strict=True):
            assert np.asarray(v)[i] == pytest.approx(float(w), rel=1e-12, abs=1e-14, nan_ok=True), (
                key
            )


# --------------------------------------------------------------------------------------
# Accuracy of M


def reference_m(counts: np.ndarray) -> Decimal:
    """M to 50 digits: Σ_ug (n_ug/T) ln(n_ug T / (t_u N_g)) in decimal arithmetic."""
    getcontext().prec = 50
    cells = [[Decimal(int(v)) for v in row] for row in counts]
    t = [sum(row) for row in cells]
    totals = [sum(row[g] for row in cells) for g in range(counts.shape[1])]
    grand = sum(t)
    acc = Decimal(0)
    for u, row in enumerate(cells):
        for g, n in enumerate(row):
            if n:
                acc += n * (n * grand / (t[u] * totals[g])).ln()
    return acc / grand


@pytest.mark.parametrize(
    ("seed", "scale", "rtol"),
    [
        (0, 1e6, 1e-9),  # nearly even: M ≈ 3e-7 (the n ln n form was off by ~6e-9)
        (1, 1e6, 1e-9),
        (2, 50.0, 1e-13),  # typical
    ],
)
def test_mutual_information_is_accurate_against_a_50_digit_reference(seed, scale, rtol):
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.full(3, 1.0), 40) if scale < 1e3 else np.full((40, 3), 1 / 3)
    counts = rng.poisson(mix * scale * 3).astype(float)
    counts[counts.sum(axis=1) == 0, 0] = 1
    want = reference_m(counts)
    got = compute_residential(to_long(counts), ["mutual_information"])["value"][0]
    assert abs((Decimal(got) - want) / want) < rtol
