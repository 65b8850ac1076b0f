"""Experienced indices against the two peers the project is told to beat, re-implemented
fresh (plain numpy/pandas) from their code as read — nothing of theirs is copied.

Peers (file:line of the version read, MobiSegInsights/mobi-seg-se@c4b0c64,
snap-stanford/exposure-segregation@4c9d705):

- Liao et al. 2025 (mobi-seg-se), `src/feature_eng/14-visiting-segregation-hex.py`
  `MobiSegAggregation.aggregating_metrics`: a unit is (weekday, holiday, hex, half-hour
  `time_seq`); each stay is exploded into every half-hour it covers (L170-183) and counts
  there with its whole `wt_total` = temporal weight × person weight (lib/metrics.py L161).
  Group amounts are Σ wt_total × the *counts* of the visitor's home grid (income_q1..q4,
  birth_se, birth_other, pop; L143-154). Income evenness = n/(2n−2) Σ|q_g − 1/n| with
  n = 4 (L120-123, L146-148); modified ICE = (a/s_a − b/s_b)/(a/s_a + b/s_b + o/s_o),
  o = pop − a − b, s_a = 0.8044…, s_b = 0.1106… (L125-128, L152-158).
  Individual experienced ICE (`15-experienced-segregation-individual-hex.py` L124-165,
  `16-feature-construction-individual-hex.ipynb` cell 15): per person and half-hour the
  median of the unit ICE over the person's rows, then the unweighted mean over half-hours.
- Nilforoshan et al. 2023 (exposure-segregation), `analysis.py`
  `analyze_one_measure_of_socioeconomic_segregation_using_path_crossings` (L379-457):
  one observation per *distinct pair* that crossed paths (L388-392), both directions,
  pairs with a missing SES dropped (L407); simple ES = Pearson r(x_i, mean of the others'
  SES) (L443-451, `compute_segregation_index` L471-482); mixed-model ES
  (`estimate_path_crossing_segregation_with_mixed_model` L27-102): x z-scored with
  ddof=1, y rescaled with x's mean and sd, `lmer(other_person_ses ~ ses + (1|person))`
  (REML, analysis_r.py L45), ES = sqrt(a²/(a² + σ_u²)); NaN below 10 people or 100
  observations (L51-53). SES is the raw rent estimate (constants_and_util.py L71): no ranks.

segtool's mapping for Liao: dwell_s := the stay's temporal weight (per exploded row),
device weight := person weight × home-grid population, group shares := home-grid
composition, `--by daytype --by slot` with daytype = weekday×holiday and slot =
time_seq − 1. Then A_gα = Σ wt_total × count_g exactly, so place S and ICE coincide.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import optimize

from segtool.indices.experienced import ExperiencedParams, experienced, panel_from_long

# Liao et al.'s national shares (14-visiting-segregation-hex.py L125)
S_A, S_B = 0.8044332515556147, 0.11067529894925136
EPOCH = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- Liao et al.


def liao_stays(seed: int, n_people: int = 30, n_hex: int = 4):
    """People with home-grid counts and person weights; stays with a temporal weight, a
    hexagon, weekday/holiday flags and the half-hours (time_seq 1..48) they cover."""
    rng = np.random.default_rng(seed)
    people = []
    for uid in range(n_people):
        se, other, nord = (int(v) for v in rng.integers(0, 60, 3))
        se += 1  # every grid has someone
        people.append(
            {
                "uid": uid,
                "wt_p": float(rng.uniform(0.5, 3.0)),
                "income": rng.integers(0, 40, 4).astype(float) + np.eye(4)[uid % 4],
                "birth_se": float(se),
                "birth_other": float(other),
                "pop": float(se + other + nord),
            }
        )
    stays = []
    for p in people:
        for _ in range(int(rng.integers(2, 6))):
            first = int(rng.integers(1, 46))
            stays.append(
                {
                    "uid": p["uid"],
                    "hex": f"h{int(rng.integers(0, n_hex))}",
                    "weekday": int(rng.random() < 0.8),
                    "holiday": int(rng.random() < 0.2),
                    "wt": float(rng.uniform(0.2, 2.0)),
                    "time_seq": list(range(first, first + int(rng.integers(1, 4)))),
                }
            )
    return people, stays


def liao_units(people, stays, which: str) -> pd.DataFrame:
    """Liao's unit metrics (14-…hex.py L130-159) on the exploded stays, in pandas."""
    pp = {p["uid"]: p for p in people}
    rows = []
    for s in stays:
        p = pp[s["uid"]]
        for t in s["time_seq"]:  # explode (L183)
            rows.append(
                {
                    "weekday": s["weekday"],
                    "holiday": s["holiday"],
                    "hex": s["hex"],
                    "time_seq": t,
                    "wt_total": s["wt"] * p["wt_p"],
                    **{f"income_q{g + 1}": p["income"][g] for g in range(4)},
                    "birth_se": p["birth_se"],
                    "birth_other": p["birth_other"],
                    "pop": p["pop"],
                }
            )
    df = pd.DataFrame(rows)

    def unit(d: pd.DataFrame) -> float:
        w = d["wt_total"]
        if which == "evenness":
            q = np.array([(d[f"income_q{g}"] * w).sum() for g in range(1, 5)])
            if q.sum() == 0:
                return np.nan
            q = q / q.sum()
            return 4 / (2 * 4 - 2) * np.abs(q - 1 / 4).sum()
        a, b, pop = (d["birth_se"] * w).sum(), (d["birth_other"] * w).sum(), (d["pop"] * w).sum()
        o = pop - a - b
        return (a / S_A - b / S_B) / (a / S_A + b / S_B + o / (1 - S_A - S_B))

    keys = ["weekday", "holiday", "hex", "time_seq"]
    out = df.groupby(keys).apply(unit, include_groups=False).rename("value").reset_index()
    return out


HOUR = 3600.0  # temporal weights read as hours: segtool sums dwell seconds to the ns


def segtool_long(people, stays, groups: dict[str, callable]) -> pl.DataFrame:
    """The same stays as segtool's long frame: one row per (stay, half-hour, group), dwell
    = temporal weight (in hours, as seconds) × the group's share of the home grid, device
    weight = person weight × the home grid's population over these groups. (A constant
    factor on every amount changes neither S nor ICE.)"""
    pp = {p["uid"]: p for p in people}
    rows = []
    for s in stays:
        p = pp[s["uid"]]
        counts = {g: f(p) for g, f in groups.items()}
        tot = sum(counts.values())
        for t in s["time_seq"]:
            for g, c in counts.items():
                if c > 0:
                    rows.append(
                        {
                            "device": s["uid"],
                            "place": s["hex"],
                            "group": g,
                            "dwell_s": HOUR * s["wt"] * c / tot,
                            "weight": p["wt_p"] * tot,
                            "slot": t - 1,
                            "daytype": f"w{s['weekday']}h{s['holiday']}",
                        }
                    )
    return pl.DataFrame(rows)


INCOME = {f"q{g + 1}": (lambda p, g=g: p["income"][g]) for g in range(4)}
BIRTH = {
    "se": lambda p: p["birth_se"],
    "other": lambda p: p["birth_other"],
    "rest": lambda p: p["pop"] - p["birth_se"] - p["birth_other"],
}
LIAO_POP = pl.DataFrame(
    {"unit": ["se"] * 3, "group": ["se", "other", "rest"], "count": [S_A, S_B, 1 - S_A - S_B]}
)


def run(long: pl.DataFrame):
    params = ExperiencedParams(min_devices=1, by=("daytype", "slot"))
    return experienced(panel_from_long(long, params), params)


def run_ice(long: pl.DataFrame):
    params = ExperiencedParams(
        min_devices=1, by=("daytype", "slot"), ice_high="se", ice_low="other"
    )
    return experienced(panel_from_long(long, params, population=LIAO_POP), params)


def keyed(units: pd.DataFrame) -> dict:
    return {
        (
            r.hex,
            f"w{r.weekday}h{r.holiday} {(r.time_seq - 1) // 2:02d}:{30 * ((r.time_seq - 1) % 2):02d}",
        ): r.value
        for r in units.itertuples()
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_liao_income_evenness_equals_place_segregation(seed):
    people, stays = liao_stays(seed)
    want = keyed(liao_units(people, stays, "evenness"))
    places = run(segtool_long(people, stays, INCOME)).places
    got = {(r["place"], r["stratum"]): r["segregation"] for r in places.iter_rows(named=True)}
    assert set(got) == set(want)
    diff = max(abs(got[k] - want[k]) for k in want)
    assert diff < 1e-9
    assert np.std(list(want.values())) > 0.05  # not a degenerate case


@pytest.mark.parametrize("seed", [0, 3])
def test_liao_modified_ice_equals_place_ice(seed):
    people, stays = liao_stays(seed)
    want = keyed(liao_units(people, stays, "ice"))
    places = run_ice(segtool_long(people, stays, BIRTH)).places
    got = {(r["place"], r["stratum"]): r["ice"] for r in places.iter_rows(named=True)}
    assert set(got) == set(want)
    assert max(abs(got[k] - want[k]) for k in want) < 1e-9
    assert np.std(list(want.values())) > 0.05


def test_liao_ice_hand_sized():
    # one hexagon, one half-hour: person 0 (wt_p 2, grid se 8 / other 1 / pop 10, stay
    # weight 0.5), person 1 (wt_p 1, grid se 2 / other 6 / pop 8, stay weight 1)
    people = [
        {
            "uid": 0,
            "wt_p": 2.0,
            "income": np.ones(4),
            "birth_se": 8.0,
            "birth_other": 1.0,
            "pop": 10.0,
        },
        {
            "uid": 1,
            "wt_p": 1.0,
            "income": np.ones(4),
            "birth_se": 2.0,
            "birth_other": 6.0,
            "pop": 8.0,
        },
    ]
    stays = [
        {"uid": 0, "hex": "h", "weekday": 1, "holiday": 0, "wt": 0.5, "time_seq": [17]},
        {"uid": 1, "hex": "h", "weekday": 1, "holiday": 0, "wt": 1.0, "time_seq": [17]},
    ]
    a, b, pop = 1.0 * 8 + 1.0 * 2, 1.0 * 1 + 1.0 * 6, 1.0 * 10 + 1.0 * 8  # wt_total 1 and 1
    o = pop - a - b
    by_hand = (a / S_A - b / S_B) / (a / S_A + b / S_B + o / (1 - S_A - S_B))
    assert keyed(liao_units(people, stays, "ice"))[("h", "w1h0 08:00")] == pytest.approx(by_hand)
    got = run_ice(segtool_long(people, stays, BIRTH)).places["ice"].to_list()
    assert got == pytest.approx([by_hand], abs=1e-12)


def ice_of(tau_se, tau_other):
    tau_rest = 1 - tau_se - tau_other
    num = tau_se / S_A - tau_other / S_B
    return num / (tau_se / S_A + tau_other / S_B + tau_rest / (1 - S_A - S_B))


def liao_individual(people, stays, unit_ice: dict, daytype="w1h0") -> dict:
    """ice_e per person (15-…individual-hex.py L124-165 + notebook 16 cell 15): median of
    the unit ICE over the person's rows in each half-hour, then the mean over half-hours."""
    by = defaultdict(lambda: defaultdict(list))
    for s in stays:
        if f"w{s['weekday']}h{s['holiday']}" != daytype:
            continue
        for t in s["time_seq"]:
            label = f"{daytype} {(t - 1) // 2:02d}:{30 * ((t - 1) % 2):02d}"
            by[s["uid"]][t].append(unit_ice[(s["hex"], label)])
    return {uid: np.mean([np.median(v) for v in per_t.values()]) for uid, per_t in by.items()}


def test_liao_individual_ice_is_a_mean_of_unit_ice_not_ice_of_mean_exposure():
    """Liao's individual ICE averages the units' ICE over half-hours (median within one);
    segtool's individual measure is S of the dwell-weighted mean composition τ_i (Moro).
    Same ingredient (segtool's per-unit `ice`, checked above), different aggregation:
    equal for a person seen in one unit only, different otherwise."""
    people, stays = liao_stays(5, n_people=40)
    # five extra people each seen in one half-hour of one hexagon on a plain weekday
    extra = []
    for k in range(5):
        uid = 100 + k
        people.append(
            {
                "uid": uid,
                "wt_p": 1.0 + k,
                "income": np.ones(4),
                "birth_se": 5.0 + 7 * k,
                "birth_other": 9.0 - k,
                "pop": 20.0 + 7 * k,
            }
        )
        extra.append(
            {
                "uid": uid,
                "hex": f"h{k % 4}",
                "weekday": 1,
                "holiday": 0,
                "wt": 1.0,
                "time_seq": [20 + 2 * k],
            }
        )
    stays += extra
    res = run_ice(segtool_long(people, stays, BIRTH))
    unit_ice = {(r["place"], r["stratum"]): r["ice"] for r in res.places.iter_rows(named=True)}
    want = liao_individual(people, stays, unit_ice)
    oracle_units = keyed(liao_units(people, stays, "ice"))
    assert want == pytest.approx(liao_individual(people, stays, oracle_units), abs=1e-12)
    dev = res.devices.to_pandas().set_index("device")
    ice_tau = ice_of(dev["tau_se"], dev["tau_other"])
    single = [100 + k for k in range(5)]
    assert np.allclose([ice_tau[u] for u in single], [want[u] for u in single], atol=1e-9, rtol=0)
    several = [u for u in want if u < 100 and sum(s["uid"] == u for s in stays) > 2]
    gaps = np.abs([ice_tau[u] - want[u] for u in several])
    assert gaps.max() > 0.05  # the two aggregations really differ


# --------------------------------------------------------------------------- Nilforoshan et al.


def nilforoshan_observations(pairs, ses):
    """(a, b) distinct crossing pairs → x_i and the list of others' SES, both directions,
    pairs with a missing SES dropped (analysis.py L388-421)."""
    y = defaultdict(list)
    for a, b in pairs:
        for i, j in ((a, b), (b, a)):
            if not (np.isnan(ses[i]) or np.isnan(ses[j])):
                y[i].append(ses[j])
    ids = sorted(y)
    return np.array([ses[i] for i in ids]), [np.array(y[i]) for i in ids]


def simple_es(x, ys):
    """Pearson r(x, mean of the others' SES) — analysis.py L443-451, L471-482."""
    m = np.array([v.mean() for v in ys])
    return float(np.corrcoef(x, m)[0, 1])


def reml_es(x, ys, signed=False):
    """Mixed-model ES (analysis.py L27-102) with a fresh REML fit of
    y_ij = b + a x_i + u_i + e_ij from the raw observations: x z-scored (ddof=1), y
    rescaled alike, then sqrt(a²/(a² + σ_u²)). Each person's covariance block is
    I + γJ (γ = σ_u²/σ_e²), inverted as I − γ/(1 + nγ) J (Sherman–Morrison); the REML
    optimum is the root of the profiled criterion's derivative in γ (brentq)."""
    mu, sd = x.mean(), x.std(ddof=1)
    xz = (x - mu) / sd
    yz = [(v - mu) / sd for v in ys]
    blocks = [
        (np.column_stack([np.ones(v.size), np.full(v.size, xi)]), v)
        for xi, v in zip(xz, yz, strict=True)
    ]
    n, p = sum(v.size for v in yz), 2

    def vinv(m, g, u):  # (I + gJ)^-1 u for an m-row block, u (m,) or (m, k)
        return u - g / (1 + m * g) * u.sum(axis=0, keepdims=u.ndim > 1)

    def parts(g):
        A, c = np.zeros((p, p)), np.zeros(p)
        for X, y in blocks:
            A += X.T @ vinv(y.size, g, X)
            c += X.T @ vinv(y.size, g, y)
        beta = np.linalg.solve(A, c)
        q = sum(float((y - X @ beta) @ vinv(y.size, g, y - X @ beta)) for X, y in blocks)
        return A, beta, q

    def crit(g):  # −2 × profiled REML log-likelihood, up to a constant
        A, _, q = parts(g)
        logdet_v = sum(np.log1p(y.size * g) for _, y in blocks)
        return (n - p) * np.log(q) + logdet_v + np.linalg.slogdet(A)[1]

    def dcrit(g):
        A, beta, q = parts(g)
        dq, dA, tr = 0.0, np.zeros((p, p)), 0.0
        for X, y in blocks:
            m = y.size
            vr = vinv(m, g, y - X @ beta)
            vx = vinv(m, g, X)
            dq -= float(vr.sum() ** 2)  # r' V⁻¹ J V⁻¹ r
            dA -= np.outer(vx.sum(axis=0), vx.sum(axis=0))  # X' V⁻¹ J V⁻¹ X
            tr += m / (1 + m * g)  # tr(V⁻¹ J)
        return (n - p) * dq / q + tr + np.trace(np.linalg.solve(A, dA))

    if dcrit(0.0) >= 0:  # boundary: σ_u² = 0
        g = 0.0
    else:
        hi = 1.0
        while dcrit(hi) < 0:
            hi *= 4
        g = optimize.brentq(dcrit, 0.0, hi, xtol=1e-14, rtol=1e-14, maxiter=500)
    assert crit(g) <= crit(g * 1.001 + 1e-9) and (g == 0 or crit(g) <= crit(g * 0.999))
    _, beta, q = parts(g)
    var_e = q / (n - p)
    a, var_u = beta[1], g * var_e
    es = a / np.sqrt(a * a + var_u)
    return float(es if signed else abs(es))


def crossings_frame(meetings, ses, bin_s=1800):
    """Long frame where each meeting (bin, cell, members) is one visit per member, the
    whole bin long, and everyone's SES."""
    rows = []
    for b, cell, members in meetings:
        for d in members:
            rows.append(
                {
                    "device": d,
                    "place": cell,
                    "group": "xy"[d % 2],
                    "dwell_s": float(bin_s),
                    "start": EPOCH + timedelta(seconds=b * bin_s),
                    "ses": None if np.isnan(ses[d]) else ses[d],
                }
            )
    return pl.DataFrame(rows)


def segtool_es(frame, **kw):
    params = ExperiencedParams(min_devices=1, indices=("economic_segregation",), **kw)
    res = experienced(panel_from_long(frame, params), params).indices
    return {r["component"]: r["value"] for r in res.iter_rows(named=True)}


def meet_once(seed, n=80, bins=40, cells=6, homophily=0.7):
    """Meetings where no two people are together twice (so one observation per shared
    bin = one per distinct pair), SES-homophilous cell choice; a few people without SES."""
    rng = np.random.default_rng(seed)
    ses = rng.lognormal(7.0, 0.4, n)  # rent-like, raw scale
    ses[rng.choice(n, 4, replace=False)] = np.nan
    rank = np.argsort(np.argsort(np.nan_to_num(ses, nan=np.nanmedian(ses)))) / n
    met = set()
    meetings = []
    for b in range(bins):
        groups = defaultdict(list)
        for d in rng.permutation(n):
            if rng.random() < 0.5:
                continue
            pref = min(int(rank[d] * cells), cells - 1)
            cell = pref if rng.random() < homophily else int(rng.integers(0, cells))
            if any((min(d, o), max(d, o)) in met for o in groups[cell]):
                continue
            groups[cell].append(int(d))
        for cell, members in groups.items():
            if len(members) > 1:
                met.update((min(i, j), max(i, j)) for i in members for j in members if i < j)
                meetings.append((b, f"c{cell}", members))
    return meetings, ses, sorted(met)


@pytest.mark.parametrize("seed", [0, 1])
def test_nilforoshan_both_estimates_when_pairs_meet_once(seed):
    meetings, ses, pairs = meet_once(seed)
    x, ys = nilforoshan_observations(pairs, ses)
    assert len(x) >= 10 and sum(map(len, ys)) >= 100  # their minimum (L51)
    got = segtool_es(crossings_frame(meetings, ses))
    assert got["correlation"] == pytest.approx(simple_es(x, ys), abs=1e-9)
    want = reml_es(x, ys)
    assert want > 0.2
    assert got["variance_component"] == pytest.approx(want, abs=1e-7)


def test_nilforoshan_hand_sized():
    """Their unit-test crossings (analysis_unit_tests.py L66-76): pairs a-b, a-c, a-d, b-d,
    c-d, SES a=1, b=2, c=3, d unknown → x = (1, 2, 3), mean others = (2.5, 1, 1), r = −√3/2."""
    ses = np.array([1.0, 2.0, 3.0, np.nan])
    meetings = [
        (0, "p", [0, 1]),
        (1, "p", [0, 2]),
        (2, "p", [0, 3]),
        (3, "p", [1, 3]),
        (4, "p", [2, 3]),
    ]
    x, ys = nilforoshan_observations([(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)], ses)
    assert simple_es(x, ys) == pytest.approx(-np.sqrt(3) / 2, abs=1e-12)
    got = segtool_es(crossings_frame(meetings, ses))
    assert got["correlation"] == pytest.approx(-np.sqrt(3) / 2, abs=1e-12)


def test_nilforoshan_repeated_meetings_count_per_shared_bin():
    """Differs: segtool keeps one observation per (shared bin, other); they keep one per
    distinct pair. segtool equals their formulas on the multiset of observations, and not
    on the distinct pairs, when people meet repeatedly."""
    rng = np.random.default_rng(11)
    n = 60
    ses = rng.lognormal(7.0, 0.4, n)
    rank = np.argsort(np.argsort(ses)) / n
    meetings = []
    for b in range(30):
        groups = defaultdict(list)
        for d in range(n):
            cell = int(rank[d] * 4) if rng.random() < 0.6 else int(rng.integers(0, 4))
            if rng.random() < 0.6:
                groups[cell].append(d)
        meetings += [(b, f"c{c}", m) for c, m in groups.items() if len(m) > 1]
    multi = defaultdict(int)
    for _, _, m in meetings:
        for i in m:
            for j in m:
                if i < j:
                    multi[(i, j)] += 1
    assert max(multi.values()) > 3
    per_bin = [pair for pair, k in multi.items() for _ in range(k)]
    got = segtool_es(crossings_frame(meetings, ses))
    x_b, ys_b = nilforoshan_observations(per_bin, ses)
    x_p, ys_p = nilforoshan_observations(sorted(multi), ses)
    assert got["correlation"] == pytest.approx(simple_es(x_b, ys_b), abs=1e-9)
    assert got["variance_component"] == pytest.approx(reml_es(x_b, ys_b), abs=1e-6)
    assert abs(got["correlation"] - simple_es(x_p, ys_p)) > 1e-3
    assert abs(got["variance_component"] - reml_es(x_p, ys_p)) > 1e-3


def test_nilforoshan_sign_and_no_ranks():
    """Differs: segtool's variance-component ES keeps the sign of a (theirs is
    sqrt(a²/(a²+σ_u²)) ≥ 0); both use the raw SES (Pearson, affine-invariant), while
    segtool's `ses_rank` option (percentile ranks) is a different estimate."""
    rng = np.random.default_rng(2)
    n = 60
    flipped = rng.lognormal(7.0, 0.4, n)
    rank = np.argsort(np.argsort(flipped)) / n
    met, meetings = set(), []
    for b in range(25):  # heterophily: pairs from opposite ends of the SES ranking
        free = list(rng.permutation(n))
        while len(free) > 1:
            d = free.pop()
            score = [abs(rank[o] - (1 - rank[d])) + 0.3 * rng.random() for o in free]
            o = int(free[int(np.argmin(score))])
            if (min(d, o), max(d, o)) in met:
                continue
            free.remove(o)
            met.add((min(d, o), max(d, o)))
            meetings.append((b, f"c{d}", [int(d), o]))
    x, ys = nilforoshan_observations(sorted(met), flipped)
    got = segtool_es(crossings_frame(meetings, flipped))
    theirs = reml_es(x, ys)
    assert got["variance_component"] < -0.2
    assert got["variance_component"] == pytest.approx(-theirs, abs=1e-7)
    assert got["variance_component"] == pytest.approx(reml_es(x, ys, signed=True), abs=1e-7)
    # affine change of SES: same estimates (their rescaling, L55-62)
    shifted = segtool_es(crossings_frame(meetings, 3.0 * flipped + 100.0))
    assert shifted["correlation"] == pytest.approx(got["correlation"], abs=1e-12)
    assert shifted["variance_component"] == pytest.approx(got["variance_component"], abs=1e-8)
    ranked = segtool_es(crossings_frame(meetings, flipped), ses_rank=True)
    assert abs(ranked["correlation"] - got["correlation"]) > 1e-4


def test_nilforoshan_small_samples_still_estimated():
    """Differs: they return NaN below 10 people or 100 observations (L51-53); segtool
    estimates from 3 people on (the hand-sized case above has 3 people, 4 observations)."""
    ses = np.array([1.0, 2.0, 3.0, 5.0])
    meetings = [
        (0, "p", [0, 1]),
        (1, "p", [0, 2]),
        (2, "p", [1, 3]),
        (3, "p", [2, 3]),
        (4, "p", [0, 3]),
    ]
    got = segtool_es(crossings_frame(meetings, ses))
    x, ys = nilforoshan_observations([(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)], ses)
    assert len(x) < 10  # theirs: NaN
    assert got["correlation"] == pytest.approx(simple_es(x, ys), abs=1e-12)
    assert got["variance_component"] == pytest.approx(reml_es(x, ys, signed=True), abs=1e-9)


def test_nilforoshan_unweighted_like_theirs():
    """Same: their estimator has no person weights; segtool's ignores device weights too."""
    meetings, ses, pairs = meet_once(3)
    frame = crossings_frame(meetings, ses)
    w = np.random.default_rng(0).uniform(0.1, 5.0, len(ses))
    weighted = frame.with_columns(pl.Series("weight", w[frame["device"].to_numpy()]))
    x, ys = nilforoshan_observations(pairs, ses)
    got = segtool_es(weighted)
    assert got["correlation"] == pytest.approx(simple_es(x, ys), abs=1e-9)
    assert got["variance_component"] == pytest.approx(reml_es(x, ys), abs=1e-7)


def test_liao_stay_counts_in_every_half_hour_it_covers():
    """A 2-hour stay from 07:10 is present at 07:00 … 09:00 in Liao's units (14-…hex.py
    L170-183); a short stay of the other group at 07:10 only. From start times segtool cuts
    visits at half hours as `segtool visits` does, so the stay counts in every slot it
    covers, with the dwell inside each."""
    df = pl.DataFrame(
        {
            "device": [1, 2],
            "place": ["h", "h"],
            "group": ["a", "b"],
            "dwell_s": [7200.0, 600.0],
            "start": [datetime(2024, 3, 4, 7, 10, tzinfo=UTC)] * 2,
        }
    )
    params = ExperiencedParams(min_devices=1, by=("slot",), tz="UTC")
    places = experienced(panel_from_long(df, params), params).places
    places = places.sort("stratum")
    assert places["stratum"].to_list() == ["07:00", "07:30", "08:00", "08:30", "09:00"]
    assert places["weighted_dwell"].to_list() == [1800.0, 1800.0, 1800.0, 1800.0, 600.0]
    assert places["tau_a"].to_list()[0] == pytest.approx(1200 / 1800)  # 07:10-07:30 vs 600 s
