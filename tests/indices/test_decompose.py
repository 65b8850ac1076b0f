"""M/H decomposition into between and within strata, and the local scores, against
R `segregation`'s definitions (Elbers 2023) written out by hand."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segtool.errors import InputError, UsageError
from segtool.indices import decompose as dec
from segtool.indices.residential import compute_residential
from tests.indices.tables import to_long

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def stratified(draw):
    n = draw(st.integers(2, 14))
    k = draw(st.integers(2, 4))
    counts = draw(arrays(np.int64, (n, k), elements=st.integers(0, 30)))
    counts[:, 0] += counts.sum(axis=1) == 0
    counts[0] += 1
    strata = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return counts, strata


def r_mutual(counts: np.ndarray) -> float:
    """R segregation's mutual_total_compute: Σ_cells p ln(p / p_exp), p_exp = N_g t_u / T²."""
    tot = counts.sum()
    p = counts / tot
    p_exp = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / tot**2
    ok = p > 0
    return float((p[ok] * np.log(p[ok] / p_exp[ok])).sum())


def rows(res: pl.DataFrame, index: str) -> dict:
    f = res.filter(pl.col("index") == index)
    return {
        (r["stratum"], r["component"]): (r["value"], r["weight"]) for r in f.iter_rows(named=True)
    }


@SETTINGS
@given(stratified())
def test_between_plus_within_is_total(data):
    counts, strata = data
    res = compute_residential(to_long(counts, strata), within="district")
    for index in ("mutual_information", "theil_h"):
        r = rows(res, index)
        total, between, within = (r[(None, c)][0] for c in ("total", "between", "within"))
        assert between + within == pytest.approx(total, abs=1e-12)
        # within = Σ_s weight_s · value_s
        parts = [(v, w) for (s, c), (v, w) in r.items() if s is not None]
        assert sum(v * w for v, w in parts) == pytest.approx(within, abs=1e-12)
        assert sum(w for _, w in parts if index == "mutual_information") == pytest.approx(
            1.0 if index == "mutual_information" else 0.0, abs=1e-12
        )
    plain = compute_residential(to_long(counts), ["mutual_information", "theil_h"])
    m = rows(res, "mutual_information")
    assert m[(None, "total")][0] == pytest.approx(plain["value"][0], abs=1e-12)


@SETTINGS
@given(stratified())
def test_matches_r_segregation_definitions(data):
    counts, strata = data
    res = compute_residential(to_long(counts, strata), within="district")
    m = rows(res, "mutual_information")
    h = rows(res, "theil_h")
    tot = counts.sum()
    pi = counts.sum(axis=0) / tot
    e = -sum(p * math.log(p) for p in pi if p > 0)
    by_stratum = np.array([counts[strata == s].sum(axis=0) for s in np.unique(strata)])
    # R: mutual_total(group, stratum) is the between part; total − between the within part
    assert m[(None, "between")][0] == pytest.approx(r_mutual(by_stratum), abs=1e-12)
    assert m[(None, "within")][0] == pytest.approx(
        r_mutual(counts) - r_mutual(by_stratum), abs=1e-12
    )
    # R mutual_within: M and H of each stratum alone, p = its share, ent_ratio = E_s / E
    for s in np.unique(strata):
        sub = counts[strata == s]
        sub = sub[:, sub.sum(axis=0) > 0]
        ps = sub.sum(axis=0) / sub.sum()
        e_s = -sum(p * math.log(p) for p in ps if p > 0)
        m_s, share = m[(f"s{s}", "within")]
        assert m_s == pytest.approx(r_mutual(sub), abs=1e-12)
        assert share == pytest.approx(sub.sum() / tot, abs=1e-12)
        h_s, h_weight = h[(f"s{s}", "within")]
        assert h_s == pytest.approx(r_mutual(sub) / e_s if e_s > 0 else 0.0, abs=1e-12)
        assert h_weight == pytest.approx(sub.sum() / tot * e_s / e, abs=1e-12)


def test_stratum_values_equal_separate_runs():
    counts = np.array([[10, 0, 5], [2, 8, 1], [6, 6, 6], [0, 9, 3], [1, 1, 20]])
    strata = np.array([0, 0, 1, 1, 1])
    res = compute_residential(to_long(counts, strata), within="district")
    for s in (0, 1):
        alone = compute_residential(to_long(counts[strata == s]), ["mutual_information", "theil_h"])
        for index, want in zip(("mutual_information", "theil_h"), alone["value"], strict=True):
            assert rows(res, index)[(f"s{s}", "within")][0] == pytest.approx(want, abs=1e-12)


def test_two_group_decomposition():
    counts = np.array([[10, 0, 5], [2, 8, 1], [6, 6, 6], [0, 9, 3]])
    strata = np.array([0, 0, 1, 1])
    res = dec.decompose_mutual_information(to_long(counts, strata), "district", focal="g0")
    assert set(res["group"]) == {"g0"}
    r = rows(res, "mutual_information")
    x = counts[:, 0]
    two = np.column_stack([x, counts.sum(axis=1) - x])
    assert r[(None, "total")][0] == pytest.approx(r_mutual(two), abs=1e-12)


def test_unit_in_two_strata_is_an_error():
    frame = to_long(np.array([[1, 2], [3, 4]]), np.array([0, 1]))
    frame = frame.with_columns(
        pl.when(pl.col("group") == "g1").then(pl.lit("s9")).otherwise("district").alias("district")
    )
    with pytest.raises(InputError, match="more than one stratum"):
        compute_residential(frame, within="district")


# --------------------------------------------------------------------------------------
# Local scores


@SETTINGS
@given(stratified())
def test_local_scores_identities(data):
    counts, _ = data
    frame = to_long(counts)
    loc = dec.local_scores(frame)
    res = compute_residential(frame, ["mutual_information", "entropy"])
    m, e = res["value"].to_list()
    ls = loc.filter(pl.col("index") == "local_mutual_information")
    assert (ls["value"] * ls["unit_share"]).sum() == pytest.approx(m, abs=1e-12)
    le = loc.filter(pl.col("index") == "local_entropy")
    # E − Σ_u (t_u/T) E_u = M  (Theil's H numerator)
    assert e - (le["value"] * le["unit_share"]).sum() == pytest.approx(m, abs=1e-12)
    assert ls["unit_share"].sum() == pytest.approx(1.0, abs=1e-12)
    # ls_u as R writes it, and as a KL divergence −E_u − Σ_g π_ug ln π_g
    tot = counts.sum()
    pi = counts.sum(axis=0) / tot
    for i, row in enumerate(counts):
        share = row / row.sum()
        ok = share > 0
        want = float((share[ok] * np.log(share[ok] / pi[ok])).sum())
        assert ls["value"][i] == pytest.approx(want, abs=1e-12)
        alt = -le["value"][i] - float((share[ok] * np.log(pi[ok])).sum())
        assert ls["value"][i] == pytest.approx(alt, abs=1e-12)
    lq = loc.filter(pl.col("index") == "location_quotient")
    # Σ_u (t_u/T) LQ_ug = 1 for every group
    sums = lq.group_by("group").agg((pl.col("value") * pl.col("unit_share")).sum())["value"]
    assert sums.to_list() == pytest.approx([1.0] * sums.len(), abs=1e-12)


def test_ice_and_location_quotient_by_hand():
    counts = np.array([[8, 2, 0], [1, 1, 8], [5, 5, 0]])  # groups g0 (low) … g2 (high)
    loc = dec.local_scores(to_long(counts), ice_high="g2", ice_low="g0")
    ice = loc.filter(pl.col("index") == "ice")["value"].to_list()
    assert ice == pytest.approx([(0 - 8) / 10, (8 - 1) / 10, (0 - 5) / 10], abs=1e-12)
    lq = loc.filter((pl.col("index") == "location_quotient") & (pl.col("unit") == "u001"))
    # π_g = (14, 8, 8)/30; unit 1 = (.1, .1, .8)
    assert lq["value"].to_list() == pytest.approx([0.1 / (14 / 30), 0.1 / (8 / 30), 0.8 / (8 / 30)])
    ent = loc.filter(pl.col("index") == "local_entropy")["value"][2]
    assert ent == pytest.approx(math.log(2), abs=1e-12)
    assert set(loc["index"]) == {
        "location_quotient",
        "local_entropy",
        "local_mutual_information",
        "ice",
    }


def test_local_defaults_and_errors():
    frame = to_long(np.array([[1, 2], [3, 4]]))
    assert "ice" not in set(dec.local_scores(frame)["index"])
    with pytest.raises(UsageError, match="both"):
        dec.local_scores(frame, ice_high="g0")
    with pytest.raises(UsageError, match="not in the table"):
        dec.ice(frame, "g0", "zz")
    with pytest.raises(UsageError, match="unknown local"):
        dec.local_scores(frame, ["nope"])
    assert dec.location_quotient(frame).height == 4
    assert dec.local_entropy(frame).height == 2
    assert dec.local_mutual_information(frame).height == 2
    assert dec.ice(frame, "g1", "g0")["value"].to_list() == pytest.approx([1 / 3, 1 / 7])
