"""Broken inputs: a clear error naming the file (and line), exit 1, nothing left behind;
and hypothesis-made malformed CSVs never crash and never lose a row."""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADER = "device_id,timestamp,latitude,longitude,accuracy"
ROW = "dev-{i},2024-03-04T10:{m:02d}:00+01:00,59.33,18.06,5"


def rows(n: int) -> list[str]:
    return [ROW.format(i=i % 5, m=i % 60) for i in range(n)]


def _truncated_gzip() -> bytes:
    data = gzip.compress(("\n".join([HEADER, *rows(20000)]) + "\n").encode(), mtime=0)
    return data[: len(data) // 2]


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pings.csv", "\n".join([HEADER, *rows(3)]))
    return buf.getvalue()


PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(range(256)) * 4

BROKEN = {
    # name: (file name, content, extra options, words the message must hold)
    "truncated gzip": ("p.csv.gz", _truncated_gzip(), [], ["truncated or corrupt", "after line"]),
    "wrong delimiter given": (
        "p.csv",
        "\n".join([HEADER.replace(",", ";"), *[r.replace(",", ";") for r in rows(3)]]),
        ["--delimiter", ","],
        ["wrong delimiter"],
    ),
    "data delimiter differs from header": (
        "p.csv",
        "\n".join([HEADER, *[r.replace(",", ";") for r in rows(3)]]),
        [],
        ["no line has the header's 5 fields"],
    ),
    "not a table": ("p.csv", PNG, [], ["not valid utf-8"]),
    "zip archive": ("p.zip", _zip(), [], ["zip archive"]),
    "empty": ("p.csv", b"", [], ["is empty"]),
    "blank lines only": ("p.csv", b"\n\n  \n", [], ["is empty"]),
    "header only": ("p.csv", HEADER + "\n", [], ["header but no rows"]),
    "bad bytes": (
        "p.csv",
        ("\n".join([HEADER, *rows(2)]) + "\n").encode()
        + "dev-ö,2024-03-04T10:00:00Z,59.3,18.0,5\n".encode("latin-1"),
        [],
        ["line 4", "not valid utf-8"],
    ),
    "NUL bytes": (
        "p.csv",
        ("\n".join([HEADER, *rows(2)]) + "\nde\x00v,x,1,2,3\n").encode(),
        [],
        ["line 4", "NUL"],
    ),
    "prose, not a table": (
        "p.txt",
        "Dear analyst,\nplease find the pings attached.\n",
        [],
        ["field(s)"],
    ),
    "corrupt parquet": ("p.parquet", b"PAR1" + bytes(100) + b"PAR1", [], ["Parquet"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_is_a_clear_error_and_leaves_nothing(cli, write, lake_dir, case):
    name, content, opts, words = BROKEN[case]
    good = write("good.csv", "\n".join([HEADER, *rows(3)]) + "\n")
    bad = write(name, content)
    r = cli("ingest", "pings", good, bad, "--lake", lake_dir, *opts)
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err and "internal error" not in r.err
    message = " ".join(r.err.split())
    assert str(bad) in "".join(r.err.splitlines())  # rich may wrap a long path
    for w in words:
        assert w.lower() in message.lower(), (w, message)
    # no dataset, no rejects, no temporary folders: the good file's rows were not committed
    leftovers = [p.name for p in lake_dir.rglob("*")] if lake_dir.exists() else []
    assert not [p for p in leftovers if p not in ("_rejects",)], leftovers


def test_encoding_option_reads_latin1(cli, write, lake_dir):
    text = "\n".join([HEADER, "dev-ö,2024-03-04T10:00:00Z,59.3,18.0,5"]) + "\n"
    f = write("latin.csv", text.encode("latin-1"))
    assert cli("ingest", "pings", f, "--lake", lake_dir).code == 1
    r = cli("ingest", "pings", f, "--lake", lake_dir, "--encoding", "latin-1")
    assert r.code == 0, r.err


def test_quotes_crlf_bom_blank_lines_and_line_numbers(cli, write, lake_dir, helpers):
    text = (
        "\ufeff" + HEADER + "\r\n"
        '"dev, quoted",2024-03-04T10:00:00Z,59.3,18.0,5\r\n'  # line 2: quoted delimiter
        "\r\n"  # line 3: blank, not a row
        "dev-b,2024-03-04T10:00:00Z,59.3\r\n"  # line 4: too few fields
        '"dev-c,2024-03-04T10:00:00Z,59.3,18.0,5\r\n'  # line 5: unclosed quote
        "dev-d,2024-03-04T10:00:00Z,59.3,18.0,5,extra\r\n"  # line 6: too many
        "dev-e,2024-03-04T10:00:00Z,59.3,18.0,999\r\n"  # line 7: low accuracy
        "dev-f,2024-03-04T10:00:00Z,59.3,18.0,5"  # line 8, no final newline
    )
    f = write("q.csv", text.encode())
    r = cli("ingest", "pings", f, "--lake", lake_dir)
    assert r.code == 0, r.err
    rej = helpers.read(lake_dir, "_rejects/pings").sort("line")
    assert rej.select("line", "reason").rows() == [
        (4, "malformed_row"),
        (5, "malformed_row"),
        (6, "malformed_row"),
        (7, "low_accuracy"),
    ]
    assert helpers.read(lake_dir, "pings").height == 2
    m = json.loads((lake_dir / "pings" / "_manifest.json").read_text())
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (6, 2, 4)


# -- hypothesis: malformed CSVs ------------------------------------------------------------

_field = st.one_of(
    st.sampled_from(
        [
            "dev-1",
            "dev-2",
            "",
            " ",
            "2024-03-04T10:00:00Z",
            "1709546400",
            "59.33",
            "18.06",
            "5",
            "999",
            "nan",
            "-91",
            "x",
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)),
        max_size=8,
    ),
)
_line = st.lists(_field, min_size=0, max_size=7).map(lambda fs: ",".join(fs))
_csv = st.tuples(
    st.sampled_from([HEADER, "id,ts,lat,lon", "uid;time;lat;lon", HEADER.replace(",", "\t")]),
    st.lists(_line, min_size=0, max_size=25),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_csv)
def test_malformed_csvs_never_crash_and_lose_nothing(cli, tmp_path_factory, data):
    header, lines, eol, final_eol = data
    body = eol.join([header, *lines]) + (eol if final_eol else "")
    root = tmp_path_factory.mktemp("fuzz")
    f = root / "f.csv"
    f.write_bytes(body.encode("utf-8"))
    lake = root / "lake"
    r = cli("ingest", "pings", f, "--lake", lake, "--format", "json")
    assert r.code in (0, 1), r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    if r.code == 1:
        assert not (lake / "pings").exists()
        return
    total = json.loads(r.out)[-1]
    m = json.loads((lake / "pings" / "_manifest.json").read_text())
    # every non-blank line after the header is a row: written or rejected
    data_lines = [ln for ln in body.split("\n")[1:] if ln.strip("\r") != ""]
    assert m["rows_in"] == total["rows_in"] == len(data_lines)
    assert m["rows_in"] == m["rows_written"] + m["rows_rejected"]
    assert sum(m["rejected_by_reason"].values()) == m["rows_rejected"]
