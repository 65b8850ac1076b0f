"""Identities and invariants of the residential indices, with hypothesis."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segtool.errors import InputError, UsageError
from segtool.indices.residential import INDICES, compute_residential
from tests.indices.tables import to_long

SETTINGS = settings(max_examples=40, deadline=None)

BOUNDED = [  # indices in [0, 1]
    "dissimilarity",
    "gini",
    "atkinson",
    "isolation",
    "interaction",
    "correlation_ratio",
    "theil_h",
    "normalized_exposure",
    "relative_diversity",
    "simpson_concentration",
    "simpson_interaction",
    "hutchens",
    "exposure",
]


@st.composite
def tables(draw, min_units=2, max_units=12, min_groups=2, max_groups=5):
    n = draw(st.integers(min_units, max_units))
    k = draw(st.integers(min_groups, max_groups))
    counts = draw(arrays(np.int64, (n, k), elements=st.integers(0, 50)))
    counts[:, 0] += counts.sum(axis=1) == 0  # no empty units
    counts[0] += 1  # no empty groups
    return counts


def as_dict(res: pl.DataFrame) -> dict:
    return {
        (row["index"], row["group"], row["other_group"]): row["value"]
        for row in res.iter_rows(named=True)
    }


@SETTINGS
@given(tables(), st.floats(0.5, 1000.0))
def test_invariant_to_scaling_all_counts(counts, factor):
    a = as_dict(compute_residential(to_long(counts)))
    b = as_dict(compute_residential(to_long(counts * factor)))
    assert a.keys() == b.keys()
    for key, v in a.items():
        assert b[key] == pytest.approx(v, abs=1e-9), key


@SETTINGS
@given(tables(), st.randoms(use_true_random=False))
def test_invariant_to_row_order_and_unit_labels(counts, rnd):
    frame = to_long(counts)
    perm = list(range(frame.height))
    rnd.shuffle(perm)
    shuffled = frame[perm].with_columns(pl.col("unit").str.replace("u", "zz"))
    a = as_dict(compute_residential(frame))
    b = as_dict(compute_residential(shuffled))
    for key, v in a.items():
        assert b[key] == pytest.approx(v, abs=1e-12), key


@SETTINGS
@given(tables())
def test_bounds_and_identities(counts):
    res = compute_residential(to_long(counts))
    d = as_dict(res)
    for (name, _, _), v in d.items():
        assert np.isfinite(v), name
        if name in BOUNDED:
            assert -1e-12 <= v <= 1 + 1e-12, (name, v)
        else:
            assert v >= -1e-12, (name, v)
    k = counts.shape[1]
    groups = [f"g{j}" for j in range(k)]
    # exposure rows sum to 1; the diagonal is isolation; isolation + interaction = 1
    for g in groups:
        assert sum(d[("exposure", g, h)] for h in groups) == pytest.approx(1.0, abs=1e-12)
        assert d[("exposure", g, g)] == pytest.approx(d[("isolation", g, "(rest)")], abs=1e-12)
        iso, inter = d[("isolation", g, "(rest)")], d[("interaction", g, "(rest)")]
        assert iso + inter == pytest.approx(1.0, abs=1e-12)
    # H = M / E; Simpson's pair sums to 1; normalised exposure = Σ π_g V_g
    assert d[("theil_h", None, None)] * d[("entropy", None, None)] == pytest.approx(
        d[("mutual_information", None, None)], abs=1e-12
    )
    assert d[("simpson_concentration", None, None)] + d[
        ("simpson_interaction", None, None)
    ] == pytest.approx(1.0, abs=1e-12)
    pi = counts.sum(axis=0) / counts.sum()
    ne = sum(pi[j] * d[("correlation_ratio", g, "(rest)")] for j, g in enumerate(groups))
    assert d[("normalized_exposure", None, None)] == pytest.approx(ne, abs=1e-12)
    # M ≤ min(ln K, ln n)
    assert d[("mutual_information", None, None)] <= np.log(min(k, counts.shape[0])) + 1e-12


@SETTINGS
@given(st.lists(st.integers(1, 40), min_size=2, max_size=6), st.integers(2, 10))
def test_zero_when_every_unit_has_the_same_composition(mix, n_units):
    sizes = np.arange(1, n_units + 1)
    counts = np.outer(sizes, mix)
    d = as_dict(compute_residential(to_long(counts)))
    for name in (
        "dissimilarity",
        "gini",
        "theil_h",
        "mutual_information",
        "normalized_exposure",
        "relative_diversity",
        "squared_cv",
        "hutchens",
    ):
        assert d[(name, None, None)] == pytest.approx(0.0, abs=1e-12), name
    for (name, _, _), v in d.items():
        if name in ("atkinson", "correlation_ratio"):
            assert v == pytest.approx(0.0, abs=1e-12), name


@SETTINGS
@given(st.integers(2, 5), st.integers(1, 4), st.data())
def test_one_when_groups_never_share_a_unit(k, per_group, data):
    sizes = data.draw(arrays(np.int64, (k, per_group), elements=st.integers(1, 100)))
    counts = np.zeros((k * per_group, k))
    for g in range(k):
        counts[g * per_group : (g + 1) * per_group, g] = sizes[g]
    d = as_dict(compute_residential(to_long(counts)))
    for name in ("dissimilarity", "gini", "theil_h", "relative_diversity", "hutchens"):
        assert d[(name, None, None)] == pytest.approx(1.0, abs=1e-12), name
    for (name, _, _), v in d.items():
        if name in ("isolation", "correlation_ratio", "atkinson"):
            assert v == pytest.approx(1.0, abs=1e-12), name
    assert d[("mutual_information", None, None)] == pytest.approx(
        d[("entropy", None, None)], abs=1e-12
    )


@SETTINGS
@given(tables(max_groups=2, min_groups=2))
def test_two_group_table_equals_focal_version(counts):
    # With exactly two groups, the multigroup formulas reduce to the two-group ones.
    multi = as_dict(compute_residential(to_long(counts)))
    two = as_dict(compute_residential(to_long(counts), focal="g0"))
    for name in ("dissimilarity", "gini", "theil_h", "mutual_information", "hutchens"):
        assert two[(name, "g0", "(rest)")] == pytest.approx(multi[(name, None, None)], abs=1e-12), (
            name
        )
    assert two[("correlation_ratio", "g0", "(rest)")] == pytest.approx(
        multi[("normalized_exposure", None, None)], abs=1e-12
    )


@SETTINGS
@given(tables(min_units=3))
def test_gini_matches_pairwise_definition(counts):
    t = counts.sum(axis=1).astype(float)
    share = counts / t[:, None]
    pi = counts.sum(axis=0) / counts.sum()
    pair = sum(
        (np.outer(t, t) * np.abs(share[:, g][:, None] - share[:, g][None, :])).sum()
        for g in range(counts.shape[1])
    )
    want = pair / (2 * t.sum() ** 2 * (pi * (1 - pi)).sum())
    got = compute_residential(to_long(counts), ["gini"])["value"][0]
    assert got == pytest.approx(want, abs=1e-12)


def test_only_requested_indices_in_given_order():
    counts = np.array([[1, 2], [3, 1], [0, 4]])
    res = compute_residential(to_long(counts), ["gini", "entropy"])
    assert res["index"].to_list() == ["gini", "entropy"]
    assert compute_residential(to_long(counts))["index"].unique(
        maintain_order=True
    ).to_list() == list(INDICES)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"indices": ["nope"]}, "unknown index"),
        ({"indices": ["ice"]}, "local"),
        ({"focal": "zz"}, "focal group 'zz' is not in the table"),
        ({"focal": "g0", "reference": "zz"}, "reference group 'zz'"),
        ({"reference": "g0"}, "--reference needs --focal"),
        ({"focal": "g0", "reference": "g0"}, "both"),
        ({"atkinson_b": 1.0}, "--atkinson-b"),
    ],
)
def test_bad_parameters_are_usage_errors(kwargs, message):
    counts = np.array([[1, 2], [3, 1], [0, 4]])
    with pytest.raises(UsageError, match=message):
        compute_residential(to_long(counts), **kwargs)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        (np.array([[1, 2]]), "only one unit"),
        (np.array([[1], [2]]), "only one group"),
        (np.array([[1, -2], [3, 4]]), "negative"),
        (np.array([[1, np.nan], [3, 4]]), "NaN"),
        (np.array([[0, 0], [0, 0]]), "zero total"),
    ],
)
def test_bad_tables_are_input_errors(counts, message):
    with pytest.raises(InputError, match=message):
        compute_residential(to_long(counts))


def test_zero_total_units_and_empty_groups_never_give_nan():
    counts = np.array([[5, 0, 0], [0, 0, 0], [1, 3, 0], [4, 4, 0]])
    res = compute_residential(to_long(counts))
    assert res["value"].is_finite().all()
    assert set(res["group"].drop_nulls()) == {"g0", "g1"}


def test_lazy_frame_accepted():
    counts = np.array([[1, 2], [3, 1], [0, 4]])
    a = compute_residential(to_long(counts))
    b = compute_residential(to_long(counts).lazy())
    assert a.equals(b)


def test_unsorted_frame_with_scattered_duplicates_is_summed():
    from segtool.indices.residential import composition

    frame = pl.DataFrame(
        {
            "unit": ["b", "a", "b", "a", "a"],
            "group": ["x", "x", "y", "y", "x"],
            "n": [2, 1, 5, 3, 4],
        }
    )
    c = composition(frame)
    assert c.units.to_list() == ["a", "b"] and c.groups == ("x", "y")
    assert c.counts.tolist() == [[5.0, 3.0], [2.0, 5.0]]


def test_gini_sort_falls_back_to_exact_order_below_float32_resolution():
    from segtool.indices.residential_kernels import _gini_mean_difference, _sorted_with_order

    # equal in float32, different in float64, and in the wrong order by position
    x = np.array([0.5 + 3e-12, 0.5 + 2e-12, 0.5 + 1e-12, 0.5, 0.1])
    order, xs = _sorted_with_order(x)
    assert order.tolist() == [4, 3, 2, 1, 0] and (np.diff(xs) >= 0).all()
    w = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    pair = (np.outer(w, w) * np.abs(x[:, None] - x[None, :])).sum() / 2
    assert _gini_mean_difference(x, w) == pytest.approx(pair, rel=1e-12, abs=1e-18)
