"""`segtool lake ...` (issue: ingest)."""

import typer

app = typer.Typer(help="Inspect the lake.", no_args_is_help=True)
