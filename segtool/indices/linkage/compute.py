"""One linkage run: both networks, their edge tables, homophily and mixing, as tidy frames.

Homophily is measured between distinct units (A ≠ B: the time at home is reported on its
own, as `home_share`) whose attribute is known; units without one stay in the edge table
and are counted (`units_without_attribute`). Every statistic uses all edges; only the
published edge table is suppressed below `min_devices`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
import scipy.sparse as sp

from segtool.errors import InputError
from segtool.indices.inference import summarize_null
from segtool.indices.linkage import assortativity as asr
from segtool.indices.linkage.copresence import copresence
from segtool.indices.linkage.edges import edge_table, suppress, visitation
from segtool.indices.linkage.gravity import gravity, gravity_design
from segtool.indices.linkage.inputs import LinkageData, quartiles
from segtool.indices.linkage.mixing import LABELS, quartile_mixing
from segtool.indices.linkage.params import LinkageParams


@dataclass
class LinkageResult:
    edges: pl.DataFrame  # published edges of every network (suppressed ones left out)
    homophily: pl.DataFrame  # tidy: index, network, term, value, …
    mixing: pl.DataFrame  # quartile × quartile per network
    units: pl.DataFrame  # unit, lat, lon, residents, attribute, quartile
    summary: dict = field(default_factory=dict)
    all_edges: pl.DataFrame | None = None  # before suppression (stays in the process)


def _matrix(edges: pl.DataFrame, codes: dict[str, int], n: int) -> sp.csr_matrix:
    """Off-diagonal sparse W over the coded units (others dropped)."""
    e = edges.filter(pl.col("origin") != pl.col("destination")).with_columns(
        pl.col("origin").replace_strict(codes, default=-1, return_dtype=pl.Int64).alias("o"),
        pl.col("destination").replace_strict(codes, default=-1, return_dtype=pl.Int64).alias("d"),
    )
    e = e.filter((pl.col("o") >= 0) & (pl.col("d") >= 0))
    return sp.csr_matrix(
        (e["observed"].to_numpy(), (e["o"].to_numpy(), e["d"].to_numpy())), shape=(n, n)
    )


def _null_row(value: float, null: np.ndarray, level: float) -> dict:
    if null.size == 0:
        return {}
    s = summarize_null(value, null)
    a = (1 - level) / 2
    lo, hi = np.nanquantile(null, [a, 1 - a])
    return {
        "null_mean": s["null_mean"],
        "null_low": float(lo),
        "null_high": float(hi),
        "p_value": s["p_value"],
    }


def linkage(
    data: LinkageData, params: LinkageParams | None = None, on_progress=None
) -> LinkageResult:
    """Edges, homophily and mixing of the visitation (and co-presence) network."""
    params = params or LinkageParams()
    tick = on_progress or (lambda step, n=1: None)
    units = data.units
    summary = dict(data.summary)
    if units.height < 2:
        raise InputError(
            f"linkage needs at least two units; the visits span {units.height}",
            hint="use smaller units (--units cells with a finer --res) or more data",
        )
    scale = 1.0 if data.kind == "flows" else 3600.0
    # read the visit pieces once, units as an Enum (both networks group by them)
    enum = pl.Enum(units["unit"].to_list())
    frame = data.rows.with_columns(pl.col("origin", "destination").cast(enum))
    data = replace(data, rows=frame.collect(engine="streaming").lazy())
    if summary.get("visits_crossing_half_hours"):
        summary.setdefault("notes", []).append(
            f"{summary['visits_crossing_half_hours']:,} visits cross a half-hour boundary: "
            "co-presence counts each in the half hour it starts in (run `segtool visits` "
            "to cut them)"
        )
    nets = {"visitation": edge_table(visitation(data), units, "visitation", scale)}
    tick("visitation")
    if params.copresence and data.kind == "visits":
        nets["copresence"] = edge_table(
            copresence(data, units["unit"].to_list()), units, "copresence", scale
        )
        tick("copresence")

    known = units.filter(pl.col("attribute").is_not_null() & pl.col("attribute").is_finite())
    summary["units_in_network"] = units.height
    summary["units_without_attribute"] = units.height - known.height
    summary["units_without_residents"] = int(units.filter(pl.col("residents") <= 0).height)
    if known.height < 2:
        raise InputError(
            f"only {known.height} unit(s) of the network have a known attribute: homophily "
            "needs two or more",
            hint="check --attribute and the population (or --attributes) table",
        )
    x = known["attribute"].to_numpy()
    q = quartiles(x) - 1
    units = units.join(
        known.select("unit", pl.Series("quartile", [LABELS[i] for i in q])), on="unit", how="left"
    )
    codes = {u: i for i, u in enumerate(known["unit"].to_list())}
    perms = asr.permutations(known.height, params.permutations, params.seed)
    rows: list[dict] = []
    mixing = []
    for name, edges in nets.items():
        total = float(edges["observed"].sum())
        home = float(edges.filter(pl.col("home"))["observed"].sum())
        rows.append(
            {"index": "home_share", "network": name, "value": home / total if total else None}
        )
        W = _matrix(edges, codes, known.height)
        if W.nnz == 0:
            summary.setdefault("notes", []).append(
                f"{name}: no links between distinct units with an attribute"
            )
            continue
        r = asr.numeric_assortativity(W, x)
        rows.append({"index": "assortativity", "network": name, "term": "numeric", "value": r,
                     **_null_row(r, asr.null_numeric(W, x, perms), params.level)})  # fmt: skip
        E = asr.category_mixing(W, q, 4)
        rc = asr.categorical_assortativity(E)
        share, expected = asr.same_category_share(E)
        rnull, snull = asr.null_categorical(W, q, 4, perms)
        rows.append({"index": "assortativity", "network": name, "term": "quartile", "value": rc,
                     **_null_row(rc, rnull, params.level)})  # fmt: skip
        rows.append({"index": "same_quartile_share", "network": name, "value": share,
                     "expected": expected, "ratio": share / expected if expected else None,
                     **_null_row(share, snull, params.level)})  # fmt: skip
        mixing.append(quartile_mixing(E, name))
        tick("assortativity")

    design = gravity_design(nets["visitation"], units, params.max_pairs)
    g = gravity(design, params.family, params.bootstrap, params.seed, params.level,
                on_replicate=lambda n: tick("gravity", n))  # fmt: skip
    homophily = pl.concat(
        [
            pl.DataFrame(rows, infer_schema_length=None),
            g.with_columns(pl.lit("gravity").alias("index"), pl.lit("visitation").alias("network")),
        ],
        how="diagonal_relaxed",
    )

    published, all_edges = [], []
    for name, edges in nets.items():
        pub, info = suppress(edges, params.min_devices)
        summary[name] = info
        published.append(pub)
        all_edges.append(edges)
    counts = [{"index": "units", "value": float(units.height)},
              {"index": "units_without_attribute", "value": float(summary["units_without_attribute"])}]  # fmt: skip
    for name in nets:
        counts += [
            {"index": "edges", "network": name, "value": float(summary[name]["edges_published"])},
            {"index": "edges_suppressed", "network": name, "value": float(summary[name]["edges_suppressed"])},
        ]  # fmt: skip
    homophily = pl.concat([homophily, pl.DataFrame(counts)], how="diagonal_relaxed")
    order = ["index", "network", "term", "value", "expected", "ratio", "se", "se_cluster",
             "se_bootstrap", "ci_low", "ci_high", "null_mean", "null_low", "null_high", "p_value",
             "family", "design", "n", "alpha", "bootstrap", "failed_replicates"]  # fmt: skip
    homophily = homophily.select([c for c in order if c in homophily.columns])
    summary["attribute"] = params.attribute
    summary["min_devices"] = params.min_devices
    return LinkageResult(
        edges=pl.concat(published),
        homophily=homophily,
        mixing=pl.concat(mixing) if mixing else pl.DataFrame(),
        units=units,
        summary=summary,
        all_edges=pl.concat(all_edges),
    )
