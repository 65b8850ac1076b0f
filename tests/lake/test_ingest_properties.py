"""Property tests of ingest on arbitrary input: never a crash or an exit 2, and every row
read is written or rejected (rows_read = written + rejected), in the report, the manifest
and the files alike."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pyarrow.parquet as pq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=35, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def rows_in(lake, name) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in (lake / name).rglob("*.parquet"))


def check(cli, root, path, *extra) -> int:
    lake = root / "lake"
    r = cli("ingest", "pings", path, "--lake", lake, "--format", "json", *extra)
    assert r.code in (0, 1), r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    if r.code == 1:
        assert not (lake / "pings").exists()  # refused: nothing written
        return r.code
    total = json.loads(r.out)[-1]
    m = json.loads((lake / "pings" / "_manifest.json").read_text())
    assert total["rows_in"] == total["written"] + total["rejected"]
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (
        total["rows_in"],
        total["written"],
        total["rejected"],
    )
    assert rows_in(lake, "pings") == m["rows_written"]
    assert rows_in(lake, "_rejects/pings") == m["rows_rejected"]
    return r.code


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda b: b"device_id,timestamp,latitude,longitude\n" + b),
        st.lists(st.binary(max_size=40), max_size=8).map(  # good rows among random bytes
            lambda bs: (
                b"device_id,timestamp,latitude,longitude\n"
                + b"".join(b"a,2024-03-04T10:00:00Z,59.3,18.0\n" + x + b"\n" for x in bs)
            )
        ),
        st.binary(max_size=300).map(lambda b: gzip.compress(b, mtime=0)),
        st.binary(min_size=20, max_size=300).map(lambda b: gzip.compress(b, mtime=0)[:-7]),
    )
)
def test_arbitrary_bytes_never_crash(cli, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("bytes")
    f = root / "f.csv"
    f.write_bytes(data)
    check(cli, root, f)


_value = st.one_of(
    st.sampled_from(
        [
            "",
            "2024-03-04T10:00:00Z",
            "2024-03-04 10:00:00",
            "1709546400",
            "1709546400000",
            "-1",
            "99999999999999999999999",
            "1e308",
            "-1e308",
            "inf",
            "NaN",
            "59.33",
            "18.06",
            "90.0000001",
            "-180",
            "0",
            "  59.3 ",
            "null",
            "a,b",
            'quo"te',
            "Östermalm",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(
        alphabet=st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)),
        max_size=10,
    ),
)
_names = st.sampled_from(
    ["device_id", "id", "uid", "timestamp", "ts", "time", "latitude", "lat", "longitude",
     "lon", "lng", "accuracy", "speed", "x", "Lat", "LON"]
)  # fmt: skip


@st.composite
def tables(draw):
    columns = draw(st.lists(_names, min_size=1, max_size=7, unique=True))
    n = draw(st.integers(0, 20))
    rows = [[draw(_value) for _ in columns] for _ in range(n)]
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return columns, rows, quoting, delimiter, encoding


GOOD = (
    ["device_id", "timestamp", "latitude", "longitude"],
    [["a", "2024-03-04T10:00:00Z", "59.3", "18.0"], ["b", "1709546400", "1e308", "18"]],
    csv.QUOTE_ALL,
    ";",
    "latin-1",
)


@SETTINGS
@given(tables())
@example(GOOD)
def test_random_csv_shapes_reconcile(cli, tmp_path_factory, table):
    columns, rows, quoting, delimiter, encoding = table
    buf = io.StringIO()
    w = csv.writer(buf, quoting=quoting, delimiter=delimiter, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    root = tmp_path_factory.mktemp("csv")
    f = root / "f.csv"
    f.write_bytes(buf.getvalue().encode(encoding, errors="replace"))
    extra = ("--encoding", encoding) if encoding in ("latin-1", "utf-16") else ()
    code = check(cli, root, f, *extra)
    if table == GOOD:  # the success path is exercised: one row written, one rejected
        assert code == 0
        m = json.loads((root / "lake" / "pings" / "_manifest.json").read_text())
        assert (m["rows_written"], m["rows_rejected"]) == (1, 1)
