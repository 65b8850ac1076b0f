"""Garbage collection of staging left in the lake by runs that died (`kill -9`, power loss).

A writer stages its work beside the dataset it writes and renames it into place at the end:
`.tmp-<name>-<id>/` (the new version), `.old-<name>-<id>/` (the replaced one, for a
moment), `.spool-<name>-<id>/` (ingest's sorted spool), `.scratch-<name>-<id>/` (the
pings split by device for `stays`), in the lake folder or in `_rejects/`. Every writer
holds the dataset's lock (`segtool.lakelock`) for as long as its staging exists, and the
kernel drops the lock of a dead process, so *staging of a dataset whose lock nobody holds
belongs to no live run*: that is the proof used here, across hosts sharing one file
system as far as `flock` is honoured there.

`collect_dead(lake, name)` runs whenever a writer takes a lock (the next run of a stage
cleans up after a killed one); `collect(lake)` is `segtool lake gc`.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from segtool.lake import Lake

STAGING = re.compile(r"^\.(?P<kind>tmp|old|spool|scratch)-(?P<name>.+)-(?P<id>[0-9a-f]{32})$")


@dataclass(frozen=True)
class Staging:
    """One staging folder: its path, the dataset it belongs to, its size in bytes."""

    path: Path
    kind: str
    dataset: str
    bytes: int


def _size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:  # removed meanwhile
            pass
    return total


def staging(lake: Lake) -> list[Staging]:
    """Every staging folder in the lake (live or dead), sorted by path."""
    out = []
    for folder, prefix in ((lake.root, ""), (lake.root / "_rejects", "_rejects/")):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            m = STAGING.match(p.name)
            if m and p.is_dir():
                name = m["name"] if m["kind"] in ("spool", "scratch") else prefix + m["name"]
                out.append(Staging(p, m["kind"], name, _size(p)))
    return out


def _remove(items: list[Staging]) -> list[Staging]:
    done = []
    for s in items:
        shutil.rmtree(s.path, ignore_errors=True)
        if not s.path.exists():
            done.append(s)
    return done


def collect_dead(lake: Lake, name: str) -> list[Staging]:
    """Remove the staging of dataset `name` (and of `_rejects/<name>` with it). Call only
    while holding `name`'s writer lock, before creating this run's own staging."""
    from segtool.lakelock import lock_key

    key = lock_key(name)
    return _remove([s for s in staging(lake) if lock_key(s.dataset) == key])


def collect(lake: Lake) -> tuple[list[Staging], list[tuple[Staging, str]]]:
    """Remove every staging folder whose dataset no live run holds. Returns (removed,
    kept with the job that holds it)."""
    from segtool.errors import BusyError
    from segtool.lakelock import writer_lock

    removed, kept = [], []
    for s in staging(lake):
        try:
            with writer_lock(lake, s.dataset, wait=0):  # free: no live run owns it
                removed += _remove([s])
        except BusyError as e:
            kept.append((s, e.holder.describe() if e.holder else "another job"))
    return removed, kept
