"""`segtool indices experienced` — a thin layer over `segtool.indices.experienced`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import polars as pl
import typer

from segtool import console, options
from segtool.errors import InputError, UsageError
from segtool.lake import Lake as LakeStore
from segtool.lake import Manifest
from segtool.lakelock import DEFAULT_WAIT
from segtool.options import (
    AllowStale,
    Format,
    Lake,
    MinDevices,
    Output,
    Reference,
    ReferenceShares,
    Seed,
    Wait,
)
from segtool.present import emit

COMMAND = "indices experienced"


class By(StrEnum):
    slot = "slot"
    hour = "hour"
    daytype = "daytype"


class Resample(StrEnum):
    poisson = "poisson"
    multinomial = "multinomial"


def experienced(
    lake: Lake = Path("lake"),
    allow_stale: AllowStale = False,
    wait: Wait = DEFAULT_WAIT,
    visits: Path | None = typer.Option(
        None,
        "--visits",
        help="A plain visits table (CSV/Parquet: device, place, group, dwell_s; optional "
        "weight, start, slot, daytype, home, ses) instead of the lake's visits/ + devices/.",
        dir_okay=False,
    ),
    flows: Path | None = typer.Option(
        None,
        "--flows",
        help="Aggregated flows (destination or place, count, and a group column, one column "
        "per group, or an origin matched to the population): place-level indices only.",
        dir_okay=False,
    ),
    use_flows: bool = typer.Option(False, "--use-flows", help="Use the lake's flows/ dataset."),
    population: Path | None = typer.Option(
        None,
        "--population",
        help="Population counts (unit or cell, group, count); default: the lake's population/.",
        dir_okay=False,
    ),
    ses: Path | None = typer.Option(
        None, "--ses", help="SES per device (device, ses) for economic segregation.", dir_okay=False
    ),
    ses_column: str = typer.Option(
        "ses",
        "--ses-column",
        help="Name of the SES column (in --ses, the visits table or devices/).",
    ),
    ses_rank: bool = typer.Option(False, "--ses-rank", help="Use percentile ranks of SES."),
    by: list[By] = typer.Option(
        [], "--by", help="Stratify places by slot (half hour), hour or daytype (repeatable)."
    ),
    bin: str = typer.Option("30m", "--bin", help="Co-presence time bin: 5m, 30m, 1h, …"),
    reference: Reference = ReferenceShares.uniform,
    leave_one_out: bool = typer.Option(
        False, "--leave-one-out", help="Also S_i with each device's own time removed from places."
    ),
    ice_high: str | None = typer.Option(None, "--ice-high", help="ICE: the advantaged group."),
    ice_low: str | None = typer.Option(None, "--ice-low", help="ICE: the disadvantaged group."),
    min_devices: MinDevices = 5,
    bootstrap: int = typer.Option(
        0, "--bootstrap", min=0, help="Bootstrap replicates over devices."
    ),
    resample: Resample = typer.Option(
        Resample.poisson, "--resample", help="Bootstrap multipliers: poisson(1) or multinomial."
    ),
    null: int = typer.Option(
        0, "--null", min=0, help="Permutation-null replicates (groups shuffled across devices)."
    ),
    seed: Seed = 0,
    level: float = typer.Option(0.95, "--level", help="Confidence level of the bootstrap CIs."),
    index: list[str] = typer.Option(
        [],
        "--index",
        help="Compute and report only these indices (repeatable; faster, also with "
        "--bootstrap/--null).",
    ),
    tz: str = typer.Option(
        "Europe/Stockholm", "--tz", help="Time zone of naive start times and derived slots."
    ),
    fmt: Format = None,
    output: Output = None,
    places: Path | None = typer.Option(
        None,
        "--places",
        help="Write per-place results here: Parquet, or GeoParquet with hexagons when the name "
        "ends in .geoparquet or with --geo (H3 places only), GeoJSON for .geojson (cells as "
        "H3 strings); .csv also works.",
        dir_okay=False,
    ),
    geo: bool = typer.Option(False, "--geo", help="Write --places as GeoParquet."),
    exposure: bool | None = typer.Option(
        None,
        "--exposure/--no-exposure",
        help="Write per-device results to the lake's exposure/ dataset (default: on when "
        "reading the lake, off for --visits).",
    ),
    memory_budget: options.MemoryBudget = None,
    engine: options.Engine = options.EngineChoice.local,
    scheduler: options.Scheduler = None,
    workers: options.Workers = None,
) -> None:
    """Experienced (exposure) segregation: how segregated are the places where people spend
    their time, and whom do they meet — compared with where they live.

    Reads the lake's `visits/` + `devices/` (and `homes/`, `population/` when present), or a
    plain table with `--visits`, or aggregated flows with `--flows`. Reports place segregation
    S (Moro et al. 2021), ICE (Liao et al. 2025), individual segregation S_i by home group,
    experienced vs residential isolation (Athey et al. 2021), the co-presence exposure matrix
    and economic segregation (Nilforoshan et al. 2023). Places visited by fewer than
    `--min-devices` devices are set aside before anything is computed and counted. Output
    holds no device id; per-device results go only to the lake's `exposure/`.

    **Examples**

    ```
    segtool indices experienced --lake lake --bootstrap 200 --null 100 --seed 1
    segtool indices experienced --visits visits.parquet --by slot --places places.geoparquet
    segtool indices experienced --lake lake --ice-high Q4 --ice-low Q1 -f json -o exp.json
    segtool indices experienced --lake lake --bootstrap 500 --seed 1 --engine dask
    ```
    """
    # imported here, not at the top: the engine pulls in scipy and numba, which would
    # slow down every other command's start-up (and `segtool --help`)
    from segtool import engine as eng
    from segtool.indices.experienced import (
        ExperiencedParams,
        panel_from_flows,
        panel_from_lake,
        panel_from_long,
    )
    from segtool.indices.experienced import experienced as compute_experienced

    params = ExperiencedParams(
        by=tuple(b.value for b in by),
        bin=bin,
        reference=reference.value,
        leave_one_out=leave_one_out,
        min_devices=min_devices,
        ice_high=ice_high,
        ice_low=ice_low,
        ses_rank=ses_rank,
        bootstrap=bootstrap,
        resample=resample.value,
        null=null,
        seed=seed,
        level=level,
        tz=tz,
        indices=tuple(dict.fromkeys(index)),
    )
    sources = [x for x in (visits, flows) if x is not None] + ([True] if use_flows else [])
    if len(sources) > 1:
        raise UsageError("choose one input: the lake's visits, --visits, --flows or --use-flows")
    manifest = Manifest(command=COMMAND, parameters=params, seed=seed)
    store = LakeStore(lake, allow_stale=allow_stale, wait=wait)
    pop = _read_population(population, manifest)
    ses_frame = _read_ses(ses, ses_column, manifest)

    cfg = eng.settings(engine, scheduler, memory_budget, workers)
    with console.progress() as bar, eng.runner(cfg) as run:
        task = bar.add_task("preparing visits", total=None)
        if visits is not None:
            lf = read_table(visits)
            manifest.add_input(visits, role="visits")
            if ses_column != "ses" and ses_column in lf.collect_schema().names():
                lf = lf.rename({ses_column: "ses"})
            panel = panel_from_long(lf, params, population=pop, ses=ses_frame, source=str(visits))
        elif flows is not None or use_flows:
            if flows is not None:
                flow_frame = read_table(flows)
                manifest.add_input(flows, role="flows")
            else:
                flow_frame = store.scan("flows")
                manifest.add_dataset_input(store, "flows")
            if pop is None and store.exists("population"):
                pop = store.scan("population").collect()
                manifest.add_dataset_input(store, "population")
            panel = panel_from_flows(flow_frame, params, population=pop)
        else:
            for name in ("visits", "devices", "homes", "population"):
                if store.exists(name) and not (name == "population" and pop is not None):
                    manifest.add_dataset_input(store, name)
            panel = panel_from_lake(
                store, params, ses=ses_frame, ses_column=ses_column, population=pop
            )
        bar.update(task, total=1, completed=1)
        reps = params.bootstrap + params.null if panel.kind == "visits" else 0
        rep_task = bar.add_task("replicates", total=reps or None, visible=reps > 0)
        result = compute_experienced(
            panel,
            params,
            on_block=lambda kind, n: bar.advance(rep_task, n),
            map_blocks=_blocks_on(run, cfg),
        )

    summary = result.summary
    manifest.rows_in = summary.get("rows_in")
    rejected = summary.get("rejected_by_reason", {})
    manifest.rows_rejected = sum(rejected.values())
    manifest.rejected_by_reason = rejected
    manifest.extra = {"summary": _jsonable_summary(summary)}

    frame = result.indices
    if index:  # only these were computed; keep the filter explicit
        frame = frame.filter(pl.col("index").is_in(index))
    frame = _with_counts(frame, summary)
    manifest.rows_written = frame.height
    emit(frame, fmt, output, title="Experienced segregation", manifest=manifest)

    if places is not None:
        _write_places(result.places, places, geo, manifest)
    write_dev = exposure if exposure is not None else (visits is None and panel.kind == "visits")
    if write_dev and result.devices is not None:
        _write_exposure(store, result.devices, manifest)
    _print_summary(summary)


def _blocks_on(run, cfg):
    """Replicate blocks as engine tasks with Dask (the panel sent once to each worker);
    None in this process, where the blocks share the panel across threads."""
    if cfg.engine != "dask":
        return None
    from segtool.indices.experienced.compute import replicate_block

    def map_blocks(ctx, kind, blocks):
        return run.map(replicate_block, [(kind, b) for b in blocks], (ctx,))

    return map_blocks


def read_table(path: Path) -> pl.LazyFrame:
    from segtool.indices.experienced import read_table as read

    return read(path)


def _read_population(path: Path | None, manifest: Manifest) -> pl.DataFrame | None:
    if path is None:
        return None
    frame = read_table(path).collect()
    manifest.add_input(path, role="population")
    return frame


def _read_ses(path: Path | None, column: str, manifest: Manifest) -> pl.DataFrame | None:
    if path is None:
        return None
    frame = read_table(path).collect()
    manifest.add_input(path, role="ses")
    if column not in frame.columns or "device" not in frame.columns:
        raise InputError(f"{path} needs columns device and {column}")
    return frame.select("device", pl.col(column).alias("ses"))


def _with_counts(frame: pl.DataFrame, summary: dict) -> pl.DataFrame:
    """Append the privacy counts (published and suppressed places) as rows."""
    rows = pl.DataFrame(
        {
            "index": ["places", "suppressed_places"],
            "value": [float(summary.get("units", 0)), float(summary.get("units_suppressed", 0))],
        }
    )
    return pl.concat([frame, rows], how="diagonal_relaxed")


def _jsonable_summary(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "source" or isinstance(v, str)}


def _write_places(frame: pl.DataFrame, path: Path, geo: bool, manifest: Manifest) -> None:
    from segtool.lake import atomic_file, write_manifest_beside

    suffix = path.suffix.lower()
    if geo or suffix == ".geoparquet":
        from segtool.geo.geoparquet import write_geoparquet
        from segtool.geo.hexagons import with_cell_polygons

        write_geoparquet(with_cell_polygons(_as_cells(frame), "place"), path)
    elif suffix == ".geojson":  # for web maps and any GIS; read back with pyogrio
        from segtool.geo.geojson import write_geojson
        from segtool.geo.hexagons import with_cell_polygons

        write_geojson(with_cell_polygons(_as_cells(frame), "place"), path, cells=("place",))
    elif suffix == ".csv":
        with atomic_file(path) as tmp:
            frame.write_csv(tmp)
    else:
        with atomic_file(path) as tmp:
            frame.write_parquet(tmp)
    write_manifest_beside(path, manifest)
    console.info(f"wrote {path} ({frame.height} places)")


def _as_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """Places as UInt64 H3 cells (from integers or H3 strings), or a clear error."""
    import polars_h3 as plh3

    dtype = frame.schema["place"]
    if dtype == pl.String:
        cells = frame.select(plh3.str_to_int("place").alias("c"))["c"]
    elif dtype.is_integer():
        cells = frame["place"].cast(pl.UInt64, strict=False)
    else:
        cells = None
    if (
        cells is None
        or cells.null_count()
        or not frame.select(plh3.is_valid_cell(cells.alias("c")).all()).item()
    ):
        raise UsageError("--geo / .geoparquet needs places that are H3 cells")
    return frame.with_columns(cells.alias("place"))


def _write_exposure(store: LakeStore, devices: pl.DataFrame, manifest: Manifest) -> None:
    m = Manifest(
        command=COMMAND,
        parameters=manifest.parameters,
        inputs=manifest.inputs,
        seed=manifest.seed,
        rows_in=devices.height,
        rows_written=devices.height,
        rows_rejected=0,
    )
    with store.writing("exposure", m) as tmp:
        devices.write_parquet(tmp / "part-0.parquet")
    console.info(f"wrote {store.path('exposure')} ({devices.height} devices)")


def _print_summary(s: dict) -> None:
    flows = s.get("source") == "flows"
    parts = [
        f"{'flow rows' if flows else 'devices'} {s.get('devices', 0):,}",
        None if flows else f"visits {s.get('visits', 0):,}",
        f"places published {s.get('units', 0):,}",
        f"suppressed {s.get('units_suppressed', 0):,} (< {s.get('min_devices')} "
        f"{'people' if flows else 'devices'}; "
        f"{s.get('visits_suppressed', 0):,} visits, {s.get('dwell_suppressed_s', 0.0) / 3600:,.1f} h)",
    ]
    console.info(" · ".join(p for p in parts if p))
    rejected = s.get("rejected_by_reason") or {}
    if rejected:
        console.note(
            "rows set aside: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rejected.items()))
        )
    if s.get("devices_without_group"):
        console.note(f"{s['devices_without_group']:,} devices have no group and were left out")
    if s.get("devices_shares_normalised"):
        console.note(
            f"group shares of {s['devices_shares_normalised']:,} devices did not sum to 1: normalised"
        )
    for n in s.get("notes", []):
        console.note(n)
