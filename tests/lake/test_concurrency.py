"""Several jobs on one lake: appends never lose rows, replaces have one winner, a busy
dataset is named with its holder. Real subprocesses; the test holds the dataset's lock
while they start, so they truly contend."""

from __future__ import annotations

import json
import os
import socket
import time

import polars as pl
import pyarrow.parquet as pq

from segtool.lake import Lake
from segtool.lakelock import waiting, writer_lock
from tests.lake.helpers import ping_lines, spawn, write_pings

N_JOBS = 4
DEVICES_PER_FILE = 25
PINGS_PER_DEVICE = 20


def lake_rows(lake) -> pl.DataFrame:
    files = sorted((lake / "pings").rglob("*.parquet"))
    return pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in files])


def contend(lake, name: str, start) -> list:
    """Hold `name`'s lock while `start()` launches jobs; release once all of them wait."""
    with writer_lock(Lake(lake), name):
        procs = start()
        deadline = time.monotonic() + 120
        while len(waiting(Lake(lake), name)) < len(procs) and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
    return procs


def finish(procs) -> list[tuple[int, str, str]]:
    return [(p.wait(timeout=240), *p.communicate()) for p in procs]


def test_parallel_appends_keep_every_row_once(cli, tmp_path, capsys):
    lake = tmp_path / "lake"
    seed = write_pings(tmp_path / "seed.csv", ping_lines(range(1000, 1010), PINGS_PER_DEVICE))
    assert cli("ingest", "pings", seed, "--lake", lake).code == 0
    files = [
        write_pings(
            tmp_path / f"half{j}.csv",
            ping_lines(range(j * 100, j * 100 + DEVICES_PER_FILE), PINGS_PER_DEVICE),
        )
        for j in range(N_JOBS)
    ]
    procs = contend(  # every job waits for the others
        lake,
        "pings",
        lambda: [
            spawn("ingest", "pings", f, "--lake", lake, "--append", "--wait", "200", "-f", "json")
            for f in files
        ],
    )
    results = finish(procs)
    assert [r[0] for r in results] == [0] * N_JOBS, [r[2] for r in results]

    rows_in = 10 * PINGS_PER_DEVICE + N_JOBS * DEVICES_PER_FILE * PINGS_PER_DEVICE
    got = lake_rows(lake)
    assert got.height == rows_in  # every row present …
    assert got.select("device", "ts").n_unique() == rows_in  # … exactly once
    manifest = json.loads((lake / "pings" / "_manifest.json").read_text())
    assert sorted(os.path.basename(i["path"]) for i in manifest["inputs"]) == sorted(
        ["seed.csv", *(f.name for f in files)]
    )
    assert manifest["rows_written"] == manifest["dataset_rows"] == rows_in
    assert len(manifest["runs"]) == N_JOBS + 1
    assert not [p for p in lake.iterdir() if p.name.startswith((".tmp", ".spool", ".old"))]
    assert list((lake / ".locks").iterdir()) == []  # an idle lake holds no lock files
    with capsys.disabled():
        print(
            f"\nconcurrency: {N_JOBS} appending jobs + seed, rows in {rows_in}, "
            f"rows in the lake {got.height}"
        )


def test_parallel_replaces_have_one_winner_and_the_loser_is_told(tmp_path):
    lake = tmp_path / "lake"
    files = [
        write_pings(tmp_path / f"r{j}.csv", ping_lines(range(j * 10, j * 10 + 5))) for j in range(2)
    ]
    procs = contend(
        lake,
        "pings",
        lambda: [spawn("ingest", "pings", f, "--lake", lake, "--wait", "200") for f in files],
    )
    (c0, _, e0), (c1, _, e1) = finish(procs)
    assert sorted([c0, c1]) == [0, 1], (e0, e1)
    winner = files[0] if c0 == 0 else files[1]
    loser_err = " ".join((e1 if c0 == 0 else e0).split())
    assert "replaced pings/" in loser_err and "this run wrote nothing" in loser_err
    assert f"pid {procs[0 if c0 == 0 else 1].pid} on" in loser_err  # names the winner
    assert "Traceback" not in loser_err
    manifest = json.loads((lake / "pings" / "_manifest.json").read_text())
    assert [os.path.basename(i["path"]) for i in manifest["inputs"]] == [winner.name]
    n = sum(pq.ParquetFile(f).metadata.num_rows for f in (lake / "pings").rglob("*.parquet"))
    assert n == manifest["dataset_rows"] == 5 * 12


def test_busy_dataset_names_its_holder(cli, tmp_path):
    lake = tmp_path / "lake"
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    with writer_lock(Lake(lake), "pings"):  # held by this process: the job must not get it
        ((code, _, err),) = finish([spawn("ingest", "pings", f, "--lake", lake, "--wait", "0.3")])
    assert code == 1
    err = " ".join(err.split())
    me = f"pid {os.getpid()} on {socket.gethostname()}"
    assert f"pings/ in '{lake}' is being written by {me}" in err
    assert "since" in err and "--wait" in err and "Traceback" not in err
    assert not (lake / "pings").exists() and waiting(Lake(lake), "pings") == []
    assert cli("ingest", "pings", f, "--lake", lake, "--wait", "0").code == 0  # free again
