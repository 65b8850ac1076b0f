"""`segtool indices linkage` — a thin layer over `segtool.indices.linkage`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import polars as pl
import typer

from segtool import console
from segtool.errors import UsageError
from segtool.lake import Lake as LakeStore
from segtool.lake import Manifest
from segtool.options import Format, Lake, MinDevices, Output, Seed
from segtool.present import emit, resolve_format

COMMAND = "indices linkage"
# the homophily table on a terminal; json/csv/parquet carry every column
TERMINAL_COLUMNS = ("index", "network", "term", "value", "expected", "se_cluster", "ci_low",
                    "ci_high", "null_mean", "p_value")  # fmt: skip


class Units(StrEnum):
    areas = "areas"
    cells = "cells"


class Family(StrEnum):
    poisson = "poisson"
    quasipoisson = "quasipoisson"
    negbin = "negbin"


class Table(StrEnum):
    edges = "edges"
    homophily = "homophily"
    mixing = "mixing"


def linkage(
    lake: Lake = Path("lake"),
    units: Units = typer.Option(
        Units.areas,
        "--units",
        help="areas: the lake's register areas (home area → area of the visited cell); "
        "cells: H3 parents at --res.",
    ),
    res: int = typer.Option(7, "--res", help="H3 resolution of --units cells (≤ the visits')."),
    attribute: str = typer.Option(
        "median",
        "--attribute",
        help="Homophily attribute: median (median resident's position on the ordered "
        "groups Q1…QK), share:GROUP, or a column of --attributes.",
    ),
    attributes: Path | None = typer.Option(
        None,
        "--attributes",
        help="Your own unit attributes (CSV/Parquet: unit or area, and the --attribute column).",
        dir_okay=False,
    ),
    flows: Path | None = typer.Option(
        None,
        "--flows",
        help="Aggregated flows (origin, destination, count) instead of the lake's visits: "
        "the visitation network only.",
        dir_okay=False,
    ),
    use_flows: bool = typer.Option(False, "--use-flows", help="Use the lake's flows/ dataset."),
    min_devices: MinDevices = 5,
    permutations: int = typer.Option(
        200, "--permutations", min=0, help="Null replicates: the attribute shuffled over units."
    ),
    bootstrap: int = typer.Option(
        200, "--bootstrap", min=0, help="Cluster-bootstrap replicates (origins) of the gravity GLM."
    ),
    family: Family = typer.Option(Family.poisson, "--family", help="Gravity GLM family."),
    copresence: bool = typer.Option(
        True, "--copresence/--no-copresence", help="Also build the co-presence network."
    ),
    max_pairs: int = typer.Option(
        1_000_000,
        "--max-pairs",
        min=1,
        help="Gravity design: every origin × destination pair (zeros included) up to this "
        "many, else only the linked pairs.",
    ),
    seed: Seed = 0,
    level: float = typer.Option(
        0.95, "--level", help="Confidence level of CIs and null intervals."
    ),
    table: Table = typer.Option(
        Table.edges,
        "--table",
        help="Which result --format/--output shows: edges, homophily or mixing.",
    ),
    fmt: Format = None,
    output: Output = None,
    edges: Path | None = typer.Option(
        None,
        "--edges",
        help="Write the published edges between distinct units as lines between centroids "
        "(GeoParquet, opens in QGIS).",
        dir_okay=False,
    ),
) -> None:
    """Area linkage networks and mobility homophily: which neighbourhoods are tied together
    by the people who move between them, and do similar neighbourhoods link more than
    distance explains (Heine et al. 2021)?

    Builds the **visitation** network V_AB (weighted hours residents of A spend in B) and the
    **co-presence** network C_AB (hours residents of A share an H3 cell and half hour with
    residents of B). Each edge: observed, expected under independence V_A· V_·B / V_··, ratio,
    centroid distance, devices; edges behind fewer than `--min-devices` devices are
    suppressed and counted. Homophily: Newman's assortativity on the attribute (and its
    quartiles) with a permutation null, a gravity GLM of V_AB on |x_A − x_B|, log distance
    and log sizes with cluster-bootstrap CIs by origin, and the share of linkage within the
    same quartile against its expectation. A summary goes to stderr; `--table` picks what
    `--format`/`--output` shows.

    **Examples**

    ```
    segtool indices linkage --lake lake
    segtool indices linkage --lake lake --table homophily --permutations 500 --seed 1
    segtool indices linkage --lake lake --units cells --res 7 --edges links.geoparquet -o edges.parquet
    segtool indices linkage --lake lake --attribute share:Q1 --family negbin --table mixing -f json
    segtool indices linkage --lake lake --attributes income.csv --attribute median_income
    ```
    """
    # imported here: scipy and statsmodels would slow every other command's start-up
    from segtool.indices.linkage import LinkageParams, from_lake
    from segtool.indices.linkage import linkage as compute

    params = LinkageParams(
        units=units.value,
        res=res,
        attribute=attribute,
        min_devices=min_devices,
        permutations=permutations,
        bootstrap=bootstrap,
        family=family.value,
        copresence=copresence,
        max_pairs=max_pairs,
        seed=seed,
        level=level,
    )
    if flows is not None and use_flows:
        raise UsageError("choose one input: --flows FILE or --use-flows")
    store = LakeStore(lake)
    manifest = Manifest(command=COMMAND, parameters=params, seed=seed)
    att = None
    if attributes is not None:
        from segtool.indices.experienced import read_table

        att = read_table(attributes).collect()
        manifest.add_input(attributes, role="attributes")
    with console.progress() as bar:
        task = bar.add_task("reading the lake", total=None)
        if flows is not None or use_flows:
            data = _flows_data(store, flows, params, att, manifest)
        else:
            for name in ("visits", "homes", "devices", "areas", "population", "population_cells"):
                if store.exists(name):
                    manifest.add_dataset_input(store, name)
            data = from_lake(store, params, attributes=att)
        bar.update(task, description="networks and homophily", total=None)
        gtask = bar.add_task("gravity bootstrap", total=bootstrap or None, visible=bootstrap > 0)

        def tick(step, n=1):
            if step == "gravity":
                bar.advance(gtask, n)

        result = compute(data, params, on_progress=tick)

    summary = result.summary
    rejected = summary.get("rejected_by_reason", {})
    manifest.rows_in = summary.get("rows_in")
    manifest.rows_rejected = sum(rejected.values())
    manifest.rejected_by_reason = rejected
    manifest.extra = {"summary": {k: v for k, v in summary.items() if k != "notes"}}
    frame = {"edges": result.edges, "homophily": result.homophily, "mixing": result.mixing}[
        table.value
    ]
    manifest.rows_written = frame.height
    if table == Table.homophily and resolve_format(fmt, output) == "table":
        frame = frame.select(c for c in TERMINAL_COLUMNS if c in frame.columns)  # fits a screen
    title = {
        "edges": "Linkage edges",
        "homophily": "Mobility homophily",
        "mixing": "Quartile mixing",
    }
    emit(frame, fmt, output, title=title[table.value], manifest=manifest)
    if edges is not None:
        _write_edges(result, edges, manifest)
    _print_summary(result)


def _flows_data(store, flows, params, att, manifest):
    from segtool.indices.experienced import read_table
    from segtool.indices.linkage.inputs import flow_units, from_flows

    if flows is not None:
        frame = read_table(flows)
        manifest.add_input(flows, role="flows")
    else:
        frame = store.scan("flows")
        manifest.add_dataset_input(store, "flows")
    for name in ("areas", "population"):
        if store.exists(name):
            manifest.add_dataset_input(store, name)
    data = from_flows(frame, pl.DataFrame(schema={"unit": pl.String}), params)
    data.units = flow_units(store, data.units["unit"], params, att)
    return data


def _write_edges(result, path: Path, manifest: Manifest) -> None:
    from segtool.geo.geoparquet import write_geoparquet
    from segtool.geo.lines import with_edge_lines
    from segtool.lake import write_manifest_beside

    lines = with_edge_lines(result.edges, result.units)
    write_geoparquet(lines, path, geometry_types=["LineString"])
    write_manifest_beside(path, manifest)
    console.info(f"wrote {path} ({lines.height} edges between distinct units)")


def _print_summary(result) -> None:
    s = result.summary
    rejected = s.get("rejected_by_reason") or {}
    used = s.get("rows_in", 0) - sum(rejected.values())
    what = "flow rows" if s.get("source") == "flows" else "visits"
    line = f"{what} {s.get('rows_in', 0):,}: {used:,} placed in the network"
    if rejected:
        line += ", set aside " + ", ".join(f"{k} {v:,}" for k, v in sorted(rejected.items()))
    console.info(line)
    console.info(
        f"units {s['units_in_network']:,} ({s['units_without_attribute']:,} without an attribute, "
        f"{s['units_without_residents']:,} without residents)"
    )
    for net in ("visitation", "copresence"):
        if net in s:
            e = s[net]
            console.info(
                f"{net}: edges {e['edges_published']:,} published, {e['edges_suppressed']:,} "
                f"suppressed (< {s['min_devices']} devices; "
                f"{e['amount_suppressed'] / max(e['amount_total'], 1e-300):.1%} of the linkage)"
            )
    h = result.homophily
    for row in h.filter(pl.col("index") == "assortativity").iter_rows(named=True):
        null = (
            f" (null {row['null_mean']:.3f}, p {row['p_value']:.3g})"
            if row.get("null_mean") is not None
            else ""
        )
        console.info(f"assortativity {row['network']} {row['term']}: {row['value']:.3f}{null}")
    g = h.filter((pl.col("index") == "gravity") & (pl.col("term") == "attribute_difference"))
    if g.height:
        r = g.row(0, named=True)
        ci = f" (CI {r['ci_low']:.3f} – {r['ci_high']:.3f})" if r.get("ci_low") is not None else ""
        console.info(f"gravity β |Δ attribute|: {r['value']:.4f}{ci}; < 0 means homophily")
    for n in s.get("notes", []):
        console.note(n)
