"""`segtool stays | homes`: pings → stays → homes (groups and visits: commands/groups_visits.py).

Each command reads lake datasets, calls the pure functions of `segtool.mobility`, writes its
dataset atomically with a manifest, and shows a summary (a table on stdout; typed fields
with `--format json|csv|parquet`). Per-device work runs in device batches (device id modulo
the number of batches), so memory is bounded by the batch size, not by the input.
"""

from __future__ import annotations

import math
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from segtool import console, options
from segtool.errors import UsageError
from segtool.lake import Lake, Manifest
from segtool.lakelock import DEFAULT_WAIT
from segtool.options import AllowStale, Wait
from segtool.present import emit, resolve_format
from segtool.schema import validate

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


class LongStaysChoice(StrEnum):
    keep = "keep"
    cut = "cut"
    drop = "drop"


class RuleChoice(StrEnum):
    auto = "auto"
    median = "median"
    plurality = "plurality"


class HolidayChoice(StrEnum):
    holiday = "holiday"
    weekend = "weekend"
    weekday = "weekday"


def parse_duration(text: str, option: str) -> float:
    """'15m', '3h', '1h30m', '90s' or a plain number of minutes → seconds."""
    text = str(text).strip().lower()
    try:
        return float(text) * 60.0
    except ValueError:
        pass
    m = _DURATION.match(text)
    if not text or not m or not any(m.groups()):
        raise UsageError(f"{option} {text!r} is not a duration", hint="e.g. 15m, 3h, 1h30m, 90s")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s


def _n_batches(rows: int, per_batch: int) -> int:
    if per_batch < 1:
        raise UsageError("the batch size must be at least 1")
    return max(1, math.ceil(rows / per_batch))


def _scan(lake: Lake, name: str) -> pl.LazyFrame:
    frame = lake.scan(name)
    validate(name, frame.collect_schema())
    return frame


def _write(frame: pl.DataFrame, path: Path) -> None:
    """Write one dataset part; rechunked first, so the bytes do not depend on how the
    (multi-threaded) engine happened to chunk the frame — re-runs give identical files."""
    frame.rechunk().write_parquet(path)


def _summary(
    title: str,
    rows: list[tuple[str, float | int | str | None]],
    fmt: options.Format,
    output: options.Output,
    manifest: Manifest | None = None,
) -> None:
    """A long (metric, value) table for people; one typed row for json/csv/parquet."""
    kind = resolve_format(fmt, output)
    if kind == "table":
        frame = pl.DataFrame(
            {"metric": [r[0] for r in rows], "value": [_human(r[1]) for r in rows]},
            schema={"metric": pl.String, "value": pl.String},
        )
    else:
        frame = pl.DataFrame([{k: v for k, v in rows}])
    emit(frame, fmt, output, title=title, manifest=manifest)


def _human(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _finite(summary: dict) -> dict:
    """NaN (an undefined statistic, e.g. ρ over no areas) → None, as JSON has no NaN."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in summary.items()
    }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# ---------------------------------------------------------------------------------------
# stays


def stays(
    lake: options.Lake = Path("lake"),
    allow_stale: AllowStale = False,
    wait: Wait = DEFAULT_WAIT,
    radius: Annotated[
        float, typer.Option("--radius", "-r", help="Radius r (m) around the running centre.")
    ] = 30.0,
    min_duration: Annotated[
        str,
        typer.Option("--min-duration", help="Shortest stay (e.g. 15m; plain numbers are minutes)."),
    ] = "15m",
    max_gap: Annotated[
        str, typer.Option("--max-gap", help="Longest gap between two pings of a stay.")
    ] = "3h",
    max_stay: Annotated[
        str, typer.Option("--max-stay", help="Stays this long or longer are long stays.")
    ] = "12h",
    long_stays: Annotated[
        LongStaysChoice,
        typer.Option(
            "--long-stays",
            help="keep long stays, cut them (close at the last ping before --max-stay and "
            "start a new stay) or drop them.",
        ),
    ] = LongStaysChoice.keep,
    max_outliers: Annotated[
        int,
        typer.Option(
            "--max-outliers",
            help="Pings outside r that are skipped when the next ping comes back within r.",
        ),
    ] = 1,
    merge_gap: Annotated[
        str,
        typer.Option(
            "--merge-gap",
            help="Join two pieces of a stay at the same place (centres within r) when the "
            "pings between them span less than this (0: only adjacent pieces).",
        ),
    ] = "15m",
    accuracy: Annotated[
        bool,
        typer.Option(
            "--accuracy/--no-accuracy",
            help="Let a ping lie farther than r by its reported accuracy_m (capped at r).",
        ),
    ] = True,
    noise_band: Annotated[
        float,
        typer.Option(
            "--noise-band",
            help="Pings between r and this × r of the centre are GPS noise: skipped, and not "
            "counted against --max-outliers (1: off, every ping beyond r counts).",
        ),
    ] = 2.0,
    centre_slack: Annotated[
        bool,
        typer.Option(
            "--centre-slack/--no-centre-slack",
            help="Widen r by √(1 + 1/n) while the centre rests on only n pings.",
        ),
    ] = True,
    fill_gap: Annotated[
        str,
        typer.Option(
            "--fill-gap",
            help="A stay starts/ends in the middle of a reporting gap longer than this (and "
            "at most --max-gap) next to its first/last ping; with two pings or more such a "
            "stay counts if its filled bounds span --min-duration (0: off, bounds at the "
            "pings).",
        ),
    ] = "15m",
    batch_pings: Annotated[
        int, typer.Option("--batch-pings", help="Pings per device batch (bounds memory).")
    ] = 5_000_000,
    force: Annotated[
        bool, typer.Option("--force", help="Replace stays/ even if it holds ingested vendor stays.")
    ] = False,
    memory_budget: options.MemoryBudget = None,
    engine: options.Engine = options.EngineChoice.local,
    scheduler: options.Scheduler = None,
    workers: options.Workers = None,
    fmt: options.Format = None,
    output: options.Output = None,
) -> None:
    """Detect stays in the lake's pings (→ `stays/`).

    A stay is a run of a device's consecutive pings within `--radius` of the stay's running
    centre, lasting at least `--min-duration`, with no gap over `--max-gap`; a lone ping
    outside that comes back is skipped as an outlier, and pieces of one stay split by GPS
    jitter are joined; pings between r and 2r are taken for GPS noise (`--noise-band`), and
    a stay next to a reporting gap starts/ends in its middle (`--fill-gap`). For stay
    bounds at the pings use `--noise-band 1 --fill-gap 0`; for noisier data than ~15 m per
    axis widen `--radius` to about 3σ; see docs/mobility.md. Long stays are kept by default (overnight stays at home often exceed
    12 h). Skip this step if you ingested vendor stays with `segtool ingest stays`.

    **Examples**

    ```
    segtool stays --lake lake
    segtool stays --lake lake --radius 50 --min-duration 10m --long-stays cut
    segtool stays --lake lake --format json
    segtool stays --lake lake --memory-budget 3GB
    segtool stays --lake /shared/lake --engine dask --scheduler tcp://10.0.0.5:8786
    segtool stays --lake lake --noise-band 1 --fill-gap 0
    segtool stays --lake lake --radius 90 --max-outliers 3
    ```
    """
    from segtool import engine as eng
    from segtool.mobility.parts import BYTES_PER_PING, stays_part
    from segtool.mobility.stays import StayCounts, StayParams

    params = StayParams(
        radius_m=radius,
        min_duration_s=parse_duration(min_duration, "--min-duration"),
        max_gap_s=parse_duration(max_gap, "--max-gap"),
        max_stay_s=parse_duration(max_stay, "--max-stay"),
        long_stays=LongStaysChoice(long_stays).value,  # type: ignore[arg-type]
        max_outliers=max_outliers,
        merge_gap_s=parse_duration(merge_gap, "--merge-gap"),
        use_accuracy=accuracy,
        noise_band=noise_band,
        centre_slack=centre_slack,
        fill_gap_s=parse_duration(fill_gap, "--fill-gap"),
    )
    lk = Lake(lake, allow_stale=allow_stale, wait=wait)
    if lk.exists("stays") and not force:
        made_by = (lk.manifest("stays") or {}).get("command")
        if made_by != "stays":
            raise UsageError(
                f"stays/ in {str(lk.root)!r} was written by `{made_by}` (vendor stays)",
                hint="use them as they are (go on with `segtool homes`), or pass --force to "
                "replace them with stays detected from pings",
            )
    pings = _scan(lk, "pings")
    n_pings = pings.select(pl.len()).collect().item()
    cfg = eng.settings(engine, scheduler, memory_budget, workers)
    n_batches = _n_batches(n_pings, cfg.rows_per_batch(batch_pings, BYTES_PER_PING))
    manifest = Manifest(command="stays", parameters={**asdict(params), "batches": n_batches})
    manifest.add_dataset_input(lk, "pings")
    counts = StayCounts()
    devices_in = devices_out = 0
    with (
        lk.writing("stays", manifest) as tmp,
        console.progress() as bar,
        _device_buckets(lk, pings, n_batches, bar) as buckets,
        eng.runner(cfg) as run,
    ):
        task = bar.add_task("detecting stays", total=n_batches)
        parts = [
            (*src, str(tmp.resolve() / f"part-{b:05d}.parquet")) for b, src in enumerate(buckets)
        ]
        for c, n_in, n_out in run.map(stays_part, parts, (str(lk.root.resolve()), params)):
            counts += c
            devices_in += n_in
            devices_out += n_out
            bar.advance(task)
        manifest.rows_in = counts.pings
        manifest.rows_written = counts.stays
        summary = {
            "pings": counts.pings,
            "devices": devices_in,
            "stays": counts.stays,
            "devices_with_stays": devices_out,
            "devices_without_stays": devices_in - devices_out,
            "stays_per_device": _share(counts.stays, devices_out),
            "pings_in_stays_share": _share(counts.pings_in_stays, counts.pings),
            "outliers_skipped": counts.outliers_skipped,
            "pieces_merged": counts.merged,
            "long_stays_cut": counts.long_cut,
            "long_stays_dropped": counts.long_dropped,
            "bounds_filled_into_gaps": counts.bounds_filled,
        }
        manifest.extra = {"summary": _finite(summary)}
    _summary(f"stays → {lk.path('stays')}", list(summary.items()), fmt, output)


@contextmanager
def _device_buckets(lake: Lake, pings: pl.LazyFrame, n: int, bar) -> Iterator[list[tuple]]:
    """The pings split into `n` sets of whole devices (device id modulo n), as sources
    for `segtool.mobility.parts.stays_part`.

    With more than one set, one streaming pass writes the sets as uncompressed Arrow IPC
    into a scratch folder in the lake (removed afterwards), so each set is read once
    instead of filtering the whole dataset n times (≈ 32 bytes of scratch per ping).
    """
    from segtool.mobility.parts import split_pings

    scratch = lake.root.resolve() / f".scratch-stays-{uuid.uuid4().hex}"
    try:
        task = bar.add_task("splitting pings by device", total=None)
        sources = split_pings(pings, n, scratch)
        bar.update(task, total=1, completed=1)
        yield sources
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# homes


def _median(series: pl.Series) -> float | None:
    return float(series.median()) if series.len() else None


def homes(
    lake: options.Lake = Path("lake"),
    allow_stale: AllowStale = False,
    wait: Wait = DEFAULT_WAIT,
    res: Annotated[
        int, typer.Option("--res", min=5, max=12, help="H3 resolution of home cells (5–12).")
    ] = 9,
    tz: Annotated[str, typer.Option("--tz", help="Local time zone of the night window.")] = (
        "Europe/Stockholm"
    ),
    night_start: Annotated[
        float, typer.Option("--night-start", help="Night window start (local hour).")
    ] = 22.0,
    night_end: Annotated[
        float, typer.Option("--night-end", help="Night window end (local hour).")
    ] = 6.0,
    min_nights: Annotated[
        int, typer.Option("--min-nights", help="Distinct nights needed at the home cell.")
    ] = 3,
    work: Annotated[
        bool, typer.Option("--work/--no-work", help="Also detect a work cell (work_cell).")
    ] = False,
    work_start: Annotated[float, typer.Option("--work-start", help="Work window start.")] = 9.0,
    work_end: Annotated[float, typer.Option("--work-end", help="Work window end.")] = 17.0,
    min_work_days: Annotated[
        int, typer.Option("--min-work-days", help="Distinct weekdays needed at the work cell.")
    ] = 3,
    country: Annotated[
        str,
        typer.Option("--country", help="Public holidays (not work days) of this country."),
    ] = "SE",
    memory_budget: options.MemoryBudget = None,
    engine: options.Engine = options.EngineChoice.local,
    scheduler: options.Scheduler = None,
    workers: options.Workers = None,
    fmt: options.Format = None,
    output: options.Output = None,
) -> None:
    """Detect each device's home cell from its stays (→ `homes/`).

    The home is the H3 cell with the most stay time in the night window (22:00–06:00 local)
    among cells seen on at least `--min-nights` distinct nights; `home_share` is the share
    of the device's night time spent there, `area` the register area (from `areas/`, if
    present) containing the cell. With `--work`, the cell outside home with the most
    weekday 09–17 time becomes `work_cell`.

    **Examples**

    ```
    segtool homes --lake lake
    segtool homes --lake lake --res 10 --min-nights 5 --work
    segtool homes --lake lake --engine dask --workers 4
    ```
    """
    from segtool import engine as eng
    from segtool.mobility.homes import HomeParams
    from segtool.mobility.parts import BYTES_PER_STAY_HOMES, homes_part

    params = HomeParams(
        res=res,
        tz=tz,
        night_start_h=night_start,
        night_end_h=night_end,
        min_nights=min_nights,
        work=work,
        work_start_h=work_start,
        work_end_h=work_end,
        min_work_days=min_work_days,
        country=country,
    )
    lk = Lake(lake, allow_stale=allow_stale, wait=wait)
    stays_lf = _scan(lk, "stays")
    areas = None
    if lk.exists("areas"):
        areas = _scan(lk, "areas").select("area", "geometry").collect()
    manifest = Manifest(command="homes", parameters=params)
    manifest.add_dataset_input(lk, "stays")
    if areas is not None:
        manifest.add_dataset_input(lk, "areas")
    cfg = eng.settings(engine, scheduler, memory_budget, workers)
    with console.progress() as bar, eng.runner(cfg) as run:
        task = bar.add_task("detecting homes", total=None)
        n_stays, n_devices = stays_lf.select(pl.len(), pl.col("device").n_unique()).collect().row(0)
        n = max(cfg.batches(n_stays, max(n_stays, 1), BYTES_PER_STAY_HOMES), run.parallelism)
        shared = (str(lk.root.resolve()), params, areas)
        found = pl.concat(run.map(homes_part, [(b, n) for b in range(n)], shared)).sort("device")
        bar.update(task, total=1, completed=1)
    with lk.writing("homes", manifest) as tmp:
        _write(found, tmp / "part-00000.parquet")
        manifest.rows_in = n_stays
        manifest.rows_written = found.height
        summary = {
            "stays": n_stays,
            "devices": n_devices,
            "homes": found.height,
            "home_detection_rate": _share(found.height, n_devices),
            "no_home": n_devices - found.height,
            "median_nights": _median(found["nights"]),
            "median_home_share": _median(found["home_share"]),
            "homes_in_areas": int(found["area"].is_not_null().sum()) if areas is not None else None,
        }
        if work:
            summary["work_cells"] = int(found["work_cell"].is_not_null().sum())
        manifest.extra = {"summary": _finite(summary)}
    if areas is None:
        console.note("no areas/ in the lake: homes carry no register area")
    _summary(f"homes → {lk.path('homes')}", list(summary.items()), fmt, output)
