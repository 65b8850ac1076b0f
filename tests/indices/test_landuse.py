"""Segregation × land use (segtool.indices.landuse) against hand-computed tables, scipy,
numpy.linalg.lstsq and statsmodels; bootstrap determinism; suppression."""

from __future__ import annotations

import math

import h3
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from segtool.errors import InputError, UsageError
from segtool.indices.landuse import (
    LanduseParams,
    analyse,
    hexagon_table,
    landuse_profile,
    landuse_segregation,
    poi_profile,
    regression_design,
)
from segtool.indices.weighted_stats import (
    midranks,
    ols,
    ols_replicates,
    place_multiplicities,
    spearman_replicates,
)

# Real res-9 cells around Stockholm's centre.
CELLS = [h3.str_to_int(c) for c in sorted(h3.grid_disk(h3.latlng_to_cell(59.33, 18.06, 9), 1))]


def lu(rows):
    return pl.DataFrame(rows, schema=["cell", "category", "share"], orient="row").with_columns(
        pl.col("cell").cast(pl.UInt64)
    )


def places(rows):
    return pl.DataFrame(
        rows, schema=["place", "segregation", "weighted_dwell", "devices"], orient="row"
    ).with_columns(pl.col("place").cast(pl.UInt64), pl.col("devices").cast(pl.UInt32))


# --------------------------------------------------------------------------- hand-computed


def test_mix_entropy_dominant_and_coverage_by_hand():
    a, b, c, d, e = CELLS[:5]
    table = lu(
        [
            (a, "residential", 0.5), (a, "park", 0.5),  # two of four: ln2/ln4 = 0.5
            (b, "residential", 1.0),  # one use: 0
            (c, "residential", 0.25), (c, "park", 0.25), (c, "commercial", 0.25), (c, "water", 0.25),
            (d, "residential", 0.2), (d, "park", 0.2),  # mapped 40 %, composition 1/2, 1/2
            (e, "residential", 0.4), (e, "park", 0.4), (e, "commercial", 0.2),  # tie → park
        ]
    )  # fmt: skip
    p = landuse_profile(table).sort("cell")
    by = {row["cell"]: row for row in p.iter_rows(named=True)}
    assert by[a]["mix_entropy"] == pytest.approx(0.5, abs=1e-12)
    assert by[b]["mix_entropy"] == 0.0 and math.copysign(1, by[b]["mix_entropy"]) == 1
    assert by[c]["mix_entropy"] == pytest.approx(1.0, abs=1e-12)
    assert by[d]["mix_entropy"] == pytest.approx(0.5, abs=1e-12)
    assert by[d]["coverage"] == pytest.approx(0.4)
    assert by[d]["share_park"] == pytest.approx(0.5)
    assert by[d]["share_water"] == 0.0
    assert by[a]["dominant"] == "park"  # tie 0.5/0.5 → first name
    assert by[b]["dominant"] == "residential"
    assert by[e]["dominant"] == "park"
    # -(0.4 ln 0.4 · 2 + 0.2 ln 0.2) / ln 4
    assert by[e]["mix_entropy"] == pytest.approx(
        -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)) / math.log(4), abs=1e-12
    )
    assert p.columns[:4] == ["cell", "coverage", "dominant", "mix_entropy"]
    assert sorted(p.columns[4:]) == [
        "share_commercial", "share_park", "share_residential", "share_water",
    ]  # fmt: skip


def test_duplicate_rows_summed_and_bad_shares_rejected():
    a = CELLS[0]
    p = landuse_profile(lu([(a, "park", 0.3), (a, "park", 0.2), (a, "residential", 0.5)]))
    assert p["share_park"][0] == pytest.approx(0.5)
    with pytest.raises(InputError, match="share"):
        landuse_profile(lu([(a, "park", -0.1)]))
    with pytest.raises(InputError, match="no column"):
        landuse_profile(pl.DataFrame({"cell": [a], "share": [1.0]}))


def test_poi_counts_and_diversity_by_hand():
    a, b, c = CELLS[:3]
    pois = pl.DataFrame(
        {
            "cell": [a, a, b, c],
            "category": ["cafe", "school", "cafe", "gym"],
            "n": [2, 2, 5, 0],
        }
    ).with_columns(pl.col("cell").cast(pl.UInt64), pl.col("n").cast(pl.UInt32))
    p = poi_profile(pois)
    by = {row["cell"]: row for row in p.iter_rows(named=True)}
    # K = 2 POI categories with a POI (gym has none): cell a has 2 + 2 → ln2/ln2 = 1
    assert by[a]["pois"] == 4 and by[a]["poi_categories"] == 2
    assert by[a]["poi_diversity"] == pytest.approx(1.0)
    assert by[b]["poi_diversity"] == 0.0 and by[b]["pois"] == 5
    assert c not in by  # only zero counts: no POIs (filled with 0 when joined to places)


def test_weighted_means_by_dominant_category_by_hand():
    a, b, c, d = CELLS[:4]
    land = lu(
        [(a, "residential", 1.0), (b, "residential", 0.8), (b, "park", 0.2),
         (c, "park", 1.0), (d, "commercial", 0.6), (d, "park", 0.4)]
    )  # fmt: skip
    pl_ = places([(a, 0.2, 1.0, 9), (b, 0.6, 3.0, 9), (c, 1.0, 2.0, 9), (d, 0.0, 4.0, 9)])
    table, counts = hexagon_table(pl_, land, None)
    assert counts == {"places_without_landuse": 0, "places_low_coverage": 0}
    frame, _ = landuse_segregation(table, LanduseParams(bootstrap=0), has_pois=False)
    m = frame.filter(pl.col("index") == "mean_place_segregation")
    value = dict(zip(m["group"].to_list(), m["value"].to_list(), strict=True))
    weight = dict(zip(m["group"].to_list(), m["weight"].to_list(), strict=True))
    places_ = dict(zip(m["group"].to_list(), m["places"].to_list(), strict=True))
    assert value["residential"] == pytest.approx((0.2 * 1 + 0.6 * 3) / 4)
    assert value["park"] == pytest.approx(1.0)
    assert value["commercial"] == pytest.approx(0.0)
    assert value[None] == pytest.approx((0.2 + 1.8 + 2.0 + 0.0) / 10)
    assert weight["residential"] == pytest.approx(0.4) and weight[None] == 1.0
    assert places_ == {None: 4, "residential": 2, "park": 1, "commercial": 1}
    # the overall mean is the dwell-share-weighted mean of the category means
    cats = m.filter(pl.col("group").is_not_null())
    assert (cats["weight"] * cats["value"]).sum() == pytest.approx(value[None])


def test_places_without_land_use_or_low_coverage_are_counted_not_used():
    a, b, c = CELLS[:3]
    land = lu([(a, "park", 1.0), (b, "park", 0.3)])
    pl_ = places([(a, 0.5, 1.0, 9), (b, 0.5, 1.0, 9), (c, 0.5, 1.0, 9)])
    table, counts = hexagon_table(pl_, land, None, min_coverage=0.5)
    assert table["place"].to_list() == [a]
    assert counts == {"places_without_landuse": 1, "places_low_coverage": 1}
    table, counts = hexagon_table(pl_, land, None, min_coverage=0.0)
    assert table.height == 2 and counts["places_low_coverage"] == 0


def test_resolution_mismatch_is_a_clear_error():
    parent = h3.str_to_int(h3.cell_to_parent(h3.int_to_str(CELLS[0]), 8))
    with pytest.raises(InputError, match="resolution"):
        hexagon_table(places([(CELLS[0], 0.5, 1.0, 9)]), lu([(parent, "park", 1.0)]), None)


# --------------------------------------------------------------------------- oracles


def random_table(n=60, seed=0, cats=("commercial", "park", "residential"), ties=False):
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(len(cats)), n)
    if ties:
        shares = np.round(shares, 1)
        shares[:, -1] = 1 - shares[:, :-1].sum(1)
        shares = np.clip(shares, 0, None)
    cells = np.arange(n, dtype=np.uint64) + 1
    land = pl.DataFrame(
        {
            "cell": np.repeat(cells, len(cats)),
            "category": list(cats) * n,
            "share": shares.ravel(),
        }
    )
    prof = landuse_profile(land)
    s = rng.uniform(0, 1, n)
    if ties:
        s = np.round(s, 1)
    table = prof.rename({"cell": "place"}).with_columns(
        pl.Series("segregation", s),
        pl.Series("weighted_dwell", rng.uniform(1, 10, n)),
        pl.Series("pois", rng.integers(0, 4, n).astype(float)),
        pl.Series("poi_diversity", rng.uniform(0, 1, n).round(1)),
    )
    return table


def test_spearman_estimate_equals_scipy():
    table = random_table(ties=True)
    frame, _ = landuse_segregation(table, LanduseParams(bootstrap=0))
    sp_rows = frame.filter(pl.col("index") == "spearman")
    s = table["segregation"].to_numpy()
    for row in sp_rows.iter_rows(named=True):
        col = f"share_{row['group']}" if row["component"] == "share" else row["component"]
        expect = spearmanr(table[col].to_numpy(), s)
        assert row["value"] == pytest.approx(expect.statistic, abs=1e-12)
        assert row["p_value"] == pytest.approx(expect.pvalue, abs=1e-12)
    # the batched kernel with unit multiplicities gives the same ρ
    x = table["mix_entropy"].to_numpy()
    assert spearman_replicates(x, s, np.ones((1, s.size)))[0] == pytest.approx(
        spearmanr(x, s).statistic, abs=1e-12
    )


def test_spearman_replicates_equal_scipy_on_the_expanded_sample():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 6, 40).astype(float)  # many ties
    y = rng.normal(size=40).round(1)
    mult = next(place_multiplicities(40, 7, seed=1))
    rho = spearman_replicates(x, y, mult)
    for r in range(7):
        m = mult[r].astype(int)
        expect = spearmanr(np.repeat(x, m), np.repeat(y, m)).statistic
        assert rho[r] == pytest.approx(expect, abs=1e-12)
    from scipy.stats import rankdata

    ranks = midranks(x, mult)
    m = mult[0].astype(int)
    assert np.allclose(np.repeat(ranks[0], m), rankdata(np.repeat(x, m)))


def test_spearman_of_a_constant_is_undefined_not_an_error():
    x = np.ones(10)
    assert np.isnan(spearman_replicates(x, np.arange(10.0), np.ones((1, 10)))[0])


def test_regression_equals_statsmodels_ols_and_numpy_lstsq():
    import statsmodels.api as sm

    table = random_table(n=80, seed=2, cats=("commercial", "industrial", "park", "residential"))
    X, names, ref, absent = regression_design(table)
    assert names[0] == ("intercept", None) and names[-1] == ("mix_entropy", None)
    assert ref not in [g for c, g in names if c == "share"] and not absent
    s = table["segregation"].to_numpy()
    frame, _ = landuse_segregation(table, LanduseParams(bootstrap=0))
    coef = frame.filter(pl.col("index") == "regression_coefficient")
    fit = sm.OLS(s, X).fit()
    assert np.allclose(coef["value"].to_numpy(), fit.params, atol=1e-9)
    assert np.allclose(coef["value"].to_numpy(), np.linalg.lstsq(X, s, rcond=None)[0], atol=1e-9)
    r2 = frame.filter(pl.col("index") == "regression_r2")["value"][0]
    assert r2 == pytest.approx(fit.rsquared, abs=1e-9)
    assert set(coef.filter(pl.col("component") == "share")["other_group"]) == {ref}
    # the batched normal equations, for integer multiplicities, are OLS on the expanded sample
    mult = next(place_multiplicities(80, 5, seed=3))
    beta, r2s = ols_replicates(X, s, mult)
    for r in range(5):
        m = mult[r].astype(int)
        ex = sm.OLS(np.repeat(s, m), np.repeat(X, m, axis=0)).fit()
        assert np.allclose(beta[r], ex.params, atol=1e-8)
        assert r2s[r] == pytest.approx(ex.rsquared, abs=1e-9)
    assert np.allclose(ols(X, s)[0], fit.params, atol=1e-9)


def test_reference_category_option_and_errors():
    table = random_table(n=30, seed=5)
    X, names, ref, _ = regression_design(table, "park")
    assert ref == "park" and ("share", "park") not in names and ("share", "residential") in names
    with pytest.raises(UsageError, match="not a land-use category"):
        regression_design(table, "harbour")


def test_singular_replicates_give_nan_not_an_error():
    X = np.column_stack([np.ones(4), [0, 0, 0, 1.0]])
    mult = np.array([[1, 1, 1, 1], [2, 1, 1, 0]], dtype=float)  # 2nd: column all zero
    beta, _ = ols_replicates(X, np.array([0.1, 0.2, 0.3, 0.9]), mult)
    assert np.isfinite(beta[0]).all() and np.isnan(beta[1]).all()


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_the_estimate():
    table = random_table(n=50, seed=7)
    p1 = LanduseParams(bootstrap=200, seed=11)
    a, _ = landuse_segregation(table, p1)
    b, _ = landuse_segregation(table, p1)
    assert a.equals(b)
    c, _ = landuse_segregation(table, LanduseParams(bootstrap=200, seed=12))
    assert not a["ci_low"].equals(c["ci_low"])
    est = a.filter(pl.col("ci_low").is_not_null())
    assert est.height == a.height  # every statistic got an interval
    assert (est["ci_low"] <= est["ci_high"]).all() and (est["se"] > 0).all()
    overall = a.row(0, named=True)
    assert overall["ci_low"] < overall["value"] < overall["ci_high"]


def test_multiplicities_draw_n_places_per_replicate_in_any_block_size():
    blocks = list(place_multiplicities(10, 25, seed=0, max_cells=60))  # 6 per block
    mult = np.concatenate(blocks)
    assert mult.shape == (25, 10) and (mult.sum(1) == 10).all()
    again = np.concatenate(list(place_multiplicities(10, 25, seed=0, max_cells=60)))
    assert np.array_equal(mult, again)


def test_mean_replicates_equal_weighted_means_of_the_resample():
    table = random_table(n=20, seed=9)
    mult = next(place_multiplicities(20, 3, seed=2))
    from segtool.indices.weighted_stats import weighted_means_by

    s, w = table["segregation"].to_numpy(), table["weighted_dwell"].to_numpy()
    codes = np.array([0, 1] * 10)
    by, overall = weighted_means_by(s, w, codes, 2, mult)
    for r in range(3):
        m = mult[r]
        assert overall[r] == pytest.approx((m * w * s).sum() / (m * w).sum())
        sel = codes == 1
        assert by[r, 1] == pytest.approx((m * w * s)[sel].sum() / (m * w)[sel].sum())


# --------------------------------------------------------------------------- suppression


def test_places_below_k_devices_are_suppressed_and_counted():
    a, b, c, d = CELLS[:4]
    land = lu([(x, "park" if i % 2 else "residential", 1.0) for i, x in enumerate(CELLS[:4])])
    pl_ = places([(a, 0.1, 1.0, 5), (b, 0.9, 1.0, 4), (c, 0.4, 2.0, 12), (d, 0.3, 1.0, 7)])
    res = analyse(pl_, land, None, LanduseParams(bootstrap=0, min_devices=5), suppressed_places=2)
    counts = dict(
        res.indices.filter(pl.col("index").is_in(["places", "suppressed_places"]))
        .select("index", "value")
        .iter_rows()
    )
    assert counts == {"places": 3.0, "suppressed_places": 3.0}  # 2 upstream + b
    assert b not in res.hexagons["place"].to_list()
    overall = res.indices.filter(
        (pl.col("index") == "mean_place_segregation") & pl.col("group").is_null()
    )["value"][0]
    assert overall == pytest.approx((0.1 + 0.8 + 0.3) / 4)
    assert "device" not in res.hexagons.columns


def test_too_few_places_is_a_clear_error():
    land = lu([(CELLS[0], "park", 1.0)])
    with pytest.raises(InputError, match="at least 3"):
        analyse(places([(CELLS[0], 0.5, 1.0, 9)]), land, None, LanduseParams(bootstrap=0))


# --------------------------------------------------------------------------- properties


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", "c", "d"]), st.floats(0.01, 1)),
        min_size=1,
        max_size=20,
    )
)
def test_profile_invariants(rows):
    table = lu([(CELLS[i], c, s) for i, c, s in rows])
    p = landuse_profile(table)
    assert ((p["mix_entropy"] >= 0) & (p["mix_entropy"] <= 1 + 1e-12)).all()
    shares = p.select(pl.col("^share_.*$")).to_numpy()
    assert np.allclose(shares.sum(1), 1.0)
    dom = p["dominant"].to_list()
    for row, d in zip(shares, dom, strict=True):
        assert row[p.columns[4:].index(f"share_{d}")] == pytest.approx(row.max())
