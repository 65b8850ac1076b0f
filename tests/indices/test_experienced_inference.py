"""Inference and behaviour on generated data: indices rise with planted homophily, the
permutation null's excess is ~0 without segregation, bootstrap replicates are exact
recomputations and deterministic."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from segtool.indices.experienced import (
    ExperiencedParams,
    compute,
    experienced,
    panel_from_long,
    resample,
)

EPOCH_US = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp() * 1e6)


def generate(n=400, visits=12, k=3, places=30, homophily=0.5, seed=0, soft=False) -> pl.DataFrame:
    """Vectorised: devices of K groups choose, with probability `homophily`, a place of
    their own group's (places p with p % K == g), else any place; starts fall in 8 half
    hours so devices meet; SES = group + noise."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, k, n)
    dev = np.repeat(np.arange(n), visits)
    own = rng.random(dev.size) < homophily
    any_place = rng.integers(0, places, dev.size)
    own_place = rng.integers(0, places // k, dev.size) * k + group[dev]
    place = np.where(own, own_place, any_place)
    start = EPOCH_US + rng.integers(0, 8, dev.size) * 1_800_000_000 + 60_000_000
    dwell = rng.uniform(300, 1500, dev.size)
    weight = rng.uniform(0.5, 2.0, n)
    ses = group + rng.normal(0, 1.0, n)
    frame = pl.DataFrame(
        {
            "device": dev,
            "place": place,
            "group": np.array([f"g{j}" for j in range(k)])[group[dev]],
            "dwell_s": dwell,
            "weight": weight[dev],
            "start": pl.Series(start).cast(pl.Datetime("us", "UTC")),
            "ses": ses[dev],
        }
    )
    if soft:  # 80 % own group, the rest spread over the others
        parts = []
        for j in range(k):
            share = np.where(group[dev] == j, 0.8, 0.2 / (k - 1))
            parts.append(
                frame.with_columns(pl.lit(f"g{j}").alias("group"), pl.col("dwell_s") * share)
            )
        frame = pl.concat(parts)
    return frame


def headline(res) -> dict:
    f = res.indices
    pick = {
        "place": (pl.col("index") == "place_segregation") & (pl.col("statistic") == "mean"),
        "individual": (pl.col("index") == "individual_segregation")
        & pl.col("group").is_null()
        & pl.col("component").is_null()
        & (pl.col("statistic") == "mean"),
        "isolation": pl.col("index") == "experienced_isolation",
        "es": (pl.col("index") == "economic_segregation") & (pl.col("component") == "correlation"),
    }
    return {k: f.filter(v)["value"].mean() for k, v in pick.items()}


@pytest.mark.parametrize("soft", [False, True])
def test_indices_rise_with_planted_homophily(soft):
    params = ExperiencedParams(min_devices=1)
    vals = [
        headline(
            experienced(panel_from_long(generate(homophily=h, seed=1, soft=soft), params), params)
        )
        for h in (0.0, 0.4, 0.8)
    ]
    for key in ("place", "individual", "isolation", "es"):
        seq = [v[key] for v in vals]
        assert seq[0] < seq[1] < seq[2], (key, seq)


def test_no_segregation_excess_within_ci():
    params = ExperiencedParams(min_devices=1, bootstrap=60, null=60, seed=11, leave_one_out=True)
    res = experienced(panel_from_long(generate(homophily=0.0, seed=3), params), params).indices
    rows = res.filter(
        pl.col("index").is_in(
            ["place_segregation", "individual_segregation", "experienced_isolation"]
        )
        & (pl.col("statistic").is_null() | (pl.col("statistic") == "mean"))
    )
    assert rows.height >= 8
    for r in rows.iter_rows(named=True):
        assert r["excess_ci_low"] <= 0 <= r["excess_ci_high"], r
        assert abs(r["excess"]) < 2 * r["se"]
    # while planted homophily gives an excess whose interval excludes 0
    strong = experienced(panel_from_long(generate(homophily=0.8, seed=3), params), params).indices
    s = strong.filter((pl.col("index") == "place_segregation") & (pl.col("statistic") == "mean"))
    assert s["excess_ci_low"][0] > 0 and s["p_value"][0] < 0.05


def _stats(panel, params, member, ses=None):
    """The estimate's statistics (member (n, K), or (1, n, K) for one permuted replicate)."""
    ctx = compute._context(panel, params)
    if ses is None and ctx.ses is not None:
        ses = ctx.ses
    return compute._evaluate(ctx, None, member, ses).stats


def test_bootstrap_replicate_is_an_exact_recomputation():
    """Replicate r with multipliers c equals the estimate on the same visits with weights
    w·c (every index but the unweighted economic one)."""
    df = generate(n=120, seed=5, soft=True)
    params = ExperiencedParams(min_devices=1, leave_one_out=True, bootstrap=4, seed=9)
    panel = panel_from_long(df, params)
    ctx = compute._context(panel, params)
    reps = compute._replicates(ctx, "bootstrap", None).stats
    c = resample.multipliers(panel.n, range(2, 3), 4, params.seed, "poisson")[:, 0]
    ids = panel.device.to_numpy()
    scale = pl.DataFrame({"device": ids, "c": c})
    df2 = df.join(scale, on="device").with_columns(pl.col("weight") * pl.col("c")).drop("c")
    panel2 = panel_from_long(df2, params)
    assert np.array_equal(panel2.device.to_numpy(), ids)
    direct = _stats(panel2, params, panel2.member)
    checked = 0
    for key, v in direct.items():
        if key.index == "economic_segregation" or key.statistic in ("q25", "median", "q75"):
            continue
        assert reps[key][2] == pytest.approx(v[0], abs=1e-9, nan_ok=True), key
        checked += 1
    assert checked > 20


def test_null_replicate_is_the_estimate_with_groups_permuted():
    df = generate(n=100, seed=6)
    params = ExperiencedParams(min_devices=1, null=3, seed=2)
    panel = panel_from_long(df, params)
    ctx = compute._context(panel, params)
    reps = compute._replicates(ctx, "null", None).stats
    perm = resample.permutations(panel.n, range(1, 2), 3, params.seed)[0]
    direct = _stats(panel, params, panel.member[perm][None], ctx.ses[perm][None])
    for key, v in direct.items():
        assert reps[key][1] == pytest.approx(v[0], abs=1e-9, nan_ok=True), key


def test_bootstrap_is_deterministic_and_independent_of_blocks(monkeypatch):
    df = generate(n=150, seed=8)
    params = ExperiencedParams(min_devices=1, bootstrap=12, null=5, seed=4, resample="multinomial")
    panel = panel_from_long(df, params)
    a = experienced(panel, params).indices
    monkeypatch.setenv("SEGTOOL_THREADS", "1")
    assert a.equals(experienced(panel, params).indices)  # threads change nothing
    monkeypatch.setattr(compute, "_block_size", lambda panel: 5)
    b = experienced(panel, params).indices  # other blocks: same draws, sums in BLAS order
    for col in ("value", "se", "ci_low", "ci_high", "null_mean", "excess"):
        assert np.allclose(
            a[col].to_numpy(), b[col].to_numpy(), rtol=1e-12, atol=1e-15, equal_nan=True
        )
    c = experienced(panel, ExperiencedParams(**{**params.__dict__, "seed": 5})).indices
    assert not np.allclose(a["se"].to_numpy(), c["se"].to_numpy(), equal_nan=True)


def test_poisson_and_multinomial_multipliers():
    m = resample.multipliers(1000, range(0, 3), 3, 1, "multinomial")
    assert (m.sum(axis=0) == 1000).all()
    p = resample.multipliers(1000, range(0, 3), 3, 1, "poisson")
    assert abs(p.mean() - 1) < 0.1 and not np.array_equal(p[:, 0], p[:, 1])
    # a replicate's draw does not depend on which other replicates are drawn with it
    one = resample.multipliers(50, range(1, 2), 3, 1)[:, 0]
    assert np.array_equal(one, resample.multipliers(50, range(0, 3), 3, 1)[:, 1])


def test_hard_and_soft_passes_agree():
    """The compiled passes for hard groups (group codes) and for shares give the same
    numbers on one-hot shares — bootstrap multiplicities and per-replicate permutations."""
    from segtool.indices.experienced import encounters, people, places

    df = generate(n=150, seed=12)
    params = ExperiencedParams(min_devices=1, leave_one_out=True)
    panel = panel_from_long(df, params)
    assert panel.hard
    ctx = compute._context(panel, params)
    c = resample.multipliers(panel.n, range(4), 4, 1)
    perms = resample.permutations(panel.n, range(3), 3, 2)
    for mult, member in ((c, panel.member), (None, panel.member[perms])):
        hard = encounters.copresence(panel.presence, panel.weight, mult, member, hard=True)
        soft = encounters.copresence(panel.presence, panel.weight, mult, member, hard=False)
        for h, s in zip(hard, soft, strict=True):
            assert np.allclose(h, s, rtol=1e-12, atol=0)
        r_count = c.shape[1] if mult is not None else perms.shape[0]
        mass = panel.weight[:, None] * (mult if mult is not None else np.ones((panel.n, r_count)))
        a_hard, a_soft = (
            places.amounts(ctx.rows, mass, *encounters.membership(member, hard), panel.k)
            for hard in (True, False)
        )
        assert np.allclose(a_hard, a_soft, rtol=1e-12, atol=0)
        out = [
            people.exposures(
                ctx.rows, a_soft, mass, *encounters.membership(member, hard), ctx.ref, loo=True
            )[:2]
            for hard in (True, False)
        ]
        for h, s in zip(*out, strict=True):
            assert np.allclose(h, s, rtol=1e-12, atol=0, equal_nan=True)


def test_index_selection_computes_only_what_is_asked():
    df = generate(n=120, seed=13)
    full = experienced(
        panel_from_long(df, p := ExperiencedParams(min_devices=1, bootstrap=3, seed=2)), p
    ).indices
    params = ExperiencedParams(
        min_devices=1, bootstrap=3, seed=2, indices=("experienced_isolation",)
    )
    part = experienced(panel_from_long(df, params), params).indices
    assert set(part["index"]) == {"experienced_isolation"}
    same = full.filter(pl.col("index") == "experienced_isolation")
    assert np.allclose(part["value"].to_numpy(), same["value"].to_numpy())
    assert np.allclose(part["se"].to_numpy(), same["se"].to_numpy())
