"""`segtool config show`: the effective settings of every command and where each came from."""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer

from segtool import config, console
from segtool.options import Format, Output
from segtool.present import emit


def show(
    ctx: typer.Context,
    commands: Annotated[
        list[str] | None,
        typer.Argument(help="Only these commands (e.g. stays, 'indices experienced')."),
    ] = None,
    changed: Annotated[
        bool,
        typer.Option("--changed", help="Only the settings that do not come from the defaults."),
    ] = False,
    fmt: Format = None,
    output: Output = None,
) -> None:
    """Print the effective settings: value and source of every option of every command.

    The source is `env VAR` (an option's own variable or `SEGTOOL_<COMMAND>_<OPTION>`),
    `FILE:LINE` of the config file, or `default`; the command line of a future run is the
    only thing above them. Secrets are never printed.

    **Examples**

    ```
    segtool config show
    segtool config show stays visits --changed
    segtool --config pipeline.toml config show --format json
    SEGTOOL_VISITS_RES=10 segtool config show visits
    ```
    """
    settings = config.current(ctx)
    rows = config.effective(ctx.find_root().command, settings)
    frame = pl.DataFrame(
        rows,
        schema={
            "command": pl.String,
            "setting": pl.String,
            "value": pl.String,
            "source": pl.String,
        },
    ).filter(pl.col("command") != "config show")
    if commands:
        wanted = [" ".join(c.split()) for c in commands]
        frame = frame.filter(pl.col("command").is_in(wanted))
        unknown = sorted(set(wanted) - set(frame["command"]))
        if unknown:
            from segtool.errors import UsageError

            raise UsageError(f"no such command: {', '.join(unknown)}")
    if changed:
        frame = frame.filter(pl.col("source") != "default")
    where = str(settings.path) if settings.path else "no config file (segtool.toml, pyproject.toml)"
    console.info(f"settings from {where}")
    emit(frame, fmt, output, title="effective settings (command line > env > config > default)")
