"""`segtool ingest pings`: schema, reject reasons, counts, CRS, determinism, append."""

from __future__ import annotations

import hmac
import json
import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from segtool.ingest.pings import ingest_pings
from segtool.ingest.pseudonym import Key
from segtool.lake import Lake
from segtool.schema import validate

HEADER = "device_id,timestamp,latitude,longitude,accuracy"
GOOD = [
    "dev-a,2024-03-04T10:00:00+01:00,59.3300,18.0600,5",
    "dev-a,2024-03-04T10:05:00+01:00,59.3310,18.0610,7.5",
    "dev-b,2024-03-05T23:30:00+01:00,59.3400,18.0700,",
]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def manifest(lake, name="pings") -> dict:
    return json.loads((lake / name / "_manifest.json").read_text())


def test_vendor_csv_is_auto_detected_and_written_to_spec(cli, write, lake_dir, helpers):
    f = write("vendor.csv", "\n".join([HEADER, *GOOD]) + "\n")
    r = cli("ingest", "pings", f, "--lake", lake_dir)
    assert r.code == 0, r.err
    pings = helpers.read(lake_dir, "pings").sort("ts")
    validate("pings", pings.schema)
    assert pings.columns == ["device", "ts", "lat", "lon", "accuracy_m"]
    assert pings["ts"].to_list() == [
        utc(2024, 3, 4, 9),
        utc(2024, 3, 4, 9, 5),
        utc(2024, 3, 5, 22, 30),
    ]
    assert pings["accuracy_m"].to_list() == [5.0, 7.5, None]
    assert pings["device"][0] == pings["device"][1] != pings["device"][2]
    # hive partitions by UTC date; `date` comes back as a Date column
    assert sorted(p.name for p in (lake_dir / "pings").glob("date=*")) == [
        "date=2024-03-04",
        "date=2024-03-05",
    ]
    scanned = Lake(lake_dir).scan("pings").collect()
    assert scanned.schema["date"] == pl.Date
    m = manifest(lake_dir)
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (3, 3, 0)
    assert m["inputs"][0]["columns"] == {
        "id": "device_id",
        "time": "timestamp",
        "lat": "latitude",
        "lon": "longitude",
        "accuracy": "accuracy",
    }
    assert "3 rows read = 3 written + 0 rejected" in r.err.replace(",", "")


REASON_ROWS = {
    "malformed_row": ("dev-z,2024-03-04T11:00:00+01:00,59.33", []),
    "empty_id": (",2024-03-04T11:00:00+01:00,59.33,18.06,5", []),
    "unparseable_time": ("dev-z,next tuesday,59.33,18.06,5", []),
    "time_out_of_range": ("dev-z,5,59.33,18.06,5", []),
    "unparseable_coordinates": ("dev-z,2024-03-04T11:00:00+01:00,north,18.06,5", []),
    "coordinates_out_of_range": ("dev-z,2024-03-04T11:00:00+01:00,91.5,18.06,5", []),
    "outside_bbox": (
        "dev-z,2024-03-04T11:00:00+01:00,58.00,18.06,5",
        ["--bbox", "17.5,59,18.6,59.6"],
    ),
    "unparseable_accuracy": ("dev-z,2024-03-04T11:00:00+01:00,59.33,18.06,good", []),
    "low_accuracy": ("dev-z,2024-03-04T11:00:00+01:00,59.33,18.06,150", []),
    "duplicate_ping": ("dev-a,2024-03-04T10:05:00+01:00,59.331,18.061,9", []),
}


@pytest.mark.parametrize("reason", sorted(REASON_ROWS))
def test_each_reject_reason(cli, write, lake_dir, helpers, reason):
    bad, opts = REASON_ROWS[reason]
    # the bad row sits between good rows, on line 3 of the file
    f = write("p.csv", "\n".join([HEADER, GOOD[0], bad, *GOOD[1:]]) + "\n")
    r = cli("ingest", "pings", f, "--lake", lake_dir, *opts)
    assert r.code == 0, r.err
    rejects = helpers.read(lake_dir, "_rejects/pings")
    # of two duplicates the later one (GOOD[1], line 4) is rejected
    expected_line = 4 if reason == "duplicate_ping" else 3
    assert rejects.select("reason", "line").rows() == [(reason, expected_line)]
    assert rejects["source_file"][0] == str(f)
    assert rejects.schema["line"] == pl.UInt64
    assert all(t == pl.String for c, t in rejects.schema.items() if c != "line")
    if reason not in ("empty_id", "malformed_row"):
        assert rejects["time"][0] == (bad.split(",")[1])
    m = manifest(lake_dir)
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (4, 3, 1)
    assert m["rejected_by_reason"] == {reason: 1}
    assert manifest(lake_dir, "_rejects/pings")["rejected_by_reason"] == {reason: 1}
    assert helpers.read(lake_dir, "pings").height == 3
    assert reason in r.out


def test_first_applicable_reason_wins_and_max_accuracy_option(cli, write, lake_dir, helpers):
    rows = [
        ",garbage,999,999,-1",  # empty id first
        "dev-c,garbage,999,999,-1",  # then the time
        "dev-c,2024-03-04T10:00:00Z,999,18,500",  # then coordinates
        "dev-c,2024-03-04T10:00:00Z,59.3,18,500",  # accuracy 500 > 400
        "dev-c,2024-03-04T10:01:00Z,59.3,18,300",  # kept with --max-accuracy 400
    ]
    f = write("p.csv", "\n".join([HEADER, *rows]) + "\n")
    r = cli("ingest", "pings", f, "--lake", lake_dir, "--max-accuracy", "400")
    assert r.code == 0, r.err
    rej = helpers.read(lake_dir, "_rejects/pings").sort("line")
    assert rej["reason"].to_list() == [
        "empty_id",
        "unparseable_time",
        "coordinates_out_of_range",
        "low_accuracy",
    ]
    assert helpers.read(lake_dir, "pings")["accuracy_m"].to_list() == [300.0]
    r = cli("ingest", "pings", f, "--lake", lake_dir, "--max-accuracy", "inf")
    assert helpers.read(lake_dir, "pings").height == 2


def test_times_epoch_units_naive_local_and_tz(cli, write, lake_dir, helpers):
    text = "\n".join(
        [
            "uid,ts,lat,lon",
            "a,1709546400,59.3,18.0",  # epoch seconds: 2024-03-04 10:00 UTC
            "b,1709546400123,59.3,18.0",  # milliseconds
            "c,1709546400123456,59.3,18.0",  # microseconds
            "d,2024-03-04 11:00:00,59.3,18.0",  # naive: Stockholm (UTC+1 in March)
            "e,2024-07-04T12:00:00,59.3,18.0",  # naive in summer: UTC+2
            "f,2024-03-04T10:00:00.250Z,59.3,18.0",
        ]
    )
    f = write("t.csv", text + "\n")
    assert cli("ingest", "pings", f, "--lake", lake_dir).code == 0
    got = dict(
        helpers.read(lake_dir, "pings")
        .join(pl.DataFrame({"device": helpers.read(lake_dir, "pings")["device"]}), on="device")
        .select("device", "ts")
        .iter_rows()
    )
    ts = sorted(got.values())
    assert ts == sorted(
        [
            utc(2024, 3, 4, 10),
            utc(2024, 3, 4, 10, 0, 0, 123000),
            utc(2024, 3, 4, 10, 0, 0, 123456),
            utc(2024, 3, 4, 10),
            utc(2024, 7, 4, 10),
            utc(2024, 3, 4, 10, 0, 0, 250000),
        ]
    )
    # the same naive times read as UTC with --tz UTC
    g = write("n.csv", "uid,ts,lat,lon\nd,2024-03-04 11:00:00,59.3,18.0\n")
    assert cli("ingest", "pings", g, "--lake", lake_dir, "--tz", "UTC").code == 0
    assert helpers.read(lake_dir, "pings")["ts"].to_list() == [utc(2024, 3, 4, 11)]


def sweref99tm_to_wgs84(northing: float, easting: float) -> tuple[float, float]:
    """Lantmäteriet's Gauss–Krüger formulas, grid → geodetic, for SWEREF 99 TM (GRS 80,
    central meridian 15°, scale 0.9996, false easting 500 000 m): an oracle independent
    of pyproj."""
    axis, f = 6378137.0, 1 / 298.257222101
    lon0, k0, fe = math.radians(15.0), 0.9996, 500000.0
    e2, n = f * (2 - f), f / (2 - f)
    a_roof = axis / (1 + n) * (1 + n**2 / 4 + n**4 / 64)
    d = (
        n / 2 - 2 * n**2 / 3 + 37 * n**3 / 96 - n**4 / 360,
        n**2 / 48 + n**3 / 15 - 437 * n**4 / 1440,
        17 * n**3 / 480 - 37 * n**4 / 840,
        4397 * n**4 / 161280,
    )
    a = e2 + e2**2 + e2**3 + e2**4
    b = -(7 * e2**2 + 17 * e2**3 + 30 * e2**4) / 6
    c = (224 * e2**3 + 889 * e2**4) / 120
    dd = -(4279 * e2**4) / 1260
    xi = northing / (k0 * a_roof)
    eta = (easting - fe) / (k0 * a_roof)
    xp = xi - sum(
        d[i] * math.sin(2 * (i + 1) * xi) * math.cosh(2 * (i + 1) * eta) for i in range(4)
    )
    ep = eta - sum(
        d[i] * math.cos(2 * (i + 1) * xi) * math.sinh(2 * (i + 1) * eta) for i in range(4)
    )
    phi = math.asin(math.sin(xp) / math.cosh(ep))
    s = math.sin(phi)
    lat = phi + s * math.cos(phi) * (a + b * s**2 + c * s**4 + dd * s**6)
    return math.degrees(lat), math.degrees(lon0 + math.atan(math.sinh(ep) / math.cos(xp)))


def test_sweref99tm_points_land_at_their_wgs84_coordinates(cli, write, lake_dir, helpers):
    # Stockholm City Hall, 59.3275 N 18.0544 E, is N 6580505.56 E 673773.59 in SWEREF 99 TM.
    grid = [
        (6580505.56, 673773.59),
        (7453389.76, 727060.90),
        (6163000.0, 370000.0),
        (6900000.0, 600000.0),
    ]
    lines = ["id,time,northing,easting"] + [
        f"p{i},2024-03-04T10:00:0{i}Z,{n},{e}" for i, (n, e) in enumerate(grid)
    ]
    f = write("sweref.csv", "\n".join(lines) + "\n")
    r = cli(
        "ingest",
        "pings",
        f,
        "--lake",
        lake_dir,
        "--crs",
        "EPSG:3006",
        "--lat",
        "northing",
        "--lon",
        "easting",
    )
    assert r.code == 0, r.err
    got = helpers.read(lake_dir, "pings").sort("ts")
    hall = got.row(0, named=True)
    assert hall["lat"] == pytest.approx(59.3275, abs=2e-7)
    assert hall["lon"] == pytest.approx(18.0544, abs=2e-7)
    for (n, e), lat, lon in zip(grid, got["lat"], got["lon"], strict=True):
        olat, olon = sweref99tm_to_wgs84(n, e)
        assert lat == pytest.approx(olat, abs=1e-8)
        assert lon == pytest.approx(olon, abs=1e-8)


def test_lake_never_contains_a_raw_id(cli, write, lake_dir, helpers):
    raw = [f"RAWID-{i:03d}-x9" for i in range(12)]
    rows = [
        f"{raw[0]},2024-03-04T10:00:00Z,59.3,18.0,5",
        f"{raw[0]},2024-03-04T10:00:00Z,59.3,18.0,5",  # duplicate
        f"{raw[1]},not a time,59.3,18.0,5",
        f"{raw[2]},2024-03-04T10:00:00Z,95,18.0,5",
        f"{raw[3]},2024-03-04T10:00:00Z,59.3,18.0,500",
        f"{raw[4]},2024-03-04T10:00:00Z,59.3",  # malformed: too few fields
        f"extra,{raw[5]},2024-03-04T10:00:00Z,59.3,18.0,5",  # malformed, id shifted
        f"{raw[6]},2024-03-04T10:00:00Z,59.3,18.0,5,{raw[7]}",  # malformed, id repeated
        f'"{raw[8]},2024-03-04T10:00:00Z,59.3,18.0,5',  # unclosed quote
        f"{raw[9]},2024-03-04T10:00:00Z,59.3,18.0,x",
        f"{raw[10]},2024-03-04T10:00:00Z,59.3,18.0,5",
        f"  {raw[11]}  ,2024-03-04T10:00:00Z,59.3,18.0,5",
    ]
    f = write("ids.csv", "\n".join([HEADER, *rows]) + "\n")
    r = cli("ingest", "pings", f, "--lake", lake_dir)
    assert r.code == 0, r.err
    texts, raw_bytes = helpers.lake_texts(lake_dir)
    rejects = helpers.read(lake_dir, "_rejects/pings")
    assert rejects.height == 9
    for rid in raw:
        assert rid not in texts, rid
        assert rid.encode() not in raw_bytes, rid
    # the search does see decoded values: rejects carry the pseudonym of raw[1]
    from segtool.ingest.pseudonym import pseudonym

    assert str(pseudonym(b"test-secret-0123456789abcdef", raw[1])) in texts


def test_pseudonym_is_hmac_sha256_64_bits(cli, write, lake_dir, helpers, tmp_path, monkeypatch):
    monkeypatch.delenv("SEGTOOL_SALT")
    secret = b"a file secret of 32 bytes long!!"
    salt = tmp_path / "salt"
    salt.write_bytes(secret + b"\n")
    f = write("p.csv", f"{HEADER}\n{GOOD[0]}\n")
    assert cli("ingest", "pings", f, "--lake", lake_dir, "--salt-file", salt).code == 0
    expected = int.from_bytes(hmac.new(secret, b"dev-a", "sha256").digest()[:8], "big")
    assert helpers.read(lake_dir, "pings")["device"].to_list() == [expected]
    m = manifest(lake_dir)
    assert m["key"] == {"kind": "file", "fingerprint": Key(secret, "file").fingerprint}
    assert secret.decode() not in json.dumps(m)


def test_refuses_without_a_secret_unless_synthetic(cli, write, lake_dir, helpers, monkeypatch):
    monkeypatch.delenv("SEGTOOL_SALT")
    f = write("p.csv", f"{HEADER}\n{GOOD[0]}\n")
    r = cli("ingest", "pings", f, "--lake", lake_dir)
    assert r.code == 1 and "no secret" in r.err and "Traceback" not in r.err
    assert not (lake_dir / "pings").exists()
    monkeypatch.setenv("SEGTOOL_SALT", "short")
    r = cli("ingest", "pings", f, "--lake", lake_dir)
    assert r.code == 1 and "at least 16 are needed" in r.err
    monkeypatch.delenv("SEGTOOL_SALT")
    r = cli("ingest", "pings", f, "--lake", lake_dir, "--synthetic")
    assert r.code == 0, r.err
    assert manifest(lake_dir)["key"]["kind"] == "synthetic"


def test_columns_by_option_config_and_semicolons(cli, write, lake_dir, helpers, tmp_path):
    f = write("odd.csv", "hashed;event;y_coord;x_coord;hacc;t2\nq1;1709546400;59.3;18.0;12;1\n")
    r = cli("ingest", "pings", f, "--lake", lake_dir)
    assert r.code == 1 and "cannot tell which column" in r.err and "'hashed'" in r.err
    conf = tmp_path / "cols.toml"
    conf.write_text(
        '[columns]\nid = "hashed"\ntime = "t2"\nlat = "y_coord"\nlon = "x_coord"\n[options]\ntz = "UTC"\n'
    )
    # the option beats the config: time comes from `event`, not `t2`
    r = cli("ingest", "pings", f, "--lake", lake_dir, "--config", conf, "--time", "event")
    assert r.code == 0, r.err
    m = manifest(lake_dir)
    assert m["inputs"][0]["columns"] == {
        "id": "hashed",
        "time": "event",
        "lat": "y_coord",
        "lon": "x_coord",
        "accuracy": "hacc",
    }
    assert m["parameters"]["tz"] == "UTC"
    assert helpers.read(lake_dir, "pings")["ts"].to_list() == [utc(2024, 3, 4, 10)]
    r = cli("ingest", "pings", f, "--lake", lake_dir, "--config", conf, "--id", "nope")
    assert r.code == 1 and "no column 'nope'" in r.err


def test_csv_gzip_and_parquet_inputs_give_the_same_pings(cli, write, lake_dir, helpers, tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    frame = pl.DataFrame(
        {
            "device_id": [f"d{i % 17}" for i in range(n)],
            "timestamp": (1709546400 + rng.integers(0, 3 * 86400, n)).tolist(),
            "latitude": np.round(59.3 + rng.normal(0, 0.05, n), 6),
            "longitude": np.round(18.0 + rng.normal(0, 0.05, n), 6),
            "accuracy": np.round(rng.uniform(1, 150, n), 1),
        }
    )
    csv = frame.write_csv()
    paths = {
        "csv": write("p.csv", csv),
        "gz": write("p.csv.gz", csv, gz=True),
        "parquet": tmp_path / "p.parquet",
    }
    frame.with_columns(pl.from_epoch("timestamp", "s").dt.replace_time_zone("UTC")).write_parquet(
        paths["parquet"]
    )
    out = {}
    for kind, path in paths.items():
        lake = tmp_path / f"lake-{kind}"
        assert cli("ingest", "pings", path, "--lake", lake).code == 0
        out[kind] = helpers.read(lake, "pings")
        assert (
            manifest(lake)["inputs"][0]["format"]
            == {"csv": "csv", "gz": "csv.gzip", "parquet": "parquet"}[kind]
        )
    assert out["csv"].height == (frame["accuracy"] <= 100).sum()
    assert out["csv"].equals(out["gz"])
    assert out["csv"].equals(out["parquet"])


def test_reingest_gives_byte_identical_datasets(write, tmp_path, helpers):
    rows = [HEADER] + [
        f"d{i % 7},2024-03-0{1 + i % 3}T{i % 24:02d}:{i % 60:02d}:00+01:00,59.{i:03d},18.{i:03d},{i % 120}"
        for i in range(400)
    ]
    rows += ["bad,row", rows[5], rows[9]]
    f = write("p.csv", "\n".join(rows) + "\n")
    key = Key(b"test-secret-0123456789abcdef", "env")
    ingest_pings([f], Lake(tmp_path / "a"), key=key)
    ingest_pings([f], Lake(tmp_path / "b"), key=key)
    a, b = helpers.tree_bytes(tmp_path / "a"), helpers.tree_bytes(tmp_path / "b")
    assert a == b and any(k.startswith("pings/date=") for k in a)
    # again into the same lake (the dataset is replaced): same bytes
    ingest_pings([f], Lake(tmp_path / "a"), key=key)
    assert helpers.tree_bytes(tmp_path / "a") == b
    # tiny blocks (many batches, careful path) and tiny slices give the same rows
    ingest_pings([f], Lake(tmp_path / "c"), key=key, block_bytes=300)
    assert helpers.tree_bytes(tmp_path / "c") == b
    ingest_pings([f], Lake(tmp_path / "d"), key=key, slice_rows=20)
    sliced = helpers.read(tmp_path / "d", "pings")
    assert len(list((tmp_path / "d" / "pings").rglob("*.parquet"))) > 3
    assert sliced.sort(pl.all()).equals(helpers.read(tmp_path / "a", "pings").sort(pl.all()))
    assert helpers.read(tmp_path / "d", "_rejects/pings").equals(
        helpers.read(tmp_path / "a", "_rejects/pings")
    )


def test_append_adds_refuses_repeats_and_matches_one_shot(cli, write, tmp_path, helpers):
    a = write("a.csv", "\n".join([HEADER, *GOOD]) + "\n")
    b = write(
        "b.csv",
        "\n".join([HEADER, GOOD[1], "dev-c,2024-03-05T08:00:00+01:00,59.35,18.08,4"]) + "\n",
    )
    lake = tmp_path / "lake"
    assert cli("ingest", "pings", a, "--lake", lake).code == 0
    r = cli("ingest", "pings", b, "--lake", lake, "--append")
    assert r.code == 0, r.err
    assert helpers.read(lake, "pings").height == 4
    rej = helpers.read(lake, "_rejects/pings")
    assert rej.select("reason", "source_file", "line").rows() == [("duplicate_ping", str(b), 2)]
    m = manifest(lake)
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (5, 4, 1)
    assert [len(run["inputs"]) for run in m["runs"]] == [1, 1]
    before = helpers.tree_bytes(lake)
    r = cli("ingest", "pings", a, "--lake", lake, "--append")
    assert r.code == 1 and "already ingested" in r.err and str(a) in r.err
    assert helpers.tree_bytes(lake) == before
    # the appended dataset holds the same bytes as one run over both files
    one = tmp_path / "one"
    assert cli("ingest", "pings", a, b, "--lake", one).code == 0

    def parts(root):
        return {
            k: v for k, v in helpers.tree_bytes(root / "pings").items() if k.endswith(".parquet")
        }  # noqa: E731

    assert parts(lake) == parts(one)


def test_append_refuses_a_different_key(cli, write, tmp_path, monkeypatch):
    a = write("a.csv", "\n".join([HEADER, *GOOD[:1]]) + "\n")
    b = write("b.csv", "\n".join([HEADER, *GOOD[1:]]) + "\n")
    lake = tmp_path / "lake"
    assert cli("ingest", "pings", a, "--lake", lake).code == 0
    monkeypatch.setenv("SEGTOOL_SALT", "another-secret-0123456789")
    r = cli("ingest", "pings", b, "--lake", lake, "--append")
    assert r.code == 1 and "different pseudonymisation key" in r.err


def test_same_file_twice_and_globs(cli, write, tmp_path, helpers):
    a = write("a.csv", "\n".join([HEADER, *GOOD[:1]]) + "\n")
    write("b.csv", "\n".join([HEADER, *GOOD[1:]]) + "\n")
    copy = write("copy.csv", a.read_bytes())
    lake = tmp_path / "lake"
    r = cli("ingest", "pings", a, a, "--lake", lake)
    assert r.code == 1 and "given twice" in r.err
    r = cli("ingest", "pings", a, copy, "--lake", lake)
    assert r.code == 1 and "same content" in r.err
    assert not (lake / "pings").exists()
    r = cli("ingest", "pings", str(tmp_path / "[ab].csv"), "--lake", lake, "--format", "json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert [x["file"] for x in report] == [
        str(tmp_path / "a.csv"),
        str(tmp_path / "b.csv"),
        "total",
    ]
    assert report[-1]["rows_in"] == report[-1]["written"] + report[-1]["rejected"] == 3
    r = cli("ingest", "pings", str(tmp_path / "nothing-*.csv"), "--lake", lake)
    assert r.code == 1 and "no file matches" in r.err


def test_parquet_with_odd_columns_and_typed_times(cli, lake_dir, helpers, tmp_path):
    frame = pl.DataFrame(
        {
            "uid": [1, 2, 2, None],
            "ts": [
                datetime(2024, 3, 4, 10),
                datetime(2024, 3, 4, 11),
                datetime(2024, 3, 4, 11),
                datetime(2024, 3, 4, 12),
            ],
            "lat": [59.3, 59.3, 59.3, 59.3],
            "lon": [18.0, 18.0, 18.0, 18.0],
            "tags": [["a"], [], [], ["b", "c"]],  # a nested column: kept as text in rejects
            "blob": [b"\xff", b"x", b"x", b"y"],
        }
    )
    path = tmp_path / "typed.parquet"
    frame.write_parquet(path)
    r = cli("ingest", "pings", path, "--lake", lake_dir)
    assert r.code == 0, r.err
    pings = helpers.read(lake_dir, "pings").sort("ts")
    # naive datetimes are local (Stockholm, UTC+1 in March)
    assert pings["ts"].to_list() == [utc(2024, 3, 4, 9), utc(2024, 3, 4, 10)]
    rej = helpers.read(lake_dir, "_rejects/pings").sort("line")
    assert rej.select("line", "reason").rows() == [(3, "duplicate_ping"), (4, "empty_id")]
    assert "['b', 'c']" in rej["fields"][1]
