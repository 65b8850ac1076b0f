"""`segtool ingest ...` (issue: ingest)."""

import typer

app = typer.Typer(
    help="Read raw inputs into the validated, pseudonymised lake.", no_args_is_help=True
)
