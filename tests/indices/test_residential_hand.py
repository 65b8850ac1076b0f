"""Hand-computed oracles: small tables whose index values are worked out in the test,
and naive textbook implementations (pairwise loops, straight from the formulas)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from segtool.indices import residential as r
from segtool.indices.residential import INDICES, REST, compute_residential


def long(rows: list[tuple], groups: list[str]) -> pl.DataFrame:
    """Wide tuples (one per unit) into the long frame."""
    return pl.DataFrame(
        {
            "unit": [f"u{i}" for i, row in enumerate(rows) for _ in groups],
            "group": [g for _ in rows for g in groups],
            "n": [float(v) for row in rows for v in row],
        }
    )


def value(result: pl.DataFrame, index: str, group=None, other=None) -> float:
    f = result.filter(pl.col("index") == index)
    if group is not None:
        f = f.filter(pl.col("group") == group)
    if other is not None:
        f = f.filter(pl.col("other_group") == other)
    assert f.height == 1, f
    return f["value"][0]


# The table: units (A, B) = (100, 0), (60, 40), (40, 60), (0, 100).
TABLE = [(100, 0), (60, 40), (40, 60), (0, 100)]


@pytest.fixture(scope="module")
def table_result():
    return compute_residential(long(TABLE, ["A", "B"]))


def test_dissimilarity_is_0_6(table_result):
    # Σ t|p − P| = 100·(.5 + .1 + .1 + .5) = 120; 2 T P (1 − P) = 2·400·.25 = 200.
    assert value(table_result, "dissimilarity") == pytest.approx(120 / 200, abs=1e-12)


def test_gini_by_hand(table_result):
    # p = 1, .6, .4, 0; Σ_{u<v} |p_u − p_v| = .4+.6+1+.2+.6+.4 = 3.2 (×2 ordered, ×100²)
    # over 2 T² P(1 − P) = 2·160000·.25.
    assert value(table_result, "gini") == pytest.approx(2 * 3.2 * 100**2 / 80000, abs=1e-12)


def test_exposure_family_by_hand(table_result):
    # xPx = .5·1 + .3·.6 + .2·.4 = .76; V = (.76 − .5)/.5 = .52.
    assert value(table_result, "isolation", "A") == pytest.approx(0.76, abs=1e-12)
    assert value(table_result, "interaction", "A") == pytest.approx(0.24, abs=1e-12)
    assert value(table_result, "correlation_ratio", "A") == pytest.approx(0.52, abs=1e-12)
    assert value(table_result, "exposure", "A", "B") == pytest.approx(0.24, abs=1e-12)
    # Two groups: normalised exposure = relative diversity = squared CV = V.
    for name in ("normalized_exposure", "relative_diversity", "squared_cv"):
        assert value(table_result, name) == pytest.approx(0.52, abs=1e-12)


def test_atkinson_and_hutchens_by_hand(table_result):
    # x/X = .5 .3 .2 0, y/Y = 0 .2 .3 .5: Σ √(products) = 2√.06.
    s = 2 * math.sqrt(0.06)
    assert value(table_result, "atkinson", "A") == pytest.approx(1 - s**2, abs=1e-12)
    assert value(table_result, "hutchens") == pytest.approx(1 - s, abs=1e-12)


def test_entropy_family_by_hand(table_result):
    ls_mixed = 0.6 * math.log(1.2) + 0.4 * math.log(0.8)
    m = (2 * math.log(2) + 2 * ls_mixed) / 4
    assert value(table_result, "entropy") == pytest.approx(math.log(2), abs=1e-12)
    assert value(table_result, "mutual_information") == pytest.approx(m, abs=1e-12)
    assert value(table_result, "theil_h") == pytest.approx(m / math.log(2), abs=1e-12)
    assert value(table_result, "simpson_concentration") == pytest.approx(0.5, abs=1e-12)
    assert value(table_result, "simpson_interaction") == pytest.approx(0.5, abs=1e-12)


def test_two_equal_groups_in_separate_units():
    res = compute_residential(long([(50, 0), (50, 0), (0, 100)], ["A", "B"]))
    assert value(res, "mutual_information") == pytest.approx(math.log(2), abs=1e-12)
    assert value(res, "theil_h") == pytest.approx(1.0, abs=1e-12)
    for name in ("dissimilarity", "gini", "hutchens", "relative_diversity"):
        assert value(res, name) == pytest.approx(1.0, abs=1e-12), name


def test_focal_against_rest_matches_two_column_table():
    three = long([(10, 5, 5), (2, 8, 10), (30, 1, 9)], ["A", "B", "C"])
    merged = long([(10, 10), (2, 18), (30, 10)], ["A", "rest"])
    got = compute_residential(three, focal="A")
    want = compute_residential(merged, focal="A", reference="rest")
    assert got["value"].to_list() == pytest.approx(want["value"].to_list(), abs=1e-12)
    assert set(got["other_group"]) == {REST, "A"}


def test_reference_drops_other_groups_from_totals():
    three = long([(10, 5, 100), (2, 8, 0), (30, 1, 7)], ["A", "B", "C"])
    two = long([(10, 5), (2, 8), (30, 1)], ["A", "B"])
    got = compute_residential(three, focal="A", reference="B")
    want = compute_residential(two, focal="A")
    assert got["value"].to_list() == pytest.approx(want["value"].to_list(), abs=1e-12)


# --------------------------------------------------------------------------------------
# Naive reference implementations straight from the formulas (loops, no vectorisation)


def naive(rows: list[tuple], b: float = 0.5) -> dict:
    n_units, k = len(rows), len(rows[0])
    t = [sum(row) for row in rows]
    tot = sum(t)
    big_n = [sum(row[g] for row in rows) for g in range(k)]
    pi = [ng / tot for ng in big_n]
    share = [[row[g] / t[u] for g in range(k)] for u, row in enumerate(rows)]
    simpson_i = sum(p * (1 - p) for p in pi)
    ent = -sum(p * math.log(p) for p in pi if p > 0)
    out = {}
    out["dissimilarity"] = sum(
        t[u] * abs(share[u][g] - pi[g]) for u in range(n_units) for g in range(k)
    ) / (2 * tot * simpson_i)
    out["gini"] = sum(
        t[u] * t[v] * abs(share[u][g] - share[v][g])
        for g in range(k)
        for u, v in itertools.product(range(n_units), repeat=2)
    ) / (2 * tot**2 * simpson_i)
    out["entropy"] = ent
    e_u = [-sum(s * math.log(s) for s in share[u] if s > 0) for u in range(n_units)]
    out["theil_h"] = sum(t[u] * (ent - e_u[u]) for u in range(n_units)) / (tot * ent)
    out["mutual_information"] = sum(
        t[u] / tot * share[u][g] * math.log(share[u][g] / pi[g])
        for u in range(n_units)
        for g in range(k)
        if share[u][g] > 0
    )
    sq = [sum(t[u] * (share[u][g] - pi[g]) ** 2 for u in range(n_units)) for g in range(k)]
    out["normalized_exposure"] = sum(sq[g] / (1 - pi[g]) for g in range(k)) / tot
    out["relative_diversity"] = sum(sq) / (tot * simpson_i)
    out["squared_cv"] = sum(sq[g] / ((k - 1) * pi[g]) for g in range(k)) / tot
    out["simpson_concentration"] = sum(p * p for p in pi)
    out["simpson_interaction"] = simpson_i
    out["hutchens"] = 1 - sum(
        math.prod((row[g] / big_n[g]) ** (1 / k) for g in range(k)) for row in rows
    )
    exp = {}
    for g in range(k):
        for h in range(k):
            exp[(g, h)] = sum(rows[u][g] / big_n[g] * rows[u][h] / t[u] for u in range(n_units))
    out["exposure"] = exp
    out["isolation"] = [exp[(g, g)] for g in range(k)]
    out["interaction"] = [1 - exp[(g, g)] for g in range(k)]
    out["correlation_ratio"] = [(exp[(g, g)] - pi[g]) / (1 - pi[g]) for g in range(k)]
    atk = []
    for g in range(k):
        x = [row[g] for row in rows]
        y = [t[u] - x[u] for u in range(n_units)]
        xs, ys = sum(x), sum(y)
        s = sum((x[u] / xs) ** b * (y[u] / ys) ** (1 - b) for u in range(n_units))
        atk.append(1 - s ** (1 / (1 - b)))
    out["atkinson"] = atk
    return out


@pytest.mark.parametrize("seed", range(6))
def test_multigroup_matches_naive_formulas(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    n_units = int(rng.integers(2, 15))
    rows = [tuple(int(v) for v in rng.integers(0, 30, size=k)) for _ in range(n_units)]
    rows = [row if sum(row) else (1,) * k for row in rows]
    rows.append((5,) * k)  # every group has members
    groups = [f"g{i}" for i in range(k)]
    b = float(rng.uniform(0.1, 0.9))
    res = compute_residential(long(rows, groups), atkinson_b=b)
    ref = naive(rows, b)
    for name in INDICES:
        if name == "exposure":
            for (g, h), v in ref["exposure"].items():
                assert value(res, name, groups[g], groups[h]) == pytest.approx(v, abs=1e-12)
        elif isinstance(ref[name], list):
            for g, v in enumerate(ref[name]):
                assert value(res, name, groups[g]) == pytest.approx(v, abs=1e-12), name
        else:
            assert value(res, name) == pytest.approx(ref[name], abs=1e-12), name


def test_three_groups_worked_example():
    # Units (A, B, C): (6, 0, 0), (0, 3, 3), (2, 2, 2): T = 18, π = (8, 5, 5)/18.
    res = compute_residential(long([(6, 0, 0), (0, 3, 3), (2, 2, 2)], list("ABC")))
    pi = np.array([8, 5, 5]) / 18
    simpson_i = float((pi * (1 - pi)).sum())
    # D: Σ_u t_u Σ_g |π_ug − π_g| / (2 T I)
    d = (6 * np.abs([1, 0, 0] - pi).sum() + 6 * np.abs([0, 0.5, 0.5] - pi).sum()) / (
        2 * 18 * simpson_i
    )  # the mixed unit (2, 2, 2) has π_ug = 1/3 for all g: add it too
    d += 6 * np.abs(np.full(3, 1 / 3) - pi).sum() / (2 * 18 * simpson_i)
    assert value(res, "dissimilarity") == pytest.approx(d, abs=1e-12)
    # Isolation of A: (6/8)·1 + (2/8)·(1/3)
    assert value(res, "isolation", "A") == pytest.approx(0.75 + 0.25 / 3, abs=1e-12)
    # Hutchens (symmetric Atkinson): only unit 3 holds all three groups:
    # (2/8 · 2/5 · 2/5)^(1/3)
    assert value(res, "hutchens") == pytest.approx(1 - (0.25 * 0.4 * 0.4) ** (1 / 3), abs=1e-12)


def test_r_segregation_test_table():
    # R segregation's tests/testthat/test_mutual_total.R: two units, four groups.
    counts = [(40, 20, 5, 1), (20, 40, 60, 80)]
    frame = long(counts, ["1", "2", "3", "4"])
    m = value(compute_residential(frame, ["mutual_information"]), "mutual_information")
    # R's own form: Σ_cells p ln(p / p_exp), p_exp = N_g t_u / T².
    tot = sum(map(sum, counts))
    n_g = [sum(c[g] for c in counts) for g in range(4)]
    want = sum(
        (v / tot) * math.log((v / tot) / (n_g[g] * sum(row) / tot**2))
        for row in counts
        for g, v in enumerate(row)
    )
    assert m == pytest.approx(want, abs=1e-12)
    # "mutual works both ways around": swap the roles of unit and group.
    swapped = frame.rename({"unit": "group", "group": "unit"})
    assert value(
        compute_residential(swapped, ["mutual_information"]), "mutual_information"
    ) == pytest.approx(m, abs=1e-12)
    # "max bound correct": two groups alone in two units → ln 2 (empty groups dropped).
    sparse = long([(40, 0, 0, 0), (0, 0, 0, 40)], ["1", "2", "3", "4"])
    assert value(
        compute_residential(sparse, ["mutual_information"]), "mutual_information"
    ) == pytest.approx(math.log(2), abs=1e-12)


def test_per_index_functions_match_compute():
    frame = long([(3, 4, 5), (9, 1, 0), (2, 2, 8)], list("xyz"))
    full = compute_residential(frame)
    for name in INDICES:
        one = getattr(r, name)(frame)
        assert one["index"].unique().to_list() == [name]
        want = full.filter(pl.col("index") == name)
        assert one["value"].to_list() == pytest.approx(want["value"].to_list(), abs=0)
        assert getattr(r, name).__doc__
