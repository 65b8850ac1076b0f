"""`segtool ingest pings | stays | flows` (issue: ingest). The geographic inputs
(population, land use, POIs) are in `ingest_geo.py`; cli.py wires both into `ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.markup import escape

from segtool import console
from segtool.errors import UsageError
from segtool.ingest import columns as cols
from segtool.ingest.fields import parse_bbox
from segtool.ingest.pseudonym import load_key
from segtool.ingest.timeparse import DEFAULT_TZ, EPOCH_UNITS
from segtool.lake import DEFAULT_LAKE, Lake
from segtool.lakelock import DEFAULT_WAIT
from segtool.options import Format, Wait
from segtool.options import Lake as LakeOpt
from segtool.present import emit, resolve_format

Files = Annotated[
    list[str],
    typer.Argument(
        help="CSV, CSV.gz (or .bz2/.xz) or Parquet files; quoted globs like 'data/*.csv.gz' are expanded.",
        show_default=False,
    ),
]


def _col(role: str, what: str) -> Any:
    return typer.Option(
        f"--{role.replace('_', '-')}",
        help=f"Column holding the {what} (default: auto-detected from the header).",
        show_default=False,
    )


IdCol = Annotated[str | None, _col("id", "device id")]
TimeCol = Annotated[str | None, _col("time", "time (epoch s/ms/µs or ISO 8601)")]
LatCol = Annotated[str | None, _col("lat", "latitude (or northing with --crs)")]
LonCol = Annotated[str | None, _col("lon", "longitude (or easting with --crs)")]
Tz = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help=f"Time zone of times without an offset (default {DEFAULT_TZ}). Stored as UTC.",
        show_default=False,
    ),
]
Crs = Annotated[
    str | None,
    typer.Option(
        "--crs",
        help="CRS of the coordinates, e.g. EPSG:3006 (SWEREF 99 TM; then --lat is the northing "
        "and --lon the easting). Default EPSG:4326 (WGS84).",
        show_default=False,
    ),
]
Bbox = Annotated[
    str | None,
    typer.Option(
        "--bbox",
        help="Keep only points inside min_lon,min_lat,max_lon,max_lat (WGS84); "
        "others are rejected as outside_bbox.",
        show_default=False,
    ),
]
SaltFile = Annotated[
    Path | None,
    typer.Option(
        "--salt-file",
        help="File holding the secret key for pseudonymising device ids "
        "(else $SEGTOOL_SALT). Keep it outside the lake.",
        dir_okay=False,
        show_default=False,
    ),
]
Synthetic = Annotated[
    bool,
    typer.Option(
        "--synthetic",
        help="Synthetic data: without a secret, hash ids with segtool's fixed public key.",
    ),
]
Append = Annotated[
    bool,
    typer.Option(
        "--append",
        help="Add the files to the existing dataset (a file already ingested is refused).",
    ),
]
Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file with [columns] (role = column) and [options] (e.g. tz, crs).",
        dir_okay=False,
        show_default=False,
    ),
]
Delimiter = Annotated[
    str | None,
    typer.Option(
        "--delimiter", help="Field delimiter of text files (default: detected).", show_default=False
    ),
]
Encoding = Annotated[
    str | None,
    typer.Option("--encoding", help="Text encoding (default utf-8).", show_default=False),
]
EpochUnit = Annotated[
    str | None,
    typer.Option(
        "--epoch-unit",
        help="Unit of numeric times: auto (from the magnitude), s, ms, us or ns.",
        show_default=False,
    ),
]


def _opt(value: Any, config: cols.Config, name: str, default: Any) -> Any:
    """Command-line value, else the config's [options] value, else the default."""
    if value is not None:
        return value
    return config.options.get(name, default)


def _common(config: cols.Config, tz, delimiter, encoding, epoch_unit) -> dict:
    unit = _opt(epoch_unit, config, "epoch_unit", "auto")
    if unit not in EPOCH_UNITS:
        raise UsageError(f"--epoch-unit {unit!r}: use one of {', '.join(EPOCH_UNITS)}")
    tz = _opt(tz, config, "tz", DEFAULT_TZ)
    _check_tz(tz)
    return {
        "tz": tz,
        "delimiter": _opt(delimiter, config, "delimiter", None),
        "encoding": _opt(encoding, config, "encoding", "utf-8"),
        "epoch_unit": unit,
    }


def _check_tz(tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {tz!r}", hint="use an IANA name such as Europe/Stockholm or UTC"
        ) from None


def _crs(value: str | None, config: cols.Config) -> str:
    from segtool.ingest.crs import parse_crs

    crs = str(_opt(value, config, "crs", "EPSG:4326"))
    parse_crs(crs)  # a UsageError when unknown
    return crs


def show_report(report, fmt) -> None:
    """The summary: one row per file (and a total) with the rejects by reason."""
    kind = resolve_format(fmt, None)
    files = report.to_frame()
    if kind == "table":
        emit(files, "table", title=f"ingest {report.dataset}: rows read = written + rejected")
        reasons = report.reasons_frame()
        if reasons.height:
            emit(reasons, "table", title="rejected rows by reason")
    else:
        wide = files
        for reason in sorted(report.rejected_by_reason):
            per_file = [f.rejected_by_reason.get(reason, 0) for f in report.files]
            wide = wide.with_columns(
                pl.Series(reason, [*per_file, report.rejected_by_reason[reason]], dtype=pl.Int64)
            )
        emit(wide, kind)
    console.info(
        escape(
            f"{report.dataset}: {report.rows_in:,} rows read = {report.rows_written:,} written "
            f"+ {report.rows_rejected:,} rejected → {report.lake}/{report.dataset} "
            f"({report.dataset_rows:,} rows, {report.partitions} partition(s) written); "
            f"rejects in {report.lake}/_rejects/{report.dataset}"
        )
    )


def pings(
    files: Files,
    lake: LakeOpt = Path(DEFAULT_LAKE),
    wait: Wait = DEFAULT_WAIT,
    id: IdCol = None,
    time: TimeCol = None,
    lat: LatCol = None,
    lon: LonCol = None,
    accuracy: Annotated[str | None, _col("accuracy", "accuracy in metres (optional)")] = None,
    tz: Tz = None,
    crs: Crs = None,
    bbox: Bbox = None,
    max_accuracy: Annotated[
        float | None,
        typer.Option(
            "--max-accuracy",
            help="Reject pings whose accuracy is worse than this many metres (default 100; "
            "inf keeps all).",
            show_default=False,
        ),
    ] = None,
    salt_file: SaltFile = None,
    synthetic: Synthetic = False,
    append: Append = False,
    config: Config = None,
    delimiter: Delimiter = None,
    encoding: Encoding = None,
    epoch_unit: EpochUnit = None,
    fmt: Format = None,
) -> None:
    """Ingest raw GPS pings into the lake's `pings/` dataset (pseudonymised, UTC, by date).

    Columns are auto-detected (id/device_id/uid/caid/user; ts/timestamp/time/datetime/epoch;
    lat/latitude; lon/lng/longitude; accuracy) or named with options or `--config`. Every
    row is written or rejected with a reason into `_rejects/pings/`; the counts are printed
    and kept in `pings/_manifest.json`. Device ids become HMAC-SHA256 pseudonyms keyed by
    `$SEGTOOL_SALT` or `--salt-file`.

    **Examples**

    ```
    export SEGTOOL_SALT=$(cat ~/.segtool-salt)
    segtool ingest pings vendor/2024-03-*.csv.gz --lake lake
    segtool ingest pings export.csv --id hashed_uid --time event_ts --tz UTC --max-accuracy 50
    segtool ingest pings sweref.parquet --crs EPSG:3006 --lat northing --lon easting
    segtool ingest pings new-week.csv --append --bbox 17.6,59.1,18.6,59.6
    segtool ingest pings city/pings.csv --synthetic --lake demo-lake
    ```
    """
    from segtool.ingest.pings import DEFAULT_MAX_ACCURACY, PingParams, ingest_pings

    conf = cols.load_config(config)
    key = load_key(salt_file, synthetic)
    max_acc = _opt(max_accuracy, conf, "max_accuracy", DEFAULT_MAX_ACCURACY)
    if max_acc is not None and float(max_acc) == float("inf"):
        max_acc = None
    params = PingParams(
        id=id,
        time=time,
        lat=lat,
        lon=lon,
        accuracy=accuracy,
        crs=_crs(crs, conf),
        bbox=parse_bbox(_opt(bbox, conf, "bbox", None)),
        max_accuracy=None if max_acc is None else float(max_acc),
        **_common(conf, tz, delimiter, encoding, epoch_unit),
    )
    report = ingest_pings(files, Lake(lake, wait=wait), params, key=key, config=conf, append=append)
    show_report(report, fmt)


def stays(
    files: Files,
    lake: LakeOpt = Path(DEFAULT_LAKE),
    wait: Wait = DEFAULT_WAIT,
    id: IdCol = None,
    start: Annotated[str | None, _col("start", "stay's start time")] = None,
    end: Annotated[str | None, _col("end", "stay's end time")] = None,
    lat: LatCol = None,
    lon: LonCol = None,
    n_pings: Annotated[str | None, _col("n_pings", "number of pings (optional)")] = None,
    tz: Tz = None,
    crs: Crs = None,
    bbox: Bbox = None,
    salt_file: SaltFile = None,
    synthetic: Synthetic = False,
    append: Append = False,
    config: Config = None,
    delimiter: Delimiter = None,
    encoding: Encoding = None,
    epoch_unit: EpochUnit = None,
    fmt: Format = None,
) -> None:
    """Ingest vendor stays (stops: id, start, end, lat, lon) into the lake's `stays/`.

    For vendors that deliver stops instead of pings. Times and coordinates are read as
    for `ingest pings`; device ids are pseudonymised with the same key, so stays and pings
    of one device match. Rejected rows (with reasons such as `end_before_start` or
    `duplicate_stay`) go to `_rejects/stays/`.

    **Examples**

    ```
    segtool ingest stays vendor/stops-2024-03.csv.gz --lake lake
    segtool ingest stays stops.parquet --start arrival --end departure --tz UTC
    segtool ingest stays city/stays.csv --synthetic --lake demo-lake
    ```
    """
    from segtool.ingest.stays import StayParams, ingest_stays

    conf = cols.load_config(config)
    key = load_key(salt_file, synthetic)
    params = StayParams(
        id=id,
        start=start,
        end=end,
        lat=lat,
        lon=lon,
        n_pings=n_pings,
        crs=_crs(crs, conf),
        bbox=parse_bbox(_opt(bbox, conf, "bbox", None)),
        **_common(conf, tz, delimiter, encoding, epoch_unit),
    )
    report = ingest_stays(files, Lake(lake, wait=wait), params, key=key, config=conf, append=append)
    show_report(report, fmt)


def flows(
    files: Files,
    lake: LakeOpt = Path(DEFAULT_LAKE),
    wait: Wait = DEFAULT_WAIT,
    origin: Annotated[str | None, _col("origin", "origin (area id or H3 cell)")] = None,
    destination: Annotated[
        str | None, _col("destination", "destination (area id or H3 cell)")
    ] = None,
    time: Annotated[str | None, _col("time", "start of the time bin (optional)")] = None,
    slot: Annotated[str | None, _col("slot", "half-hour slot 0–47 (optional)")] = None,
    daytype: Annotated[str | None, _col("daytype", "day type (optional)")] = None,
    count: Annotated[str | None, _col("count", "count of people or trips")] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            help="A group column to keep (repeatable). Default: every column not used above.",
            show_default=False,
        ),
    ] = None,
    origin_kind: Annotated[
        str, typer.Option("--origin-kind", help="auto, area (ids) or cell (H3).")
    ] = "auto",
    destination_kind: Annotated[
        str, typer.Option("--destination-kind", help="auto, area (ids) or cell (H3).")
    ] = "auto",
    tz: Tz = None,
    append: Append = False,
    config: Config = None,
    delimiter: Delimiter = None,
    encoding: Encoding = None,
    epoch_unit: EpochUnit = None,
    fmt: Format = None,
) -> None:
    """Ingest aggregated flows (origin × destination × time × count) into `flows/`.

    Mobile operators deliver mobility as counts: people from a home area seen in a
    destination cell or area per time bin, often per group. Origins and destinations that
    are H3 cells are stored as UInt64 `origin_cell` / `destination_cell`, area ids as
    text `origin` / `destination`. Every other column is kept as a group column unless
    `--group` names them. Rejected rows go to `_rejects/flows/`.

    **Examples**

    ```
    segtool ingest flows operator/od-2024-03.csv --lake lake
    segtool ingest flows od.csv --origin home_deso --destination cell --time hour --count n
    segtool ingest flows od.parquet --slot slot --daytype daytype --group income_q
    ```
    """
    from segtool.ingest.flows import FlowParams, ingest_flows

    conf = cols.load_config(config)
    params = FlowParams(
        origin=origin,
        destination=destination,
        time=time,
        slot=slot,
        daytype=daytype,
        count=count,
        groups=tuple(group) if group else None,
        origin_kind=origin_kind,
        destination_kind=destination_kind,
        **_common(conf, tz, delimiter, encoding, epoch_unit),
    )
    report = ingest_flows(files, Lake(lake, wait=wait), params, config=conf, append=append)
    show_report(report, fmt)
