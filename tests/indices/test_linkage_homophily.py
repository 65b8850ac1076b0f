"""Homophily against independent oracles: networkx's assortativity on multigraphs whose
edge multiplicities are the weights, Newman's textbook extremes, the identity between the
same-quartile share and categorical assortativity, statsmodels' formula GLM on a design
built here from the edge table, and the synthetic city (planted homophily found, a
shuffled city's CI covering 0)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.indices.linkage import assortativity as asr
from segtool.indices.linkage.gravity import TERMS, fit, gravity, gravity_design
from tests.indices.linkage_world import city


def random_graph(seed: int, n: int = 12, m: int = 40):
    rng = np.random.default_rng(seed)
    o, d = rng.integers(0, n, m), rng.integers(0, n, m)
    w = rng.integers(1, 6, m)
    return o, d, w, rng


@pytest.mark.parametrize("seed", range(6))
def test_numeric_assortativity_equals_networkx(seed):
    o, d, w, rng = random_graph(seed)
    x = rng.normal(size=12).round(3)
    G = nx.MultiDiGraph()
    G.add_nodes_from((i, {"x": float(x[i])}) for i in range(12))
    for a, b, k in zip(o, d, w, strict=True):
        G.add_edges_from([(int(a), int(b))] * int(k))
    W = sp.coo_matrix((w.astype(float), (o, d)), shape=(12, 12))  # duplicates are summed
    want = nx.numeric_assortativity_coefficient(G, "x")
    assert asr.numeric_assortativity(W, x) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_categorical_assortativity_equals_networkx(seed):
    o, d, w, rng = random_graph(seed)
    q = rng.integers(0, 4, 12)
    G = nx.MultiDiGraph()
    G.add_nodes_from((i, {"q": int(q[i])}) for i in range(12))
    for a, b, k in zip(o, d, w, strict=True):
        G.add_edges_from([(int(a), int(b))] * int(k))
    W = sp.coo_matrix((w.astype(float), (o, d)), shape=(12, 12))
    want = nx.attribute_assortativity_coefficient(G, "q")
    got = asr.categorical_assortativity(asr.category_mixing(W, q, 4))
    assert got == pytest.approx(want, abs=1e-9)


def test_textbook_extremes():
    # two groups that only link within: r = 1; only across: r = −1 (Newman 2003)
    x = np.array([0.0, 0.0, 1.0, 1.0])
    within = sp.csr_matrix(
        np.array([[0, 2, 0, 0], [3, 0, 0, 0], [0, 0, 0, 1], [0, 0, 4, 0]], float)
    )
    across = sp.csr_matrix(
        np.array([[0, 0, 2, 1], [0, 0, 1, 1], [3, 1, 0, 0], [1, 1, 0, 0]], float)
    )
    assert asr.numeric_assortativity(within, x) == pytest.approx(1.0)
    assert asr.numeric_assortativity(across, x) == pytest.approx(-1.0)
    q = x.astype(int)
    assert asr.categorical_assortativity(asr.category_mixing(within, q, 2)) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10_000),
    st.floats(0.1, 10.0),
    st.floats(-5.0, 5.0),
    st.floats(0.01, 100.0),
)
def test_assortativity_invariants(seed, a, b, c):
    """r ∈ [−1, 1]; invariant under x → a x + b (a > 0), W → c W and relabelling units;
    the categorical r equals (same share − expected) / (1 − expected)."""
    o, d, w, rng = random_graph(seed, n=10, m=30)
    x = rng.normal(size=10)
    W = sp.csr_matrix((w.astype(float), (o, d)), shape=(10, 10))
    r = asr.numeric_assortativity(W, x)
    if np.isnan(r):
        return
    assert -1 - 1e-9 <= r <= 1 + 1e-9
    assert asr.numeric_assortativity(W, a * x + b) == pytest.approx(r, abs=1e-9)
    assert asr.numeric_assortativity(c * W, x) == pytest.approx(r, abs=1e-9)
    p = rng.permutation(10)
    Wp = sp.csr_matrix((w.astype(float), (p[o], p[d])), shape=(10, 10))
    xp = np.empty(10)
    xp[p] = x
    assert asr.numeric_assortativity(Wp, xp) == pytest.approx(r, abs=1e-9)
    q = rng.integers(0, 4, 10)
    E = asr.category_mixing(W, q, 4)
    share, expected = asr.same_category_share(E)
    if expected < 1:
        rc = asr.categorical_assortativity(E)
        assert rc == pytest.approx((share - expected) / (1 - expected), abs=1e-12)


def test_null_replicates_match_one_by_one():
    o, d, w, rng = random_graph(1)
    W = sp.csr_matrix((w.astype(float), (o, d)), shape=(12, 12))
    x = rng.normal(size=12)
    q = rng.integers(0, 4, 12)
    perms = asr.permutations(12, 7, seed=5)
    many = asr.null_numeric(W, x, perms, block=3)
    one = [asr.numeric_assortativity(W, x[p]) for p in perms]
    np.testing.assert_allclose(many, one, atol=1e-12)
    r, s = asr.null_categorical(W, q, 4, perms)
    for i, p in enumerate(perms):
        E = asr.category_mixing(W, q[p], 4)
        assert r[i] == pytest.approx(asr.categorical_assortativity(E))
        assert s[i] == pytest.approx(asr.same_category_share(E)[0])


# --------------------------------------------------------------------------- gravity


def toy_edges(seed=0, n=9, beta=(1.0, -0.8, -1.2, 0.6, 0.7)):
    """Units on a line with an attribute; V_AB Poisson with known β (sizes fixed first)."""
    rng = np.random.default_rng(seed)
    units = pl.DataFrame(
        {
            "unit": [f"u{i}" for i in range(n)],
            "lat": 59.0 + 0.05 * np.arange(n),
            "lon": 18.0 + 0.03 * rng.random(n),
            "residents": np.ones(n),
            "attribute": rng.uniform(0, 3, n),
        }
    )
    o, d = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = o != d
    o, d = o[keep], d[keep]
    y = rng.poisson(50, o.size).astype(float)
    edges = pl.DataFrame(
        {"origin": [f"u{i}" for i in o], "destination": [f"u{j}" for j in d], "observed": y}
    )
    return edges, units


def test_gravity_equals_statsmodels_formula_on_the_same_pairs():
    """The design is built independently here (pandas + patsy formula) from the edges."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    from segtool.indices.linkage.edges import haversine_km

    edges, units = toy_edges()
    # drop some pairs: zeros of the all-pairs design
    edges = edges.filter(pl.int_range(pl.len()) % 7 != 0)
    design = gravity_design(edges, units, max_pairs=10_000)
    assert design.kind == "all_pairs" and len(design.y) == 9 * 8
    ours = fit(design, "poisson")

    u = units.to_pandas().set_index("unit")
    full = (
        pl.DataFrame({"origin": units["unit"]})
        .join(pl.DataFrame({"destination": units["unit"]}), how="cross")
        .filter(pl.col("origin") != pl.col("destination"))
        .join(edges, on=["origin", "destination"], how="left")
        .with_columns(pl.col("observed").fill_null(0.0))
        .to_pandas()
    )
    size_o = full.groupby("origin")["observed"].sum()
    size_d = full.groupby("destination")["observed"].sum()
    full["diff"] = (
        u.loc[full.origin, "attribute"].values - u.loc[full.destination, "attribute"].values
    ).__abs__()
    full["dist"] = haversine_km(
        u.loc[full.origin, "lat"].values,
        u.loc[full.origin, "lon"].values,
        u.loc[full.destination, "lat"].values,
        u.loc[full.destination, "lon"].values,
    )
    full["so"] = size_o.loc[full.origin].values
    full["sd"] = size_d.loc[full.destination].values
    full = full.sort_values(["origin", "destination"])
    formula = "observed ~ diff + np.log(dist) + np.log(so) + np.log(sd)"
    peer = smf.glm(
        formula,
        data=full,
        family=sm.families.Poisson(),
    ).fit()
    np.testing.assert_allclose(np.asarray(ours.params), peer.params.values, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(np.asarray(ours.bse), peer.bse.values, rtol=1e-6)
    peer_cl = smf.glm(
        "observed ~ diff + np.log(dist) + np.log(so) + np.log(sd)",
        data=full,
        family=sm.families.Poisson(),
    ).fit(
        cov_type="cluster", cov_kwds={"groups": full["origin"].astype("category").cat.codes.values}
    )
    table = gravity(design, "poisson")
    np.testing.assert_allclose(table["se_cluster"].to_numpy(), peer_cl.bse.values, rtol=1e-6)
    np.testing.assert_allclose(table["se"].to_numpy(), peer.bse.values, rtol=1e-6)
    quasi = smf.glm(formula, data=full, family=sm.families.Poisson()).fit(scale="X2")
    np.testing.assert_allclose(gravity(design, "quasipoisson")["se"], quasi.bse.values, rtol=1e-6)


def test_gravity_families_and_bootstrap_shape():
    edges, units = toy_edges(seed=2)
    design = gravity_design(edges, units, max_pairs=10_000)
    pois = gravity(design, "poisson", bootstrap=30, seed=1)
    quasi = gravity(design, "quasipoisson")
    nb = gravity(design, "negbin")
    assert pois["term"].to_list() == list(TERMS)
    np.testing.assert_allclose(quasi["value"], pois["value"], rtol=1e-8)  # same β
    assert not np.allclose(quasi["se"], pois["se"])  # Pearson-scaled
    assert nb["alpha"][0] > 0
    assert (pois["ci_low"] <= pois["value"]).all() and (pois["value"] <= pois["ci_high"]).all()
    again = gravity(design, "poisson", bootstrap=30, seed=1)
    assert again.equals(pois)  # seeded


def test_linked_pairs_design_when_the_grid_is_too_big():
    edges, units = toy_edges()
    edges = edges.filter(pl.int_range(pl.len()) % 7 != 0)
    design = gravity_design(edges, units, max_pairs=10)
    assert design.kind == "linked_pairs" and len(design.y) == edges.height


def test_planted_coefficient_is_recovered():
    """Poisson data from the model itself: the estimate lands near the true β₁."""
    rng = np.random.default_rng(4)
    n = 30
    units = pl.DataFrame(
        {"unit": [f"u{i:02d}" for i in range(n)], "lat": rng.uniform(59, 59.5, n),
         "lon": rng.uniform(18, 18.5, n), "residents": np.ones(n), "attribute": rng.uniform(0, 3, n)}
    )  # fmt: skip
    from segtool.indices.linkage.edges import haversine_km

    o, d = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    k = o != d
    o, d = o[k], d[k]
    x = units["attribute"].to_numpy()
    lat, lon = units["lat"].to_numpy(), units["lon"].to_numpy()
    dist = haversine_km(lat[o], lon[o], lat[d], lon[d])
    mu = np.exp(6.0 - 0.7 * np.abs(x[o] - x[d]) - 1.0 * np.log(dist))
    y = rng.poisson(mu).astype(float)
    edges = pl.DataFrame(
        {
            "origin": units["unit"].to_numpy()[o],
            "destination": units["unit"].to_numpy()[d],
            "observed": y,
        }
    )
    table = gravity(gravity_design(edges, units, 10_000), "poisson", bootstrap=100, seed=0)
    b1 = table.filter(pl.col("term") == "attribute_difference").row(0, named=True)
    assert b1["value"] == pytest.approx(-0.7, abs=0.1)
    assert b1["ci_low"] < -0.7 < b1["ci_high"]


# --------------------------------------------------------------------------- the city


@pytest.fixture(scope="module")
def cities(tmp_path_factory):
    from segtool.indices.linkage import LinkageParams, from_lake, linkage

    out = {}
    params = LinkageParams(permutations=200, bootstrap=100, seed=3)
    for name, kw in {"planted": {}, "shuffled": {"shuffle_population": True}}.items():
        lake, _ = city(tmp_path_factory.mktemp(name) / "lake", gamma=1.5, seed=11, **kw)
        out[name] = linkage(from_lake(lake, params), params).homophily
    return out


def pick(h, index, network="visitation", term=None):
    f = h.filter((pl.col("index") == index) & (pl.col("network") == network))
    if term:
        f = f.filter(pl.col("term") == term)
    return f.row(0, named=True)


def test_planted_city_shows_homophily(cities):
    h = cities["planted"]
    g = pick(h, "gravity", term="attribute_difference")
    assert g["ci_high"] < 0  # similar areas link more than distance and size explain
    for net in ("visitation", "copresence"):
        r = pick(h, "assortativity", net, "numeric")
        assert r["value"] > r["null_high"] and r["p_value"] < 0.01
    s = pick(h, "same_quartile_share")
    assert s["value"] > s["null_high"] and s["ratio"] > 1.5


def test_shuffled_city_shows_none(cities):
    h = cities["shuffled"]
    g = pick(h, "gravity", term="attribute_difference")
    assert g["ci_low"] < 0 < g["ci_high"]
    r = pick(h, "assortativity", term="numeric")
    assert r["null_low"] < r["value"] < r["null_high"]


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_one_step_bootstrap_agrees_with_refits(family):
    """Same origin draws: one Newton step from β̂ lands next to the statsmodels refit."""
    from segtool.indices.linkage.gravity import fit, nb_alpha, one_step_replicates

    edges, units = toy_edges(seed=5, n=20)
    design = gravity_design(edges, units, max_pairs=10_000)
    alpha = nb_alpha(design.y, fit(design, "poisson").fittedvalues) if family == "negbin" else None
    beta = np.asarray(fit(design, family, alpha=alpha).params)
    rng = np.random.default_rng(0)
    m = rng.multinomial(design.n_origins, np.full(design.n_origins, 1 / design.n_origins), 20)
    m = m.astype(float)
    fast = one_step_replicates(design, beta, family, alpha, m)
    for r in range(len(m)):
        w = m[r][design.origin]
        keep = w > 0
        from segtool.indices.linkage.gravity import GravityDesign

        sub = GravityDesign(
            design.y[keep], design.X[keep], design.origin[keep], design.n_origins, design.kind
        )
        slow = np.asarray(fit(sub, family, alpha=alpha, freq_weights=w[keep], start=beta).params)
        spread = np.abs(slow - beta)
        assert np.all(np.abs(fast[r] - slow) <= 0.2 * spread + 1e-4)  # 2nd-order error
    both = [gravity(design, family, bootstrap=40, seed=2, refit_limit=lim) for lim in (10**6, 0)]
    assert both[0]["bootstrap"][0] == "refit" and both[1]["bootstrap"][0] == "one_step"
    np.testing.assert_allclose(both[0]["se_bootstrap"], both[1]["se_bootstrap"], rtol=0.1)
