"""Typer options shared by several commands, so each is spelled and explained once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from segtool.present import OutputFormat


def _lake_path(value: str) -> Path:
    """`--lake ""` would write into the current folder: refuse it."""
    if not str(value).strip():
        raise typer.BadParameter("the lake folder must not be empty (default: ./lake)")
    return Path(value)


Lake = Annotated[
    Path,
    typer.Option(
        "--lake",
        envvar="SEGTOOL_LAKE",
        help="Lake folder of Parquet datasets.",
        show_default=True,
        parser=_lake_path,
        metavar="DIR",
    ),
]
Format = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="table (terminal), json (array of objects), csv or parquet. "
        "Default: from the --output suffix, else table.",
        case_sensitive=False,
    ),
]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the result to FILE (atomically, with FILE.manifest.json beside it) "
        "instead of printing it.",
        dir_okay=False,
    ),
]
Seed = Annotated[
    int, typer.Option("--seed", help="Seed for every random draw (explicit, recorded).")
]
MinDevices = Annotated[
    int,
    typer.Option(
        "--min-devices",
        "-k",
        min=1,
        help="Suppress published cells with fewer than k distinct devices.",
    ),
]


class ReferenceShares(StrEnum):
    uniform = "uniform"
    population = "population"


Reference = Annotated[
    ReferenceShares,
    typer.Option(
        "--reference",
        help="Reference shares of S: uniform 1/K (Moro et al.) or population shares.",
    ),
]

AllowStale = Annotated[
    bool,
    typer.Option(
        "--allow-stale",
        help="Read inputs built from an earlier version of their own inputs (a warning, "
        "recorded in the output's manifest) instead of refusing.",
    ),
]
Wait = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        envvar="SEGTOOL_WAIT",
        help="Seconds to wait for another job writing the same dataset, then give up "
        "naming it (exit 1).",
        show_default=True,
    ),
]


# Where work runs (segtool/engine.py; docs/scale.md). Results do not depend on these.
class EngineChoice(StrEnum):
    local = "local"
    dask = "dask"


MemoryBudget = Annotated[
    str | None,
    typer.Option(
        "--memory-budget",
        envvar="SEGTOOL_MEMORY_BUDGET",
        help="Peak memory per process, e.g. 4GB: sizes the device batches and the polars "
        "streaming engine (which spills to disk beyond it).",
    ),
]
Engine = Annotated[
    EngineChoice,
    typer.Option(
        "--engine",
        envvar="SEGTOOL_ENGINE",
        help="local (this process) or dask (device partitions as Dask tasks).",
        case_sensitive=False,
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="SEGTOOL_DASK_SCHEDULER",
        help="Dask scheduler address (e.g. tcp://10.0.0.5:8786); none: a LocalCluster.",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        envvar="SEGTOOL_DASK_WORKERS",
        min=1,
        help="Workers of the LocalCluster started without --scheduler (default: cores).",
    ),
]
