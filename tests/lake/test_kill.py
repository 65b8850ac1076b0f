"""kill -9 at random points of ingest, stays, visits and indices (bounded loop over seeds):
the lake then verifies (each dataset is one whole version: old or new, never mixed), and
the next run succeeds and leaves no staging behind."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from segtool.lake import Lake
from segtool.lakegc import staging
from tests.lake.helpers import ping_lines, spawn, write_pings

BUDGET_S = 12.0  # the whole loop (it always runs MIN_ROUNDS), on top of the base lake
MIN_ROUNDS = 4  # every stage is killed at least once


def verify(lake: Path) -> dict[str, int]:
    """Every dataset's files hold exactly the rows its manifest says: one whole version."""
    lk = Lake(lake)
    from segtool.lakeinfo import dataset_names

    rows = {}
    for name in dataset_names(lk):
        manifest = json.loads((lake / name / "_manifest.json").read_text())
        n = sum(pq.ParquetFile(f).metadata.num_rows for f in (lake / name).rglob("*.parquet"))
        want = manifest.get("dataset_rows", manifest.get("rows_written"))
        assert want is None or n == want, (name, n, want)
        rows[name] = n
    return rows


def staging_or_temp(lake: Path, out: Path) -> bool:
    if staging(Lake(lake)):
        return True
    return out.parent.is_dir() and any(p.name.endswith(".tmp") for p in out.parent.iterdir())


def run(*args, timeout=120) -> None:
    p = spawn(*args)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    import os

    os.environ.setdefault("SEGTOOL_SALT", "kill-test-secret-0123456789")
    pings = write_pings(root / "p.csv", ping_lines(range(300), 60))
    more = write_pings(root / "q.csv", ping_lines(range(300, 600), 60, day=5))
    counts = root / "counts.csv"
    rng = random.Random(0)
    counts.write_text(
        "unit,group,n\n"
        + "".join(f"u{u},{g},{rng.randint(0, 50)}\n" for u in range(20_000) for g in "abc")
    )
    lake = root / "lake"
    run("ingest", "pings", pings, "--lake", lake)
    run("stays", "--lake", lake, "--batch-pings", "5000")
    run("visits", "--lake", lake, "--min-days", "1", "--min-places", "1", "--batch-stays", "50")
    return root, lake, more, counts


def commands(lake: Path, more: Path, counts: Path, out: Path) -> dict[str, list]:
    return {
        "ingest": ["ingest", "pings", more, "--lake", lake, "--append"],
        "stays": ["stays", "--lake", lake, "--batch-pings", "3000", "--allow-stale"],
        "visits": [
            "visits", "--lake", lake, "--min-days", "1", "--min-places", "1",
            "--batch-stays", "40", "--allow-stale",
        ],
        "indices": ["indices", "residential", counts, "-o", out],
    }  # fmt: skip


def test_kill_minus_9_never_leaves_a_mixed_lake(base, tmp_path, capsys, monkeypatch):
    root, lake0, more, counts = base
    monkeypatch.setenv("SEGTOOL_SALT", "kill-test-secret-0123456789")
    stages = ["ingest", "stays", "visits", "indices"]
    start = time.monotonic()
    tried = []
    seed = 0
    while seed < MIN_ROUNDS or time.monotonic() - start < BUDGET_S:
        rng = random.Random(seed)
        stage = stages[seed % len(stages)]
        lake = tmp_path / f"lake{seed}"
        shutil.copytree(lake0, lake)
        before = verify(lake)
        out = tmp_path / f"out{seed}" / "indices.parquet"
        cmd = commands(lake, more, counts, out)[stage]
        p = spawn(*cmd)
        t0 = time.monotonic()
        if seed % 2:  # at a random moment
            delay = rng.uniform(0.2, 4.0)
        else:  # in the dangerous window: once staging exists, then a little later
            delay = 0.0
            while p.poll() is None and not staging_or_temp(lake, out):
                time.sleep(0.01)
            delay = time.monotonic() - t0 + rng.uniform(0.0, 0.4)
        try:
            p.wait(timeout=max(0.0, delay - (time.monotonic() - t0)))
            finished = True
        except Exception:
            p.send_signal(signal.SIGKILL)
            p.wait()
            finished = False
        after = verify(lake)  # whole versions only
        if stage == "ingest":
            assert after["pings"] in (before["pings"], before["pings"] + 18_000)
        if stage == "indices" and out.exists():  # a published file is whole too
            assert pq.ParquetFile(out).metadata.num_rows > 0
            assert Path(f"{out}.manifest.json").exists() or not finished
        left = [s.path.name for s in staging(Lake(lake))]
        # the next run completes and collects whatever the killed one left
        run(*([c for c in cmd if c != "--append"]))  # (the append may have committed)
        assert [s.path.name for s in staging(Lake(lake))] == []
        if stage == "indices":
            assert not [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]
        verify(lake)
        tried.append((stage, round(delay, 2), finished, len(left)))
        seed += 1
    with capsys.disabled():
        print(f"\nkill -9: {len(tried)} runs (stage, delay s, finished, staging left):", tried)
    assert len(tried) >= MIN_ROUNDS
