"""The reader's three ways through a block agree with each other and with a plain oracle."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.ingest.blocks import _LineIndex, _quoted, _unquoted, parse_block

HEADER = ["a", "b", "c"]
_field = st.text(alphabet="xyz01 .-:", max_size=4)
_line = st.one_of(
    st.lists(_field, min_size=3, max_size=3).map(",".join),  # well formed
    st.lists(_field, min_size=0, max_size=5).map(",".join),  # any field count
    st.sampled_from(["", "\r", "  "]),
)


def oracle(lines: list[str], first: int) -> tuple[list[tuple], list[tuple]]:
    rows, bad = [], []
    for i, raw in enumerate(lines):
        text = raw[:-1] if raw.endswith("\r") else raw
        if text == "":
            continue
        parts = text.split(",")
        (rows if len(parts) == 3 else bad).append(
            (*parts, first + i) if len(parts) == 3 else (first + i, text)
        )
    return rows, bad


@settings(max_examples=150, deadline=None)
@given(st.lists(_line, min_size=1, max_size=30), st.booleans())
def test_paths_agree_with_the_oracle(lines, final_newline):
    block = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    if not block:
        return
    n = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    rows, bad = oracle(block.decode().split("\n")[:n], 7)
    for chunk in (
        parse_block(block, HEADER, ",", 7, n, "x"),
        _unquoted(block, _LineIndex(block, 7), HEADER, ","),
        _quoted(block, _LineIndex(block, 7), HEADER, ","),
    ):
        assert chunk.rows.rows() == rows
        assert chunk.malformed.rows() == bad


def test_line_index_keeps_and_counts():
    block = b"a,b\r\n\nc,d,e\nf"
    idx = _LineIndex(block, 1)
    assert idx.numbers.tolist() == [1, 2, 3, 4]
    assert idx.blank.tolist() == [False, True, False, False]
    assert idx.count(ord(",")).tolist() == [1, 0, 2, 0]
    assert idx.count_in(ord(","), np.array([0, 2]), block).tolist() == [1, 2]
    assert idx.keep(np.array([True, False, False, True]), block) == b"a,b\r\nf"
    assert pl.Series(idx.texts(np.array([True, True, True, True]), block)).to_list() == [
        "a,b",
        "",
        "c,d,e",
        "f",
    ]


def test_lines_longer_than_a_block_hash_and_rows_at(tmp_path):
    import hashlib

    from segtool.ingest.reader import open_input

    path = tmp_path / "long.csv"
    path.write_text("a,b,c\n" + "".join(f"{'x' * i},{i},z\n" for i in range(1, 60)) + "last,1,2")
    f = open_input(path)
    f.block_bytes = 16  # most lines are longer than a block
    rows = pl.concat([c.rows for c in f.chunks()])
    assert rows.height == 60 and rows["__line"].to_list() == list(range(2, 62))
    assert rows["b"].to_list() == [str(i) for i in range(1, 60)] + ["1"]
    assert f.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    again = pl.concat(list(f.rows_at(np.array([2, 30, 61]))))
    assert again.rows() == [("x", "1", "z", 2), ("x" * 29, "29", "z", 30), ("last", "1", "2", 61)]
