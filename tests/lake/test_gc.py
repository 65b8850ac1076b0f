"""Garbage collection: staging of dead runs is removed (by the next writer and by
`segtool lake gc`); staging of a live job (its lock held) is kept and named."""

from __future__ import annotations

import json
import os
import uuid

from segtool.lake import Lake
from segtool.lakelock import writer_lock
from tests.lake.helpers import ping_lines, spawn, write_pings


def dead_staging(lake, kind: str, name: str, nbytes: int, under: str = ""):
    d = lake / under / f".{kind}-{name}-{uuid.uuid4().hex}"
    (d / "date=2024-03-04").mkdir(parents=True)
    (d / "date=2024-03-04" / "part-0.parquet").write_bytes(b"x" * nbytes)
    return d


def test_lake_gc_frees_dead_staging_and_keeps_live(cli, tmp_path):
    lake = tmp_path / "lake"
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    assert cli("ingest", "pings", f, "--lake", lake).code == 0
    dead = [
        dead_staging(lake, "tmp", "pings", 1000),
        dead_staging(lake, "spool", "pings", 2000),
        dead_staging(lake, "tmp", "pings", 500, under="_rejects"),
        dead_staging(lake, "scratch", "stays", 4000),
    ]
    live = dead_staging(lake, "tmp", "visits", 300)
    not_staging = lake / ".tmp-notes"  # no run id: not ours to remove
    not_staging.mkdir()
    with writer_lock(Lake(lake), "visits"):  # a live job writes visits/
        p = spawn("lake", "gc", "--lake", lake, "--format", "json")
        out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    rows = {os.path.basename(r["path"]): r for r in json.loads(out)}
    assert {n for n, r in rows.items() if r["action"] == "removed"} == {d.name for d in dead}
    assert rows[live.name]["action"] == "kept"
    assert f"pid {os.getpid()}" in rows[live.name]["held_by"]
    assert sum(r["bytes"] for r in rows.values() if r["action"] == "removed") == 7500
    assert "removed 4 staging folder(s) of dead runs, freed 7.5 kB; kept 1" in " ".join(err.split())
    assert not any(d.exists() for d in dead) and live.exists() and not_staging.exists()
    assert cli("lake", "gc", "--lake", lake).code == 0  # now the live one's lock is free
    assert not live.exists()


def test_next_run_collects_dead_staging_of_its_dataset(cli, tmp_path):
    lake = tmp_path / "lake"
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    assert cli("ingest", "pings", f, "--lake", lake).code == 0
    mine = dead_staging(lake, "spool", "pings", 10)
    other = dead_staging(lake, "tmp", "stays", 10)
    assert cli("ingest", "pings", f, "--lake", lake).code == 0
    assert not mine.exists() and other.exists()  # only its own dataset's
    assert cli("lake", "gc", "--lake", tmp_path / "nowhere").code == 1
