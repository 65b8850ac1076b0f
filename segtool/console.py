"""Terminal output: one console for results (stdout), one for messages (stderr),
and progress bars that show on a terminal and stay quiet in CI or when piped."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


def _width() -> int | None:
    # Rich falls back to 80 columns when not on a terminal; tables read better wider.
    return None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))


def out() -> Console:
    """Console for results (stdout). Created per call so tests that capture stdout see it."""
    return Console(width=_width(), soft_wrap=False)


def err() -> Console:
    """Console for messages, summaries and progress (stderr)."""
    return Console(stderr=True, width=_width())


def interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


# The progress display of an enclosing run (`segtool run`): commands add their tasks to it
# instead of opening a second live display.
_ACTIVE: ContextVar[Progress | None] = ContextVar("segtool_progress", default=None)


@contextmanager
def progress(transient: bool = True):
    """A rich Progress on stderr, disabled (but still usable) in CI and when not a terminal.
    Inside another `progress()` (e.g. `segtool run`), the same display, whose tasks added
    here are removed again on exit.

    Usage::

        with progress() as p:
            task = p.add_task("reading files", total=len(files))
            ...
            p.advance(task)
    """
    outer = _ACTIVE.get()
    if outer is not None:
        before = set(outer.task_ids)
        try:
            yield outer
        finally:
            for task in set(outer.task_ids) - before:
                outer.remove_task(task)
        return
    p = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
        transient=transient,
        disable=not interactive(),
    )
    token = _ACTIVE.set(p)
    try:
        with p:
            yield p
    finally:
        _ACTIVE.reset(token)


def note(message: str) -> None:
    """A one-line note to stderr (e.g. 'summed 3 duplicate rows')."""
    err().print(f"[yellow]note:[/] {message}", highlight=False)


def info(message: str) -> None:
    err().print(message, highlight=False)
