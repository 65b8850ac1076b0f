"""The shared ingest driver for pings, stays and flows.

    files ─▶ reader (blocks of text rows, malformed lines apart)              main thread
          ─▶ dataset parser (typed columns + a reject reason per row,         2 workers
             ids pseudonymised) ─▶ spool (Arrow IPC per partition)
          ─▶ per partition: sort, drop exact duplicates, write Parquet        2 workers
          ─▶ duplicates' original lines read back for the rejects
          ─▶ `<lake>/<dataset>/` + `<lake>/_rejects/<dataset>/` + manifests, atomically

Memory is bounded by a few input blocks (16 MB of text each) in the first pass and by one
slice of a partition (at most `SLICE_ROWS` rows, split by device-pseudonym range) per
worker in the second — not by the input's size.

Row order is fixed by sorting each partition on the dataset's key (device, time, …, then
file and line), so a re-run gives byte-identical files whatever order the threads
finished in. Among exact duplicates the first in input order (file, then line) is kept;
the others are rejected, and their original text is read back from the input.

Counts reconcile for every file and every run: rows_in = rows_written + rows_rejected
(an internal check; a mismatch is a bug and exits with code 2).
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich.markup import escape

from segtool import console
from segtool.errors import InputError, UsageError
from segtool.ingest import columns as cols
from segtool.ingest.partitions import FILE, SLICE_ROWS, Spool, write_partitions
from segtool.ingest.pseudonym import Key, Pseudonymiser
from segtool.ingest.reader import LINE, TEXT, InputFile, open_input
from segtool.ingest.rejects import RejectWriter
from segtool.lake import Lake, Manifest, sha256_file

REASON = "reason"
WORKERS = 2  # batches parsed, or partitions written, at once (0: inline, for profiling)
_NUMBER_OR_TIME = (
    r"^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|\d{4}-\d\d-\d\d[ T0-9:.,+\-Zz]*)?\s*$"
)


@dataclass(frozen=True)
class DatasetSpec:
    """What distinguishes one device dataset's ingest from another's."""

    name: str
    command: str
    roles: cols.Roles
    # reject text column -> role whose original text it holds ("id" is pseudonymised)
    reject_roles: dict[str, str]
    # output columns (in order) and dtypes
    schema: dict[str, pl.DataType]
    sort_by: tuple[str, ...]
    dedupe_on: tuple[str, ...]
    duplicate_reason: str
    partition: str | None
    # (rows, mapping, params, pseudonymiser) -> schema columns + partition + `reason` + `__line`
    parse: Callable[[pl.DataFrame, dict[str, str], Any, Pseudonymiser | None], pl.DataFrame]
    # a uniformly distributed UInt64 column to split big partitions by (None: never split)
    slice_on: str | None = "device"


@dataclass
class FileReport:
    path: str
    format: str
    sha256: str
    bytes: int
    columns: dict[str, str]
    rows_in: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestReport:
    """What one ingest run read, wrote and rejected (per file and in total)."""

    dataset: str
    lake: str
    files: list[FileReport]
    rows_in: int
    rows_written: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    dataset_rows: int
    partitions: int
    appended: bool

    def to_frame(self) -> pl.DataFrame:
        """One row per file and a total row: file, format, rows_in, written, rejected."""
        rows = [
            {
                "file": f.path,
                "format": f.format,
                "rows_in": f.rows_in,
                "written": f.rows_written,
                "rejected": f.rows_rejected,
            }
            for f in self.files
        ]
        rows.append(
            {
                "file": "total",
                "format": "",
                "rows_in": self.rows_in,
                "written": self.rows_written,
                "rejected": self.rows_rejected,
            }
        )
        return pl.DataFrame(rows)

    def reasons_frame(self) -> pl.DataFrame:
        items = sorted(self.rejected_by_reason.items())
        return pl.DataFrame(
            {"reason": [k for k, _ in items], "rows": [v for _, v in items]},
            schema={"reason": pl.String, "rows": pl.Int64},
        )


# -- inputs ---------------------------------------------------------------------------------


def expand_paths(items: Iterable[str | os.PathLike]) -> list[Path]:
    """Paths as given, with glob patterns expanded (sorted); a pattern matching nothing
    or a missing file is a usage error."""
    out: list[Path] = []
    for item in items:
        text = str(item)
        if Path(text).exists() or not glob.has_magic(text):
            if not Path(text).exists():
                raise InputError(f"{text}: no such file")
            if Path(text).is_dir():
                raise InputError(f"{text} is a folder", hint=f"give the files, e.g. '{text}/*.csv'")
            out.append(Path(text))
            continue
        matches = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not matches:
            raise UsageError(f"no file matches {text!r}")
        out.extend(Path(m) for m in matches)
    if not out:
        raise UsageError("no input files given")
    seen: dict[Path, Path] = {}
    for p in out:
        r = p.resolve()
        if r in seen:
            raise UsageError(f"{p} is given twice")
        seen[r] = p
    return out


def explicit_columns(params: Any, roles: cols.Roles) -> dict[str, str | None]:
    return {role: getattr(params, role, None) for role in roles.all}


def open_inputs(
    paths: list[Path], spec: DatasetSpec, params: Any, config: cols.Config
) -> list[tuple[InputFile, dict[str, str]]]:
    opened = []
    for p in paths:
        f = open_input(
            p,
            delimiter=getattr(params, "delimiter", None),
            encoding=getattr(params, "encoding", "utf-8"),
        )
        if len(f.header) < len(spec.roles.required):
            raise InputError(
                f"{p}: the header has {len(f.header)} field(s) {f.header[:3]!r}; "
                f"{spec.name} need at least {len(spec.roles.required)} "
                f"({', '.join(spec.roles.required)})",
                hint=f"wrong delimiter? pass --delimiter (detected {f.delimiter!r})"
                if f.kind == "text"
                else None,
            )
        mapping = cols.resolve(
            f.header, spec.roles, explicit_columns(params, spec.roles), config, source=str(p)
        )
        opened.append((f, mapping))
    return opened


def with_reasons(frame: pl.DataFrame, checks: list[tuple[str, pl.Expr]]) -> pl.DataFrame:
    """`frame` with a `reason` column: the name of the first check that is false for the
    row, null when none is (a null check counts as passed). The checks are evaluated on
    every row at once; the reason only for the rows that fail one."""
    fails = [(~check).fill_null(False) for _, check in checks]
    bad = frame.select(pl.any_horizontal(fails)).to_series()
    reason = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    if bad.any():
        at = bad.arg_true()
        first = pl.when(fails[0]).then(pl.lit(checks[0][0]))
        for (name, _), fail in zip(checks[1:], fails[1:], strict=True):
            first = first.when(fail).then(pl.lit(name))
        reason = reason.scatter(at, frame[at].select(first).to_series())
    return frame.with_columns(reason.alias(REASON))


# -- rejects --------------------------------------------------------------------------------


def _text(s: pl.Series) -> pl.Series:
    """A column's values as text (rejects keep every field as text)."""
    if s.dtype == pl.String:
        return s
    try:
        return s.cast(pl.String)
    except pl.exceptions.PolarsError:  # nested or binary Parquet columns: their repr
        return pl.Series(s.name, [None if v is None else str(v) for v in s.to_list()], pl.String)


def _pseudonymise_text(s: pl.Series, pseudo: Pseudonymiser | None) -> pl.Series:
    s = _text(s)
    if pseudo is None:
        return s
    nonblank = s.is_not_null() & (s.str.strip_chars().str.len_bytes() > 0)
    hashed = pseudo.hash_series(pl.select(pl.when(nonblank).then(s)).to_series()).cast(pl.String)
    return pl.select(pl.when(nonblank).then(hashed).otherwise(s)).to_series().rename(s.name)


def reject_rows(
    rows: pl.DataFrame,
    reasons: pl.Series | str,
    mapping: dict[str, str],
    spec: DatasetSpec,
    pseudo: Pseudonymiser | None,
    source: str,
    delimiter: str | None,
) -> pl.DataFrame:
    """Reject frame for well-formed rows: the role columns' original text (the id as its
    pseudonym), every field joined in `fields`, source file, line and reason."""
    id_col = mapping.get("id")
    data_cols = [c for c in rows.columns if c != LINE]
    texts = {
        c: _pseudonymise_text(rows[c], pseudo) if c == id_col else _text(rows[c]) for c in data_cols
    }
    out = {}
    for rcol, role in spec.reject_roles.items():
        c = mapping.get(role)
        out[rcol] = texts[c] if c is not None else pl.Series([None] * rows.height, dtype=pl.String)
    out["fields"] = (
        pl.DataFrame([texts[c].fill_null("") for c in data_cols])
        .select(pl.concat_str(pl.all(), separator=delimiter or ","))
        .to_series()
    )
    reason = (
        reasons
        if isinstance(reasons, pl.Series)
        else pl.Series([reasons] * rows.height, dtype=pl.String)
    )
    return pl.DataFrame(out).with_columns(
        pl.lit(source).alias("source_file"),
        rows[LINE].alias("line"),
        reason.cast(pl.String).alias("reason"),
    )


def malformed_rows(
    malformed: pl.DataFrame,
    header: list[str],
    mapping: dict[str, str],
    spec: DatasetSpec,
    pseudo: Pseudonymiser | None,
    source: str,
    delimiter: str,
) -> pl.DataFrame:
    """Reject frame for lines that do not split into the header's fields.

    The fields are split naively on the delimiter and assigned to roles by position. As a
    row's structure is broken, the field at the id's position *and every field that is
    neither a number nor a date-time* are replaced by their pseudonyms, so no raw id can
    slip into the rejects through a shifted column.
    """
    if malformed.height == 0:
        return pl.DataFrame()
    ex = (
        malformed.with_row_index("__r")
        .with_columns(pl.col(TEXT).str.split(delimiter).alias("__v"))
        .explode("__v")
        .with_columns(pl.int_range(pl.len()).over("__r").alias("__pos"))
    )
    id_pos = header.index(mapping["id"]) if "id" in mapping else -1
    if pseudo is not None:
        v = ex["__v"]
        risky = (ex["__pos"] == id_pos) | ~v.str.contains(_NUMBER_OR_TIME)
        hashed = _pseudonymise_text(v, pseudo)
        ex = ex.with_columns(
            pl.select(pl.when(risky).then(hashed).otherwise(v)).to_series().alias("__v")
        )
    joined = ex.group_by("__r", maintain_order=True).agg(
        pl.col("__v").str.join(delimiter).alias("fields"), pl.first(LINE)
    )
    out = joined.select("__r", "fields", pl.col(LINE).alias("line"))
    for rcol, role in spec.reject_roles.items():
        c = mapping.get(role)
        if c is None:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(rcol))
            continue
        pos = header.index(c)
        vals = ex.filter(pl.col("__pos") == pos).select("__r", pl.col("__v").alias(rcol))
        out = out.join(vals, on="__r", how="left", maintain_order="left")
    return out.select(
        *spec.reject_roles,
        "fields",
        pl.lit(source).alias("source_file"),
        "line",
        pl.lit("malformed_row").alias("reason"),
    )


# -- the driver -------------------------------------------------------------------------------


def ingest(
    files: Iterable[str | os.PathLike],
    lake: Lake,
    spec: DatasetSpec,
    params: Any,
    *,
    key: Key | None,
    config: cols.Config = cols.EMPTY_CONFIG,
    append: bool = False,
    slice_rows: int = SLICE_ROWS,
    block_bytes: int | None = None,
) -> IngestReport:
    """Read `files` into `lake/<spec.name>/` (see the module docstring).

    The dataset's lock is held from before the old version is read until the new one is
    renamed into place, so a concurrent append waits and then builds on this one."""
    with lake.lock(spec.name, append=append):
        return _ingest_locked(
            files,
            lake,
            spec,
            params,
            key=key,
            config=config,
            append=append,
            slice_rows=slice_rows,
            block_bytes=block_bytes,
        )


def _ingest_locked(
    files, lake, spec, params, *, key, config, append, slice_rows, block_bytes
) -> IngestReport:
    paths = expand_paths(files)
    opened = open_inputs(paths, spec, params, config)
    if block_bytes is not None:
        for f, _ in opened:
            f.block_bytes = block_bytes
    old = lake.manifest(spec.name) if append and lake.exists(spec.name) else None
    if old is not None:
        _check_append(old, opened, key, spec)
    pseudo = Pseudonymiser(key) if key is not None else None
    reports = [
        FileReport(str(f.path), f.format, "", f.size, dict(mapping)) for f, mapping in opened
    ]
    manifest = Manifest(command=spec.command, parameters=params)
    rmanifest = Manifest(command=spec.command, parameters=params)
    run_no = len(old.get("runs", [])) if old else 0
    spool_dir = lake.root / f".spool-{spec.name}-{uuid.uuid4().hex}"
    lake.root.mkdir(parents=True, exist_ok=True)
    try:
        with (
            lake.writing(spec.name, manifest, append=old is not None) as out,
            lake.writing(
                f"_rejects/{spec.name}",
                rmanifest,
                append=old is not None and lake.path(f"_rejects/{spec.name}").exists(),
            ) as rout,
        ):
            writer = RejectWriter(rout / f"part-{run_no}.parquet", tuple(spec.reject_roles))
            spool = Spool(spool_dir, spec.partition)
            _first_pass(opened, reports, spec, params, pseudo, spool, writer)
            _check_same_content(opened)
            written, dups, n_parts = write_partitions(
                spool,
                out,
                spec,
                merge_existing=old is not None,
                slice_rows=slice_rows,
                workers=WORKERS,
            )
            shutil.rmtree(spool_dir, ignore_errors=True)
            _duplicate_rejects(opened, reports, dups, spec, params, pseudo, writer)
            writer.close(write_empty=old is None)
            for i, r in enumerate(reports):
                r.rows_written = written.get(i, 0)
                if r.rows_in != r.rows_written + r.rows_rejected:  # pragma: no cover - a bug
                    raise RuntimeError(
                        f"{r.path}: rows do not reconcile: {r.rows_in} read, "
                        f"{r.rows_written} written, {r.rows_rejected} rejected"
                    )
            dataset_rows = _count_rows(out)
            report = _report(spec, lake, reports, dataset_rows, n_parts, old is not None)
            _fill_manifests(manifest, rmanifest, report, old, params, key, config)
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
    return report


def _first_pass(opened, reports, spec, params, pseudo, spool, writer) -> None:
    """Read every file and parse its batches. The main thread reads (file I/O and polars'
    CSV parser); up to WORKERS batches are parsed, pseudonymised and spooled at once in
    worker threads (polars releases the GIL), and their rejects are written in input
    order, so the output does not depend on thread timing."""
    total = sum(f.size for f, _ in opened)
    done = 0
    pending: deque[tuple[int, Future]] = deque()

    def drain(limit: int) -> None:
        while len(pending) > limit:
            i, future = pending.popleft()
            for rej in future.result():
                _count(reports[i], rej)
                writer.add(rej)

    with console.progress() as bar, ThreadPoolExecutor(max(WORKERS, 1), "parse") as pool:
        task = bar.add_task(f"reading {spec.name}", total=total)
        seq = 0
        for i, (f, mapping) in enumerate(opened):
            for chunk in f.chunks():
                job = (chunk, i, seq, f, mapping, reports[i].path, spec, params, pseudo, spool)
                if WORKERS:
                    future = pool.submit(_process_chunk, *job)
                else:  # inline (to profile one stage at a time)
                    future = Future()
                    future.set_result(_process_chunk(*job))
                pending.append((i, future))
                seq += 1
                drain(WORKERS)
                bar.update(
                    task,
                    completed=done + f.bytes_read,
                    description=escape(
                        f"reading {spec.name}: {f.path.name} ({f.rows_read:,} rows)"
                    ),
                )
            drain(0)
            done += f.size
            reports[i].rows_in = f.rows_read + f.malformed_read
            reports[i].sha256 = f.sha256 or ""


def _process_chunk(
    chunk, i, seq, f, mapping, source, spec, params, pseudo, spool
) -> list[pl.DataFrame]:
    """Parse one batch: good rows to the spool; returns its reject frames."""
    rejects = []
    if chunk.rows.height:
        parsed = spec.parse(chunk.rows, mapping, params, pseudo)
        bad = parsed[REASON].is_not_null()
        spool.add(
            parsed.filter(~bad).drop(REASON).with_columns(pl.lit(i, pl.Int32).alias(FILE)), seq
        )
        if bad.any():
            rejects.append(
                reject_rows(
                    chunk.rows.filter(bad),
                    parsed[REASON].filter(bad),
                    mapping,
                    spec,
                    pseudo,
                    source,
                    f.delimiter,
                )
            )
    if chunk.malformed.height:
        rejects.append(
            malformed_rows(
                chunk.malformed, f.header, mapping, spec, pseudo, source, f.delimiter or ","
            )
        )
    return rejects


def _count(rep: FileReport, rej: pl.DataFrame) -> None:
    rep.rows_rejected += rej.height
    for reason, n in rej["reason"].value_counts().iter_rows():
        rep.rejected_by_reason[reason] = rep.rejected_by_reason.get(reason, 0) + n


def _duplicate_rejects(opened, reports, dups, spec, params, pseudo, writer) -> None:
    if dups.height == 0:
        return
    for (i,), lines in dups.partition_by(FILE, as_dict=True, maintain_order=True).items():
        f, mapping = opened[i]
        for rows in f.rows_at(lines[LINE].sort().to_numpy()):
            if rows.height:
                rej = reject_rows(
                    rows, spec.duplicate_reason, mapping, spec, pseudo, reports[i].path, f.delimiter
                )
                _count(reports[i], rej)
                writer.add(rej)


def _check_same_content(opened) -> None:
    seen: dict[str, Path] = {}
    for f, _ in opened:
        if f.sha256 in seen:
            raise InputError(f"{f.path} has the same content as {seen[f.sha256]}; give it once")
        seen[f.sha256] = f.path


def _check_append(old: dict, opened, key: Key | None, spec: DatasetSpec) -> None:
    old_key = (old.get("key") or {}).get("fingerprint")
    if key is not None and old_key is not None and old_key != key.fingerprint:
        raise UsageError(
            f"the {spec.name} dataset was written with a different pseudonymisation key "
            f"(fingerprint {old_key}, now {key.fingerprint}); appending would split devices",
            hint="use the same SEGTOOL_SALT / --salt-file, or re-ingest everything without --append",
        )
    done = {i.get("sha256"): i.get("path") for i in old.get("inputs", [])}
    for f, _ in opened:
        digest = sha256_file(f.path)
        if digest in done:
            raise InputError(
                f"{f.path} was already ingested into {spec.name} (as {done[digest]}, "
                f"sha256 {digest[:12]}…)",
                hint="leave it out, or re-ingest every file without --append",
            )


def _count_rows(out: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in out.rglob("*.parquet"))


def _report(spec, lake, reports, dataset_rows, n_parts, appended) -> IngestReport:
    reasons: dict[str, int] = {}
    for r in reports:
        for k, v in r.rejected_by_reason.items():
            reasons[k] = reasons.get(k, 0) + v
    return IngestReport(
        dataset=spec.name,
        lake=str(lake.root),
        files=reports,
        rows_in=sum(r.rows_in for r in reports),
        rows_written=sum(r.rows_written for r in reports),
        rows_rejected=sum(r.rows_rejected for r in reports),
        rejected_by_reason=dict(sorted(reasons.items())),
        dataset_rows=dataset_rows,
        partitions=n_parts,
        appended=appended,
    )


def _fill_manifests(manifest, rmanifest, report, old, params, key, config) -> None:
    run = {
        "inputs": [asdict(f) for f in report.files],
        "parameters": params,
        "config": config.path,
        "rows_in": report.rows_in,
        "rows_written": report.rows_written,
        "rows_rejected": report.rows_rejected,
        "rejected_by_reason": report.rejected_by_reason,
    }
    runs = [*(old.get("runs", []) if old else []), run]
    inputs = [*(old.get("inputs", []) if old else [])]
    inputs += [
        {
            k: v
            for k, v in asdict(f).items()
            if k in ("path", "sha256", "bytes", "format", "columns")
        }
        for f in report.files
    ]
    reasons: dict[str, int] = {}
    for r in runs:
        for k, v in r["rejected_by_reason"].items():
            reasons[k] = reasons.get(k, 0) + v
    for m in (manifest, rmanifest):
        m.inputs = inputs
        m.rows_in = sum(r["rows_in"] for r in runs)
        m.rows_written = sum(r["rows_written"] for r in runs)
        m.rows_rejected = sum(r["rows_rejected"] for r in runs)
        m.rejected_by_reason = dict(sorted(reasons.items()))
        m.extra = {
            "dataset": report.dataset,
            "key": key.describe() if key is not None else None,
            "runs": runs,
            "dataset_rows": report.dataset_rows,
        }
    rmanifest.extra = {**rmanifest.extra, "dataset_rows": rmanifest.rows_rejected}
