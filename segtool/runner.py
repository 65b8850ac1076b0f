"""The exit-code contract, in one place: run a command line and map what it raises.

0 ok; 1 a user mistake or a fault of the machine (a bad option, bad input, a full disk,
a read-only lake: `segtool.errors.os_fault`); 2 a bug in segtool (anything else, with a
hint to re-run under SEGTOOL_DEBUG=1 for the traceback); 130 interrupted. `segtool.cli`
runs the whole app through it, and `segtool demo` its stages, in-process, without either
importing the other.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from rich.markup import escape

from segtool import config, console
from segtool.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USER, SegtoolError, os_fault

try:  # typer >= 0.24 carries its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import ClickException


def run(command: Any, argv: Sequence[str] | None) -> int:
    """Run `segtool ARGV…` on `command` (the typer app, or its root click command: both are
    called the same way) and return the exit code. Options also come from SEGTOOL_*
    variables (`config.ENV_PREFIX`)."""
    try:
        code = command(
            args=None if argv is None else [str(a) for a in argv],
            prog_name="segtool",
            standalone_mode=False,
            auto_envvar_prefix=config.ENV_PREFIX,
        )
    except ClickException as e:  # usage errors: unknown option, bad value, …
        from typer import rich_utils

        rich_utils.rich_format_error(e)
        return EXIT_USER
    except typer.Abort:
        console.err().print("[red]aborted[/]")
        return EXIT_USER
    except SegtoolError as e:
        console.err().print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        return EXIT_USER
    except KeyboardInterrupt:
        console.err().print("[red]interrupted[/]")
        return 130
    except Exception as e:  # a bug in segtool, not the user's fault …
        fault = os_fault(e)  # … unless the machine failed: a full disk, a read-only lake
        if fault is not None:
            console.err().print(f"[bold red]error:[/] {escape(str(fault))}", highlight=False)
            return EXIT_USER
        if os.environ.get("SEGTOOL_DEBUG"):
            traceback.print_exc()
        console.err().print(
            f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))}\n"
            "This is a bug in segtool. Re-run with SEGTOOL_DEBUG=1 to see the traceback "
            "and please report it.",
            highlight=False,
        )
        return EXIT_INTERNAL
    return code if isinstance(code, int) else EXIT_OK
