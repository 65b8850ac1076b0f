"""`segtool demo`: the whole pipeline on the bundled synthetic city, with a summary.

The demo is a list of stages (`STAGES`), each a function `(DemoContext) -> rows` that runs
segtool commands on the sample or the demo lake (in-process, their output going to
`demo.log`) and returns `(item, value)` rows for the summary. A new capability appends
its stage. `ctx.run(...)` raises when a command fails, so `make demo` fails loudly.

Stages: sample → ingest (pings, register population + areas, land use, POIs) → mobility
(stays, homes, groups, visits) → residential indices → experienced indices → truth →
land use (S by kind of place) → report (one HTML page) → results (tables, GeoParquet
layers for QGIS, report.html).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer

from segtool import console, runner
from segtool.errors import InputError, SegtoolError
from segtool.lake import Lake, sha256_file
from segtool.present import emit


@dataclass
class DemoContext:
    """What the stages share: the sample folder, the demo lake, a scratch folder and the
    folder that receives the result tables."""

    sample: Path
    lake: Path
    work: Path
    out: Path
    command: Any = None  # the whole app (click's root command), which runs each stage
    manifest: dict = field(default_factory=dict)

    @property
    def pings(self) -> list[Path]:
        return sorted(self.sample.glob("pings*.csv*"))

    @property
    def log(self) -> Path:
        return self.work / "demo.log"

    def run(self, *args) -> None:
        """Run `segtool ARGS…` in-process with its output in the demo log; raise if it
        fails, quoting the log's tail so the reason is on screen."""
        argv = [str(a) for a in args]
        with self.log.open("a") as log, redirect_stdout(log), redirect_stderr(log):
            print(f"$ segtool {' '.join(argv)}", flush=True)
            code = runner.run(self.command, argv)
        if code != 0:
            tail = "\n".join(self.log.read_text().splitlines()[-15:])
            raise SegtoolError(
                f"demo stage failed: `segtool {' '.join(argv)}` exited {code}\n{tail}"
            )

    def results(self, name: str) -> pl.DataFrame:
        """A JSON result table written by a stage into the results folder."""
        return pl.DataFrame(json.loads((self.out / name).read_text()), infer_schema_length=None)


@dataclass(frozen=True)
class Stage:
    name: str
    does: str
    run: Callable[[DemoContext], list[tuple[str, str]]]


def _sample_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """Check the sample against its manifest and describe what it holds."""
    m = ctx.manifest
    outputs = m.get("outputs", {})
    changed = [
        name
        for name, meta in outputs.items()
        if not (ctx.sample / name).exists() or sha256_file(ctx.sample / name) != meta["sha256"]
    ]
    if changed:
        console.note(f"the sample differs from its manifest: {', '.join(changed)}")
    s = m.get("summary", {})
    p = m.get("parameters", {})
    planted = s.get("planted_rejects", {})
    rows = [
        ("sample", str(ctx.sample)),
        (
            "intact",
            "yes (sha256 as in _manifest.json)"
            if not changed
            else f"no: {len(changed)} files changed",
        ),
        ("period", f"{p.get('start')} + {p.get('days')} days ({s.get('time_zone')})"),
        (
            "register areas",
            f"{s.get('areas', 0):,} (areas.gpkg, EPSG:3006; residents in population.csv)",
        ),
        ("residents", f"{s.get('residents', 0):,} in income quartiles Q1–Q4"),
        (
            "planted segregation",
            f"--segregation {p.get('segregation')}: D = {s.get('dissimilarity', 0):.3f}, M = {s.get('mutual_information', 0):.3f}",
        ),
        ("planted homophily", f"--homophily {p.get('homophily')}"),
        ("POIs", f"{s.get('pois', 0):,} (pois.gpkg); land use in landuse.gpkg"),
        ("devices", f"{s.get('devices', 0):,}"),
        ("ping rows", f"{s.get('ping_rows', 0):,} in {', '.join(f.name for f in ctx.pings)}"),
        ("  clean", f"{s.get('clean_pings', 0):,}"),
        (
            "  planted bad rows",
            f"{sum(planted.values()):,} ({', '.join(f'{k} {v}' for k, v in sorted(planted.items()))})",
        ),
        ("true stays", f"{s.get('stays', 0):,} (truth/stays.parquet)"),
    ]
    return rows


def _ingest_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """Raw vendor pings, register population with area polygons (EPSG:3006), land use
    and POIs into the lake; the synthetic data use the public synthetic key."""
    s = ctx.sample
    ctx.run("ingest", "pings", *ctx.pings, "--lake", ctx.lake, "--synthetic")
    ctx.run(
        "ingest", "population", s / "population.csv", "--areas", s / "areas.gpkg",
        "--area-id", "deso", "--lake", ctx.lake,
    )  # fmt: skip
    ctx.run("ingest", "landuse", s / "landuse.gpkg", "--category", "category", "--lake", ctx.lake)
    ctx.run("ingest", "pois", s / "pois.gpkg", "--category", "category", "--lake", ctx.lake)
    lake = Lake(ctx.lake)
    pings = lake.manifest("pings")
    reasons = ", ".join(f"{k} {v:,}" for k, v in pings["rejected_by_reason"].items())
    areas = lake.manifest("areas")
    return [
        ("ping rows read", f"{pings['rows_in']:,}"),
        ("  written to pings/", f"{pings['rows_written']:,}"),
        ("  rejected (in _rejects/)", f"{pings['rows_rejected']:,}: {reasons}"),
        ("register areas", f"{areas['rows_written']:,} (reprojected EPSG:3006 → 4326)"),
        ("land-use hexagons", f"{lake.scan('landuse').select('cell').unique().collect().height:,}"),
        ("POI hexagons", f"{lake.scan('pois').select('cell').unique().collect().height:,}"),
    ]


def _mobility_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """Pings → stays → homes → groups (income quartile of the home area, weights) →
    H3 visits in half-hour slots."""
    for command in ("stays", "homes", "groups", "visits"):
        ctx.run(command, "--lake", ctx.lake)
    lake = Lake(ctx.lake)
    stays = lake.manifest("stays")["summary"]
    homes = lake.manifest("homes")["summary"]
    groups = lake.manifest("devices")["summary"]
    visits = lake.manifest("visits")["summary"]
    return [
        ("stays", f"{stays['stays']:,} ({stays['stays_per_device']:.1f} per device)"),
        ("homes found", f"{homes['homes']:,} of {homes['devices']:,} devices"),
        (
            "devices with a group",
            f"{groups['devices_assigned']:,} (coverage ρ = {groups['coverage_spearman_rho']:.2f})",
        ),
        ("visits (res 9, 30 min)", f"{visits['visits']:,} by {visits['devices_kept']:,} devices"),
    ]


def _value(frame: pl.DataFrame, index: str, **where) -> float:
    rows = frame.filter(pl.col("index") == index)
    for column, value in where.items():
        rows = rows.filter(pl.col(column) == value)
    return float(rows["value"][0])


def _residential_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """Where groups live: multigroup indices of the register population, with a
    bootstrap confidence interval."""
    ctx.run(
        "indices", "residential", Lake(ctx.lake).path("population"),
        "--bootstrap", "100", "--seed", "1", "--format", "json",
        "--output", ctx.out / "residential.json",
    )  # fmt: skip
    r = ctx.results("residential.json")

    def ci(index: str) -> str:
        row = r.filter(pl.col("index") == index).row(0, named=True)
        return f"{row['value']:.3f} (95% CI {row['ci_low']:.3f}–{row['ci_high']:.3f})"

    # the same on H3 cells, and on egohoods of grid_disk(2) (~1 km): how much of the
    # segregation is local
    ctx.run(
        "indices", "residential", Lake(ctx.lake).path("population_cells"),
        "--index", "dissimilarity", "--format", "json",
        "--output", ctx.out / "residential_cells.json",
    )  # fmt: skip
    ctx.run(
        "indices", "residential", Lake(ctx.lake).path("population_cells"),
        "--spatial", "2", "--index", "dissimilarity", "--format", "json",
        "--output", ctx.out / "residential_spatial.json",
    )  # fmt: skip
    cells = _value(ctx.results("residential_cells.json"), "dissimilarity")
    egohoods = _value(ctx.results("residential_spatial.json"), "dissimilarity")
    return [
        ("dissimilarity D", ci("dissimilarity")),
        ("Theil's H", ci("theil_h")),
        ("mutual information M (nats)", ci("mutual_information")),
        (
            "isolation of Q1 / Q4",
            f"{_value(r, 'isolation', group='Q1'):.3f} / {_value(r, 'isolation', group='Q4'):.3f}",
        ),
        ("D on H3 cells / on egohoods (grid_disk 2)", f"{cells:.3f} / {egohoods:.3f}"),
    ]


def _experienced_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """Where groups spend their time: place and individual segregation, experienced vs
    residential isolation, with a permutation null; places as GeoParquet."""
    lake = Lake(ctx.lake)
    # SES for economic segregation: the device's income quartile as a rank (1–4).
    ses = ctx.work / "ses.parquet"
    lake.scan("devices").select(
        "device", pl.col("group").str.strip_prefix("Q").cast(pl.Float64).alias("ses")
    ).collect().write_parquet(ses)
    ctx.run(
        "indices", "experienced", "--lake", ctx.lake, "--ses", ses,
        "--ice-high", "Q4", "--ice-low", "Q1", "--null", "20", "--seed", "1",
        "--places", ctx.out / "places.geoparquet",
        "--format", "json", "--output", ctx.out / "experienced.json",
    )  # fmt: skip
    e = ctx.results("experienced.json")

    def mean(index: str) -> str:
        row = e.filter(
            (pl.col("index") == index) & pl.col("group").is_null() & (pl.col("statistic") == "mean")
        ).row(0, named=True)
        return f"{row['value']:.3f} (expected with groups shuffled: {row['null_mean']:.3f})"

    rows = [
        ("place segregation S (dwell-weighted mean)", mean("place_segregation")),
        ("individual segregation S_i (mean)", mean("individual_segregation")),
        ("home-area segregation (mean)", f"{_value(e, 'home_segregation', statistic='mean'):.3f}"),
    ]
    for g in ("Q1", "Q4"):
        exp = _value(e, "experienced_isolation", group=g)
        res = e.filter(
            (pl.col("index") == "residential_isolation")
            & (pl.col("group") == g)
            & (pl.col("component") == "population")
        )["value"]
        rows.append(
            (f"isolation of {g}: experienced / residential", f"{exp:.3f} / {float(res[0]):.3f}")
        )
    if (e["index"] == "economic_segregation").any():
        es = _value(e, "economic_segregation", component="correlation")
        rows.append(("economic segregation ES (SES = quartile)", f"{es:.3f}"))
    published = _value(e, "places")
    suppressed = _value(e, "suppressed_places")
    rows.append(
        ("places published / suppressed (< 5 devices)", f"{published:,.0f} / {suppressed:,.0f}")
    )
    return rows


def _truth_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """The synthetic city knows each device's true home: how many did the pipeline find?"""
    from segtool.ingest.pseudonym import Pseudonymiser, load_key

    truth_file = ctx.sample / "truth" / "devices.parquet"
    if not truth_file.exists():
        return [("truth", "not available for this sample")]
    truth = pl.read_parquet(truth_file)
    truth = truth.with_columns(
        Pseudonymiser(load_key(synthetic=True)).hash_series(truth["device_id"]).alias("device")
    )
    lake = Lake(ctx.lake)
    found = truth.join(lake.scan("homes").collect(), on="device", how="left", suffix="_found")
    n = truth.height
    cell_ok = int((found["home_cell_found"] == found["home_cell"]).fill_null(False).sum())
    area_ok = int((found["area"] == found["home_deso"]).fill_null(False).sum())
    return [
        ("home cell as in the truth", f"{cell_ok:,} of {n:,} devices ({cell_ok / n:.1%})"),
        ("home area as in the truth", f"{area_ok:,} of {n:,} devices ({area_ok / n:.1%})"),
    ]


def _landuse_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """Which kinds of places bring groups together: S by dominant land use, rank
    correlations with the land-use mix and POIs, a regression, bootstrap CIs."""
    ctx.run(
        "indices", "landuse", "--lake", ctx.lake, "--bootstrap", "1000", "--seed", "1",
        "--hexagons", ctx.out / "landuse_hexagons.geoparquet",
        "--format", "json", "--output", ctx.out / "landuse.json",
    )  # fmt: skip
    r = ctx.results("landuse.json")
    means = r.filter((pl.col("index") == "mean_place_segregation") & pl.col("group").is_not_null())
    ordered = means.sort("value")

    def mean(row: dict) -> str:
        return (
            f"{row['group']}: S = {row['value']:.3f} (95% CI {row['ci_low']:.3f}–"
            f"{row['ci_high']:.3f}, {row['places']} hexagons)"
        )

    rho = r.filter((pl.col("index") == "spearman") & (pl.col("component") == "mix_entropy"))
    rho_row = rho.row(0, named=True)
    return [
        ("most mixed kind of place", mean(ordered.row(0, named=True))),
        ("least mixed kind of place", mean(ordered.row(-1, named=True))),
        (
            "S vs land-use mix (Spearman ρ)",
            f"{rho_row['value']:.3f} (95% CI {rho_row['ci_low']:.3f} to {rho_row['ci_high']:.3f})",
        ),
        ("hexagons analysed", f"{_value(r, 'places'):,.0f}"),
    ]


def _report_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """One HTML page for planners: the lake, residential, experienced and land use."""
    out = ctx.out / "report.html"
    ctx.run(
        "report", "--lake", ctx.lake, "--out", out,
        "--bootstrap", "200", "--null", "20", "--seed", "1",
    )  # fmt: skip
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    figures = len(manifest["summary"]["figures"])
    return [("report", f"{out} ({out.stat().st_size / 1e3:,.0f} kB, {figures} figures)")]


def _results_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    files = sorted(p.name for p in ctx.out.iterdir() if not p.name.endswith(".manifest.json"))
    return [("result files", f"{ctx.out}: {', '.join(files)}")]


STAGES: list[Stage] = [
    Stage("sample", "the bundled synthetic city", _sample_stage),
    Stage("ingest", "pings, population, land use and POIs into the lake", _ingest_stage),
    Stage("mobility", "stays, homes, groups and H3 visits", _mobility_stage),
    Stage("residential", "segregation where people live", _residential_stage),
    Stage("experienced", "segregation where people spend their time", _experienced_stage),
    Stage("truth", "the pipeline against the synthetic city's truth", _truth_stage),
    Stage("landuse", "which kinds of places bring groups together", _landuse_stage),
    Stage("report", "an HTML report for planners", _report_stage),
    Stage("results", "tables and a map layer to open", _results_stage),
]


def _prepare_sample(sample: Path | None, work: Path) -> Path:
    from segtool.synth import generate_city
    from segtool.synth.sample import SAMPLE_PARAMS, bundled_sample

    if sample is not None:
        if not (sample / "_manifest.json").exists():
            raise InputError(f"{str(sample)!r} is not a synth output (no _manifest.json)")
        return sample
    found = bundled_sample()
    if found is not None:
        return found
    console.note("no bundled sample found (data/sample); generating it")
    target = work / "sample"
    generate_city(SAMPLE_PARAMS, target)
    return target


def demo(
    cli: typer.Context,
    sample: Annotated[
        Path | None,
        typer.Option(
            "--sample",
            help="A `segtool synth` folder to use instead of the bundled sample.",
            file_okay=False,
        ),
    ] = None,
    lake: Annotated[
        Path | None,
        typer.Option(
            "--lake",
            help="Lake folder for the demo (default: a temporary folder, removed afterwards).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Keep the result tables (JSON, GeoParquet of places) in this folder.",
            file_okay=False,
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the temporary folder (lake, log) and print its path."),
    ] = False,
) -> None:
    """Run the whole pipeline on the bundled sample and print a summary.

    The sample (`data/sample/`, made by `segtool synth`) is a synthetic city around
    Stockholm with planted segregation and known truth. The demo ingests it into a
    temporary lake, detects stays, homes, groups and visits, and computes residential
    and experienced segregation. Every command's own output goes to `demo.log`.

    **Examples**

    ```
    segtool demo
    segtool demo --out demo-output      # keep the JSON tables, GeoParquet layers and report.html
    segtool demo --sample my-city --lake demo-lake --keep
    ```
    """
    work = Path(tempfile.mkdtemp(prefix="segtool-demo-"))
    try:
        ctx = DemoContext(
            sample=_prepare_sample(sample, work),
            lake=lake if lake is not None else work / "lake",
            work=work,
            out=out if out is not None else work / "results",
            command=cli.find_root().command,  # the app `segtool demo` was called from
        )
        ctx.out.mkdir(parents=True, exist_ok=True)
        ctx.manifest = json.loads((ctx.sample / "_manifest.json").read_text())
        rows: list[tuple[str, str, str]] = []
        timing: list[tuple[str, str, float]] = []
        total = time.perf_counter()
        with console.progress(transient=True) as bar:
            task = bar.add_task("demo", total=len(STAGES))
            for stage in STAGES:
                bar.update(task, description=f"{stage.name}: {stage.does}")
                console.info(f"[bold]demo:[/] {stage.name} — {stage.does}")
                began = time.perf_counter()
                for item, value in stage.run(ctx):
                    rows.append((stage.name, item, value))
                timing.append((stage.name, stage.does, round(time.perf_counter() - began, 2)))
                bar.advance(task)
        summary = pl.DataFrame(rows, schema=["stage", "item", "value"], orient="row")
        emit(summary, "table", None, title="segtool demo: the bundled synthetic city")
        times = pl.DataFrame(timing, schema=["stage", "does", "seconds"], orient="row")
        emit(times, "table", None, title=f"stages ({time.perf_counter() - total:.1f} s in all)")
        if keep:
            console.info(f"kept the demo folder {work} (lake: {ctx.lake}, log: {ctx.log})")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
