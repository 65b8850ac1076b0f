"""Input files → batches of rows with their line numbers; malformed lines kept apart.

Formats are recognised by their first bytes, not their names: Parquet (`PAR1`), gzip, bzip2
and xz-compressed text, and plain text tables (CSV/TSV; the delimiter is detected from the
header among `,` `;` tab `|` unless given). Every data row carries `__line`: its 1-based
physical line in the (decompressed) text, the header being line 1 — or its 1-based row
number in a Parquet file.

How a text file is read, in blocks of whole lines (16 MB by default, so memory stays
bounded whatever the file size):

- *fast path* — a block without quote characters goes to polars' multi-threaded CSV
  reader, all columns as text. polars fills the missing fields of a short line (and a
  blank line) with "", so when the last column holds no empty value and the block holds
  exactly (fields − 1) delimiters per line, every line was well formed;
- *suspects* — otherwise only the lines whose last field came out empty are checked: their
  delimiters are counted (numpy over the block's line offsets) and the short or blank
  ones are dropped from polars' result — no second parse;
- *numpy path* — a block with a line that has too many fields (polars refuses it): the
  delimiters of every line are counted, malformed lines set aside, and polars parses the
  well-formed rest;
- *quoted path* — a block with `"`: lines with an odd number of quotes (a quote left open)
  are malformed; pyarrow's CSV reader parses the rest (RFC 4180 quoting, `""` escapes)
  and its invalid-row handler reports each line with the wrong number of fields. Quoted
  values may not contain line breaks (each physical line is one row).

The paths agree line for line (a property test checks them against each other and a
plain-Python oracle). Blank lines are not rows (they are skipped and not counted). A
malformed line — wrong field count or unclosed quote — is returned as text in
`Chunk.malformed`, never parsed.

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

LINE = "__line"
TEXT = "__text"
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


@dataclass
class Chunk:
    """A batch of rows: `rows` has one column per input column (text for CSV, native
    dtypes for Parquet) plus `__line`; `malformed` holds `__line` and `__text`."""

    rows: pl.DataFrame
    malformed: pl.DataFrame


def _empty_malformed() -> pl.DataFrame:
    return pl.DataFrame(schema={LINE: pl.UInt64, TEXT: pl.String})


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
                    yield Chunk(rows, _empty_malformed())
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
        utf8 = _is_utf8(self.encoding)
        for block in self._blocks():
            if b"\x00" in block:
                at = line + block.count(b"\n", 0, block.index(b"\x00"))
                raise InputError(
                    f"{self.path}, line {at}: NUL bytes — this is not a text table (a binary file?)"
                )
            if not utf8:
                block = _to_utf8(block, self.encoding, self.path, line)
            n_lines = count_byte(block, 10) + (0 if block.endswith(b"\n") else 1)
            chunk = _parse_block(block, self.header, self.delimiter, line, n_lines, self.path)
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
                if not _is_utf8(self.encoding):
                    sub = _to_utf8(sub, self.encoding, self.path, line)
                chunk = _parse_block(sub, self.header, self.delimiter, 1, int(hi - lo), self.path)
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


def count_byte(block: bytes, byte: int) -> int:
    """How often `byte` occurs in `block` (numpy: about 3x faster than bytes.count)."""
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == byte))


def _is_utf8(encoding: str) -> bool:
    return encoding.replace("-", "").replace("_", "").lower() in ("utf8", "ascii")


def _to_utf8(block: bytes, encoding: str, path: Path, line: int) -> bytes:
    try:
        text = block.decode(encoding)
    except UnicodeDecodeError as e:
        at = line + block.count(b"\n", 0, e.start)
        bad = block[e.start : e.start + 4].hex(" ")
        raise InputError(
            f"{path}, line {at}: bytes that are not valid {encoding} ({bad})",
            hint="pass --encoding with the file's encoding (e.g. latin-1 or cp1252)",
        ) from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None
    if _is_utf8(encoding):
        return block
    return text.encode("utf-8")


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
    text = _to_utf8(header_bytes, encoding, path, header_line).decode("utf-8")
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


# -- parsing one block ----------------------------------------------------------------------


def _parse_block(
    block: bytes, header: list[str], delimiter: str, first_line: int, n_lines: int, path: Path
) -> Chunk:
    rows = None
    if b'"' not in block:
        rows = _fast(block, header, delimiter)
        # polars fills missing trailing fields (short rows, blank lines) with "": when the
        # last column holds no empty value, every line had all its fields.
        # A line with too many fields makes polars refuse the block — except when the extra
        # fields are empty (a trailing delimiter), which the delimiter total gives away.
        delimiters = count_byte(block, ord(delimiter))
        if rows is not None and rows.height == n_lines:
            last = rows.to_series(rows.width - 1)
            suspects = last.str.len_bytes() == 0
            if not suspects.any():
                if delimiters == n_lines * (len(header) - 1):
                    return Chunk(_numbered(rows, first_line, n_lines), _empty_malformed())
                rows = None
        else:
            rows = None
    # The slower paths decode malformed lines in Python: check the bytes first (polars
    # and pyarrow also refuse invalid UTF-8, but cannot say where).
    _to_utf8(block, "utf-8", path, first_line)
    lines = _LineIndex(block, first_line)
    if rows is not None:
        # polars read every line: only the suspects (empty last field) may be short rows
        # or blank lines; count their delimiters and drop those that are.
        cand = suspects.arg_true().to_numpy()
        counts = lines.count_in(ord(delimiter), cand, block)
        if delimiters != (n_lines - cand.size) * (len(header) - 1) + counts.sum():
            return _unquoted(block, lines, header, delimiter)  # some other line is too long
        bad_at = cand[(counts != len(header) - 1) & ~lines.blank[cand]]
        drop = np.zeros(n_lines, dtype=bool)
        drop[cand[(counts != len(header) - 1) | lines.blank[cand]]] = True
        bad = np.zeros(n_lines, dtype=bool)
        bad[bad_at] = True
        rows = _numbered(rows, first_line, n_lines).filter(pl.Series(~drop))
        return Chunk(rows, _malformed(lines.numbers[bad], lines.texts(bad, block)))
    if b'"' not in block:
        return _unquoted(block, lines, header, delimiter)
    try:
        return _quoted(block, lines, header, delimiter)
    except Exception as e:  # pyarrow's parse errors
        import pyarrow as pa

        if isinstance(e, pa.ArrowException):
            raise InputError(
                f"{path}: lines {first_line}–{first_line + n_lines - 1} cannot be parsed: {e}"
            ) from None
        raise


def _numbered(rows: pl.DataFrame, first_line: int, n: int) -> pl.DataFrame:
    return rows.with_columns(pl.int_range(first_line, first_line + n, dtype=pl.UInt64).alias(LINE))


class _LineIndex:
    """Where each line of a block starts and stops (without its \\r\\n), vectorised."""

    def __init__(self, block: bytes, first_line: int):
        self.buf = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(self.buf == 10)
        if ends.size == 0 or ends[-1] != self.buf.size - 1:
            ends = np.append(ends, self.buf.size)
        self.ends = ends  # position of each line's \n (or the block's end)
        self.starts = np.concatenate(([0], ends[:-1] + 1))
        stop = ends.copy()
        has_cr = (stop > self.starts) & (self.buf[np.maximum(stop - 1, 0)] == 13)
        self.stops = stop - has_cr
        self.numbers = np.arange(first_line, first_line + ends.size, dtype=np.uint64)
        self.blank = self.stops == self.starts

    def count(self, byte: int) -> np.ndarray:
        """How many times `byte` occurs in each line."""
        at = np.flatnonzero(self.buf == byte)
        return np.searchsorted(at, self.stops) - np.searchsorted(at, self.starts)

    def count_in(self, byte: int, lines: np.ndarray, block: bytes) -> np.ndarray:
        """How many times `byte` occurs in each of the given lines."""
        if lines.size > 20_000:
            return self.count(byte)[lines]
        b = bytes([byte])
        return np.array(
            [
                block.count(b, a, z)
                for a, z in zip(
                    self.starts[lines].tolist(), self.stops[lines].tolist(), strict=True
                )
            ],
            dtype=np.int64,
        )

    def texts(self, mask: np.ndarray, block: bytes) -> list[str]:
        return [
            block[a:b].decode("utf-8")
            for a, b in zip(self.starts[mask], self.stops[mask], strict=True)
        ]

    def keep(self, mask: np.ndarray, block: bytes) -> bytes:
        """The block with only the lines in `mask` (each with its line end)."""
        if mask.all():
            return block
        # byte ranges of the runs of kept lines, joined
        edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
        first, last = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        return b"".join(
            block[a : b + 1]
            for a, b in zip(self.starts[first].tolist(), self.ends[last].tolist(), strict=True)
        )


def _malformed(numbers: np.ndarray, texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {LINE: pl.Series(numbers, dtype=pl.UInt64), TEXT: pl.Series(texts, dtype=pl.String)}
    ).sort(LINE)


def _unquoted(block: bytes, lines: _LineIndex, header: list[str], delimiter: str) -> Chunk:
    """Without quotes a line is well formed iff it holds (fields − 1) delimiters: count
    them per line, set the others aside, and parse the rest with polars."""
    good = ~lines.blank & (lines.count(ord(delimiter)) == len(header) - 1)
    bad = ~lines.blank & ~good
    kept = lines.keep(good, block)
    rows = _fast(kept, header, delimiter) if good.any() else None
    if rows is None:
        rows = pl.DataFrame(schema={h: pl.String for h in header})
    if rows.height != int(good.sum()):  # pragma: no cover - polars contract
        raise AssertionError("polars returned an unexpected number of rows")
    rows = rows.with_columns(pl.Series(LINE, lines.numbers[good], dtype=pl.UInt64))
    return Chunk(rows, _malformed(lines.numbers[bad], lines.texts(bad, block)))


def _fast(block: bytes, header: list[str], delimiter: str) -> pl.DataFrame | None:
    try:
        return pl.read_csv(
            block,
            has_header=False,
            schema={name: pl.String for name in header},
            separator=delimiter,
            quote_char=None,
            empty_string_is_null=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        return None


def _quoted(block: bytes, lines: _LineIndex, header: list[str], delimiter: str) -> Chunk:
    """Quoted fields: lines with an odd number of quotes are malformed (a quote left
    open); pyarrow parses the rest (RFC 4180) and reports lines with the wrong field count."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    odd = (lines.count(34) % 2 == 1) & ~lines.blank
    keep = ~lines.blank & ~odd
    bad_lines = [lines.numbers[odd]]
    bad_texts = lines.texts(odd, block)
    kept_lines = lines.numbers[keep]
    data = lines.keep(keep, block) if keep.any() else b""
    columns = [f"c{i}" for i in range(len(header))]
    invalid: list[tuple[int, str]] = []

    def handler(row) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    def read(threads: bool):
        invalid.clear()
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=columns, use_threads=threads, block_size=max(len(data), 1 << 20) + 1
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                newlines_in_values=False,
                ignore_empty_lines=True,
                invalid_row_handler=handler,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    if data:
        table = read(True)
        if invalid and any(n is None for n, _ in invalid):
            table = read(False)  # line numbers of invalid rows are known single-threaded
        rows = pl.from_arrow(table)
        assert isinstance(rows, pl.DataFrame)
        rows.columns = header
        if invalid:
            numbers = np.array([n for n, _ in invalid], dtype=np.int64) - 1
            bad_lines.append(kept_lines[numbers])
            bad_texts.extend(t for _, t in invalid)
            mask = np.ones(kept_lines.size, dtype=bool)
            mask[numbers] = False
            kept_lines = kept_lines[mask]
        if rows.height != kept_lines.size:  # pragma: no cover - pyarrow contract
            raise AssertionError("pyarrow returned an unexpected number of rows")
        rows = rows.with_columns(pl.Series(LINE, kept_lines, dtype=pl.UInt64))
    else:
        rows = pl.DataFrame(schema={**{h: pl.String for h in header}, LINE: pl.UInt64})
    return Chunk(rows, _malformed(np.concatenate(bad_lines), bad_texts))
