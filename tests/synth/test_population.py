"""Planted residential segregation: measurable, monotone in --segregation, spatially structured."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.synth import SynthParams, generate_city
from segtool.synth import population as P

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def counts_table(out) -> np.ndarray:
    """(areas × groups) counts from the generated population.csv (long format)."""
    pop = pl.read_csv(out / "population.csv", schema_overrides={"deso": pl.String})
    wide = pop.pivot(on="group", index="deso", values="count").sort("deso")
    return wide.select("Q1", "Q2", "Q3", "Q4").to_numpy().astype(float)


def d_index(n: np.ndarray) -> float:
    """Multigroup dissimilarity, written out directly (SPEC §4)."""
    t = n.sum(1)
    T = t.sum()
    pi = n.sum(0) / T
    I = np.sum(pi * (1 - pi))  # noqa: E741
    return float(np.sum(t[:, None] * np.abs(n / t[:, None] - pi)) / (2 * T * I))


def m_index(n: np.ndarray) -> float:
    """Mutual information M, written out directly (SPEC §4)."""
    T = n.sum()
    p_ug = n / T
    p_u = p_ug.sum(1, keepdims=True)
    p_g = p_ug.sum(0, keepdims=True)
    nz = p_ug > 0
    return float(np.sum(p_ug[nz] * np.log((p_ug / (p_u * p_g))[nz])))


@pytest.fixture(scope="module")
def by_level(tmp_path_factory):
    root = tmp_path_factory.mktemp("levels")
    out = {}
    for s in LEVELS:
        folder = root / f"s{s}"
        generate_city(
            SynthParams(devices=160, days=1, seed=5, segregation=s, ping_interval_min=120), folder
        )
        out[s] = counts_table(folder)
    return out


def test_d_and_m_rise_monotonically_with_segregation(by_level):
    d = [d_index(by_level[s]) for s in LEVELS]
    m = [m_index(by_level[s]) for s in LEVELS]
    assert all(b > a + 0.05 for a, b in zip(d, d[1:], strict=False)), d
    assert all(b > a + 0.01 for a, b in zip(m, m[1:], strict=False)), m


def test_no_segregation_means_near_zero(by_level):
    # counts are expected counts rounded per area: only rounding is left
    assert d_index(by_level[0.0]) < 0.005
    assert m_index(by_level[0.0]) < 1e-4


def test_full_segregation_means_one_group_per_area(by_level):
    n = by_level[1.0]
    assert np.all((n > 0).sum(1) == 1)
    assert d_index(n) == pytest.approx(1.0)
    assert m_index(n) == pytest.approx(-np.sum(n.sum(0) / n.sum() * np.log(n.sum(0) / n.sum())))


def test_same_population_and_city_mix_at_every_level(by_level):
    totals = {s: by_level[s].sum(1) for s in LEVELS}
    for s in LEVELS:
        assert np.array_equal(totals[s], totals[0.0])
        assert np.all((totals[s] >= 700) & (totals[s] <= 2700))
    for s in LEVELS[:-1]:  # quartiles: a quarter of the residents each (±1 per area)
        share = by_level[s].sum(0) / by_level[s].sum()
        assert np.allclose(share, 0.25, atol=len(totals[s]) / by_level[s].sum())


def test_report_matches_direct_formulas_and_pysal(small_city):
    out, report = small_city
    n = counts_table(out)
    assert report.dissimilarity == pytest.approx(d_index(n), abs=1e-12)
    assert report.mutual_information == pytest.approx(m_index(n), abs=1e-12)
    from segregation.multigroup import MultiDissim

    frame = pl.DataFrame(n, schema=["Q1", "Q2", "Q3", "Q4"]).to_pandas()
    assert MultiDissim(frame, ["Q1", "Q2", "Q3", "Q4"]).statistic == pytest.approx(
        d_index(n), abs=1e-9
    )


def test_income_is_spatially_structured(tmp_path):
    """Neighbouring areas are alike (Moran's I of the income rank and of the Q4 share,
    rook-like contiguity; 0 for spatial noise)."""
    import pyogrio
    import shapely

    out = tmp_path / "city"
    generate_city(SynthParams(devices=40, days=1, seed=3, areas=60, ping_interval_min=120), out)
    _, _, wkb, fields = pyogrio.raw.read(out / "areas.gpkg")
    geoms = shapely.from_wkb(wkb)
    deso = fields[0]
    truth = pl.read_parquet(out / "truth" / "areas.parquet")
    truth = pl.DataFrame({"deso": deso.astype(str)}).join(truth, on="deso", how="left")
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="touches")
    keep = i != j
    i, j = i[keep], j[keep]
    for col in ("income_rank", "share_Q4"):
        z = truth[col].to_numpy()
        z = z - z.mean()
        moran = len(z) / len(i) * np.sum(z[i] * z[j]) / np.sum(z * z)
        assert moran > 0.3, (col, moran)


@settings(max_examples=40, deadline=None)
@given(
    z=st.lists(st.floats(-5, 5), min_size=4, max_size=40),
    seed=st.integers(0, 10_000),
)
def test_counts_keep_residents_and_d_is_monotone(z, seed):
    rng = np.random.default_rng(seed)
    residents = rng.integers(700, 2701, len(z))
    u = P.weighted_rank(np.asarray(z), residents)
    d_prev = -1.0
    for s in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        n = P.population_counts(u, residents, s)
        assert np.array_equal(n.sum(1), residents)
        assert n.min() >= 0
        d = P.dissimilarity(n)
        assert d >= d_prev - 0.02  # rounding wiggle at most
        d_prev = max(d_prev, d)
