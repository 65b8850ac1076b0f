"""The report's linkage section: which neighbourhoods are tied together by the people who
move between them (`segtool.indices.linkage`), and whether similar ones link more than
distance explains. Gathering (`linkage_section`) and rendering (`render_linkage`) live
here so the report's other modules only call them.

Shown: the income-quartile mixing matrix of the visitation network as a heat map (share
of each origin quartile's time away from home spent in each destination quartile, over
what independence predicts), a map of the strongest published links between areas of
different quartiles (lines between area centroids), and the homophily statistics. Only
published edges (≥ k devices) are drawn; how many were suppressed is stated.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from segtool.errors import SegtoolError
from segtool.report.gather import ReportParams, Section, _missing

TOP_LINKS = 25
TEXT = (
    "Areas are linked by the time their residents spend in each other's areas (visitation) "
    "and together in the same place and half hour (co-presence). Mobility homophily asks "
    "whether areas of similar income link more than their distance and size explain "
    "(Heine et al. 2021): a positive assortativity beyond its permutation null, a negative "
    "gravity coefficient on the income difference, and more linkage within the same "
    "income quartile than expected all point to it. The attribute is the area's median "
    "resident's position on the ordered income groups."
)
REFERENCE = (
    "Heine, C., Marquez, C., Santi, P., Sundberg, M., Nordfors, M. & Ratti, C. (2021). "
    "Analysis of mobility homophily in Stockholm based on social network data. PLOS ONE 16, "
    "e0247996 (doi:10.1371/journal.pone.0247996)."
)


def linkage_section(lake, params: ReportParams) -> Section:
    """Linkage between register areas, or why it is not in the report."""
    from segtool.indices.linkage import LinkageParams, from_lake, linkage

    why = _missing(lake, "visits", "homes", "areas")
    if why:
        return Section(missing=why)
    lp = LinkageParams(
        min_devices=params.min_devices,
        permutations=200,
        bootstrap=min(params.bootstrap, 200),
        seed=params.seed,
    )
    try:
        result = linkage(from_lake(lake, lp), lp)
    except SegtoolError as e:
        return Section(missing=f"the linkage network could not be computed: {e}")
    return Section(
        data={
            "homophily": result.homophily,
            "mixing": result.mixing,
            "edges": result.edges,  # published edges only (≥ k devices)
            "units": result.units.select("unit", "lat", "lon", "quartile"),
            "summary": result.summary,
        },
        params={"linkage": lp},
    )


# --------------------------------------------------------------------------- figures


def mixing_heatmap(mixing: pl.DataFrame):
    """Origin quartile × destination quartile: observed over expected share (log colour)."""
    from matplotlib.colors import LogNorm

    from segtool.report.figures import new_figure

    labels = sorted(mixing["origin_quartile"].unique().to_list())
    k = len(labels)
    m = mixing.sort("origin_quartile", "destination_quartile")["ratio"].to_numpy().reshape(k, k)
    fig = new_figure(4.8, 3.9)
    ax = fig.add_subplot()
    finite = m[np.isfinite(m) & (m > 0)]
    span = max(2.0, float(np.max(np.abs(np.log(finite))))) if finite.size else 2.0
    im = ax.imshow(m, cmap="RdBu_r", norm=LogNorm(vmin=math.exp(-span), vmax=math.exp(span)))
    ax.set_xticks(range(k), labels=labels)
    ax.set_yticks(range(k), labels=labels)
    ax.set_xlabel("destination area's income quartile")
    ax.set_ylabel("residents' home area quartile")
    for i in range(k):
        for j in range(k):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.spines[:].set_visible(False)
    from matplotlib.ticker import FuncFormatter

    bar = fig.colorbar(im, ax=ax, shrink=0.8, label="observed / expected share")
    plain = FuncFormatter(lambda v, _: f"{v:.2g}")
    bar.ax.yaxis.set_major_formatter(plain)
    bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    return fig


def links_map(edges: pl.DataFrame, units: pl.DataFrame):
    """The strongest published links between areas of different quartiles (width ∝ hours)
    over all area centroids coloured by quartile."""
    from matplotlib.collections import LineCollection

    from segtool.report.figures import BARS, new_figure

    fig = new_figure(7.2, 6.0)
    ax = fig.add_subplot()
    geo = units.select("unit", "lat", "lon", "quartile")
    e = (
        edges.join(geo.rename({"unit": "origin", "lat": "la", "lon": "oa", "quartile": "qa"}), on="origin")
        .join(geo.rename({"unit": "destination", "lat": "lb", "lon": "ob", "quartile": "qb"}), on="destination")
        .filter(pl.col("qa").is_not_null() & pl.col("qb").is_not_null() & (pl.col("qa") != pl.col("qb")))
        .sort(["observed", "origin", "destination"], descending=[True, False, False])
        .head(TOP_LINKS)
    )  # fmt: skip
    if e.height:
        segs = np.stack([e.select("oa", "la").to_numpy(), e.select("ob", "lb").to_numpy()], axis=1)
        w = e["observed"].to_numpy()
        ax.add_collection(
            LineCollection(segs, linewidths=0.5 + 4.0 * w / w.max(), colors="#555555", alpha=0.7)
        )
    quart = sorted(q for q in geo["quartile"].unique().to_list() if q is not None)
    for i, q in enumerate(quart):
        pts = geo.filter(pl.col("quartile") == q)
        ax.scatter(pts["lon"], pts["lat"], s=18, color=BARS[i % len(BARS)], label=q, zorder=3)
    lat = geo["lat"].drop_nulls().to_numpy()
    if lat.size:
        ax.set_aspect(1.0 / math.cos(math.radians(float(lat.mean()))))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(f"The {e.height} strongest links between areas of different income quartiles")
    ax.ticklabel_format(useOffset=False)
    ax.legend(title="area quartile", fontsize=7, loc="best")
    return fig


# --------------------------------------------------------------------------- section


def render_linkage(b) -> None:
    """Append the section to a report builder (`segtool.report.build._Builder`)."""
    from segtool.report import html as H

    s = getattr(b.data, "linkage", None)
    b.body.append("<h2>4b. Linkage: which neighbourhoods are tied together</h2>")
    if s is None or s.missing:
        b.body.append(H.missing(s.missing if s is not None else "linkage was not computed"))
        return
    b.body.append(H.paragraph(TEXT))
    h, summ = s.data["homophily"], s.data["summary"]
    vis = s.data["mixing"].filter(pl.col("network") == "visitation")
    if vis.height:
        b.add_figure(
            "linkage_mixing", mixing_heatmap(vis),
            "Income-quartile mixing matrix of the visitation network",
            "Share of each home quartile's time in other areas spent in areas of each "
            "quartile, divided by the share independence predicts (1 = as expected; red: "
            "more, blue: less).",
            units="ratio of observed to expected share (dimensionless)",
        )  # fmt: skip
    edges = s.data["edges"].filter(pl.col("network") == "visitation")
    b.add_figure(
        "linkage_map", links_map(edges, s.data["units"]),
        "Map of the strongest links between areas of different income quartiles",
        f"Lines join area centroids; only links behind at least {b.data.params.min_devices} "
        "devices are drawn.",
        units="line width: visit hours between the two areas; map in degrees (WGS 84)",
    )  # fmt: skip
    rows = h.filter(pl.col("index").is_in(["assortativity", "same_quartile_share"])).with_columns(
        pl.concat_str(
            pl.col("index").str.replace_all("_", " "), pl.lit(" "), pl.col("term").fill_null("")
        ).alias("statistic")
    )
    b.body.append(
        H.table(
            rows,
            {
                "network": "network",
                "statistic": "statistic",
                "value": "value",
                "expected": "expected",
                "null_mean": "null mean",
                "null_low": "null 2.5%",
                "null_high": "null 97.5%",
                "p_value": "p-value",
            },
        )  # fmt: skip
    )
    g = h.filter(pl.col("index") == "gravity")
    b.body.append("<h3>Gravity model of visitation (cluster bootstrap by origin area)</h3>")
    b.body.append(
        H.table(
            g,
            {
                "term": "term",
                "value": "coefficient",
                "se_cluster": "cluster SE",
                "ci_low": "95% CI low",
                "ci_high": "high",
                "family": "family",
                "n": "pairs",
            },
        )  # fmt: skip
    )
    v = summ.get("visitation", {})
    b.body.append(
        H.paragraph(
            f"{v.get('edges_published', 0):,} visitation links published, "
            f"{v.get('edges_suppressed', 0):,} suppressed (fewer than "
            f"{b.data.params.min_devices} devices); the statistics use every link, only "
            "aggregates are shown."
        )
    )
    beta = g.filter(pl.col("term") == "attribute_difference")
    if beta.height:
        r = beta.row(0, named=True)
        ci = (
            f" (95% CI {r['ci_low']:.3f}–{r['ci_high']:.3f})" if r.get("ci_low") is not None else ""
        )
        verdict = (
            "similar areas link more than distance explains"
            if r.get("ci_high") is not None and r["ci_high"] < 0
            else "no clear mobility homophily beyond distance"
        )
        b.glance.append(
            f"Linkage: gravity coefficient on the income difference {r['value']:.3f}{ci}: {verdict}."
        )
