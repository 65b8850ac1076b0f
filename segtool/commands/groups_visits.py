"""`segtool groups` and `segtool visits`: devices to register groups, stays to H3 visits.

Split from commands/mobility.py (stays, homes), whose shared helpers they use.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from segtool import console, options
from segtool.commands.mobility import (
    HolidayChoice,
    RuleChoice,
    _finite,
    _human,
    _n_batches,
    _scan,
    _share,
    _summary,
    _write,
)
from segtool.errors import InputError, UsageError
from segtool.lake import Lake, Manifest
from segtool.lakelock import DEFAULT_WAIT
from segtool.options import AllowStale, Wait
from segtool.present import emit

# ---------------------------------------------------------------------------------------
# groups


def groups(
    lake: options.Lake = Path("lake"),
    allow_stale: AllowStale = False,
    wait: Wait = DEFAULT_WAIT,
    soft: Annotated[
        bool,
        typer.Option(
            "--soft/--hard",
            help="Soft: each device carries its home area's group shares (one column per "
            "group). Hard (default): one group per device.",
        ),
    ] = False,
    rule: Annotated[
        RuleChoice,
        typer.Option(
            "--rule",
            help="Hard group of an area: median (group of the median resident, for ordered "
            "groups such as Q1–Q4), plurality (largest group) or auto.",
        ),
    ] = RuleChoice.auto,
    order: Annotated[
        str | None,
        typer.Option("--order", help="Group order for the median rule, e.g. Q1,Q2,Q3,Q4."),
    ] = None,
    attributes: Annotated[
        Path | None,
        typer.Option(
            "--attributes",
            help="CSV/Parquet with device (pseudonymised id) and group: hard groups from "
            "there instead of the home area.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    trim: Annotated[
        float, typer.Option("--trim", help="Weights are capped at sqrt(CV²+1)·TRIM·median.")
    ] = 3.5,
    min_devices: options.MinDevices = 5,
    memory_budget: options.MemoryBudget = None,
    engine: options.Engine = options.EngineChoice.local,
    scheduler: options.Scheduler = None,
    workers: options.Workers = None,
    fmt: options.Format = None,
    output: options.Output = None,
) -> None:
    """Assign each device a group and a weight (→ `devices/`) and show panel coverage.

    Hard groups come from the home area (the quartile of the area's median resident for
    ordered groups, else its largest group) or from `--attributes`; `--soft` gives each
    device its home area's composition. Weights = area residents ÷ devices homed there,
    trimmed. The coverage table (devices against residents per area, areas with fewer than
    `--min-devices` devices suppressed) is printed or written to `--output`; its Spearman ρ
    says how well the panel follows the population.

    **Examples**

    ```
    segtool groups --lake lake
    segtool groups --lake lake --soft
    segtool groups --lake lake --rule plurality -o coverage.csv
    ```

    Groups work on one row per device (`homes/`) and the register: they run in this
    process with any `--engine` (the options are accepted so every stage takes the same).
    """
    from segtool.engine import apply_memory_budget, settings
    from segtool.mobility.groups import GroupParams, assign_groups, coverage, register_key

    apply_memory_budget(settings(engine, scheduler, memory_budget, workers).memory_budget)

    params = GroupParams(
        soft=soft,
        rule=RuleChoice(rule).value,  # type: ignore[arg-type]
        order=tuple(g.strip() for g in order.split(",") if g.strip()) if order else None,
        trim=trim,
    )
    lk = Lake(lake, allow_stale=allow_stale, wait=wait)
    homes_df = _scan(lk, "homes").collect() if lk.exists("homes") else None
    population = None
    if lk.exists("population"):
        population = _scan(lk, "population").collect()
    attrs = _read_table(attributes) if attributes else None
    if attrs is None and (homes_df is None or population is None):
        missing = "homes" if homes_df is None else "population"
        lk.require(missing)
    if attrs is not None and soft:
        raise UsageError("--soft needs the home area's composition, not --attributes")
    result = assign_groups(homes_df, population, params, attrs)
    manifest = Manifest(command="groups", parameters=params)
    for name, present in (("homes", homes_df), ("population", population)):
        if present is not None:
            manifest.add_dataset_input(lk, name)
    if attributes:
        manifest.add_input(attributes, role="attributes")
    cov = None
    if homes_df is not None and population is not None:
        cov = coverage(homes_df, population, register_key(population), min_devices)
    n_in = homes_df.height if homes_df is not None else result.devices.height
    summary: dict = {
        "devices_with_home": homes_df.height if homes_df is not None else None,
        "devices_assigned": result.devices.height,
        **{f"dropped_{k}": v for k, v in result.dropped.items()},
        "rule": result.rule,
        "groups": ",".join(result.order),
    }
    if result.weights is not None:
        w = result.weights
        summary.update(
            weight_median=w.median, weight_cv=w.cv, weight_cap=w.cap, weights_trimmed=w.trimmed
        )
    if cov is not None:
        summary.update(
            coverage_spearman_rho=cov.rho,
            coverage_p_value=cov.p_value,
            coverage_units=cov.units,
            coverage_suppressed=cov.suppressed,
        )
    with lk.writing("devices", manifest) as tmp:
        _write(result.devices, tmp / "part-00000.parquet")
        manifest.rows_in = n_in
        manifest.rows_written = result.devices.height
        manifest.rows_rejected = n_in - result.devices.height
        manifest.rejected_by_reason = dict(result.dropped)
        manifest.extra = {"summary": _finite(summary)}
    _print_lines(f"groups → {lk.path('devices')}", summary)
    if result.devices.height == 0:
        console.note("no device could be given a group; check homes/ areas and population/ units")
    if cov is None:
        return
    published = Manifest(
        command="groups coverage",
        parameters={"min_devices": min_devices, **asdict(params)},
        extra=_finite(
            {"spearman_rho": cov.rho, "p_value": cov.p_value, "suppressed": cov.suppressed}
        ),
    )
    published.add_dataset_input(lk, "homes")
    published.add_dataset_input(lk, "population")
    emit(
        cov.table,
        fmt,
        output,
        title=f"coverage: devices vs residents (Spearman ρ = {_human(cov.rho)}; "
        f"{cov.suppressed} areas with < {min_devices} devices suppressed)",
        manifest=published if output else None,
    )


def _read_table(path: Path) -> pl.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(path, schema_overrides={"device": pl.UInt64, "group": pl.String})
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"cannot read {path}: {e}") from e


def _print_lines(title: str, summary: dict) -> None:
    console.info(f"[bold]{title}[/]")
    for k, v in summary.items():
        console.info(f"  {k}: {_human(v)}")


# ---------------------------------------------------------------------------------------
# visits


def visits(
    lake: options.Lake = Path("lake"),
    allow_stale: AllowStale = False,
    wait: Wait = DEFAULT_WAIT,
    res: Annotated[
        int, typer.Option("--res", min=5, max=12, help="H3 analysis resolution (5–12).")
    ] = 9,
    tz: Annotated[str, typer.Option("--tz", help="Local time zone of slots and day types.")] = (
        "Europe/Stockholm"
    ),
    holidays: Annotated[
        HolidayChoice,
        typer.Option(
            "--holidays",
            help="Label public holidays as holiday (own day type), weekend, or weekday "
            "(ignore them).",
        ),
    ] = HolidayChoice.holiday,
    de_facto_holidays: Annotated[
        bool,
        typer.Option(
            "--de-facto-holidays",
            help="Also treat Midsummer Eve, Christmas Eve and New Year's Eve as holidays.",
        ),
    ] = False,
    country: Annotated[
        str, typer.Option("--country", help="Country of the public holidays (ISO code).")
    ] = "SE",
    min_days: Annotated[
        int, typer.Option("--min-days", help="Keep devices with stays on at least N days.")
    ] = 7,
    min_places: Annotated[
        int, typer.Option("--min-places", help="Keep devices with at least N distinct cells.")
    ] = 2,
    batch_stays: Annotated[
        int, typer.Option("--batch-stays", help="Stays per device batch (bounds memory).")
    ] = 2_000_000,
    memory_budget: options.MemoryBudget = None,
    engine: options.Engine = options.EngineChoice.local,
    scheduler: options.Scheduler = None,
    workers: options.Workers = None,
    fmt: options.Format = None,
    output: options.Output = None,
) -> None:
    """Bin stays to H3 cells and half-hour slots (→ `visits/`).

    Every stay becomes one row per local half-hour slot it overlaps, with the dwell (s) in
    that slot, the slot number (0–47, local time, DST-correct) and the day type (weekday,
    weekend or holiday). Devices with stays on fewer than `--min-days` days or at fewer
    than `--min-places` cells are left out and counted by reason.

    **Examples**

    ```
    segtool visits --lake lake
    segtool visits --lake lake --res 10 --min-days 3 --holidays weekend
    segtool visits --lake lake --memory-budget 3GB
    ```
    """
    from segtool import engine as eng
    from segtool.mobility.filters import DeviceFilter, device_activity, filter_devices
    from segtool.mobility.parts import BYTES_PER_STAY_VISITS, visits_part
    from segtool.mobility.visits import VisitParams

    params = VisitParams(
        res=res,
        tz=tz,
        holidays=HolidayChoice(holidays).value,  # type: ignore[arg-type]
        de_facto_holidays=de_facto_holidays,
        country=country,
    )
    rule = DeviceFilter(min_days=min_days, min_places=min_places)
    lk = Lake(lake, allow_stale=allow_stale, wait=wait)
    stays_lf = _scan(lk, "stays")
    manifest = Manifest(
        command="visits", parameters={"visits": asdict(params), "filters": asdict(rule)}
    )
    manifest.add_dataset_input(lk, "stays")
    cfg = eng.settings(engine, scheduler, memory_budget, workers)
    with console.progress() as bar, eng.runner(cfg) as run:
        task = bar.add_task("filtering devices", total=None)
        n_stays = stays_lf.select(pl.len()).collect().item()
        activity = device_activity(stays_lf, res, tz).collect(engine="streaming")
        kept, dropped = filter_devices(activity, rule)
        bar.update(task, total=1, completed=1)
        per_batch = cfg.rows_per_batch(batch_stays, BYTES_PER_STAY_VISITS)
        n_batches = max(_n_batches(n_stays, per_batch), run.parallelism)
        rows = 0
        dwell = 0.0
        by_daytype: dict[str, float] = {}
        with lk.writing("visits", manifest) as tmp:
            task = bar.add_task("binning visits", total=n_batches)
            parts = [
                (b, n_batches, str(tmp.resolve() / f"part-{b:05d}.parquet"))
                for b in range(n_batches)
            ]
            shared = (str(lk.root.resolve()), params, kept.select("device"))
            for n_rows, part_dwell, part_by_daytype in run.map(visits_part, parts, shared):
                rows += n_rows
                dwell += part_dwell
                for d, s in part_by_daytype.items():
                    by_daytype[d] = by_daytype.get(d, 0.0) + s
                bar.advance(task)
            manifest.rows_in = n_stays
            manifest.rows_written = rows
            summary = {
                "stays": n_stays,
                "devices": activity.height,
                **{f"dropped_{k}": v for k, v in dropped.items()},
                "devices_kept": kept.height,
                "visits": rows,
                "visits_per_device": _share(rows, kept.height),
                "dwell_hours": dwell / 3600.0,
                **{
                    f"dwell_share_{d}": _share(by_daytype.get(d, 0.0), dwell)  # type: ignore[arg-type]
                    for d in ("weekday", "weekend", "holiday")
                },
            }
            manifest.extra = {"summary": _finite(summary)}
    _summary(f"visits → {lk.path('visits')}", list(summary.items()), fmt, output)
