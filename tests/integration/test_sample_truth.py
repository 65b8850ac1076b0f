"""The pipeline on the bundled synthetic city, checked against the generator's ground truth.

The generator (segtool synth) and the pipeline (ingest → stays → homes → groups → visits)
were written independently; the truth folder says what the pipeline should find:
- every planted bad row is rejected for the planted reason, and no other row is;
- with the bounds at the pings (`--noise-band 1 --fill-gap 0`), ≥ 95 % of the observable
  true stays of 30 min or more are recovered within 5 min;
- the default stays, whose bounds move into the reporting gaps next to them, cover more of
  the true stays and stay time than those, at a precision of ≥ 99 %, with bounds nearer
  the true ones;
- ≥ 95 % of homes are found in the true home cell, and ≥ 95 % of devices in their true
  home area with their true income group.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from segtool.cli import main
from segtool.ingest.pseudonym import Pseudonymiser, load_key
from segtool.lake import Lake
from segtool.mobility.stays import PING_BOUNDED, StayParams, detect_stays
from segtool.mobility.stays_quality import _pairs, score_stays
from tests.mobility.recovery import observable_stays, recovery_rate

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
TRUTH = SAMPLE / "truth"


def _run(*args) -> None:
    code = main([str(a) for a in args])
    assert code == 0, f"segtool {' '.join(map(str, args))} exited with {code}"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("lake")
    _run("ingest", "pings", *sorted(SAMPLE.glob("pings*.csv*")), "--lake", root, "--synthetic")
    _run(
        "ingest", "population", SAMPLE / "population.csv",
        "--areas", SAMPLE / "areas.gpkg", "--area-id", "deso", "--lake", root,
    )  # fmt: skip
    _run("stays", "--lake", root)
    _run("homes", "--lake", root)
    _run("groups", "--lake", root)
    _run("visits", "--lake", root)
    return Lake(root)


@pytest.fixture(scope="module")
def truth_devices() -> pl.DataFrame:
    devices = pl.read_parquet(TRUTH / "devices.parquet")
    hashed = Pseudonymiser(load_key(synthetic=True)).hash_series(devices["device_id"])
    return devices.with_columns(hashed.alias("device"))


def test_planted_rejects_are_rejected_for_their_reason(lake):
    planted = pl.read_csv(TRUTH / "planted_rejects.csv").select(
        pl.col("file"), pl.col("line").cast(pl.UInt64), pl.col("reason")
    )
    got = (
        pl.read_parquet(lake.path("_rejects/pings") / "*.parquet")
        .select(
            pl.col("source_file").map_elements(lambda p: Path(p).name, return_dtype=pl.String),
            pl.col("line"),
            pl.col("reason"),
        )
        .rename({"source_file": "file"})
    )
    assert planted.height > 0
    missing = planted.join(got, on=["file", "line", "reason"], how="anti")
    extra = got.join(planted, on=["file", "line", "reason"], how="anti")
    assert missing.height == 0, f"planted but not rejected as planted:\n{missing.head(10)}"
    assert extra.height == 0, f"rejected but not planted:\n{extra.head(10)}"
    m = lake.manifest("pings")
    assert m["rows_in"] == m["rows_written"] + m["rows_rejected"]
    assert m["rows_rejected"] == planted.height


@pytest.fixture(scope="module")
def truth_stays(truth_devices) -> pl.DataFrame:
    ids = truth_devices.select("device_id", "device")
    return pl.read_parquet(TRUTH / "stays.parquet").join(ids, on="device_id")


@pytest.fixture(scope="module")
def pings(lake) -> pl.DataFrame:
    return lake.scan("pings").collect()


@pytest.fixture(scope="module")
def ping_bounded(pings) -> pl.DataFrame:
    """The lake's pings' stays with the bounds at the pings (no noise band, no filling)."""
    return detect_stays(pings, StayParams(**PING_BOUNDED))[0]


def test_true_stays_recovered(pings, truth_stays, ping_bounded):
    observable = observable_stays(truth_stays, pings, max_gap_s=3 * 3600, min_duration_s=1800)
    rate = recovery_rate(ping_bounded, observable, tolerance_s=300, min_duration_s=1800)
    assert rate >= 0.95, f"recovered {rate:.3f} of observable true stays ≥ 30 min"


def _median_bound_error_s(detected: pl.DataFrame, truth: pl.DataFrame) -> float:
    """Median |detected − true| over the starts and ends of the true stays, each paired
    with the detected stay of the device overlapping it most (the scorer's pairs)."""
    best = (
        _pairs(truth.with_row_index("_t"), detected.with_row_index("_d"))
        .sort("_t", "overlap", descending=[False, True])
        .group_by("_t", maintain_order=True)
        .first()
    )
    errors = pl.concat(
        [
            (best["d_start"] - best["t_start"]).dt.total_seconds().abs(),
            (best["d_end"] - best["t_end"]).dt.total_seconds().abs(),
        ]
    )
    return float(errors.median())


def test_default_stays_fill_gaps_toward_the_truth(lake, truth_stays, ping_bounded):
    detected = lake.scan("stays").collect()
    assert lake.manifest("stays")["parameters"]["fill_gap_s"] == 900  # the default
    q = score_stays(detected, truth_stays)
    q0 = score_stays(ping_bounded, truth_stays)
    # measured: recall 0.737 vs 0.677, time covered 0.774 vs 0.749, precision 0.993,
    # median bound error 6.2 vs 6.9 min
    assert q.recall >= q0.recall + 0.04, (q, q0)
    assert q.time_covered >= q0.time_covered + 0.015, (q, q0)
    assert q.precision >= 0.99, q
    e, e0 = (
        _median_bound_error_s(detected, truth_stays),
        _median_bound_error_s(ping_bounded, truth_stays),
    )
    assert e < e0, (e, e0)


def test_homes_areas_and_groups_match_truth(lake, truth_devices):
    homes = lake.scan("homes").collect()
    devices = lake.scan("devices").collect()
    joined = truth_devices.join(homes, on="device", how="left", suffix="_found").join(
        devices, on="device", how="left", suffix="_assigned"
    )
    n = truth_devices.height
    home_ok = (joined["home_cell_found"] == joined["home_cell"]).fill_null(False).sum() / n
    area_ok = (joined["area"] == joined["home_deso"]).fill_null(False).sum() / n
    group_found = joined["group_assigned"].is_not_null().sum() / n
    assert home_ok >= 0.95, f"home cell right for {home_ok:.3f}"
    assert area_ok >= 0.95, f"home area right for {area_ok:.3f}"
    assert group_found >= 0.95, f"group assigned for {group_found:.3f}"


def test_visits_cover_all_stay_time(lake):
    stays = lake.scan("stays").collect()
    visits = lake.scan("visits").collect()
    stay_s = (stays["end"] - stays["start"]).dt.total_microseconds().sum() / 1e6
    kept = set(visits["device"].unique().to_list())
    kept_s = (
        stays.filter(pl.col("device").is_in(list(kept)))
        .select(((pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6).sum())
        .item()
    )
    assert visits["dwell_s"].sum() == pytest.approx(kept_s, rel=1e-9)
    assert kept_s <= stay_s
