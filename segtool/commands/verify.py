"""`segtool lake verify`: every dataset against its manifest, staging and orphans."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.markup import escape

from segtool import console
from segtool.errors import InputError
from segtool.lake import DEFAULT_LAKE, Lake
from segtool.options import Format, Output
from segtool.options import Lake as LakeOpt
from segtool.present import emit


def verify(
    lake: LakeOpt = Path(DEFAULT_LAKE),
    hashes: Annotated[
        bool,
        typer.Option(
            "--hashes/--no-hashes", help="Check each part's sha256 (sizes and rows always)."
        ),
    ] = True,
    all_rows: Annotated[
        bool, typer.Option("--all", help="Also list the datasets that passed (status ok).")
    ] = False,
    fmt: Format = None,
    output: Output = None,
) -> None:
    """Check the lake against its manifests; exit 1 when anything is wrong.

    Every dataset: its parts present with the size, sha256 and row count the manifest
    records, no file the manifest does not list, `rows_in = rows_written + rows_rejected`.
    The lake: staging folders left by a killed run (remove them with `segtool lake gc`),
    folders and files that belong to no dataset. One row per finding.

    **Examples**

    ```
    segtool lake verify --lake lake
    segtool lake verify --lake lake --no-hashes      # sizes and rows only: faster
    segtool lake verify --lake lake --all --format json
    ```
    """
    from segtool.lakeverify import ERROR, OK, verify_lake

    the_lake = Lake(lake)
    if not the_lake.root.is_dir():
        raise InputError(f"the lake {str(the_lake.root)!r} does not exist")
    with console.progress() as bar:
        bar.add_task("verifying the lake", total=None)
        findings = verify_lake(the_lake, hashes=hashes)
    frame = pl.DataFrame(
        [f.__dict__ for f in findings],
        schema={"dataset": pl.String, "check": pl.String, "status": pl.String, "detail": pl.String},
    )
    errors = frame.filter(pl.col("status") == ERROR).height
    n_ok = frame.filter(pl.col("status") == OK).height
    shown = frame if all_rows else frame.filter(pl.col("status") != OK)
    if shown.height or fmt or output:
        emit(shown, fmt, output, title=f"lake verify {the_lake.root}")
    console.info(escape(f"{n_ok} dataset(s) intact, {errors} problem(s) in {the_lake.root}"))
    if errors:
        raise InputError(
            f"the lake {str(the_lake.root)!r} does not match its manifests ({errors} problem(s))"
        )
