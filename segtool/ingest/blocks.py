"""One block of whole text lines → a `Chunk`: its rows (all text, numbered) and its
malformed lines, kept apart.

`parse_block` picks one of four paths, which agree line for line (a property test checks
them against each other and a plain-Python oracle):

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

Blank lines are not rows (they are skipped and not counted). A malformed line — wrong
field count or unclosed quote — is returned as text in `Chunk.malformed`, never parsed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import InputError

LINE = "__line"
TEXT = "__text"


@dataclass
class Chunk:
    """A batch of rows: `rows` has one column per input column (text for CSV, native
    dtypes for Parquet) plus `__line`; `malformed` holds `__line` and `__text`."""

    rows: pl.DataFrame
    malformed: pl.DataFrame


def empty_malformed() -> pl.DataFrame:
    return pl.DataFrame(schema={LINE: pl.UInt64, TEXT: pl.String})


def count_byte(block: bytes, byte: int) -> int:
    """How often `byte` occurs in `block` (numpy: about 3x faster than bytes.count)."""
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == byte))


def is_utf8(encoding: str) -> bool:
    return encoding.replace("-", "").replace("_", "").lower() in ("utf8", "ascii")


def to_utf8(block: bytes, encoding: str, path: Path, line: int) -> bytes:
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
    if is_utf8(encoding):
        return block
    return text.encode("utf-8")


def parse_block(
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
                    return Chunk(_numbered(rows, first_line, n_lines), empty_malformed())
                rows = None
        else:
            rows = None
    # The slower paths decode malformed lines in Python: check the bytes first (polars
    # and pyarrow also refuse invalid UTF-8, but cannot say where).
    to_utf8(block, "utf-8", path, first_line)
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
