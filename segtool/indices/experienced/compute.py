"""Every experienced index of a panel, with bootstrap and permutation-null replicates, as
tidy frames. `experienced(panel, params)` is what the command runs.

The estimate and every replicate go through the same function (`_evaluate`) with
different device multipliers (bootstrap) or permuted group shares (null), so an estimate
and its replicates can never disagree in definition.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import polars as pl

from segtool.indices.experienced import economic, encounters, groups, people, places, resample
from segtool.indices.experienced.panel import Panel, check_groups
from segtool.indices.experienced.params import INDICES, ExperiencedParams
from segtool.indices.inference import excess_interval, summarize_null, summarize_replicates

INDEX_ORDER = INDICES  # output rows in the order the indices are listed
STAT_ORDER = {None: 0, "mean": 1, "q25": 2, "median": 3, "q75": 4}


class Key(NamedTuple):
    index: str
    group: str | None = None
    other_group: str | None = None
    stratum: str | None = None
    component: str | None = None
    statistic: str | None = None


@dataclass
class ExperiencedResult:
    """indices: the tidy result (one row per index × group × … with value, se, ci_low,
    ci_high, null_mean, excess where computed); places: one row per published unit (no
    device ids); devices: one row per device (for the lake only — never publish it);
    summary: counts (devices, visits, units kept and suppressed, rows set aside)."""

    indices: pl.DataFrame
    places: pl.DataFrame
    devices: pl.DataFrame | None
    summary: dict = field(default_factory=dict)


@dataclass
class _Context:
    panel: Panel
    params: ExperiencedParams
    rows: places.Rows
    ref: np.ndarray
    pi: np.ndarray
    pi_source: str
    hi: int | None
    lo: int | None
    ses: np.ndarray | None
    s_home: np.ndarray | None
    n_strata: int


@dataclass
class _Out:
    stats: dict
    unit_s: np.ndarray  # (U, R)
    unit_ice: np.ndarray | None
    detail: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- context


def _device_shares(panel: Panel) -> np.ndarray:
    v = (panel.weight[:, None] * panel.member).sum(0)
    return v / v.sum()


def _context(panel: Panel, params: ExperiencedParams) -> _Context:
    check_groups(panel, params)
    if panel.population is not None:
        pi, src = groups.population_shares(panel.population, panel.groups), "population"
    else:
        pi, src = _device_shares(panel), "devices"
    if params.reference == "population":
        if np.any(~np.isfinite(pi)) or np.any(pi <= 0) or np.any(pi >= 1):
            raise _usage("--reference population needs every group present in the population")
        ref = pi
    else:
        ref = np.full(panel.k, 1.0 / panel.k)
    hi = panel.groups.index(params.ice_high) if params.ice_high else None
    lo = panel.groups.index(params.ice_low) if params.ice_low else None
    if hi is not None and (pi[hi] <= 0 or pi[lo] <= 0):
        raise _usage("ICE needs both groups present in the reference population")
    rows = places.rows(panel.du_dev, panel.du_unit, panel.du_dwell, panel.n, panel.n_units)
    ses = None
    if panel.ses is not None and panel.kind == "visits":
        s = economic.percentile_ranks(panel.ses) if params.ses_rank else panel.ses.astype(float)
        ok = ~np.isnan(s)
        if ok.sum() > 1 and np.nanstd(s) > 0:
            ses = (s - np.nanmean(s)) / np.nanstd(s)  # numerics only: ES is affine invariant
    return _Context(
        panel=panel,
        params=params,
        rows=rows,
        ref=ref,
        pi=pi,
        pi_source=src,
        hi=hi,
        lo=lo,
        ses=ses,
        s_home=_home_segregation(panel, ref),
        n_strata=max(len(panel.stratum_labels), 1),
    )


def _usage(msg: str):
    from segtool.errors import UsageError

    return UsageError(msg)


def _home_segregation(panel: Panel, ref: np.ndarray) -> np.ndarray | None:
    """S of each device's home area from the population composition (NaN if unknown)."""
    if panel.population is None or panel.home_key is None:
        return None
    comp = panel.population.pivot(on="group", index="key", values="count").fill_null(0.0)
    for g in panel.groups:
        if g not in comp.columns:
            comp = comp.with_columns(pl.lit(0.0).alias(g))
    a = comp.select(panel.groups).to_numpy()
    tau, tot = places.composition(a)
    s = places.segregation(tau, ref)
    lookup = pl.DataFrame({"key": comp["key"], "s": s}).filter(pl.Series(tot > 0))
    dev = pl.DataFrame({"key": panel.home_key.cast(pl.String)}).with_row_index("i")
    joined = dev.join(lookup, on="key", how="left").sort("i")
    out = joined["s"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return None if np.all(np.isnan(out)) else out


# --------------------------------------------------------------------------- one block


def _place_stats(
    stats: dict, name: str, values: np.ndarray, weights: np.ndarray, ctx: _Context, quantiles: bool
):
    panel = ctx.panel
    by_s, overall = places.weighted_mean_by(values, weights, panel.unit_stratum, ctx.n_strata)
    qs = list(people.QUANTILES.values())

    def put(stratum, mean, v, w):
        stats[Key(name, stratum=stratum, statistic="mean")] = mean
        if quantiles:
            q = places.weighted_quantiles(v, np.where(np.isnan(v), 0.0, w), qs)
            for j, stat in enumerate(people.QUANTILES):
                stats[Key(name, stratum=stratum, statistic=stat)] = q[j]

    put(None, overall, values, weights)
    for s, label in enumerate(panel.stratum_labels):
        rows = panel.unit_stratum == s
        put(label, by_s[s], values[rows], weights[rows])


def _summaries(stats, name, values, mass, member, groups_, component=None, quantiles=True):
    for (g, stat), v in people.summaries(values, mass, member, quantiles).items():
        key = Key(name, None if g is None else groups_[g], component=component, statistic=stat)
        stats[key] = v


def _evaluate(
    ctx: _Context,
    mult: np.ndarray | None,
    member: np.ndarray,
    ses: np.ndarray | None,
    detail: bool = False,
) -> _Out:
    """All indices for a block of R replicates at once.

    mult: (n, R) bootstrap multiplicities, or None (all ones: the estimate, or a null
    block); member: group shares (n, K) shared by the block, or (R, n, K) per replicate;
    ses: (n,) shared or (R, n). Quantiles only with `detail` (the estimate): replicates
    carry the means."""
    panel, params = ctx.panel, ctx.params
    g_ = panel.groups
    k = panel.k
    shared = member.ndim == 2
    r_count = member.shape[0] if not shared else (1 if mult is None else mult.shape[1])
    w = panel.weight[:, None]
    mass = w * mult if mult is not None else np.broadcast_to(w, (panel.n, r_count))
    stats: dict = {}
    code, shares = encounters.membership(member, panel.hard)
    ak = places.amounts(ctx.rows, mass, code, shares, k)  # (units, K+1, R)
    a = ak[:, :k, :].transpose(0, 2, 1)  # (units, R, K)
    tau, tot = places.composition(a)
    unit_s = places.segregation(tau, ctx.ref)
    if params.wants("place_segregation"):
        _place_stats(stats, "place_segregation", unit_s, tot, ctx, detail)
    unit_ice = None
    if ctx.hi is not None and params.wants("ice"):
        unit_ice = places.ice(a, ctx.pi, ctx.hi, ctx.lo)
        _place_stats(stats, "ice", unit_ice, tot, ctx, detail)
    out = _Out(stats, unit_s, unit_ice)
    if detail:
        out.detail.update(tau=tau[:, 0, :], tot=tot[:, 0])
    if panel.kind != "visits":
        return out

    loo = params.leave_one_out and (detail or params.wants("individual_segregation"))
    s_i, s_loo, t, t_loo = people.exposures(
        ctx.rows, ak, mass, code, shares, ctx.ref, loo=loo, want_tau=detail
    )
    if params.wants("individual_segregation"):
        _summaries(stats, "individual_segregation", s_i, mass, member, g_, quantiles=detail)
    if detail:
        out.detail.update(t=t[:, 0, :], s_i=s_i[:, 0])
    if loo:
        _summaries(
            stats, "individual_segregation", s_loo, mass, member, g_, "leave_one_out", detail
        )
        if detail:
            out.detail.update(t_loo=t_loo[:, 0, :], s_loo=s_loo[:, 0])
    if ctx.s_home is not None and params.wants("home_segregation"):
        home = np.broadcast_to(ctx.s_home[:, None], mass.shape)
        _summaries(stats, "home_segregation", home, mass, member, g_, quantiles=detail)

    if panel.presence is not None and params.wants("experienced_isolation", "exposure"):
        num, den = encounters.copresence(panel.presence, panel.weight, mult, member, panel.hard)
        e = groups.exposure_from(num, den)  # (R, K, K)
        for gi in range(k):
            stats[Key("experienced_isolation", g_[gi])] = e[:, gi, gi]
            for hi in range(k):
                stats[Key("exposure", g_[gi], g_[hi])] = e[:, gi, hi]
    if panel.presence is not None and ses is not None and params.wants("economic_segregation"):
        n_i, sy, fsyy = encounters.ses_sums(panel.presence, mult, ses, panel.n)
        es_vals = {c: np.full(r_count, np.nan) for c in ("correlation", "variance_component")}
        for r in range(r_count):
            x = ses if ses.ndim == 1 else ses[r]
            f = None if mult is None else mult[:, r].astype(float)
            es = economic.economic_segregation(x, n_i[:, r], sy[:, r], fsyy[r], f)
            for c in es_vals:
                es_vals[c][r] = es[c]
            if detail:
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(n_i[:, 0] > 0, sy[:, 0] / n_i[:, 0], np.nan)
                out.detail.update(es=es, es_n=n_i[:, 0], es_mean=mean)
        for c, v in es_vals.items():
            stats[Key("economic_segregation", component=c)] = v
    if (
        panel.home_presence is not None
        and panel.home_presence.rows
        and params.wants("residential_isolation")
    ):
        num, den = encounters.copresence(
            panel.home_presence, panel.weight, mult, member, panel.hard
        )
        e = groups.exposure_from(num, den)
        for gi in range(k):
            stats[Key("residential_isolation", g_[gi], component="device_homes")] = e[:, gi, gi]
    return out


# --------------------------------------------------------------------------- replicates


def _threads() -> int:
    env = os.environ.get("SEGTOOL_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(2, os.cpu_count() or 1))


def _block_size(panel: Panel) -> int:
    # keep (devices × block × K) float arrays near 128 MB each
    return int(max(1, min(16, 16_000_000 // max(1, panel.n * panel.k))))


def replicate_block(ctx: _Context, kind: str, reps: range) -> _Out:
    """Bootstrap or null replicates `reps` (each from its own spawned seed, so a block's
    result does not depend on which blocks run where)."""
    panel, params = ctx.panel, ctx.params
    total = params.bootstrap if kind == "bootstrap" else params.null
    n = panel.n
    if kind == "bootstrap":
        c = resample.multipliers(n, reps, total, params.seed, params.resample)
        return _evaluate(ctx, c, panel.member, ctx.ses)
    perms = resample.permutations(n, reps, total, params.seed)
    ses = None if ctx.ses is None else ctx.ses[perms]
    return _evaluate(ctx, None, panel.member[perms], ses)


def _replicates(
    ctx: _Context,
    kind: str,
    on_block: Callable[[str, int], None] | None,
    map_blocks: Callable | None = None,
) -> _Out:
    panel, params = ctx.panel, ctx.params
    total = params.bootstrap if kind == "bootstrap" else params.null

    def run(reps: range) -> _Out:
        res = replicate_block(ctx, kind, reps)
        if on_block:
            on_block(kind, len(reps))
        return res

    parts = resample.blocks(total, _block_size(panel))
    workers = _threads()
    if map_blocks is not None:  # e.g. Dask tasks (segtool.engine), results in block order
        outs = []
        for out, reps in zip(map_blocks(ctx, kind, parts), parts, strict=True):
            outs.append(out)
            if on_block:
                on_block(kind, len(reps))
    elif workers > 1 and len(parts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outs = list(pool.map(run, parts))
    else:
        outs = [run(p) for p in parts]
    stats = {k: np.concatenate([o.stats[k] for o in outs]) for k in outs[0].stats}
    unit_s = np.concatenate([o.unit_s for o in outs], axis=1)
    unit_ice = (
        None if outs[0].unit_ice is None else np.concatenate([o.unit_ice for o in outs], axis=1)
    )
    return _Out(stats, unit_s, unit_ice)


# --------------------------------------------------------------------------- assembly


def _row_order(key: Key, groups_: tuple[str, ...], strata: list[str]) -> tuple:
    gpos = {g: i for i, g in enumerate(groups_)}
    spos = {s: i for i, s in enumerate(strata)}
    return (
        INDEX_ORDER.index(key.index),
        -1 if key.stratum is None else spos[key.stratum],
        key.component or "",
        -1 if key.group is None else gpos[key.group],
        -1 if key.other_group is None else gpos[key.other_group],
        STAT_ORDER.get(key.statistic, 9),
    )


def _assemble(
    est: _Out, boot: _Out | None, null: _Out | None, ctx: _Context, extra: dict
) -> pl.DataFrame:
    rows = []
    level = ctx.params.level
    all_keys = list(est.stats) + [k for k in extra if k not in est.stats]
    all_keys = [k for k in all_keys if ctx.params.wants(k.index)]
    for key in sorted(
        all_keys, key=lambda k: _row_order(k, ctx.panel.groups, ctx.panel.stratum_labels)
    ):
        value = float(extra[key]) if key in extra else float(est.stats[key][0])
        row = {**key._asdict(), "value": value}
        if boot is not None and key in boot.stats:
            s = summarize_replicates(value, boot.stats[key], level)
            row.update(se=s.se, ci_low=s.ci_low, ci_high=s.ci_high, debiased=s.debiased)
        if null is not None and key in null.stats:
            row.update(summarize_null(value, null.stats[key]))
            if boot is not None and key in boot.stats:
                lo, hi = excess_interval(row["excess"], boot.stats[key], level)
                row.update(excess_ci_low=lo, excess_ci_high=hi)
        rows.append(row)
    schema = {
        "index": pl.String,
        "group": pl.String,
        "other_group": pl.String,
        "stratum": pl.String,
        "component": pl.String,
        "statistic": pl.String,
        "value": pl.Float64,
        "se": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "debiased": pl.Float64,
        "null_mean": pl.Float64,
        "excess": pl.Float64,
        "excess_ci_low": pl.Float64,
        "excess_ci_high": pl.Float64,
        "p_value": pl.Float64,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


def _places_frame(ctx: _Context, est: _Out, boot: _Out | None, null: _Out | None) -> pl.DataFrame:
    panel = ctx.panel
    tau, tot = est.detail["tau"], est.detail["tot"]
    cols = {
        "weighted_dwell": tot,
        **{f"tau_{g}": tau[:, j] for j, g in enumerate(panel.groups)},
        "segregation": est.unit_s[:, 0],
    }
    if est.unit_ice is not None:
        cols["ice"] = est.unit_ice[:, 0]
    for name, b, n in (
        ("segregation", boot and boot.unit_s, null and null.unit_s),
        ("ice", boot and boot.unit_ice, null and null.unit_ice),
    ):
        if name not in cols:
            continue
        if b is not None:
            lo, hi = places.row_nanquantiles(
                b, [(1 - ctx.params.level) / 2, (1 + ctx.params.level) / 2]
            )
            cols[f"{name}_se"] = np.nanstd(b, axis=1, ddof=1)
            cols[f"{name}_ci_low"], cols[f"{name}_ci_high"] = lo, hi
        if n is not None:
            nm = np.nanmean(n, axis=1)
            cols[f"{name}_null_mean"] = nm
            cols[f"{name}_excess"] = cols[name] - nm
    base = panel.units.select(
        "place", "stratum", "devices", "visits", pl.col("dwell_s").cast(pl.Float64)
    )
    if panel.kind == "flows":
        base = base.rename({"devices": "flows", "dwell_s": "count"}).drop("visits")
    frame = base.with_columns(pl.Series(k, v, dtype=pl.Float64) for k, v in cols.items())
    if not panel.stratum_labels:
        frame = frame.drop("stratum")
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


def _devices_frame(ctx: _Context, est: _Out) -> pl.DataFrame | None:
    panel = ctx.panel
    if panel.kind != "visits":
        return None
    d = est.detail
    cols: dict = {"device": panel.device, "weight": pl.Series("weight", panel.weight)}
    if panel.hard:
        cols["group"] = pl.Series(
            "group", np.array(panel.groups, dtype=object)[panel.code], dtype=pl.String
        )
    else:
        for j, g in enumerate(panel.groups):
            cols[f"share_{g}"] = pl.Series(f"share_{g}", panel.member[:, j])
    for j, g in enumerate(panel.groups):
        cols[f"tau_{g}"] = pl.Series(f"tau_{g}", d["t"][:, j])
    cols["segregation"] = pl.Series("segregation", d["s_i"])
    if "t_loo" in d:
        for j, g in enumerate(panel.groups):
            cols[f"tau_loo_{g}"] = pl.Series(f"tau_loo_{g}", d["t_loo"][:, j])
        cols["segregation_loo"] = pl.Series("segregation_loo", d["s_loo"])
    if ctx.s_home is not None:
        cols["home_segregation"] = pl.Series("home_segregation", ctx.s_home)
    if "es_n" in d:
        cols["copresent_others"] = pl.Series("copresent_others", d["es_n"])
        cols["others_ses_mean"] = pl.Series("others_ses_mean", d["es_mean"])
    frame = pl.DataFrame(cols)
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


def experienced(
    panel: Panel,
    params: ExperiencedParams | None = None,
    *,
    on_block: Callable[[str, int], None] | None = None,
    map_blocks: Callable | None = None,
) -> ExperiencedResult:
    """Every experienced index of `panel` (see the package docstring for definitions).

    `on_block(kind, n)` is called after each block of n bootstrap/null replicates.
    `map_blocks(ctx, kind, blocks)`, when given, runs `replicate_block(ctx, kind, reps)`
    for each block elsewhere (e.g. on Dask workers) and yields the results in order."""
    params = params or ExperiencedParams()
    ctx = _context(panel, params)
    est = _evaluate(ctx, None, panel.member, ctx.ses, detail=True)
    notes: list[str] = []
    boot = null = None
    if panel.kind == "flows" and (params.bootstrap or params.null):
        notes.append("flows carry no devices: --bootstrap and --null are skipped")
    else:
        if params.bootstrap:
            boot = _replicates(ctx, "bootstrap", on_block, map_blocks)
        if params.null:
            null = _replicates(ctx, "null", on_block, map_blocks)
    extra: dict = {}
    if (
        panel.population is not None
        and panel.kind == "visits"
        and params.wants("residential_isolation")
    ):
        xpx = groups.residential_isolation_population(panel.population, panel.groups)
        for j, g in enumerate(panel.groups):
            extra[Key("residential_isolation", g, component="population")] = xpx[j]
    if panel.kind == "visits":
        want = params.wants
        copresent = want("experienced_isolation", "exposure", "economic_segregation")
        if panel.presence is None and copresent:
            notes.append(
                "no start times: co-presence indices (isolation, exposure, economic) skipped"
            )
        elif panel.presence is not None and panel.presence.rows == 0 and copresent:
            notes.append(
                "no cell and time bin holds two devices: co-presence indices are undefined"
            )
        if (
            panel.population is None
            and panel.home_presence is None
            and want("residential_isolation")
        ):
            notes.append("no homes and no population: residential isolation skipped")
        if ctx.s_home is None and want("home_segregation"):
            notes.append("home-area segregation needs homes and population: skipped")
        if panel.ses is None and want("economic_segregation"):
            notes.append("no SES column: economic segregation skipped")
    indices = _assemble(est, boot, null, ctx, extra)
    summary = dict(panel.summary)
    summary.update(
        groups=list(panel.groups),
        membership="hard" if panel.hard else "soft",
        reference=params.reference,
        population_shares_from=ctx.pi_source,
        population_shares=dict(zip(panel.groups, map(float, ctx.pi), strict=True)),
        notes=notes,
    )
    if "es" in est.detail:
        summary["economic_devices"] = est.detail["es"]["devices"]
        summary["economic_model"] = {k2: float(v) for k2, v in est.detail["es"]["model"].items()}
    return ExperiencedResult(
        indices=indices,
        places=_places_frame(ctx, est, boot, null),
        devices=_devices_frame(ctx, est),
        summary=summary,
    )
