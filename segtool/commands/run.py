"""`segtool run`: the pipeline (or named stages) from the config file, in dependency order."""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer

from segtool import config, console
from segtool.options import Format, Output
from segtool.present import emit


def run(
    ctx: typer.Context,
    stages: Annotated[
        list[str] | None,
        typer.Argument(
            help="Stages to run (default: the whole configured chain): ingest, ingest.pings, "
            "stays, homes, groups, visits, indices, indices.experienced, report, …",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo every stage, current or not.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print each stage's own summary.")
    ] = False,
    fmt: Format = None,
    output: Output = None,
) -> None:
    """Run the pipeline: ingest → stays → homes → groups → visits → indices → report.

    Every stage takes its settings from the config file (`segtool.toml`, `--config`) and
    the environment, as the stage's own command would; stages whose output is current
    (same input hashes, options and segtool version, see `segtool stays --help`) are
    skipped. An `ingest.*` or `indices.*` stage belongs to the chain when the config has
    its table (`[ingest.pings]`, `[indices.experienced]`). Ends with a table of what ran,
    what was up to date, and how long each took.

    **Examples**

    ```
    segtool run                        # the whole chain from ./segtool.toml
    segtool run stays visits           # just these (in dependency order)
    segtool --config city.toml run --force
    segtool run --format json -o run.json
    ```
    """
    from segtool.pipeline.run import plan, run_stages

    settings = config.current(ctx)
    chosen = plan(settings.tables, stages)
    where = settings.path or "no config file"
    console.info(
        f"segtool run: {len(chosen)} stages from {where}: {', '.join(s.name for s in chosen)}"
    )
    try:
        results = run_stages(ctx.find_root(), chosen, force=force, quiet=not verbose)
    except BaseException as e:
        done = getattr(e, "segtool_run_results", None)
        if done:
            _table(done, None, None)
        raise
    _table(results, fmt, output)


def _table(results, fmt, output) -> None:
    frame = pl.DataFrame(
        {
            "stage": [r.stage for r in results],
            "status": [r.status for r in results],
            "seconds": [round(r.seconds, 2) for r in results],
            "why": [r.why for r in results],
        },
        schema={"stage": pl.String, "status": pl.String, "seconds": pl.Float64, "why": pl.String},
    )
    ran = sum(r.status == "ran" for r in results)
    current = sum(r.status == "up to date" for r in results)
    emit(frame, fmt, output, title=f"segtool run: {ran} ran, {current} up to date")
