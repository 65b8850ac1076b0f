"""What the report shows, computed from the lake with the documented APIs: the lake's
contents (`segtool.lakeinfo`), residential indices (`segtool.indices.residential`),
experienced indices (`segtool.indices.experienced`) and land use
(`segtool.indices.landuse`). Only aggregates leave this module: per-device results are
turned into a histogram whose bins with fewer than k devices are hidden.

A section whose datasets are missing, or whose computation meets bad input, carries the
reason instead of its data, so the rest of the report is still written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from segtool.errors import SegtoolError, UsageError
from segtool.lake import Lake

EXPERIENCED_INDICES = (
    "place_segregation",
    "individual_segregation",
    "experienced_isolation",
    "residential_isolation",
    "exposure",
)


@dataclass(frozen=True)
class ReportParams:
    """What the report computes (serialised into its manifest).

    - `min_devices`: places (and histogram bins) with fewer distinct devices are hidden.
    - `bootstrap`: replicates for the residential (multinomial) and land-use (places)
      confidence intervals; `null`: permutation-null replicates of the experienced
      indices (the value expected if groups mixed at random); `seed`: for both.
    - `reference`: reference shares of S (`uniform` or `population`).
    - `min_coverage`: land-use coverage a hexagon needs to be analysed.
    - `bins`: bins of the S_i histograms.
    - `title`: the report's title.
    """

    min_devices: int = 5
    bootstrap: int = 200
    null: int = 0
    seed: int = 0
    reference: str = "uniform"
    min_coverage: float = 0.5
    bins: int = 10
    title: str = "Segregation report"

    def __post_init__(self) -> None:
        if self.min_devices < 1:
            raise UsageError("--min-devices must be at least 1")
        if self.bootstrap < 0 or self.null < 0:
            raise UsageError("--bootstrap and --null take a number of replicates (≥ 0)")
        if not 2 <= self.bins <= 100:
            raise UsageError("--bins must lie between 2 and 100")


@dataclass
class Section:
    """One part of the report: its data (frames, numbers) or why it is missing."""

    data: dict = field(default_factory=dict)
    missing: str | None = None
    params: dict = field(default_factory=dict)


@dataclass
class ReportData:
    lake: Lake
    params: ReportParams
    lake_info: pl.DataFrame
    rejected: pl.DataFrame
    manifests: dict[str, dict]
    residential: Section
    experienced: Section
    landuse: Section
    inputs: list[str] = field(default_factory=list)
    linkage: Section | None = None  # segtool/report/linkage.py


def _missing(lake: Lake, *names: str) -> str | None:
    from segtool.lake import PRODUCED_BY

    absent = [n for n in names if not lake.exists(n)]
    if not absent:
        return None
    how = "; ".join(f"`{PRODUCED_BY.get(n, n)}`" for n in absent)
    return f"the lake has no {', '.join(absent)} dataset (made by {how})"


def lake_section(lake: Lake) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, dict]]:
    """Datasets (rows, devices, time range, rows in/written/rejected, command — no
    bounding box: the report shows no coordinates), rejected rows by reason, manifests."""
    from segtool.lakeinfo import lake_info

    info = lake_info(lake)
    manifests = dict(zip(info["dataset"].to_list(), info["manifest"].to_list(), strict=True))
    table = info.select(
        "dataset", "kind", "rows", "devices", "start", "end",
        "rows_in", "rows_written", "rows_rejected", "command",
    )  # fmt: skip
    rejected = [
        (name, reason, int(n))
        for name, m in manifests.items()
        if not name.startswith("_rejects/")
        for reason, n in sorted((m or {}).get("rejected_by_reason", {}).items())
        if n
    ]
    rej = pl.DataFrame(
        rejected, schema={"dataset": pl.String, "reason": pl.String, "rows": pl.Int64}, orient="row"
    )
    return table, rej, manifests


def residential_section(lake: Lake, params: ReportParams) -> Section:
    from segtool.indices.counts import read_counts
    from segtool.indices.residential import ResidentialParams, compute

    why = _missing(lake, "population")
    if why:
        return Section(missing=why)
    rp = ResidentialParams(bootstrap=params.bootstrap, seed=params.seed)
    try:
        counts = read_counts(lake.path("population"))
        result = compute(counts.frame, rp)
    except SegtoolError as e:
        return Section(missing=f"residential indices could not be computed: {e}")
    groups = counts.groups
    return Section(
        data={
            "indices": result,
            "groups": groups,
            "units": counts.units,
            **_profile(lake),
        },
        params={"residential": rp},
    )


def _profile(lake: Lake) -> dict:
    """D and H on egohoods of growing radius over the register population apportioned to
    H3 cells (`population_cells/`): {"profile": frame}, {} without that dataset, or
    {"profile_missing": why} when it cannot be computed."""
    from segtool.indices.counts import read_counts
    from segtool.indices.spatial import segregation_profile

    if not lake.exists("population_cells"):
        return {}
    try:
        return {"profile": segregation_profile(read_counts(lake.path("population_cells")).frame)}
    except SegtoolError as e:
        return {"profile_missing": f"segregation by scale could not be computed: {e}"}


def s_i_histogram(
    devices: pl.DataFrame, groups: list[str], k: int, bins: int = 10
) -> tuple[pl.DataFrame, int]:
    """Histogram of individual segregation S_i by home group: per (group, bin) the
    weighted share of the group's devices. Bins holding fewer than k devices are hidden
    (share 0) and their devices counted. Soft membership: a device counts in each group
    with its share. Returns (group, bin_low, bin_high, devices, share) and the number of
    (device, group) entries hidden."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    s = devices["segregation"].to_numpy()
    w = devices["weight"].to_numpy()
    ok = np.isfinite(s)
    b = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
    if "group" in devices.columns:
        member = np.stack([(devices["group"] == g).to_numpy().astype(float) for g in groups], 1)
    else:
        member = np.stack([devices[f"share_{g}"].fill_null(0.0).to_numpy() for g in groups], 1)
    member = np.where(ok[:, None], member, 0.0)
    rows = []
    hidden = 0
    for j, g in enumerate(groups):  # K groups: a handful of vectorised passes
        present = member[:, j] > 0
        count = np.bincount(b[present], minlength=bins)
        mass = np.bincount(b, weights=w * member[:, j], minlength=bins)
        total = mass.sum()
        shown = count >= k
        hidden += int(count[~shown].sum())
        share = np.where(shown, mass / total if total > 0 else 0.0, 0.0)
        rows.append(
            pl.DataFrame(
                {
                    "group": [g] * bins,
                    "bin_low": edges[:-1],
                    "bin_high": edges[1:],
                    "devices": np.where(shown, count, 0).astype(np.int64),
                    "share": share,
                }
            )
        )
    return pl.concat(rows), hidden


def experienced_section(lake: Lake, params: ReportParams) -> Section:
    from segtool.indices.experienced import ExperiencedParams, experienced, panel_from_lake

    why = _missing(lake, "visits", "devices")
    if why:
        return Section(missing=why)
    ep = ExperiencedParams(
        indices=EXPERIENCED_INDICES,
        min_devices=params.min_devices,
        reference=params.reference,
        null=params.null,
        seed=params.seed,
    )
    try:
        result = experienced(panel_from_lake(lake, ep), ep)
    except SegtoolError as e:
        return Section(missing=f"experienced indices could not be computed: {e}")
    groups = list(result.summary.get("groups") or [])
    hist, hidden = s_i_histogram(result.devices, groups, params.min_devices, params.bins)
    means = result.indices.filter(
        (pl.col("index") == "individual_segregation") & (pl.col("statistic") == "mean")
    ).select("group", pl.col("value").alias("group_mean"))
    hist = hist.join(means, on="group", how="left")
    places = result.places.select("place", "devices", "weighted_dwell", "segregation")
    return Section(
        data={
            "indices": result.indices,
            "places": places,  # published hexagons only (≥ k devices), no device ids
            "histogram": hist,
            "histogram_hidden": hidden,
            "groups": groups,
            "summary": result.summary,
        },
        params={"experienced": ep},
    )


def landuse_section(lake: Lake, params: ReportParams, experienced: Section) -> Section:
    from segtool.indices.landuse import LanduseParams, analyse

    why = _missing(lake, "landuse")
    if why:
        return Section(missing=why)
    if experienced.missing:
        return Section(missing=f"needs place segregation, and {experienced.missing}")
    lp = LanduseParams(
        min_devices=params.min_devices,
        reference=params.reference,
        min_coverage=params.min_coverage,
        bootstrap=params.bootstrap,
        seed=params.seed,
    )
    summary = experienced.data["summary"]
    try:
        result = analyse(
            experienced.data["places"],
            lake.scan("landuse"),
            lake.scan("pois") if lake.exists("pois") else None,
            lp,
            suppressed_places=int(summary.get("units_suppressed", 0)),
        )
    except SegtoolError as e:
        return Section(missing=f"land use could not be related to segregation: {e}")
    cells = lake.scan("landuse").select("cell").unique().sort("cell").collect()["cell"]
    return Section(
        data={
            "indices": result.indices,
            "summary": result.summary,
            "study_area": cells,  # land-use hexagons: the map's grey background
        },
        params={"landuse": lp},
    )


def gather(lake: Lake, params: ReportParams) -> ReportData:
    """Everything the report shows, from the lake."""
    if not lake.root.is_dir():
        from segtool.errors import InputError

        raise InputError(f"no lake at {str(lake.root)!r}", hint="pass --lake DIR")
    info, rejected, manifests = lake_section(lake)
    if info.height == 0:
        from segtool.errors import InputError

        raise InputError(f"the lake {str(lake.root)!r} holds no datasets yet")
    residential = residential_section(lake, params)
    exp = experienced_section(lake, params)
    land = landuse_section(lake, params, exp)
    from segtool.report.linkage import linkage_section

    link = linkage_section(lake, params)
    used = ["population", "visits", "devices", "homes", "landuse", "pois"]
    return ReportData(
        lake=lake,
        params=params,
        lake_info=info,
        rejected=rejected,
        manifests=manifests,
        residential=residential,
        experienced=exp,
        landuse=land,
        inputs=[n for n in used if lake.exists(n)],
        linkage=link,
    )
