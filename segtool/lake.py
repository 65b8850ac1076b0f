"""Where datasets live, how they are written (atomically), and the manifest beside each.

A lake is one folder of Parquet datasets (SPEC §1). Every dataset and every published
output is written to a temporary sibling first and renamed into place only when complete,
so a failed or interrupted run never leaves a partial dataset behind. Beside each dataset
lies `_manifest.json`; beside each published file `<file>.manifest.json`.

Manifests are deterministic (sorted keys, no wall-clock time), so re-running a command on
the same inputs gives the same bytes — data and manifest alike.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import polars as pl

from segtool.errors import ConflictError, InputError, UsageError

DEFAULT_LAKE = "lake"
MANIFEST_NAME = "_manifest.json"
# What the running command was invoked with (set by `segtool.pipeline.current`): recorded in
# every manifest it writes, so that a re-run can tell its output is up to date.
INVOCATION: ContextVar[dict | None] = ContextVar("segtool_invocation", default=None)

# Which command makes each dataset: used to tell the user what to run when one is missing.
PRODUCED_BY = {
    "pings": "segtool ingest pings",
    "stays": "segtool stays (or segtool ingest stays)",
    "homes": "segtool homes",
    "devices": "segtool groups",
    "population": "segtool ingest population",
    "population_cells": "segtool ingest population",
    "areas": "segtool ingest population --areas",
    "landuse": "segtool ingest landuse",
    "pois": "segtool ingest pois",
    "visits": "segtool visits",
    "flows": "segtool ingest flows",
}


def lake_root(path: str | os.PathLike | None = None) -> Path:
    """The lake folder: the argument, else $SEGTOOL_LAKE, else ./lake."""
    return Path(path or os.environ.get("SEGTOOL_LAKE") or DEFAULT_LAKE)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Versions of segtool and the libraries that shape its results."""
    from importlib.metadata import PackageNotFoundError, version

    import segtool

    out = {"segtool": segtool.__version__, "python": platform.python_version()}
    for pkg in ("polars", "polars-h3", "pyarrow", "h3", "numpy", "scipy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[pkg] = "missing"
    return out


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class Manifest:
    """What a run read, with which parameters, and what it wrote.

    `rows_in == rows_written + rows_rejected` whenever the run reads rows; the
    per-reason counts of rejected rows are in `rejected_by_reason`.
    """

    command: str
    parameters: Any = None
    inputs: list[dict] = field(default_factory=list)
    seed: int | None = None
    rows_in: int | None = None
    rows_written: int | None = None
    rows_rejected: int | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    stale_inputs: list[dict] = field(default_factory=list)  # what --allow-stale let through
    parts: list[dict] = field(default_factory=list)  # a dataset's files: path, bytes, rows, sha256

    def add_input(self, path: str | os.PathLike, role: str | None = None) -> None:
        p = Path(path)
        _READ_FILES.add(str(p))
        entry = {"path": str(path), "sha256": sha256_file(p), "bytes": p.stat().st_size}
        if role:
            entry["role"] = role
        self.inputs.append(entry)

    def add_dataset_input(self, lake: Lake, name: str) -> None:
        """Record a lake dataset this run read, by the hash of its manifest.

        First checks its lineage (`segtool.lineage.require_current`): a stale input is
        refused unless the lake was opened with `allow_stale=True`, then it is recorded in
        `stale_inputs`."""
        from segtool import lineage

        lineage.require_current(lake, [name], allow_stale=lake.allow_stale, manifest=self)
        self.inputs.append(
            {"dataset": name, "manifest_sha256": lineage.manifest_digest(lake, name)}
        )

    def to_dict(self) -> dict:
        d = {
            "command": self.command,
            "parameters": _jsonable(self.parameters),
            "inputs": _jsonable(self.inputs),
            "seed": self.seed,
            "rows_in": self.rows_in,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "versions": versions(),
        }
        d.update(_jsonable(self.extra))
        if self.stale_inputs:  # only then, so manifests of current inputs keep their bytes
            d["stale_inputs"] = _jsonable(self.stale_inputs)
        if self.parts:
            d["parts"] = self.parts
        if (invocation := INVOCATION.get()) is not None:
            d["invocation"] = _jsonable(invocation)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"


_READ_FILES: set[str] = set()  # input files recorded by this process (Manifest.add_input)


def refuse_overwriting_inputs(path: str | os.PathLike) -> None:
    """Raise `UsageError` if `path` is (the same file as) an input this process read."""
    target = Path(path)
    if not target.exists():
        return
    for p in list(_READ_FILES):
        try:
            same = os.path.samefile(target, p)
        except OSError:  # the input is gone
            continue
        if same:
            raise UsageError(
                f"the output {str(target)!r} is the input {p!r}; writing it would destroy the input",
                hint="choose another file for -o / --output",
            )


def _temp_beside(path: Path) -> Path:
    """A temporary name beside `path` that records host and pid, after removing the
    temporaries of `path` left by dead processes of this host (a killed run's leftovers)."""
    import socket

    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.{re.escape(host)}\.(\d+)-[0-9a-f]{{32}}\.tmp$"
    )
    try:
        for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            m = pattern.match(p.name)
            if m and not _alive(int(m.group(1))):
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    except OSError:
        pass
    return path.with_name(f".{path.name}.{host}.{os.getpid()}-{uuid.uuid4().hex}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    refuse_overwriting_inputs(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`.

    Usage::

        with atomic_file(out) as tmp:
            frame.write_parquet(tmp)
    """
    path = Path(path)
    refuse_overwriting_inputs(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_manifest_beside(output: str | os.PathLike, manifest: Manifest) -> Path:
    """Write `<output>.manifest.json` atomically and return its path."""
    mpath = Path(f"{output}.manifest.json")
    write_text_atomic(mpath, manifest.to_json())
    return mpath


class Lake:
    """A folder of Parquet datasets, each with a `_manifest.json`.

    >>> lake = Lake("lake")
    >>> with lake.writing("stays", manifest) as tmp:   # doctest: +SKIP
    ...     frame.write_parquet(tmp / "part-0.parquet")
    >>> lake.scan("stays")                              # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        allow_stale: bool = False,
        wait: float | None = None,
    ):
        self.root = lake_root(root)
        _check_folder(self.root)
        self.allow_stale = allow_stale  # read inputs whose lineage is stale (with a warning)
        self.wait = wait  # seconds a writer waits for another job's lock (None: the default)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    def path(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self.path(name) / MANIFEST_NAME).exists()

    def datasets(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith((".", "_")) and (p / MANIFEST_NAME).exists()
        )

    def require(self, name: str) -> Path:
        if not self.exists(name):
            how = PRODUCED_BY.get(name, "the command that produces it")
            raise InputError(
                f"the lake {str(self.root)!r} has no dataset {name!r}",
                hint=f"run `{how} --lake {self.root}` first",
            )
        return self.path(name)

    def files(self, name: str) -> list[Path]:
        return sorted(self.require(name).rglob("*.parquet"))

    def scan(self, name: str) -> pl.LazyFrame:
        """Lazily scan a dataset (hive partitions become columns)."""
        path = self.require(name)
        files = self.files(name)
        if not files:
            raise InputError(f"dataset {name!r} in {str(self.root)!r} holds no Parquet files")
        return pl.scan_parquet(str(path / "**" / "*.parquet"), hive_partitioning=True)

    def manifest(self, name: str) -> dict | None:
        mpath = self.path(name) / MANIFEST_NAME
        if not mpath.exists():
            return None
        return json.loads(mpath.read_text())

    @contextmanager
    def lock(self, name: str, *, append: bool = False) -> Iterator[None]:
        """Hold the writer lock of dataset `name` (see `segtool.lakelock`), waiting up to
        `self.wait` seconds for another job. A replacing writer (not `append`) that had to
        wait and finds that the other job committed `name` meanwhile raises
        `ConflictError`: one clean winner, and the loser told. Staging folders of dead
        runs of `name` are removed once the lock is held (`segtool.lakegc`)."""
        from segtool import lakegc, lakelock, lineage

        if lakelock.holds(self, name):
            with lakelock.writer_lock(self, name):
                yield
            return
        created = not self.root.exists()
        base = lineage.manifest_digest(self, name)
        try:
            with lakelock.writer_lock(self, name, wait=self.wait) as waited_for:
                now = lineage.manifest_digest(self, name)
                if waited_for is not None and not append and now != base:
                    raise ConflictError(
                        f"{waited_for.describe()} replaced {name}/ in {str(self.root)!r} "
                        "while this run waited for it; this run wrote nothing",
                        hint="check which version you want; run again to replace it",
                    )
                lakegc.collect_dead(self, name)
                yield
        except BaseException:
            if created:
                _remove_if_only_locks(self.root)
            raise

    @contextmanager
    def writing(self, name: str, manifest: Manifest, *, append: bool = False) -> Iterator[Path]:
        """Yield a temporary folder to write dataset `name` into; on success the manifest
        is written into it and the folder replaces the old dataset in one rename.

        With `append=True` the temporary folder starts as a copy of the existing dataset
        (hard links where possible), so the new files add to it; the swap is still atomic.
        The whole write holds the dataset's lock (`Lake.lock`); just before the swap, every
        lake dataset the manifest records as an input must still be the version it
        recorded, else `ConflictError` (a result is never built from two versions).
        """
        with self.lock(name, append=append):
            final = self.path(name)  # may be nested, e.g. "_rejects/pings"
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex}"
            old = final.parent / f".old-{final.name}-{uuid.uuid4().hex}"
            try:
                if append and final.exists():
                    shutil.copytree(final, tmp, copy_function=_link_or_copy)
                else:
                    tmp.mkdir()
                yield tmp
                self._check_inputs_unchanged(manifest)
                manifest.parts = dataset_parts(tmp)
                write_text_atomic(tmp / MANIFEST_NAME, manifest.to_json())
                if final.exists():
                    os.replace(final, old)
                os.replace(tmp, final)
            except Exception as e:
                from segtool.errors import disk_full

                if disk_full(e):  # how far it got, for the message (segtool.errors.os_fault)
                    e.segtool_bytes_written = self._staged_bytes(name)  # type: ignore[attr-defined]
                    e.segtool_path = getattr(e, "filename", None) or str(final)  # type: ignore[attr-defined]
                raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(old, ignore_errors=True)

    def _staged_bytes(self, name: str) -> int:
        """Bytes in the staging of `name` now (its new version, spool, scratch)."""
        from segtool.lakegc import staging
        from segtool.lakelock import lock_key

        return sum(s.bytes for s in staging(self) if lock_key(s.dataset) == lock_key(name))

    def _check_inputs_unchanged(self, manifest: Manifest) -> None:
        from segtool.lineage import manifest_digest

        for entry in manifest.inputs:
            name = entry.get("dataset") if isinstance(entry, dict) else None
            if name and manifest_digest(self, name) != entry.get("manifest_sha256"):
                raise ConflictError(
                    f"{name}/ in {str(self.root)!r} was replaced by another job while this "
                    "run read it; nothing was written",
                    hint="run the command again (it then reads the new version)",
                )


def dataset_parts(folder: Path) -> list[dict]:
    """Every data file of a dataset folder (hidden and `_` names aside): relative path,
    bytes, sha256 and, for Parquet, rows — what `segtool lake verify` checks."""
    import pyarrow.parquet as pq

    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or any(part.startswith((".", "_")) for part in rel.parts):
            continue
        entry: dict[str, Any] = {"path": rel.as_posix(), "bytes": p.stat().st_size}
        entry["sha256"] = sha256_file(p)
        if p.suffix == ".parquet":
            entry["rows"] = pq.read_metadata(p).num_rows
        out.append(entry)
    return out


def _check_folder(path: Path) -> None:
    """The lake must be a folder, or not exist yet below folders (not below a file)."""
    for p in (path, *path.parents):
        try:
            if p.is_dir():
                return
            if p.exists():
                raise InputError(
                    f"{str(p)!r}: a file where a folder is expected"
                    + ("" if p == path else f" (on the way to the lake {str(path)!r})"),
                    hint="--lake must name a folder (it is created if missing)",
                )
        except OSError:  # unreadable: let the operation itself report it
            return


def _remove_if_only_locks(root: Path) -> None:
    """Remove a lake folder this run created if it holds nothing but lock files and empty
    folders (a refused first ingest leaves no empty lake behind)."""
    from segtool.lakelock import LOCKS

    try:
        for p in root.iterdir():
            if p.name == LOCKS and p.is_dir():
                continue
            if not (p.is_dir() and not any(f.is_file() for f in p.rglob("*"))):
                return
        shutil.rmtree(root, ignore_errors=True)
    except OSError:
        pass


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
