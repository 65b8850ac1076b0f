"""Input files → batches of rows with their line numbers; malformed lines kept apart.

Formats are recognised by their first bytes, not their names: Parquet (`PAR1`), gzip, bzip2
and xz-compressed text, and plain text tables (CSV/TSV; the delimiter is detected from the
header among `,` `;` tab `|` unless given). Every data row carries `__line`: its 1-based
physical line in the (decompressed) text, the header being line 1 — or its 1-based row
number in a Parquet file.

A text file is read in blocks of whole lines (16 MB by default, so memory stays bounded
whatever the file size); `segtool.ingest.blocks.parse_block` turns each block into rows and
malformed lines.

Broken files raise `InputError` naming the file (and the line when known): empty files,
a header without rows, truncated or corrupt compressed data, bytes that are not valid in
the encoding, NUL bytes, archives (zip), and files in which no line has the header's
number of fields (a wrong delimiter).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import lzma
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import InputError
from segtool.ingest.blocks import (
    LINE,
    TEXT,
    Chunk,
    count_byte,
    empty_malformed,
    is_utf8,
    parse_block,
    to_utf8,
)

__all__ = ["LINE", "TEXT", "Chunk", "InputFile", "open_input", "sniff", "lines_that_decode"]

BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = (
    262_144  # pyarrow batches pin their row group's decoded buffers: keep them small
)
DELIMITERS = (",", ";", "\t", "|")
HASH_IN_BACKGROUND = True  # False: hash in the reading thread (to profile stages)

_MAGIC = {
    b"PAR1": "parquet",
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
    b"\x28\xb5\x2f\xfd": "zstd",
}


class _HashingReader(io.RawIOBase):
    """Reads a file, hashing every byte read and counting them (for progress)."""

    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        if n:
            self.sha256.update(memoryview(b)[:n])
            self.position += n
        return n

    def drain(self) -> None:
        while block := self._f.read(1 << 20):
            self.sha256.update(block)
            self.position += len(block)

    def close(self) -> None:
        self._f.close()
        super().close()


def sniff(path: Path) -> str:
    """'parquet', 'gzip', 'bz2', 'xz', 'zip', 'zstd' or 'text', from the first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a file") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "text"


@dataclass
class InputFile:
    """An opened input: its format, header and (after reading) content hash."""

    path: Path
    kind: str  # "text" or "parquet"
    compression: str | None
    header: list[str]
    delimiter: str | None = None
    encoding: str = "utf-8"
    size: int = 0
    block_bytes: int = BLOCK_BYTES
    bytes_read: int = 0
    rows_read: int = 0
    malformed_read: int = 0
    sha256: str | None = None
    header_line: int = 1
    data_offset: int = 0  # bytes before the first data line (uncompressed text)
    _parquet_rows: int = field(default=0, repr=False)

    @property
    def format(self) -> str:
        if self.kind == "parquet":
            return "parquet"
        return "csv" + (f".{self.compression}" if self.compression else "")

    def chunks(self) -> Iterator[Chunk]:
        if self.kind == "parquet":
            yield from self._parquet_chunks()
        else:
            yield from self._text_chunks()

    # -- Parquet -------------------------------------------------------------------------
    def _parquet_chunks(self) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
            offset = 0
            # one iterator per row group: a single iterator over the whole file keeps
            # memory for every row group it has read (pyarrow 26)
            for group in range(pf.metadata.num_row_groups):
                for batch in pf.iter_batches(
                    batch_size=PARQUET_BATCH_ROWS, row_groups=[group], use_threads=True
                ):
                    rows = pl.from_arrow(batch)
                    assert isinstance(rows, pl.DataFrame)
                    rows = rows.with_columns(
                        pl.int_range(offset + 1, offset + rows.height + 1, dtype=pl.UInt64).alias(
                            LINE
                        )
                    )
                    offset += rows.height
                    self.rows_read = offset
                    self.bytes_read = int(self.size * offset / max(self._parquet_rows, 1))
                    yield Chunk(rows, empty_malformed())
        except (OSError, ValueError) as e:
            raise InputError(f"{self.path}: cannot read this Parquet file: {e}") from None
        from segtool.lake import sha256_file

        self.sha256 = sha256_file(self.path)
        if offset == 0:
            raise InputError(f"{self.path} holds no rows")

    # -- text ----------------------------------------------------------------------------
    def _open_text(self) -> tuple[_HashingReader, io.BufferedIOBase]:
        raw = _HashingReader(open(self.path, "rb"))  # noqa: SIM115 - closed by the caller
        buffered = io.BufferedReader(raw, buffer_size=1 << 20)
        if self.compression == "gzip":
            return raw, gzip.GzipFile(fileobj=buffered, mode="rb")
        if self.compression == "bz2":
            return raw, bz2.BZ2File(buffered, mode="rb")
        if self.compression == "xz":
            return raw, lzma.LZMAFile(buffered, mode="rb")
        return raw, buffered

    def _text_chunks(self) -> Iterator[Chunk]:
        line = self.header_line + 1  # physical line number of the block's first line
        good = 0
        utf8 = is_utf8(self.encoding)
        for block in self._blocks():
            if b"\x00" in block:
                at = line + block.count(b"\n", 0, block.index(b"\x00"))
                raise InputError(
                    f"{self.path}, line {at}: NUL bytes — this is not a text table (a binary file?)"
                )
            if not utf8:
                block = to_utf8(block, self.encoding, self.path, line)
            n_lines = count_byte(block, 10) + (0 if block.endswith(b"\n") else 1)
            chunk = parse_block(block, self.header, self.delimiter, line, n_lines, self.path)
            good += chunk.rows.height
            self.rows_read += chunk.rows.height
            self.malformed_read += chunk.malformed.height
            line += n_lines
            if chunk.rows.height or chunk.malformed.height:
                yield chunk
        if good == 0 and self.malformed_read == 0:
            raise InputError(f"{self.path} has a header but no rows")
        if good == 0:
            raise InputError(
                f"{self.path}: no line has the header's {len(self.header)} fields "
                f"(delimiter {self.delimiter!r}); wrong delimiter, or not a table?",
                hint="pass --delimiter to name the delimiter",
            )

    def rows_at(self, wanted: np.ndarray) -> Iterator[pl.DataFrame]:
        """Read again the rows at the given line (row) numbers — sorted, all well formed —
        as text fields with `__line`. Only the blocks holding them are parsed."""
        wanted = np.asarray(wanted, dtype=np.uint64)
        if self.kind == "parquet":
            frame = (
                pl.scan_parquet(self.path)
                .with_row_index(LINE, offset=1)
                .filter(pl.col(LINE).is_in(pl.Series(wanted).implode()))
                .collect()
            )
            yield frame.select(pl.exclude(LINE), pl.col(LINE).cast(pl.UInt64))
            return
        line = self.header_line + 1
        regions = self._plain_regions(False) if self.compression is None else self._blocks(False)
        for region in regions:
            # line ends by numpy over the (reused) buffer; only the wanted lines are copied
            arr = np.frombuffer(region, dtype=np.uint8)
            ends = np.flatnonzero(arr == 10)
            if ends.size == 0 or ends[-1] != arr.size - 1:
                ends = np.append(ends, arr.size)
            n = ends.size
            lo, hi = np.searchsorted(wanted, [line, line + n])
            if hi > lo:
                rel = (wanted[lo:hi] - line).astype(np.int64)
                starts = np.where(rel > 0, ends[np.maximum(rel - 1, 0)] + 1, 0)
                sub = b"\n".join(
                    bytes(region[a:z])
                    for a, z in zip(starts.tolist(), ends[rel].tolist(), strict=True)
                )
                del arr
                if not is_utf8(self.encoding):
                    sub = to_utf8(sub, self.encoding, self.path, line)
                chunk = parse_block(sub, self.header, self.delimiter, 1, int(hi - lo), self.path)
                if chunk.malformed.height or chunk.rows.height != hi - lo:  # pragma: no cover
                    raise AssertionError(f"{self.path}: lines read again do not parse alike")
                yield chunk.rows.with_columns(pl.Series(LINE, wanted[lo:hi], dtype=pl.UInt64))
            else:
                del arr
            del region
            line += n
            if line > wanted[-1]:
                break

    def _blocks(self, with_hash: bool = True) -> Iterator[bytes]:
        """The data lines (after the header) in blocks of whole lines; sets `sha256`."""
        if self.compression is None:
            yield from self._plain_blocks(with_hash)
        else:
            yield from self._compressed_blocks()

    def _plain_blocks(self, with_hash: bool = True) -> Iterator[bytes]:
        for region in self._plain_regions(with_hash):
            yield bytes(region)  # the one copy: what polars parses

    def _plain_regions(self, with_hash: bool = True) -> Iterator[memoryview]:
        """Views of whole lines in one reused buffer (valid until the next step). The
        content hash of each read runs in a thread (hashlib releases the GIL) while the
        caller parses. (Neither a memory map, which would count the whole file in the
        resident set, nor fresh buffers, whose page faults cost more than a copy.)"""
        digest = hashlib.sha256()
        buf = bytearray(self.block_bytes)
        filled = 0
        try:
            with (
                open(self.path, "rb", buffering=0) as f,
                ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher,
            ):
                digest.update(f.read(self.data_offset))
                self.bytes_read = self.data_offset
                while True:
                    if filled == len(buf):  # a line longer than the buffer
                        bigger = bytearray(2 * len(buf))
                        bigger[:filled] = buf
                        buf = bigger
                    n = f.readinto(memoryview(buf)[filled:])
                    hashing = None
                    if with_hash and n:
                        piece = memoryview(buf)[filled : filled + n]
                        if HASH_IN_BACKGROUND:
                            hashing = hasher.submit(digest.update, piece)
                        else:
                            _update(digest, piece)
                    self.bytes_read += n
                    total = filled + n
                    cut = buf.rfind(b"\n", 0, total) + 1 if n else total
                    if cut:
                        yield memoryview(buf)[:cut]
                    if hashing is not None:
                        hashing.result()
                    if n == 0:
                        break
                    buf[: total - cut] = buf[cut:total]
                    filled = total - cut
        except OSError as e:
            raise InputError(f"cannot read {self.path}: {e.strerror or e}") from None
        if with_hash:
            self.sha256 = digest.hexdigest()

    def _compressed_blocks(self) -> Iterator[bytes]:
        raw, stream = self._open_text()
        line = self.header_line + 1
        try:
            with stream:
                _read_header_lines(stream, self.header_line)
                while True:
                    pieces: list[bytes] = []
                    size = 0
                    try:
                        while size < self.block_bytes:
                            piece = stream.read(min(1 << 20, self.block_bytes - size))
                            if not piece:
                                break
                            pieces.append(piece)
                            size += len(piece)
                        if pieces and not pieces[-1].endswith(b"\n"):
                            pieces.append(stream.readline())
                    except (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, OSError) as e:
                        done = line - 1 + sum(p.count(b"\n") for p in pieces)
                        # the failing read drops what it had decoded: count it again exactly
                        done = max(done, lines_that_decode(self.path, self.compression))
                        raise InputError(
                            f"{self.path}: the {self.compression} data are truncated or corrupt "
                            f"after line {done}: {e}",
                            hint="re-download or re-export the file",
                        ) from None
                    block = b"".join(pieces)
                    self.bytes_read = raw.position
                    if not block:
                        break
                    line += block.count(b"\n")
                    yield block
                raw.drain()
        finally:
            raw.close()
        self.sha256 = raw.sha256.hexdigest()
        self.bytes_read = raw.position


def _decompressor(compression: str):
    if compression == "gzip":
        return zlib.decompressobj(wbits=31)
    if compression == "bz2":
        return bz2.BZ2Decompressor()
    if compression == "xz":
        return lzma.LZMADecompressor()
    return None


def lines_that_decode(path: str | Path, compression: str) -> int:
    """How many complete lines (newline-terminated, the header included) of a truncated or
    corrupt compressed file decode before the damage: one incremental pass, constant
    memory. Concatenated gzip/bz2/xz members are followed."""
    dec = _decompressor(compression)
    if dec is None:
        return 0
    lines = 0
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                while block:
                    lines += dec.decompress(block).count(b"\n")
                    if not dec.eof:
                        break
                    block = dec.unused_data  # the next member, if any
                    dec = _decompressor(compression)
    except (EOFError, zlib.error, lzma.LZMAError, OSError, ValueError):
        pass
    return lines


def _update(digest, data) -> None:
    digest.update(data)


def _read_header_lines(stream, header_line: int) -> bytes:
    line = b""
    for _ in range(header_line):
        line = stream.readline()
    return line


def open_input(
    path: str | Path, *, delimiter: str | None = None, encoding: str = "utf-8"
) -> InputFile:
    """Recognise the file's format and read its header (and detect the delimiter)."""
    path = Path(path)
    kind = sniff(path)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path} is empty")
    if kind == "zip":
        raise InputError(
            f"{path} is a zip archive (or a spreadsheet)", hint="unzip it / export CSV"
        )
    if kind == "zstd":
        raise InputError(f"{path} is zstd-compressed", hint="decompress it (zstd -d) first")
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise InputError(f"{path}: not a readable Parquet file: {e}") from None
        f = InputFile(path, "parquet", None, list(pf.schema_arrow.names), size=size)
        f._parquet_rows = pf.metadata.num_rows
        return f
    compression = None if kind == "text" else kind
    f = InputFile(path, "text", compression, [], encoding=encoding, size=size)
    raw, stream = f._open_text()
    try:
        with stream:
            header_bytes, header_line, offset = b"", 0, 0
            while not header_bytes.strip():
                header_bytes = stream.readline(1 << 20)
                header_line += 1
                offset += len(header_bytes)
                if not header_bytes:
                    raise InputError(f"{path} is empty (no header line)")
    except (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, OSError) as e:
        raise InputError(f"{path}: the {compression} data are truncated or corrupt: {e}") from None
    finally:
        raw.close()
    if b"\x00" in header_bytes:
        raise InputError(f"{path}, line {header_line}: NUL bytes — not a text table")
    text = to_utf8(header_bytes, encoding, path, header_line).decode("utf-8")
    text = text.lstrip("\ufeff").rstrip("\r\n")
    if delimiter is None:
        counts = {d: text.count(d) for d in DELIMITERS}
        delimiter = max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    elif delimiter in ("\\t", "tab", "TAB"):
        delimiter = "\t"
    if len(delimiter) != 1:
        raise InputError(f"the delimiter must be one character, not {delimiter!r}")
    names = next(csv.reader([text], delimiter=delimiter))
    f.header = _unique_names(names)
    f.delimiter = delimiter
    f.header_line = header_line
    f.data_offset = offset
    return f


def _unique_names(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        base = name.strip() or f"column_{i + 1}"
        cand, k = base, 2
        while cand in seen:
            cand, k = f"{base}_{k}", k + 1
        seen.add(cand)
        out.append(cand)
    return out
