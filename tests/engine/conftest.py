"""A small synthetic lake (synth → ingest) and one Dask LocalCluster (2 worker processes,
one thread each) shared by the engine tests."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Address of a LocalCluster with 2 worker processes (1 thread each)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def base_lake(tmp_path_factory):
    """pings + population + areas of a 60-device, 10-day synthetic city (≈ 200k pings)."""
    from segtool.cli import main

    root = tmp_path_factory.mktemp("engine")
    city, lake = root / "city", root / "lake"
    args = ["synth", "--out", city, "--devices", "60", "--days", "10", "--seed", "5"]
    assert main([str(a) for a in args]) == 0
    pings = sorted(city.glob("pings*.csv*"))
    assert main(["ingest", "pings", *map(str, pings), "--lake", str(lake), "--synthetic"]) == 0
    pop = ["ingest", "population", city / "population.csv", "--areas", city / "areas.gpkg"]
    assert main([str(a) for a in [*pop, "--area-id", "deso", "--lake", lake]]) == 0
    return lake


@pytest.fixture
def fresh_lake(base_lake, tmp_path):
    """A copy of the base lake to run stages on."""

    def make(name: str):
        dst = tmp_path / name
        shutil.copytree(base_lake, dst)
        return dst

    return make
