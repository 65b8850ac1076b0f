"""Ingest's second pass: spooled rows per partition → sorted, de-duplicated Parquet.

The spool keeps parsed rows as Arrow IPC files per partition (a date, for pings) until
every input is read; then each partition is sorted on the dataset's key, exact duplicates
are dropped (the first in input order kept) and the rest is written with pyarrow, at most
`SLICE_ROWS` rows at a time. Split from engine.py, which drives both passes.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from segtool.ingest.reader import LINE

if TYPE_CHECKING:
    from segtool.ingest.engine import DatasetSpec

FILE = "__file"
SLICE_ROWS = 1_500_000  # rows sorted and written at once (bounds memory in the second pass)


class Spool:
    """Parsed rows, kept as Arrow IPC files per partition until every input is read.
    Thread-safe; files are listed in batch order whatever order the threads finish in."""

    def __init__(self, root: Path, partition: str | None):
        self.root = root
        self.partition = partition
        self._files: dict[Any, list[tuple[int, Path]]] = {}
        self.rows: dict[Any, int] = {}
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    @property
    def files(self) -> dict[Any, list[Path]]:
        return {k: [p for _, p in sorted(v)] for k, v in self._files.items()}

    def add(self, frame: pl.DataFrame, seq: int = 0) -> None:
        if frame.height == 0:
            return
        if self.partition is None:
            parts = {None: frame}
        elif frame[self.partition].is_sorted() and frame[self.partition].null_count() == 0:
            # input in time order (the usual case): each partition is one run of rows,
            # sliced without copying
            runs = frame.select(pl.col(self.partition).rle()).unnest(self.partition)
            parts, at = {}, 0
            for n, key in runs.iter_rows():
                parts[key] = frame.slice(at, n).drop(self.partition)
                at += n
        else:
            parts = {
                k[0]: v
                for k, v in frame.partition_by(
                    self.partition, as_dict=True, include_key=False, maintain_order=True
                ).items()
            }
        for n, (key, part) in enumerate(parts.items()):
            path = self.root / f"{seq}-{n}.arrow"
            part.write_ipc(path, compression="uncompressed")
            with self._lock:
                self._files.setdefault(key, []).append((seq, path))
                self.rows[key] = self.rows.get(key, 0) + part.height


def _partition_dir(out: Path, partition: str | None, key: Any) -> Path:
    if partition is None:
        return out
    value = key.isoformat() if hasattr(key, "isoformat") else str(key)
    return out / f"{partition}={value}"


def sort_and_dedupe(part: pl.DataFrame, spec: DatasetSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sort `part` (in input order: file, line) by `spec.sort_by`, then file and line, and
    drop every row equal on `spec.dedupe_on` to an earlier one. Returns the kept rows
    (the dataset's columns and `__file`) and the duplicates' (`__file`, `__line`).

    Sorting on all keys is slow when some are floats, so the rows are ordered on the first
    two keys (device, time) only; the few rows that tie there are re-sorted on every key
    and put back in the same places — which gives exactly the full sort order. Input is
    usually in time order already: then grouping the rows by device suffices (a hash
    group-by keeps each group's rows in input order, so with the groups in device order
    it is a stable sort by device); otherwise the rows are sorted on both keys.
    """
    keys = list(spec.sort_by)
    if not all(_plain(part[c]) for c in keys):  # text keys, or nulls: the general way
        return _sort_and_dedupe_generic(part, spec)
    device, time = keys[:2]
    n = part.height
    groups = (
        part.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("__i"), device)
        .group_by(device)
        .agg("__i")
        .sort(device)
    )
    order = groups["__i"].explode().to_numpy().astype(np.int64)
    dev, t = _numpy(part[device]), _numpy(part[time])
    d_s, t_s = dev[order], t[order]
    same = d_s[1:] == d_s[:-1]
    if (same & (t_s[1:] < t_s[:-1])).any():  # not in time order: sort on both keys
        order = part.select(pl.arg_sort_by(device, time)).to_series().to_numpy().astype(np.int64)
        d_s, t_s = dev[order], t[order]
        same = d_s[1:] == d_s[:-1]
    tie = same & (t_s[1:] == t_s[:-1])
    cand = np.zeros(n, dtype=bool)
    cand[1:] |= tie
    cand[:-1] |= tie
    dup = np.zeros(n, dtype=bool)
    if cand.any():
        at = np.flatnonzero(cand)
        sub = part[order[at]].with_columns(pl.Series("__r", order[at])).sort([*keys, FILE, LINE])
        order[at] = sub["__r"].to_numpy()
        equal = pl.all_horizontal(pl.col(c) == pl.col(c).shift(1) for c in spec.dedupe_on)
        dup[at] = sub.select(equal.fill_null(False)).to_series().to_numpy()
    keep = order[~dup]
    # device and time are already in sorted order (re-sorting ties does not move them)
    gathered = {device: d_s[~dup], time: t_s[~dup]}
    kept = pl.DataFrame(
        [
            pl.Series(c, gathered[c]).cast(part[c].dtype) if c in gathered else _take(part[c], keep)
            for c in [*spec.schema, FILE]
        ]
    )
    return kept, part.select(FILE, LINE)[order[dup]]


def _sort_and_dedupe_generic(part: pl.DataFrame, spec: DatasetSpec):
    part = part.sort([*spec.sort_by, FILE, LINE])
    equal = pl.all_horizontal(pl.col(c) == pl.col(c).shift(1) for c in spec.dedupe_on)
    dup = part.select(equal.fill_null(False)).to_series()
    return part.filter(~dup).select(*spec.schema, FILE), part.filter(dup).select(FILE, LINE)


def _plain(s: pl.Series) -> bool:
    """A column numpy can sort and gather: numbers or times, without nulls."""
    return (s.dtype.is_numeric() or s.dtype.is_temporal()) and s.null_count() == 0


def _numpy(s: pl.Series) -> np.ndarray:
    return s.to_physical().to_numpy()


def _take(s: pl.Series, idx: np.ndarray) -> pl.Series:
    """`s` at positions `idx` (numpy's gather is several times faster than polars' for
    plain columns)."""
    if not _plain(s):
        return s.gather(idx)
    return pl.Series(s.name, _numpy(s)[idx]).cast(s.dtype)


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """Write a dataset file with pyarrow: zstd, byte-stream-split floats, delta-encoded
    times and integers that change row to row (about 3x less CPU than polars' default at
    the same size; every Parquet reader of the last years reads these encodings)."""
    import pyarrow.parquet as pq

    encodings = {}
    for name, dtype in frame.schema.items():
        if dtype in (pl.Float64, pl.Float32) and name not in DICTIONARY_FLOATS:
            encodings[name] = "BYTE_STREAM_SPLIT"
        elif isinstance(dtype, pl.Datetime):
            encodings[name] = "DELTA_BINARY_PACKED"
    pq.write_table(
        frame.to_arrow(),
        path,
        compression="zstd",
        use_dictionary=[c for c in frame.columns if c not in encodings],
        column_encoding=encodings or None,
        write_statistics=True,
    )


# floats with few distinct values (rounded by the vendor) compress better as dictionaries
DICTIONARY_FLOATS = {"accuracy_m", "count"}


def write_partitions(
    spool: Spool,
    out: Path,
    spec: DatasetSpec,
    *,
    merge_existing: bool,
    slice_rows: int = SLICE_ROWS,
    workers: int,
) -> tuple[dict[int, int], pl.DataFrame, int]:
    """Sort, de-duplicate and write every spooled partition (merging the rows already in
    the dataset when appending), `workers` partitions at a time. Returns rows written per
    input file, the (file, line) of each duplicate, and how many partitions were written."""
    spooled = spool.files
    keys = sorted(spooled, key=lambda k: (k is None, k))
    jobs = [(key, spooled[key], spool.rows[key]) for key in keys]
    with ThreadPoolExecutor(max(workers, 1), "partition") as pool:
        results = list(
            pool.map(
                lambda job: _write_partition(*job, out, spec, merge_existing, slice_rows), jobs
            )
        )
    written: dict[int, int] = {}
    dups: list[pl.DataFrame] = []
    for part_written, part_dups in results:  # in key order: the same whatever the timing
        for f, c in part_written.items():
            written[f] = written.get(f, 0) + c
        dups.extend(part_dups)
    dup_frame = (
        pl.concat(dups).sort(FILE, LINE)
        if dups
        else pl.DataFrame(schema={FILE: pl.Int32, LINE: pl.UInt64})
    )
    return written, dup_frame, len(keys)


def _write_partition(
    key,
    files: list[Path],
    rows: int,
    out: Path,
    spec: DatasetSpec,
    merge_existing: bool,
    slice_rows: int,
) -> tuple[dict[int, int], list[pl.DataFrame]]:
    written: dict[int, int] = {}
    dups: list[pl.DataFrame] = []
    data_cols = list(spec.schema)
    target = _partition_dir(out, spec.partition, key)
    target.mkdir(parents=True, exist_ok=True)
    old_files = sorted(target.glob("*.parquet")) if merge_existing else []
    frames = [pl.scan_ipc([str(p) for p in files]).select(*data_cols, FILE, LINE)]
    n = rows
    if old_files:
        frames.insert(
            0,
            pl.scan_parquet([str(p) for p in old_files], hive_partitioning=False).select(
                *(pl.col(c).cast(t) for c, t in spec.schema.items()),
                pl.lit(-1, pl.Int32).alias(FILE),
                pl.lit(0, pl.UInt64).alias(LINE),
            ),
        )
        n += sum(pl.scan_parquet(str(p)).select(pl.len()).collect().item() for p in old_files)
    lf = pl.concat(frames, how="vertical_relaxed")
    k = max(1, math.ceil(n / slice_rows)) if spec.slice_on else 1
    new_files = []
    for s in range(k):
        part_lf = lf
        if k > 1:
            lo = (s << 64) // k
            hi = ((s + 1) << 64) // k
            cond = pl.col(spec.slice_on) >= pl.lit(lo, pl.UInt64)
            if s < k - 1:
                cond = cond & (pl.col(spec.slice_on) < pl.lit(hi, pl.UInt64))
            part_lf = lf.filter(cond)
        kept, dup = sort_and_dedupe(part_lf.collect(), spec)
        if dup.height:
            dups.append(dup)
        for f, c in kept.group_by(FILE).len().iter_rows():
            if f >= 0:
                written[f] = written.get(f, 0) + c
        tmp = target / f".part-{s}.parquet.tmp"
        write_table(kept.select(data_cols), tmp)
        new_files.append(tmp)
    for p in old_files:
        p.unlink()  # hard links into the previous version: the original stays intact
    for s, tmp in enumerate(new_files):
        os.replace(tmp, target / f"part-{s}.parquet")
    return written, dups
