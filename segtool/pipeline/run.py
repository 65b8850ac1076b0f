"""`segtool run` as a function: the configured stages in dependency order, each skipped when
current (`segtool.pipeline.current`), timed, under one progress display.

Each stage is its command invoked in-process through click with the invocation's settings
(config file, environment), exactly as typing the command would run it: the same option
parsing, validation and defaults, no subprocess and no second way of applying settings.
"""

from __future__ import annotations

import io
import time
from contextlib import redirect_stdout
from dataclasses import dataclass

from segtool import console
from segtool.errors import UsageError
from segtool.pipeline import current
from segtool.pipeline.stages import BY_NAME, STAGES, Stage, dependencies, order, stage_names


@dataclass
class StageResult:
    stage: str
    status: str  # "ran", "up to date", "failed", "not run"
    seconds: float
    why: str = ""


def plan(tables: dict, names: list[str] | None = None) -> list[Stage]:
    """The stages to run, in order. Without `names`: the whole chain, where an optional
    stage (ingest.*, indices.*) belongs only when the config file (`tables`: its parsed
    tables) has a table for it, and detected
    stays give way to ingested vendor stays."""
    if names:
        chosen = [BY_NAME[n] for n in stage_names(names)]
    else:
        chosen = [s for s in STAGES if not s.optional or _configured(tables, s)]
        if any(s.name == "ingest.stays" for s in chosen):
            chosen = [s for s in chosen if s.name != "stays"]
    return [BY_NAME[n] for n in order(dependencies(chosen))]


def _configured(tables: dict, stage: Stage) -> bool:
    node = tables
    for name in stage.command:
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return True


def run_stages(
    root_ctx, stages: list[Stage], *, force: bool = False, quiet: bool = True
) -> list[StageResult]:
    """Run `stages` in order under `root_ctx` (the segtool root click context). Every
    stage's options are parsed before the first one runs, so a stage that cannot run
    (a required input not configured, a bad value) stops the run before anything is
    written. A failing stage stops the run; its SegtoolError propagates after the table."""
    from typer import _click as click

    contexts = []
    for stage in stages:
        try:
            ctx = command_context(root_ctx, stage.command, ["--force"] if force else [])
        except click.exceptions.ClickException as e:
            raise UsageError(
                f"stage {stage.name} cannot run: {e.format_message()}",
                hint=f"set it in the config file's [{'.'.join(stage.command)}] table",
            ) from None
        contexts.append((stage, ctx))
    results: list[StageResult] = []
    with console.progress(transient=True) as bar:
        task = bar.add_task("segtool run", total=len(contexts))
        for i, (stage, ctx) in enumerate(contexts):
            bar.update(task, description=f"segtool run: {stage.name}")
            t0 = time.perf_counter()
            token = current.LAST.set(None)
            try:
                sink = io.StringIO()
                with ctx, redirect_stdout(sink) if quiet else _null():
                    ctx.command.invoke(ctx)
            except BaseException as e:
                results.append(StageResult(stage.name, "failed", time.perf_counter() - t0, str(e)))
                results += [StageResult(s.name, "not run", 0.0) for s, _ in contexts[i + 1 :]]
                e.segtool_run_results = results  # type: ignore[attr-defined]
                raise
            finally:
                status = current.LAST.get()
                current.LAST.reset(token)
            took = time.perf_counter() - t0
            if status is not None and status.current:
                results.append(StageResult(stage.name, "up to date", took))
            else:
                why = "; ".join(status.reasons) if status is not None else ""
                results.append(StageResult(stage.name, "ran", took, why))
            bar.advance(task)
    return results


def command_context(root_ctx, path: tuple[str, ...], args: list[str]):
    """The click context of command `path` (e.g. ("ingest", "pings")) parsed from `args`
    below `root_ctx`: its parameters resolved from the command line, the environment and
    the root's `default_map` (the config file) as typing the command would."""
    from typer import _click as click

    parent = root_ctx
    command = root_ctx.command
    for name in path[:-1]:
        command = command.commands[name]
        parent = click.Context(command, info_name=name, parent=parent)
    return command.commands[path[-1]].make_context(path[-1], list(args), parent=parent)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
