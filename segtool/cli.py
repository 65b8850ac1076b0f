"""The segtool command line: sub-apps wired together, and the exit-code contract.

Exit codes: 0 ok, 1 bad input or usage (a message, never a traceback), 2 internal error.
Set SEGTOOL_DEBUG=1 to see the traceback of an internal error.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

# segtool's matrix products are small (K × K, K × B blocks): OpenBLAS's worker threads
# would only spin beside polars' and numba's threads on the same cores (measured: 5% of
# a `stays` run). Set before numpy is first imported; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from segtool import __version__, config, runner
from segtool.commands import (
    demo,
    experienced,
    groups_visits,
    ingest,
    ingest_geo,
    lake,
    landuse,
    linkage,
    mobility,
    report,
    residential,
    run,
    settings,
    synth,
    verify,
)
from segtool.pipeline import current as uptodate

HELP = """Measure urban segregation from anonymised mobility data and land use.

Residential indices from counts, a validated and pseudonymised Parquet lake from raw
pings, stays and H3 visits from it, and experienced (exposure) segregation from visits.

Try it on the bundled sample: `segtool demo`.
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segtool {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="segtool",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
    config_file: Path | None = typer.Option(
        None,
        "--config",
        envvar="SEGTOOL_CONFIG",
        help="Settings file (default: ./segtool.toml, else [tool.segtool] in ./pyproject.toml).",
        dir_okay=False,
    ),
) -> None:
    """Measure urban segregation from anonymised mobility data and land use."""
    config.apply(ctx, config_file)  # one mechanism for every command: click's default_map


indices_app = typer.Typer(
    help="Segregation indices: residential (from counts), experienced (from visits) and their relation to land use.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
indices_app.command("residential")(residential.residential)
indices_app.command("experienced")(experienced.experienced)
indices_app.command("landuse")(landuse.landuse)
indices_app.command("linkage")(linkage.linkage)

ingest_app = typer.Typer(
    help="Read raw inputs into the validated, pseudonymised lake.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
ingest_app.command("pings")(ingest.pings)
ingest_app.command("stays")(ingest.stays)
ingest_app.command("flows")(ingest.flows)
ingest_app.command("population")(ingest_geo.population)
ingest_app.command("landuse")(ingest_geo.landuse)
ingest_app.command("pois")(ingest_geo.pois)

lake_app = typer.Typer(
    help="Inspect the lake, collect its garbage.", no_args_is_help=True, rich_markup_mode="markdown"
)
lake_app.command("info")(lake.info)
lake_app.command("gc")(lake.gc)
lake_app.command("verify")(verify.verify)

app.add_typer(indices_app, name="indices")
app.add_typer(ingest_app, name="ingest")
app.add_typer(lake_app, name="lake")
config_app = typer.Typer(
    help="The settings file.", no_args_is_help=True, rich_markup_mode="markdown"
)
config_app.command("show")(settings.show)
app.add_typer(config_app, name="config")
app.command("stays")(mobility.stays)
app.command("homes")(mobility.homes)
app.command("groups")(groups_visits.groups)
app.command("visits")(groups_visits.visits)
app.command("synth")(synth.synth)
app.command("demo")(demo.demo)
app.command("report")(report.report)
app.command("run")(run.run)
uptodate.install(app)  # every stage command: "up to date" when its output is current; --force


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 user mistake, 2 internal error)."""
    if argv is None:  # the `segtool` process itself (not the demo's or the tests' calls)
        # The objects made by the imports (numba, scipy, polars: hundreds of thousands)
        # live until exit: keep them out of the garbage collector's full passes, which
        # otherwise re-walk them all and took ~8% of a `stays` run. Only once per
        # process: frozen objects are never collected, so repeated in-process calls
        # must not freeze what they leave behind.
        gc.freeze()
    return runner.run(app, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
