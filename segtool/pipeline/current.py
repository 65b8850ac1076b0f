"""Is a command's output already current? One check, for every stage command.

A stage's output manifest records, under `invocation`, what the run was made from:

    {"command": "stays", "options": {...effective options...},
     "files": {"data/pings.csv.gz": "<sha256>"}, "datasets": {"pings": "<manifest sha256>"},
     "segtool": "0.x"}

— its effective options (after the config file and the environment), the sha256 of every
input file an option names, the manifest hash of every lake dataset the stage may read
(None when absent, so an optional input appearing also counts) and segtool's version.
Before a stage runs, the same record is computed for the run about to happen; when the
output's manifest holds an equal one, its data files are all present and the lineage
check (`segtool.lineage`) finds none of its inputs stale, the command does nothing and
says "up to date" (exit 0). `--force` redoes it. Everything compared is content (hashes),
never a modification time: a `git checkout` or `touch` that changes no bytes rebuilds
nothing.

`install(app)` wraps every stage command of the Typer app once, adding `--force` where the
command has none, so the commands themselves know nothing of this.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from segtool.lake import INVOCATION, MANIFEST_NAME, Lake, sha256_file
from segtool.pipeline.stages import BY_COMMAND, Stage

# What the last stage command did ("ran" / "up to date" and why): read by `segtool run`.
LAST: ContextVar[Status | None] = ContextVar("segtool_last_stage", default=None)


@dataclass
class Status:
    stage: str
    current: bool
    reasons: list[str] = field(default_factory=list)
    stale: bool = False  # not current because of lineage: the command itself says so


def fingerprint(stage: Stage, params: dict, lake: Lake) -> dict:
    """The record of what a run of `stage` with `params` would be made from."""
    from segtool import __version__, lineage

    options: dict[str, Any] = {}
    files: dict[str, str] = {}
    for name, value in sorted(params.items()):
        if name in stage.ignore:
            continue
        if name in stage.file_options:  # where the output goes: its manifest lies there
            continue
        options[name] = _plain(value)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)) and str(v):
                p = Path(v)
                if p.is_file():
                    files[str(v)] = sha256_file(p)
                elif (p / MANIFEST_NAME).is_file():  # a dataset folder given as a path
                    files[str(v)] = sha256_file(p / MANIFEST_NAME)
    datasets = {name: lineage.manifest_digest(lake, name) for name in stage.reads}
    return {
        "command": " ".join(stage.command),
        "options": options,
        "files": files,
        "datasets": datasets,
        "segtool": __version__,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan ("inf" for --max-accuracy inf)
    return getattr(value, "value", value)  # enums as their value


def output_manifests(stage: Stage, params: dict, lake: Lake) -> list[Path] | None:
    """The manifests of the stage's outputs; None when it writes nothing to compare (e.g.
    `indices experienced` printing to the terminal)."""
    if stage.makes:
        return [lake.path(d) / MANIFEST_NAME for d in stage.makes]
    out = [params.get(o) for o in stage.file_options]
    files = [Path(f) for f in out if f]
    if not files:
        return None
    return [Path(f"{f}.manifest.json") for f in files]


def check(stage: Stage, params: dict, lake: Lake, record: dict | None = None) -> Status:
    """Whether the outputs of `stage` run with `params` are current, and if not why."""
    import json

    from segtool import lineage

    record = record or fingerprint(stage, params, lake)
    reasons: list[str] = []
    if any(params.get(o) for o in stage.rerun_if):
        return Status(stage.name, False, [f"--{stage.rerun_if[0]} always runs"])
    manifests = output_manifests(stage, params, lake)
    if manifests is None:
        return Status(stage.name, False, ["it writes no output file (no --output)"])
    for mpath in manifests:
        if not mpath.is_file():
            reasons.append(f"{_name(mpath)} does not exist yet")
            continue
        try:
            have = json.loads(mpath.read_text())
        except (OSError, ValueError):
            reasons.append(f"{mpath} is unreadable")
            continue
        old = have.get("invocation")
        if old is None:
            reasons.append(f"{_name(mpath)} records no invocation (made before this check)")
        elif old != json.loads(json.dumps(record)):
            reasons.append(f"{_name(mpath)} was made {_differs(old, record)}")
        missing = _missing_parts(mpath, have)
        if missing:
            reasons.append(f"{_name(mpath)} lacks {missing}")
    if reasons:
        return Status(stage.name, False, reasons)
    if stage.makes:  # the record matches, but an input may have gone stale since
        for d in stage.makes:
            reasons += lineage.rebuild_reasons(lake, d)
    else:
        reasons += [s.message for s in lineage.check_inputs(lake, list(stage.reads))]
    return Status(stage.name, not reasons, reasons, stale=bool(reasons))


def _name(mpath: Path) -> str:
    if mpath.name == MANIFEST_NAME:
        return f"{mpath.parent.name}/"
    return mpath.name.removesuffix(".manifest.json")


def _differs(old: dict, new: dict) -> str:
    """'with other options (radius)' / 'from other input files' / … for the message."""
    if old.get("segtool") != new.get("segtool"):
        return f"by segtool {old.get('segtool')}"
    oo, no = old.get("options") or {}, new.get("options") or {}
    changed = sorted(k for k in set(oo) | set(no) if oo.get(k) != no.get(k))
    if changed:
        return f"with other options ({', '.join(changed)})"
    if old.get("files") != new.get("files"):
        return "from other input files"
    if old.get("datasets") != new.get("datasets"):
        od, nd = old.get("datasets") or {}, new.get("datasets") or {}
        names = sorted(k for k in set(od) | set(nd) if od.get(k) != nd.get(k))
        return f"from other versions of {', '.join(n + '/' for n in names)}"
    return "differently"


def _missing_parts(mpath: Path, manifest: dict) -> str | None:
    if mpath.name == MANIFEST_NAME:
        gone = [
            p["path"]
            for p in manifest.get("parts") or []
            if not (mpath.parent / p["path"]).is_file()
        ]
        return f"{len(gone)} of its files ({gone[0]}, …)" if gone else None
    target = mpath.with_name(mpath.name.removesuffix(".manifest.json"))
    return None if target.exists() else f"the file {target} itself"


# ---------------------------------------------------------------------------------------
# wrapping the commands

Force = Annotated[
    bool,
    typer.Option("--force", help="Redo the work even when the output is up to date."),
]


def install(app: typer.Typer) -> None:
    """Wrap every stage command registered on `app` (and its sub-apps) with the check."""
    _install(app, ())


def _collect_dead_staging(lake: Lake, stage: Stage) -> None:
    """An up-to-date run takes no writer lock, so it removes here what a killed run of the
    same stage left behind (as a run that writes does when it takes the lock)."""
    from segtool.errors import BusyError
    from segtool.lakegc import collect_dead
    from segtool.lakelock import writer_lock

    for name in stage.makes:
        try:
            with writer_lock(lake, name, wait=0):
                collect_dead(lake, name)
        except BusyError:  # another job is writing it: its staging is alive
            pass


def _install(app: typer.Typer, path: tuple[str, ...]) -> None:
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        stage = BY_COMMAND.get((*path, name))
        if stage is not None and not getattr(info.callback, "_segtool_stage", None):
            info.callback = _wrap(info.callback, stage)
    for group in app.registered_groups:
        _install(group.typer_instance, (*path, group.name))


def _wrap(fn, stage: Stage):
    sig = inspect.signature(fn, eval_str=True)  # typer reads the evaluated annotations
    has_force = "force" in sig.parameters
    params = list(sig.parameters.values())
    if not has_force:
        params.append(
            inspect.Parameter(
                "force", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Force
            )
        )

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from rich.markup import escape

        from segtool import console

        force = kwargs.get("force", False) if has_force else kwargs.pop("force", False)
        bound = {**kwargs}
        lake = Lake(bound.get("lake"))
        record = fingerprint(stage, bound, lake)
        status = check(stage, bound, lake, record)
        if status.current and not force:
            LAST.set(status)
            for mpath in output_manifests(stage, bound, lake) or []:
                os.utime(mpath)  # for make, whose targets the manifests are: now current
            _collect_dead_staging(lake, stage)
            console.info(f"{' '.join(stage.command)}: up to date (--force redoes it)")
            return None
        quiet = status.stale or any("does not exist" in r for r in status.reasons)
        if not force and status.reasons and not quiet:
            console.info(
                escape(f"{' '.join(stage.command)}: rebuilding: {'; '.join(status.reasons)}")
            )
        token = INVOCATION.set(record)
        try:
            result = fn(*args, **kwargs)
        finally:
            INVOCATION.reset(token)
        LAST.set(Status(stage.name, False, status.reasons if not force else ["--force"]))
        return result

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper._segtool_stage = stage  # type: ignore[attr-defined]
    return wrapper
