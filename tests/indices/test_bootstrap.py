"""Multinomial bootstrap of residential counts: reproducible, sensible, vectorised."""

from __future__ import annotations

import numpy as np

from segtool.indices.inference import multinomial_draws
from segtool.indices.residential import compute_residential
from tests.indices.tables import to_long


def table(seed: int = 0, n: int = 40, k: int = 3, size: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.full(k, 1.5), size=n)
    return rng.multinomial(size, mix[:, :]).astype(float) + 1


def test_draws_keep_total_shape_and_empty_cells():
    counts = np.array([[5.0, 0.0], [3.0, 2.0], [0.0, 10.0]])
    draws = np.concatenate(list(multinomial_draws(counts, 7, seed=3, max_cells=8)))
    assert draws.shape == (7, 3, 2)
    assert (draws.sum(axis=(1, 2)) == 20).all()
    assert (draws[:, counts == 0] == 0).all()
    # chunking does not change the stream
    again = np.concatenate(list(multinomial_draws(counts, 7, seed=3, max_cells=10**6)))
    assert np.array_equal(draws, again)


def test_draws_are_unbiased_for_the_cells():
    counts = np.array([[50.0, 10.0], [30.0, 20.0], [5.0, 85.0]])
    draws = np.concatenate(list(multinomial_draws(counts, 4000, seed=1)))
    # mean within 4 standard errors of the cell count: sd ≤ √n / √4000
    assert np.abs(draws.mean(axis=0) - counts).max() < 4 * np.sqrt(counts.max() / 4000) + 1e-9


def test_reproducible_given_seed_and_different_across_seeds():
    frame = to_long(table())
    a = compute_residential(frame, bootstrap=30, seed=11)
    b = compute_residential(frame, bootstrap=30, seed=11)
    c = compute_residential(frame, bootstrap=30, seed=12)
    assert a.equals(b)
    assert not a["se"].equals(c["se"])
    assert a["value"].equals(c["value"])  # the estimate itself is not resampled


def test_ci_covers_estimate_and_debiased_is_consistent():
    res = compute_residential(to_long(table(size=2000)), bootstrap=200, seed=5)
    assert res["se"].is_not_null().all()
    for row in res.iter_rows(named=True):
        assert row["ci_low"] <= row["value"] <= row["ci_high"], row["index"]
        # debiased = 2·estimate − mean(replicates) stays within a few se of the estimate
        assert abs(row["debiased"] - row["value"]) <= 3 * row["se"] + 1e-12, row["index"]


def test_se_shrinks_as_counts_grow():
    small = compute_residential(
        to_long(table(size=50)), ["dissimilarity", "mutual_information"], bootstrap=100, seed=2
    )
    big = compute_residential(
        to_long(table(size=5000)), ["dissimilarity", "mutual_information"], bootstrap=100, seed=2
    )
    for s, b in zip(small["se"], big["se"], strict=True):
        assert b < s / 4  # ≈ 1/√100 = 1/10 in theory


def test_bootstrap_se_matches_the_sampling_distribution():
    # The se of D and M on one sample ≈ the sd of D and M over fresh samples from the
    # same population (the multinomial is the sampling model).
    rng = np.random.default_rng(9)
    k = 3
    population = rng.dirichlet(np.full(k, 2.0), size=30)
    probs = (population / population.sum()).ravel()
    samples = rng.multinomial(3000, probs, size=150).reshape(150, 30, k).astype(float)
    names = ["dissimilarity", "mutual_information"]
    values = np.array(
        [compute_residential(to_long(s + 0.0), names)["value"].to_numpy() for s in samples]
    )
    sd_true = values.std(axis=0, ddof=1)
    se = compute_residential(to_long(samples[0]), names, bootstrap=300, seed=4)["se"].to_numpy()
    assert np.all(se / sd_true > 0.6) and np.all(se / sd_true < 1.6), (se, sd_true)


def test_bootstrap_with_focal_and_within():
    counts = table(n=12)
    strata = np.array(["A"] * 6 + ["B"] * 6)
    res = compute_residential(
        to_long(counts, strata),
        ["mutual_information", "theil_h", "gini"],
        focal="g0",
        within="district",
        bootstrap=40,
        seed=1,
    )
    assert res["se"].is_not_null().all() and (res["se"] > 0).all()
    assert set(res["component"].drop_nulls()) == {"total", "between", "within"}


def test_non_integer_counts_are_bootstrapped():
    res = compute_residential(to_long(table() * 0.37), ["dissimilarity"], bootstrap=20, seed=1)
    assert res["se"][0] > 0
