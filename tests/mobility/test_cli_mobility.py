"""The four commands end to end on a small simulated lake: datasets, manifests, summaries,
re-runs giving the same bytes, device batches, vendor stays and user mistakes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest

from segtool.lake import Lake
from segtool.schema import validate
from tests.mobility.lakes import write_dataset, write_pings
from tests.mobility.simulate import SimParams, simulate


@pytest.fixture(scope="module")
def base_lake(tmp_path_factory):
    import shapely

    from segtool.geo.geoparquet import write_geoparquet
    from segtool.lake import Manifest

    root = tmp_path_factory.mktemp("lake")
    sim = simulate(SimParams(n_devices=40, n_days=8, seed=7))
    write_pings(root, sim.pings)
    # 4 × 4 areas over the city, register counts of income quartiles in each
    lat0, lon0 = SimParams().centre
    dlat, dlon = 0.05, 0.09
    boxes, names = [], []
    for i in range(4):
        for j in range(4):
            la, lo = lat0 - 2 * dlat + i * dlat, lon0 - 2 * dlon + j * dlon
            boxes.append(shapely.to_wkb(shapely.box(lo, la, lo + dlon, la + dlat)))
            names.append(f"A{i}{j}")
    areas = pl.DataFrame({"area": names, "geometry": boxes})
    with Lake(root).writing("areas", Manifest(command="ingest population --areas")) as tmp:
        write_geoparquet(areas, tmp / "part-0.parquet")
    rng = np.random.default_rng(0)
    write_dataset(
        root,
        "population",
        pl.DataFrame(
            {
                "unit": np.repeat(names, 4),
                "group": ["Q1", "Q2", "Q3", "Q4"] * len(names),
                "count": rng.integers(10, 500, 4 * len(names)).astype(float),
            }
        ),
    )
    return root


@pytest.fixture
def lake(base_lake, tmp_path):
    dst = tmp_path / "lake"
    shutil.copytree(base_lake, dst)
    return dst


def files_digest(folder) -> dict[str, str]:
    import hashlib

    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_pipeline(cli, lake, tmp_path):
    r = cli("stays", "--lake", lake)
    assert r.code == 0, r.err
    assert "stays_per_device" in r.out
    lk = Lake(lake)
    stays = pl.read_parquet(lk.path("stays") / "*.parquet")
    validate("stays", stays.schema)
    m = lk.manifest("stays")
    assert (
        m["rows_in"]
        == pl.scan_parquet(lk.path("pings") / "**/*.parquet").select(pl.len()).collect().item()
    )
    assert m["rows_written"] == stays.height
    assert m["parameters"]["radius_m"] == 30.0 and m["summary"]["stays"] == stays.height

    r = cli("homes", "--lake", lake, "--work", "--format", "json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)[0]
    assert summary["home_detection_rate"] == 1.0
    homes = pl.read_parquet(lk.path("homes") / "*.parquet")
    validate("homes", homes.schema)
    assert homes["area"].null_count() == 0
    assert summary["homes_in_areas"] == homes.height

    cov = tmp_path / "coverage.csv"
    r = cli("groups", "--lake", lake, "-o", cov)
    assert r.code == 0, r.err
    assert "coverage_spearman_rho" in r.err
    devices = pl.read_parquet(lk.path("devices") / "*.parquet")
    validate("devices", devices.schema)
    assert devices.height == homes.height and devices["group"].is_in(["Q1", "Q2", "Q3", "Q4"]).all()
    table = pl.read_csv(cov)
    assert (table["devices"] >= 5).all()
    assert json.loads((tmp_path / "coverage.csv.manifest.json").read_text())["suppressed"] >= 0
    assert "device" not in table.columns

    r = cli("visits", "--lake", lake, "--min-days", "7")
    assert r.code == 0, r.err
    visits = pl.read_parquet(lk.path("visits") / "*.parquet")
    validate("visits", visits.schema)
    kept_stays = stays.filter(pl.col("device").is_in(visits["device"].unique().implode()))
    total = (kept_stays["end"] - kept_stays["start"]).dt.total_microseconds().sum() / 1e6
    assert visits["dwell_s"].sum() == pytest.approx(total)
    assert lk.manifest("visits")["summary"]["devices_kept"] == visits["device"].n_unique()


def test_soft_groups_and_plurality(cli, lake):
    assert cli("stays", "--lake", lake).code == 0
    assert cli("homes", "--lake", lake).code == 0
    assert cli("groups", "--lake", lake, "--soft", "-f", "json").code == 0
    devices = pl.read_parquet(Lake(lake).path("devices") / "*.parquet")
    assert devices.columns == ["device", "Q1", "Q2", "Q3", "Q4", "weight"]
    assert np.allclose(devices.select(pl.sum_horizontal("Q1", "Q2", "Q3", "Q4")), 1.0)
    r = cli("groups", "--lake", lake, "--rule", "plurality", "-f", "csv")
    assert r.code == 0 and r.out.startswith("area,residents,devices")


def test_reruns_give_the_same_bytes_and_batches_the_same_results(cli, lake):
    lk = Lake(lake)
    names = ("stays", "homes", "visits")
    for n in names:
        assert cli(n, "--lake", lake).code == 0
    first = {n: files_digest(lk.path(n)) for n in names}
    for n in names:
        assert cli(n, "--lake", lake).code == 0
        assert files_digest(lk.path(n)) == first[n], n
    whole = pl.read_parquet(lk.path("stays") / "*.parquet").sort("device", "start")
    visits = pl.read_parquet(lk.path("visits") / "*.parquet").sort("device", "start", "cell")
    assert cli("stays", "--lake", lake, "--batch-pings", "40000").code == 0
    assert len(list(lk.path("stays").glob("*.parquet"))) > 1
    batched = pl.read_parquet(lk.path("stays") / "*.parquet").sort("device", "start")
    assert batched.equals(whole)
    assert cli("visits", "--lake", lake, "--batch-stays", "100").code == 0
    assert len(list(lk.path("visits").glob("*.parquet"))) > 1
    batched = pl.read_parquet(lk.path("visits") / "*.parquet").sort("device", "start", "cell")
    assert batched.equals(visits)


def test_vendor_stays_are_not_overwritten(cli, lake):
    stays = pl.DataFrame(
        {
            "device": pl.Series([1], dtype=pl.UInt64),
            "start": pl.Series([0], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "end": pl.Series([3_600_000_000], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "lat": [59.3],
            "lon": [18.0],
            "n_pings": pl.Series([0], dtype=pl.UInt32),
        }
    )
    write_dataset(lake, "stays", stays, command="ingest stays")
    r = cli("stays", "--lake", lake)
    assert r.code == 1 and "vendor stays" in r.err and "--force" in r.err
    assert cli("stays", "--lake", lake, "--force").code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("stays", "--min-duration", "soon"),
        ("stays", "--long-stays", "chop"),
        ("stays", "--radius", "-3"),
        ("visits", "--res", "13"),
        ("homes", "--tz", "Mars/Base"),
        ("groups", "--rule", "mean"),
    ],
)
def test_user_mistakes_exit_1_without_traceback(cli, lake, args):
    r = cli(*args, "--lake", lake)
    assert r.code == 1
    assert "Traceback" not in r.err


def test_missing_datasets_say_what_to_run(cli, tmp_path):
    r = cli("homes", "--lake", tmp_path)
    assert r.code == 1 and "segtool stays" in r.err
    r = cli("stays", "--lake", tmp_path)
    assert r.code == 1 and "ingest pings" in r.err


def test_durations():
    from segtool.commands.mobility import parse_duration
    from segtool.errors import UsageError

    assert parse_duration("15m", "x") == 900
    assert parse_duration("1h30m", "x") == 5400
    assert parse_duration("90s", "x") == 90
    assert parse_duration("20", "x") == 1200
    for bad in ("", "h", "3 days"):
        with pytest.raises(UsageError):
            parse_duration(bad, "x")


def test_a_lake_without_any_stay_flows_through(cli, tmp_path):
    from tests.mobility.helpers import pings

    write_pings(tmp_path, pings([(1, 0, 0.0, 0.0)]))  # one device, one ping
    write_dataset(
        tmp_path, "population", pl.DataFrame({"unit": ["a"], "group": ["Q1"], "count": [3.0]})
    )
    for command in ("stays", "homes", "visits", "groups"):
        r = cli(command, "--lake", tmp_path, "-f", "json")
        assert r.code == 0, (command, r.err)
    lk = Lake(tmp_path)
    assert lk.manifest("stays")["summary"]["stays"] == 0
    assert lk.manifest("devices")["summary"]["coverage_spearman_rho"] is None
    for name in ("stays", "homes", "visits", "devices"):
        assert pl.read_parquet(lk.path(name) / "*.parquet").height == 0


def test_stays_noise_and_gap_options(cli, lake):
    r = cli("stays", "--lake", lake, "--fill-gap", "1m", "--format", "json")
    filled = json.loads(r.out)[0]["bounds_filled_into_gaps"]
    assert r.code == 0 and filled > 0  # 2-min pings, sparser at night: gaps over 1 min
    r = cli(
        "stays",
        "--lake",
        lake,
        "--fill-gap",
        "0",
        "--noise-band",
        "1",
        "--no-centre-slack",
        "--format",
        "json",
    )
    assert r.code == 0 and json.loads(r.out)[0]["bounds_filled_into_gaps"] == 0
    params = Lake(lake).manifest("stays")["parameters"]
    assert (params["fill_gap_s"], params["noise_band"], params["centre_slack"]) == (0, 1, False)
    for bad in (("--noise-band", "0.5"), ("--fill-gap", "soon")):
        r = cli("stays", "--lake", lake, *bad)
        assert r.code == 1 and "Traceback" not in r.err
