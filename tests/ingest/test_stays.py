"""`segtool ingest stays`: vendor stops into `stays/`, with reasons and reconciled counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

from segtool.ingest.pseudonym import pseudonym
from segtool.schema import validate

HEADER = "device_id,start,end,latitude,longitude"


def test_stays_schema_reasons_and_counts(cli, write, lake_dir, helpers, salt):
    lines = [
        HEADER,
        "dev-a,2024-03-04T08:00:00+01:00,2024-03-04T09:30:00+01:00,59.33,18.06",  # 2
        "dev-a,2024-03-04T08:00:00+01:00,2024-03-04T09:30:00+01:00,59.33,18.06",  # 3 duplicate
        "dev-b,2024-03-04T12:00:00+01:00,2024-03-04T11:00:00+01:00,59.33,18.06",  # 4 end < start
        ",2024-03-04T12:00:00+01:00,2024-03-04T13:00:00+01:00,59.33,18.06",  # 5 empty id
        "dev-c,2024-03-04T12:00:00+01:00,whenever,59.33,18.06",  # 6 unparseable end
        "dev-c,2024-03-04T12:00:00+01:00,2024-03-04T13:00:00+01:00,59.33",  # 7 malformed
        "dev-c,1709550000,1709553600,59.34,18.07",  # 8 epoch seconds
    ]
    f = write("stays.csv", "\n".join(lines) + "\n")
    r = cli("ingest", "stays", f, "--lake", lake_dir)
    assert r.code == 0, r.err
    stays = helpers.read(lake_dir, "stays").sort("start")
    validate("stays", stays.schema)
    assert stays.columns == ["device", "start", "end", "lat", "lon", "n_pings"]
    assert stays["device"].to_list() == [
        pseudonym(salt.encode(), "dev-a"),
        pseudonym(salt.encode(), "dev-c"),
    ]
    assert stays["start"].to_list() == [
        datetime(2024, 3, 4, 7, tzinfo=UTC),
        datetime(2024, 3, 4, 11, 0, tzinfo=UTC),
    ]
    rej = helpers.read(lake_dir, "_rejects/stays").sort("line")
    assert rej.select("line", "reason").rows() == [
        (3, "duplicate_stay"),
        (4, "end_before_start"),
        (5, "empty_id"),
        (6, "unparseable_time"),
        (7, "malformed_row"),
    ]
    assert "dev-a" not in " ".join(rej["fields"].to_list())
    m = json.loads((lake_dir / "stays" / "_manifest.json").read_text())
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (7, 2, 5)


def test_stays_n_pings_crs_and_bbox(cli, write, lake_dir, helpers):
    lines = [
        "uid,arrival,departure,northing,easting,pings",
        "a,2024-03-04 08:00,2024-03-04 09:00,6580505.56,673773.59,12",
        "b,2024-03-04 08:00,2024-03-04 09:00,6580505.56,673773.59,many",
        "c,2024-03-04 08:00,2024-03-04 09:00,7453389.76,727060.90,3",  # Kiruna: outside bbox
    ]
    f = write("s.csv", "\n".join(lines) + "\n")
    r = cli(
        "ingest", "stays", f, "--lake", lake_dir, "--crs", "EPSG:3006",
        "--lat", "northing", "--lon", "easting", "--bbox", "17.5,59,18.6,59.6",
    )  # fmt: skip
    assert r.code == 0, r.err
    stays = helpers.read(lake_dir, "stays")
    assert stays["n_pings"].to_list() == [12]
    assert stays.schema["n_pings"] == pl.UInt32
    assert abs(stays["lat"][0] - 59.3275) < 1e-6
    rej = helpers.read(lake_dir, "_rejects/stays").sort("line")
    assert rej["reason"].to_list() == ["unparseable_count", "outside_bbox"]


def test_stays_append_accumulates_and_refuses_repeats(cli, write, lake_dir, helpers):
    a = write("a.csv", HEADER + "\ndev-a,2024-03-04T08:00:00Z,2024-03-04T09:00:00Z,59.33,18.06\n")
    b = write(
        "b.csv",
        HEADER
        + "\ndev-a,2024-03-04T08:00:00Z,2024-03-04T09:00:00Z,59.33,18.06"  # already in the lake
        + "\ndev-b,2024-03-04T10:00:00Z,2024-03-04T11:00:00Z,59.34,18.07\n",
    )
    assert cli("ingest", "stays", a, "--lake", lake_dir).code == 0
    assert cli("ingest", "stays", b, "--lake", lake_dir, "--append").code == 0
    assert helpers.read(lake_dir, "stays").height == 2
    assert helpers.read(lake_dir, "_rejects/stays")["reason"].to_list() == ["duplicate_stay"]
    m = json.loads((lake_dir / "stays" / "_manifest.json").read_text())
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (3, 2, 1)
    r = cli("ingest", "stays", b, "--lake", lake_dir, "--append")
    assert r.code == 1 and "already ingested" in r.err
