"""Economic exposure segregation (Nilforoshan et al. 2023): simple correlation against
explicit pairs; the variance-component estimate against statsmodels' REML MixedLM."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from segtool.indices.experienced import economic_segregation, experienced_indices
from segtool.indices.experienced.economic import reml_random_intercept

EPOCH = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)


def pairs(visits, ses, bin_s):
    """Explicit (person, own SES, other's SES) observations: one per shared bin and other."""
    present = defaultdict(set)
    for d, c, s, dw in visits:
        b = math.floor(s / bin_s)
        while b * bin_s < s + dw:
            present[(c, b)].add(d)
            b += 1
    obs = []
    for members in present.values():
        for i in members:
            for j in members:
                if i != j and not np.isnan(ses[i]) and not np.isnan(ses[j]):
                    obs.append((i, ses[i], ses[j]))
    return obs


def make(seed, n=60, homophily=0.8):
    rng = np.random.default_rng(seed)
    ses = {d: float(rng.normal()) for d in range(n)}
    ses[n - 1] = float("nan")  # no SES: neither focal nor other
    visits, rows = [], []
    for d in range(n):
        for _ in range(rng.integers(3, 8)):
            cell = (
                f"c{int(ses[d] > 0)}"
                if (not np.isnan(ses[d]) and rng.random() < homophily)
                else f"c{rng.integers(0, 2)}"
            )
            start = int(rng.integers(0, 6)) * 1800 + 60
            visits.append((d, cell, start, 900))
            rows.append(
                {
                    "device": d,
                    "place": cell,
                    "group": "ab"[d % 2],
                    "dwell_s": 900.0,
                    "start": EPOCH + timedelta(seconds=start),
                    "ses": None if np.isnan(ses[d]) else ses[d],
                }
            )
    return pl.DataFrame(rows), visits, ses


def test_simple_correlation_matches_explicit_pairs():
    df, visits, ses = make(1)
    res = economic_segregation(df, min_devices=1)
    obs = pairs(visits, ses, 1800)
    by = defaultdict(list)
    for i, _x, y in obs:
        by[i].append(y)
    xs = np.array([ses[i] for i in by])
    ys = np.array([np.mean(v) for v in by.values()])
    want = np.corrcoef(xs, ys)[0, 1]
    got = res.filter(pl.col("component") == "correlation")["value"][0]
    assert got == pytest.approx(want, abs=1e-9)
    assert got > 0.3  # planted homophily


def test_variance_component_matches_statsmodels_reml():
    import pandas as pd
    from statsmodels.regression.mixed_linear_model import MixedLM

    df, visits, ses = make(4, n=50, homophily=0.6)
    obs = pairs(visits, ses, 1800)
    data = pd.DataFrame(obs, columns=["person", "x", "y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MixedLM.from_formula("y ~ x", data, groups=data["person"]).fit(
            reml=True, method="powell"
        )
    assert fit.converged
    a, var_u = fit.fe_params["x"], float(fit.cov_re.iloc[0, 0])
    xs = data.groupby("person")["x"].first().to_numpy()
    sd = xs.std(ddof=1)
    want = a * sd / np.sqrt(a * a * sd * sd + var_u)
    res = economic_segregation(df, min_devices=1)
    got = res.filter(pl.col("component") == "variance_component")["value"][0]
    assert got == pytest.approx(want, abs=2e-4)


def test_reml_sufficient_statistics_against_statsmodels():
    import pandas as pd
    from statsmodels.regression.mixed_linear_model import MixedLM

    rng = np.random.default_rng(7)
    rows = []
    for i in range(40):
        x = rng.normal()
        u = rng.normal() * 0.7
        for _ in range(rng.integers(1, 12)):
            rows.append((i, x, 0.5 + 0.8 * x + u + rng.normal()))
    data = pd.DataFrame(rows, columns=["person", "x", "y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MixedLM.from_formula("y ~ x", data, groups=data["person"]).fit(
            reml=True, method="powell"
        )
    assert fit.converged
    g = data.groupby("person")
    n = g.size().to_numpy().astype(float)
    ybar = g["y"].mean().to_numpy()
    within = g["y"].apply(lambda s: ((s - s.mean()) ** 2).sum()).to_numpy()
    m = reml_random_intercept(g["x"].first().to_numpy(), n, ybar, within)
    assert m["beta1"] == pytest.approx(fit.fe_params["x"], abs=1e-5)
    assert m["beta0"] == pytest.approx(fit.fe_params["Intercept"], abs=1e-5)
    assert m["var_u"] == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=1e-4)
    assert m["var_e"] == pytest.approx(fit.scale, rel=1e-4)


def test_two_separate_worlds_by_hand():
    rows = []
    for d, (cell, s) in enumerate([("A", 1.0), ("A", 1.0), ("B", 3.0), ("B", 3.0)]):
        rows.append(
            {
                "device": d,
                "place": cell,
                "group": "xy"[d % 2],
                "dwell_s": 60.0,
                "start": EPOCH,
                "ses": s,
            }
        )
    res = economic_segregation(pl.DataFrame(rows), min_devices=1)
    assert res.filter(pl.col("component") == "correlation")["value"][0] == pytest.approx(1.0)


def test_rank_option_is_invariant_to_monotone_transforms():
    df, _, _ = make(3)
    a = economic_segregation(df, min_devices=1, ses_rank=True)
    b = economic_segregation(df.with_columns(pl.col("ses").exp()), min_devices=1, ses_rank=True)
    assert np.allclose(a["value"].to_numpy(), b["value"].to_numpy())


def test_ses_from_a_separate_table():
    df, _, ses = make(2)
    table = pl.DataFrame({"device": list(ses), "ses": list(ses.values())})
    from segtool.indices.experienced import ExperiencedParams, experienced, panel_from_long

    params = ExperiencedParams(min_devices=1)
    with_col = experienced(panel_from_long(df, params), params).indices
    sep = experienced(panel_from_long(df.drop("ses"), params, ses=table), params).indices
    pick = pl.col("index") == "economic_segregation"
    assert with_col.filter(pick)["value"].to_list() == pytest.approx(
        sep.filter(pick)["value"].to_list()
    )


def test_no_ses_no_economic_rows():
    df, _, _ = make(2)
    res = experienced_indices(df.drop("ses"), min_devices=1)
    assert "economic_segregation" not in res.indices["index"].to_list()


def test_economic_sums_with_multiplicities_against_explicit_pairs():
    """Per device: others counted with their multiplicity (a device's own copies are never
    its others), devices without SES neither focal nor counted; the frequency-weighted
    total of the others' squared SES — against a loop over explicit pairs."""
    from segtool.indices.experienced import encounters
    from segtool.indices.experienced.panel import _segments

    rng = np.random.default_rng(4)
    n, n_seg = 30, 12
    pairs_ = zip(rng.integers(0, n, 120), rng.integers(0, n_seg, 120), strict=True)
    rows = {(int(d), int(b)) for d, b in pairs_}
    frame = pl.DataFrame(
        [(d, b, 1.0) for d, b in sorted(rows)], schema=["__dev", "__seg", "amount"], orient="row"
    )
    pres = _segments(frame)
    ses = rng.normal(size=n)
    ses[[3, 7]] = np.nan
    mult = rng.poisson(1.0, (n, 5)).astype(np.uint8)
    n_i, sy, fsyy = encounters.ses_sums(pres, mult, ses, n)
    members = defaultdict(list)
    for d, b in zip(pres.dev, pres.seg, strict=True):
        members[int(b)].append(int(d))
    for r in range(mult.shape[1]):
        c = mult[:, r].astype(float)
        want_n, want_s, want_q = np.zeros(n), np.zeros(n), 0.0
        for devs in members.values():
            for i in devs:
                if np.isnan(ses[i]):
                    continue
                for j in devs:
                    if j != i and not np.isnan(ses[j]):
                        want_n[i] += c[j]
                        want_s[i] += c[j] * ses[j]
                        want_q += c[i] * c[j] * ses[j] ** 2
        assert np.allclose(n_i[:, r], want_n) and np.allclose(sy[:, r], want_s)
        assert fsyy[r] == pytest.approx(want_q, rel=1e-12)
