"""segtool.engine: sizes, batch sizing, and the runners (order, shared arguments, lost
workers, unreachable schedulers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segtool import engine
from segtool.errors import SegtoolError, UsageError

MB, GB = 2**20, 2**30


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4GB", 4 * GB), ("3.5G", int(3.5 * GB)), ("512MB", 512 * MB), ("2GiB", 2 * GB),
     ("1048576", MB), ("800 mb", 800 * MB), (None, None), ("", None)],
)  # fmt: skip
def test_parse_size(text, expected):
    assert engine.parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "4 GBs", "-1GB", "1.2.3G", "512"])
def test_parse_size_rejects(text):
    with pytest.raises(UsageError):
        engine.parse_size(text)


@given(st.integers(1, 10**6))
def test_parse_size_megabytes(n):
    assert engine.parse_size(f"{n}MB") == n * MB


def test_rows_per_batch_hand_computed():
    cfg = engine.settings(memory_budget="1GB")
    # (1 GB − 400 MB fixed) × 0.5 for the stage's own arrays, 250 bytes a row
    assert cfg.rows_per_batch(10**9, 250) == int((GB - 400 * MB) * 0.5 // 250)
    assert cfg.rows_per_batch(1000, 250) == 1000  # the budget only ever lowers a batch
    assert engine.settings().rows_per_batch(1234, 250) == 1234  # no budget: unchanged
    assert engine.settings(memory_budget="10MB").rows_per_batch(10**9, 250) == 10_000
    assert engine.settings(memory_budget="1GB").batches(0, 100, 250) == 1


@given(st.integers(401, 64_000), st.integers(401, 64_000), st.integers(1, 10_000))
def test_more_budget_never_smaller_batches(a, b, per_row):
    lo, hi = sorted((a, b))
    small = engine.settings(memory_budget=f"{lo}MB").rows_per_batch(10**12, per_row)
    large = engine.settings(memory_budget=f"{hi}MB").rows_per_batch(10**12, per_row)
    assert small <= large


def test_settings_validation():
    with pytest.raises(UsageError, match="--scheduler needs --engine dask"):
        engine.settings("local", "tcp://127.0.0.1:8786")
    with pytest.raises(UsageError, match="unknown engine"):
        engine.settings("spark")


def test_memory_budget_reaches_polars(monkeypatch):
    monkeypatch.delenv("POLARS_OOC_MEMORY_BUDGET_MB", raising=False)
    with engine.runner(engine.settings(memory_budget="2GB")):
        assert os.environ["POLARS_OOC_MEMORY_BUDGET_MB"] == "1024"


def _scaled(factor, x, y):
    return factor * (x + y)


def test_local_map_in_order_and_lazy():
    seen = []

    def f(x):
        seen.append(x)
        return -x

    with engine.runner(engine.settings()) as run:
        it = run.map(f, [(i,) for i in range(5)])
        assert seen == []  # nothing runs before it is asked for
        assert next(it) == 0 and seen == [0]
        assert list(it) == [-1, -2, -3, -4]
        assert run.parallelism == 1


def test_dask_map_in_order_with_shared(cluster):
    parts = [(i, 10 * i) for i in range(12)]
    with engine.runner(engine.settings("dask", cluster)) as run:
        assert run.parallelism == 2
        assert list(run.map(_scaled, parts, (3,))) == [3 * (x + y) for x, y in parts]
        assert list(run.map(_scaled, [], (3,))) == []


def test_local_cluster_started_when_no_scheduler():
    with engine.runner(engine.settings("dask", workers=1)) as run:
        assert run.parallelism == 1
        assert list(run.map(_scaled, [(1, 2)], (2,))) == [6]


def _die_once(marker: str, x: int) -> int:
    """Kills its worker process the first time it runs (per marker), then succeeds."""
    flag = Path(marker)
    if not flag.exists():
        flag.write_text("died")
        os._exit(1)
    return x * x


def _always_die(x: int) -> int:
    os._exit(1)


def test_lost_worker_is_retried(cluster, tmp_path):
    with engine.runner(engine.settings("dask", cluster)) as run:
        out = list(run.map(_die_once, [(str(tmp_path / "m"), 7)]))
    assert out == [49]


def test_worker_always_lost_is_a_clear_error(cluster):
    import dask

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        engine.runner(engine.settings("dask", cluster)) as run,
        pytest.raises(engine.EngineError, match="worker died"),
    ):
        list(run.map(_always_die, [(1,)]))


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "127.0.0.1:1"])
def test_unreachable_scheduler_runner(address):
    with pytest.raises(engine.EngineError, match="127.0.0.1:1"):
        engine.runner(engine.settings("dask", address)).__enter__()


def test_unreachable_scheduler_cli(cli, fresh_lake, monkeypatch):
    lake = fresh_lake("unreachable")
    monkeypatch.setenv("SEGTOOL_DASK_SCHEDULER", "tcp://127.0.0.1:1")
    r = cli("stays", "--lake", lake, "--engine", "dask", "--batch-pings", "50000")
    assert r.code == 1
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'" in r.err
    assert "Traceback" not in r.err
    leftovers = [p.name for p in lake.iterdir() if p.name.startswith(".") or p.name == "stays"]
    leftovers = [n for n in leftovers if n != ".locks"]  # the lake's lock folder stays…
    assert leftovers == []  # no dataset, no temporary folder, no scratch
    assert not any((lake / ".locks").glob("*"))  # …but holds no lock once the run ended
    r = cli("stays", "--lake", lake, "--memory-budget", "plenty")
    assert r.code == 1 and "not a size" in r.err


def test_engine_error_is_a_user_error():
    assert issubclass(engine.EngineError, SegtoolError)
