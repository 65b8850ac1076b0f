"""The vendor ping files: planted bad rows are malformed exactly as listed, every other row
is clean, timestamps are DST-correct local times, and pings follow the true stays."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from collections import Counter
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.ingest.rejects import REASONS
from segtool.synth.clock import make_clock
from segtool.synth.population import device_ids
from segtool.synth.writer import PINGS_HEADER, format_pings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def read_lines(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.reader(f))


def parse_time(text):
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def parse_float(text):
    try:
        return float(text)
    except ValueError:
        return None


def defects(rows):
    """Every defect of every data row, by 1-based line number (header = line 1), found by
    parsing the rows independently of the generator."""
    found = {}
    seen = set()
    for i, row in enumerate(rows[1:], start=2):
        bad = []
        if len(row) != 5:
            found[i] = ["malformed_row"]
            continue
        device, ts, lat, lon, acc = row
        if device == "":
            bad.append("empty_id")
        if parse_time(ts) is None:
            bad.append("unparseable_time")
        la, lo = parse_float(lat), parse_float(lon)
        if la is None or lo is None:
            bad.append("unparseable_coordinates")
        elif not (-90 <= la <= 90 and -180 <= lo <= 180):
            bad.append("coordinates_out_of_range")
        a = parse_float(acc)
        if a is None:
            bad.append("unparseable_accuracy")
        elif a > 100:
            bad.append("low_accuracy")
        key = (device, ts, lat, lon)
        if not bad and key in seen:
            bad.append("duplicate_ping")
        seen.add(key)
        if bad:
            found[i] = bad
    return found


def test_planted_rows_are_exactly_the_bad_rows(small_city):
    out, report = small_city
    planted = pl.read_csv(out / "truth" / "planted_rejects.csv")
    assert planted.columns == ["file", "line", "reason"]
    assert set(planted["reason"]) <= set(REASONS)
    files = sorted(p.name for p in out.glob("pings*.csv*"))
    assert files == ["pings-001.csv", "pings-002.csv"]
    total = Counter()
    clean_per_device = Counter()
    for name in files:
        rows = read_lines(out / name)
        assert ",".join(rows[0]) == PINGS_HEADER
        found = defects(rows)
        clean_per_device.update(row[0] for i, row in enumerate(rows[1:], start=2) if i not in found)
        listed = dict(planted.filter(pl.col("file") == name).select("line", "reason").iter_rows())
        # every planted row has exactly the one stated defect, and no other row has any
        assert {k: [v] for k, v in listed.items()} == found
        total.update(listed.values())
    assert set(total) == {
        "empty_id",
        "unparseable_time",
        "unparseable_coordinates",
        "coordinates_out_of_range",
        "unparseable_accuracy",
        "malformed_row",
        "duplicate_ping",
        "low_accuracy",
    }
    assert dict(total) == {k: v for k, v in report.planted_rejects.items() if v}
    assert report.ping_rows == report.clean_pings + sum(total.values())
    devices = pl.read_parquet(out / "truth" / "devices.parquet").filter(pl.col("pings") > 0)
    assert dict(zip(devices["device_id"], devices["pings"], strict=True)) == dict(clean_per_device)


def test_clean_rows_look_like_vendor_pings(small_city):
    out, report = small_city
    frames = [
        pl.read_csv(out / name, infer_schema=False, truncate_ragged_lines=True)
        for name in ("pings-001.csv", "pings-002.csv")
    ]
    pings = pl.concat(frames)
    devices = pl.read_parquet(out / "truth" / "devices.parquet")
    assert set(pings["device_id"].unique()) - {None, ""} <= set(devices["device_id"])
    # UUID-like string ids
    assert pings["device_id"].drop_nulls().str.contains(r"^[0-9a-f]{8}-[0-9a-f]{4}-4").mean() > 0.99
    assert int(devices["pings"].sum()) == report.clean_pings
    acc = pings["accuracy"].cast(pl.Float64, strict=False).drop_nulls()
    assert 8 < acc.median() < 16  # median reported accuracy ≈ 12 m


def test_timestamps_are_dst_correct_local_times(small_city):
    out, _ = small_city
    rows = read_lines(out / "pings-001.csv")[1:]
    offsets = Counter()
    checked = 0
    for row in rows:
        if len(row) != 5:
            continue
        t = parse_time(row[1])
        if t is None:
            continue
        # the offset written is the one Stockholm had at that instant
        assert t.utcoffset() == t.astimezone(STOCKHOLM).utcoffset(), row[1]
        offsets[row[1][-6:]] += 1
        checked += 1
    assert set(offsets) == {"+01:00", "+02:00"}  # the period crosses 2024-03-31
    assert checked > 10_000


def test_pings_follow_the_true_stays(small_city):
    out, _ = small_city
    stays = pl.read_parquet(out / "truth" / "stays.parquet")
    pings = pl.read_csv(out / "pings-001.csv", infer_schema=False, truncate_ragged_lines=True)
    pings = pings.with_columns(
        ts=pl.col("timestamp")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%:z", strict=False)
        .dt.convert_time_zone("UTC"),
        lat=pl.col("latitude").cast(pl.Float64, strict=False),
        lon=pl.col("longitude").cast(pl.Float64, strict=False),
        acc=pl.col("accuracy").cast(pl.Float64, strict=False),
    ).drop_nulls(["ts", "lat", "lon", "acc"])
    pings = pings.filter(pl.col("acc") <= 100).sort("device_id", "ts")
    j = pings.join_asof(
        stays.sort("device_id", "start").rename({"lat": "s_lat", "lon": "s_lon"}),
        left_on="ts",
        right_on="start",
        by="device_id",
        check_sortedness=False,
    ).filter(pl.col("ts") < pl.col("end"))
    dist = np.hypot(
        (j["lat"] - j["s_lat"]).to_numpy() * 111_320,
        (j["lon"] - j["s_lon"]).to_numpy() * 111_320 * np.cos(np.radians(59.33)),
    )
    assert j.height > 0.9 * pings.height  # most pings fall in stays, a few in travel
    assert np.median(dist) < 15
    assert np.mean(dist < 50) > 0.97


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    malformed=st.floats(0, 0.2),
    duplicate=st.floats(0, 0.2),
    low=st.floats(0, 0.2),
    first_line=st.integers(2, 10_000),
)
def test_format_pings_plants_exactly_what_it_lists(seed, n, malformed, duplicate, low, first_line):
    """Any chunk: the rows with a defect are exactly the listed ones, for the stated reason."""
    rng = np.random.default_rng(seed)
    clock = make_clock(dt.date(2024, 3, 25), 14)
    n_dev = 5
    ids = device_ids(n_dev, rng).astype("S36").view(np.uint8).reshape(n_dev, 36)
    dev = np.sort(rng.integers(0, n_dev, n))
    t = np.sort(rng.integers(clock.t0, clock.t1, n))
    low_mask = rng.random(n) < low
    acc = np.where(low_mask, rng.uniform(120, 2500, n), rng.uniform(3, 80, n)).round(1)
    text, n_lines, planted, rejected = format_pings(
        ids,
        dev,
        clock.iso_local(t),
        59.3 + rng.random(n) * 0.1,
        18.0 + rng.random(n) * 0.1,
        acc,
        low_mask,
        malformed,
        duplicate,
        rng,
        first_line,
    )
    rows = list(csv.reader(io.StringIO(PINGS_HEADER + "\n" + text.decode())))
    assert len(rows) - 1 == n_lines == n + int((planted["reason"] == "duplicate_ping").sum())
    found = {line + first_line - 2: d for line, d in defects(rows).items()}
    listed = dict(planted.select("line", "reason").iter_rows())
    assert {k: [v] for k, v in listed.items()} == found
    assert int(rejected.sum()) == sum(1 for r in listed.values() if r != "duplicate_ping")
