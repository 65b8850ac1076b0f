"""Assemble the report: figures from `figures`, words from `text`, HTML from `html`, data
from `gather`. `render(data)` is pure (no I/O) and gives the same bytes for the same lake."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from segtool.report import figures as F
from segtool.report import html as H
from segtool.report import text as T
from segtool.report.gather import ReportData, Section
from segtool.report.linkage import REFERENCE as LINKAGE_REFERENCE
from segtool.report.linkage import render_linkage

# Above this many hexagons the map is embedded as PNG: the SVG grows ~0.27 kB per
# hexagon (2,000 ≈ 550 kB), the PNG stays a few hundred kB (bench/results/landuse.md).
MAP_SVG_LIMIT = 2000

RESIDENTIAL_LABELS = {
    "dissimilarity": "Dissimilarity D",
    "gini": "Gini",
    "theil_h": "Theil's information index H",
    "mutual_information": "Mutual information M (nats)",
    "entropy": "Entropy of the city's group mix E (nats)",
    "normalized_exposure": "Normalised exposure",
    "hutchens": "Hutchens square root index",
}


@dataclass
class Report:
    """The HTML page, the figures it embeds (name → Figure, for saving as PNG), and the
    counts printed after writing it."""

    html: str
    figures: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def _value(frame: pl.DataFrame, **where) -> dict | None:
    rows = frame
    for col, v in where.items():
        rows = rows.filter(pl.col(col).is_null() if v is None else pl.col(col) == v)
    return rows.row(0, named=True) if rows.height else None


def _matrix(rows: pl.DataFrame, groups: list[str]) -> np.ndarray:
    m = np.full((len(groups), len(groups)), np.nan)
    pos = {g: i for i, g in enumerate(groups)}
    for g, h, v in rows.select("group", "other_group", "value").iter_rows():
        if g in pos and h in pos and v is not None:
            m[pos[g], pos[h]] = v
    return m


def _p_text(p: pl.Expr) -> pl.Expr:
    """p-values as text: three decimals, '< 0.001' below that."""
    return (
        pl.when(p < 0.001)
        .then(pl.lit("< 0.001"))
        .otherwise(p.round(3).cast(pl.String).str.pad_end(5, "0"))
    )


def _ci(row: dict | None) -> str:
    if not row or row.get("ci_low") is None:
        return ""
    return f" (95% CI {row['ci_low']:.3f}–{row['ci_high']:.3f})"


def _area_outlines(lake) -> list:
    """The register areas' boundaries (from `areas/`) for the map; none without areas."""
    if lake is None or not lake.exists("areas"):
        return []
    from segtool.geo.outlines import outlines

    return outlines(lake.scan("areas").select("geometry").collect()["geometry"])


class _Builder:
    def __init__(self, data: ReportData):
        self.data = data
        self.body: list[str] = []
        self.figures: dict = {}
        self.glance: list[str] = []

    def add_figure(self, name: str, fig, alt: str, caption: str, fmt: str = "svg", *, units: str):
        """Embed `fig` with its caption, which ends with the units of what it shows."""
        self.figures[name] = fig
        caption = f"{caption.rstrip()} Units: {units}."
        self.body.append(H.figure(F.to_bytes(fig, fmt), fmt, alt, caption))

    # ------------------------------------------------------------------ sections

    def lake(self) -> None:
        d = self.data
        self.body.append("<h2>1. What the lake holds</h2>")
        self.body.append(H.paragraph(T.LAKE))
        info = d.lake_info.with_columns(
            pl.col("start").dt.strftime("%Y-%m-%d %H:%M"),
            pl.col("end").dt.strftime("%Y-%m-%d %H:%M"),
        )
        self.body.append(
            H.table(
                info,
                {
                    "dataset": "dataset",
                    "rows": "rows",
                    "devices": "devices",
                    "start": "from (UTC)",
                    "end": "to (UTC)",
                    "rows_in": "rows read",
                    "rows_written": "rows written",
                    "rows_rejected": "rows set aside",
                    "command": "made by",
                },
            )  # fmt: skip
        )
        if d.rejected.height:
            self.body.append("<h3>Rows set aside, by reason</h3>")
            self.body.append(H.table(d.rejected))

    def residential(self) -> None:
        s = self.data.residential
        self.body.append("<h2>2. Residential segregation: where groups live</h2>")
        if s.missing:
            self.body.append(H.missing(s.missing))
            return
        self.body.append(H.paragraph(T.RESIDENTIAL))
        r, groups = s.data["indices"], s.data["groups"]
        overall = (
            r.filter(pl.col("index").is_in(list(RESIDENTIAL_LABELS)) & pl.col("group").is_null())
            .with_columns(pl.col("index").replace_strict(RESIDENTIAL_LABELS).alias("label"))
            .sort(pl.col("index").cast(pl.Enum(list(RESIDENTIAL_LABELS))))
        )
        units = s.data["units"]
        described = f"{units:,} areas, {len(groups)} groups: {', '.join(groups)}."
        self.body.append(f"<p>{H.esc(described)}</p>")
        self.body.append(
            H.table(
                overall,
                {"label": "index", "value": "value", "ci_low": "95% CI low", "ci_high": "high"},
            )
        )
        per_group = r.filter(pl.col("index").is_in(["isolation", "correlation_ratio"])).pivot(
            on="index", index="group", values="value"
        )
        self.body.append(
            H.table(
                per_group,
                {
                    "group": "group",
                    "isolation": "isolation xPx",
                    "correlation_ratio": "correlation ratio V",
                },
            )  # fmt: skip
        )
        m = _matrix(r.filter(pl.col("index") == "exposure"), groups)
        fig = F.heatmap(m, groups, groups, "Residential exposure (register population)",
                        "average share of group h in the area")  # fmt: skip
        self.add_figure(
            "residential_exposure", fig,
            "Heat map of the residential exposure matrix",
            "Row g, column h: the average share of group h among the residents of the areas "
            "where members of group g live. Rows sum to 1; the diagonal is isolation.",
            units="share of group h among the residents of the area, 0–1",
        )  # fmt: skip
        d = _value(r, index="dissimilarity")
        if d:
            self.glance.append(
                f"Where people live: dissimilarity D = {d['value']:.3f}{_ci(d)} — the share "
                "of residents who would have to move for every area to have the city's mix."
            )
        profile = s.data.get("profile")
        if s.data.get("profile_missing"):
            self.body.append(H.missing(s.data["profile_missing"]))
        if profile is not None and profile.height:
            labels = {"dissimilarity": "dissimilarity D", "theil_h": "Theil's H"}
            fig = F.segregation_profile(profile, labels)
            self.add_figure(
                "segregation_profile", fig,
                "Line chart of residential segregation against egohood radius",
                "The register population apportioned to hexagons; each hexagon's counts "
                "replaced by the sums over the hexagons within the radius (an egohood, "
                "grid_disk). A steep fall means groups are separated between neighbouring "
                "hexagons only; a flat line, between whole districts.",
                units="index value 0–1 against egohood radius in metres",
            )  # fmt: skip
            wide = profile.pivot(on="index", index=["k", "radius_m"], values="value").with_columns(
                pl.col("radius_m").round(0).cast(pl.Int64)
            )
            self.body.append(
                H.table(
                    wide,
                    {"k": "rings", "radius_m": "radius (m)", **labels},
                )
            )

    def experienced(self) -> None:
        s = self.data.experienced
        self.body.append("<h2>3. Experienced segregation: where groups spend their time</h2>")
        if s.missing:
            self.body.append(H.missing(s.missing))
            return
        p = self.data.params
        self.body.append(H.paragraph(T.EXPERIENCED))
        self.body.append(
            H.paragraph(T.EXPERIENCED_NULL.format(null=p.null) if p.null else T.EXPERIENCED_NO_NULL)
        )
        e, groups = s.data["indices"], s.data["groups"]
        stats = e.filter(
            pl.col("index").is_in(["place_segregation", "individual_segregation"])
            & pl.col("statistic").is_in(["mean", "median"])
        ).with_columns(
            pl.when(pl.col("index") == "place_segregation")
            .then(pl.lit("place S (hexagons, by time spent)"))
            .when(pl.col("group").is_null()).then(pl.lit("individual S_i, everyone"))
            .otherwise(pl.concat_str(pl.lit("individual S_i, home group "), pl.col("group")))
            .alias("what")
        )  # fmt: skip
        headers = {"what": "measure", "statistic": "statistic", "value": "value"}
        if p.null:
            headers |= {"null_mean": "expected at random", "excess": "excess"}
        self.body.append(H.table(stats, headers))

        places = s.data["places"]
        background = None
        if not self.data.landuse.missing:
            area = self.data.landuse.data["study_area"]
            background = area.filter(~area.is_in(places["place"].implode()))
        outlines = _area_outlines(self.data.lake)
        fig = F.segregation_map(places, background, p.min_devices, outlines)
        self.add_figure(
            "place_segregation_map", fig,
            "Map of hexagons coloured by place segregation S",
            "Each hexagon (about 0.1 km²) coloured by its S, from the time all visitors "
            "spent there" + (", over the outlines of the register areas" if outlines else "")
            + "; the bar gives the distance. No background map is fetched.",
            fmt="svg" if places.height <= MAP_SVG_LIMIT else "png",
            units="S from 0 to 1; hexagons of about 0.1 km²; the bar in km",
        )  # fmt: skip
        fig = F.histograms_by_group(s.data["histogram"], groups, p.min_devices)
        self.add_figure(
            "individual_segregation_histogram", fig,
            "Histograms of individual segregation by home group",
            "How segregated the places each person visits are, by the group of their home "
            "(weighted shares of the group's devices; bins with fewer than "
            f"{p.min_devices} devices left empty).",
            units="S_i from 0 to 1 against the share of the group's devices",
        )  # fmt: skip
        iso = self._isolation_frame(e)
        if iso.height:
            self.add_figure(
                "isolation", F.isolation_bars(iso),
                "Bars of residential and experienced isolation per group",
                "Share of one's own group: among the residents of one's area (register), "
                "among the phones living in one's home hexagon (phones at home), and among "
                "the other people present in the same hexagon and half hour (experienced).",
                units="share of one's own group, 0–1",
            )  # fmt: skip
        ex = e.filter(pl.col("index") == "exposure")
        if ex.height:
            fig = F.heatmap(_matrix(ex, groups), groups, groups,
                            "Co-presence exposure (where time is spent)",
                            "share of co-present time with group h")  # fmt: skip
            self.add_figure(
                "experienced_exposure", fig, "Heat map of the co-presence exposure matrix",
                "Row g, column h: the share of the people that members of group g are "
                "co-present with (same hexagon, same half hour) who belong to group h.",
                units="share of co-present time, 0–1",
            )  # fmt: skip
        row = _value(e, index="place_segregation", statistic="mean", group=None, stratum=None)
        if row:
            extra = (
                f"; expected if groups mixed at random: {row['null_mean']:.3f}" if p.null else ""
            )
            self.glance.append(
                f"Where people spend time: mean place segregation S = {row['value']:.3f}, on a "
                f"scale from 0 (every group equally present) to 1 (one group only){extra}."
            )

    def _isolation_frame(self, e: pl.DataFrame) -> pl.DataFrame:
        names = {
            ("residential_isolation", "population"): "residential (register)",
            ("residential_isolation", "device_homes"): "residential (phones at home)",
            ("experienced_isolation", None): "experienced",
        }
        parts = []
        for (index, comp), label in names.items():
            rows = e.filter(
                (pl.col("index") == index)
                & (pl.col("component").is_null() if comp is None else pl.col("component") == comp)
            )
            if rows.height:
                parts.append(rows.select("group", pl.lit(label).alias("series"), "value"))
        if not parts:
            return pl.DataFrame(
                schema={"group": pl.String, "series": pl.String, "value": pl.Float64}
            )
        return pl.concat(parts).sort("group", maintain_order=True)

    def landuse(self) -> None:
        s = self.data.landuse
        self.body.append("<h2>4. Land use: which kinds of places bring groups together</h2>")
        if s.missing:
            self.body.append(H.missing(s.missing))
            return
        self.body.append(H.paragraph(T.LANDUSE))
        r, summ = s.data["indices"], s.data["summary"]
        means = r.filter(pl.col("index") == "mean_place_segregation")
        cats = means.filter(pl.col("group").is_not_null())
        overall = _value(means, group=None)
        fig = F.category_means(cats, overall["value"] if overall else None)
        self.add_figure(
            "landuse_means", fig, "Mean place segregation by dominant land use, with CIs",
            f"Mean S of the hexagons whose dominant land use is each category (number of "
            f"hexagons in brackets), weighted by time spent; {summ['places']:,} hexagons "
            f"with at least {self.data.params.min_coverage:g} of their area mapped. Open "
            f"circles: fewer than {F.FEW_PLACES} hexagons, read with care.",
            units="mean S from 0 to 1, 95% bootstrap confidence interval",
        )  # fmt: skip
        self.body.append(
            H.table(
                means.with_columns(pl.col("group").fill_null("all places")),
                {
                    "group": "dominant land use",
                    "value": "mean S",
                    "ci_low": "95% CI low",
                    "ci_high": "high",
                    "places": "hexagons",
                    "weight": "share of time",
                },
            )  # fmt: skip
        )
        self.body.append("<h3>Rank correlations with S (Spearman)</h3>")
        sp = r.filter(pl.col("index") == "spearman").with_columns(
            pl.when(pl.col("component") == "share")
            .then(pl.concat_str(pl.lit("share of "), pl.col("group")))
            .when(pl.col("component") == "mix_entropy").then(pl.lit("land-use mix (entropy)"))
            .when(pl.col("component") == "poi_diversity").then(pl.lit("POI diversity"))
            .otherwise(pl.lit("number of POIs"))
            .alias("variable")
        )  # fmt: skip
        sp = sp.with_columns(_p_text(pl.col("p_value")).alias("p_value"))
        self.body.append(
            H.table(
                sp,
                {
                    "variable": "S against",
                    "value": "ρ",
                    "ci_low": "95% CI low",
                    "ci_high": "high",
                    "p_value": "p-value",
                },
            )  # fmt: skip
        )
        reg = r.filter(pl.col("index") == "regression_coefficient")
        if reg.height:
            ref = summ.get("reference_category")
            self.body.append(f"<h3>Regression of S (baseline: {H.esc(ref)})</h3>")
            reg = reg.with_columns(
                pl.when(pl.col("component") == "share")
                .then(pl.concat_str(pl.lit("share of "), pl.col("group"),
                                    pl.lit(" instead of "), pl.col("other_group")))
                .when(pl.col("component") == "mix_entropy").then(pl.lit("land-use mix (entropy)"))
                .otherwise(pl.lit("intercept"))
                .alias("term")
            )  # fmt: skip
            self.body.append(
                H.table(
                    reg,
                    {
                        "term": "term",
                        "value": "coefficient",
                        "ci_low": "95% CI low",
                        "ci_high": "high",
                    },
                )  # fmt: skip
            )
            r2 = _value(r, index="regression_r2")
            if r2:
                self.body.append(f"<p>R² = {H.esc(H.fmt(r2['value']))}.</p>")
        for note in summ.get("notes", []):
            self.body.append(f"<p><em>{H.esc(note)}</em></p>")
        if cats.height:
            # The headline rests on kinds of places with enough hexagons, when there are any.
            pool = cats.filter(pl.col("places") >= F.FEW_PLACES)
            among = f"Among kinds of places with at least {F.FEW_PLACES} hexagons, groups"
            if pool.height < 2:
                pool, among = cats, "Groups"
            lo = pool.sort("value").row(0, named=True)
            hi = pool.sort("value").row(-1, named=True)
            self.glance.append(
                f"{among} meet most in '{lo['group']}' ({lo['places']:,} hexagons, mean S "
                f"{lo['value']:.3f}{_ci(lo)}) and least in '{hi['group']}' "
                f"({hi['places']:,} hexagons, {hi['value']:.3f})."
            )

    def privacy(self) -> None:
        d = self.data
        self.body.append("<h2>5. Privacy</h2>")
        if d.experienced.missing:
            self.body.append(
                H.paragraph(
                    "No visits were analysed, so no device-based figure is shown. Device "
                    "identifiers never appear in this report."
                )
            )
            return
        s = d.experienced.data["summary"]
        self.body.append(
            H.paragraph(
                T.PRIVACY.format(
                    k=d.params.min_devices,
                    suppressed=int(s.get("units_suppressed", 0)),
                    total=int(s.get("units_total", 0)),
                    visits=int(s.get("visits_suppressed", 0)),
                    hidden=int(d.experienced.data["histogram_hidden"]),
                )
            )
        )

    def provenance(self) -> None:
        from importlib.metadata import version

        from segtool.lake import versions

        d = self.data
        self.body.append("<h2>6. Parameters and versions</h2>")
        params = {"report": asdict(d.params)}
        for section in (d.residential, d.experienced, d.landuse, d.linkage or Section()):
            params.update({k: asdict(v) for k, v in section.params.items()})
        self.body.append(H.details("Parameters of this report's computations", params))
        v = versions() | {"matplotlib": version("matplotlib")}
        self.body.append(H.table(pl.DataFrame({"package": list(v), "version": list(v.values())})))
        self.body.append("<h3>How each dataset was made (its manifest)</h3>")
        keep = ("command", "parameters", "seed", "inputs", "rows_in", "rows_written",
                "rows_rejected", "versions")  # fmt: skip
        for name, m in d.manifests.items():
            if name.startswith("_rejects/") or not m:
                continue
            shown = {k: m[k] for k in keep if k in m}
            self.body.append(H.details(f"{name}: {m.get('command', '')}", shown))

    def references(self) -> None:
        self.body.append("<h2>References</h2>")
        items = "".join(f"<li>{H.esc(r)}</li>" for r in [*T.REFERENCES, LINKAGE_REFERENCE])
        self.body.append(f'<ol class="refs">{items}</ol>')


def render(data: ReportData) -> Report:
    """The report page for gathered data (no I/O; same data → same bytes)."""
    from segtool import __version__

    b = _Builder(data)
    b.lake()
    b.residential()
    b.experienced()
    b.landuse()
    render_linkage(b)
    b.privacy()
    b.provenance()
    b.references()
    title = data.params.title
    head = [
        f"<h1>{H.esc(title)}</h1>",
        f'<p class="meta">Lake {H.esc(str(data.lake.root))} · segtool {H.esc(__version__)}</p>',
        H.paragraph(T.INTRO),
    ]
    if b.glance:
        items = "".join(f"<li>{H.esc(g)}</li>" for g in b.glance)
        head.append(f'<div class="glance"><strong>At a glance</strong><ul>{items}</ul></div>')
    summary = {
        "sections_missing": {
            name: s.missing
            for name, s in (
                ("residential", data.residential),
                ("experienced", data.experienced),
                ("landuse", data.landuse),
                ("linkage", data.linkage or Section(missing="not computed")),
            )
            if s.missing
        },
        "figures": list(b.figures),
    }
    if not data.experienced.missing:
        es = data.experienced.data["summary"]
        summary |= {
            "places_published": int(es.get("units", 0)),
            "places_suppressed": int(es.get("units_suppressed", 0)),
            "histogram_entries_hidden": int(data.experienced.data["histogram_hidden"]),
        }
    return Report(html=H.page(title, head + b.body), figures=b.figures, summary=summary)
