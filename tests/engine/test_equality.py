"""The whole pipeline (stays → homes → groups → visits → indices experienced, bootstrap and
null with a seed) gives the same datasets and indices on every engine: in one pass, in
device batches under a memory budget, and as Dask tasks on a 2-worker LocalCluster.

Datasets are compared after a canonical sort (exactly), and part by part (byte for byte)
where the two runs cut the same device buckets; indices to 1e-12."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

DATASETS = ("stays", "homes", "devices", "visits", "exposure")
EXPERIENCED = ["--bootstrap", "24", "--null", "8", "--seed", "7", "--leave-one-out",
               "--ice-high", "Q4", "--ice-low", "Q1"]  # fmt: skip


def pipeline(cli, lake: Path, *extra: str, stays=(), visits=()) -> list[dict]:
    """Run every stage with `extra` engine options; return the experienced indices."""
    for argv in (
        ["stays", *stays],
        ["homes"],
        ["groups"],
        ["visits", *visits],
        ["indices", "experienced", *EXPERIENCED, "-f", "json", "-o", lake / "exp.json"],
    ):
        r = cli(*argv, "--lake", lake, *extra)
        assert r.code == 0, r.err
    return json.loads((lake / "exp.json").read_text())


def canonical(lake: Path, name: str) -> pl.DataFrame:
    frame = pl.read_parquet(lake / name / "*.parquet")
    return frame.sort(frame.columns)


def assert_same_indices(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) > 10
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k, va in ra.items():
            vb = rb[k]
            if isinstance(va, float) and isinstance(vb, float):
                assert va == pytest.approx(vb, rel=0, abs=1e-12), (ra, k)
            else:
                assert va == vb, (ra, k)


def manifest_rows(lake: Path, name: str) -> tuple:
    m = json.loads((lake / name / "_manifest.json").read_text())
    return m["rows_in"], m["rows_written"], m["rows_rejected"], m.get("summary")


@pytest.fixture(scope="module")
def runs(base_lake, tmp_path_factory, cluster):
    """Three runs of the pipeline on copies of one lake."""
    import shutil

    from segtool.cli import main

    def cli(*args):
        class R:
            code = main([str(a) for a in args])
            err = ""

        return R

    root = tmp_path_factory.mktemp("runs")
    lakes = {}
    for name, extra, stays, visits in (
        ("single", (), (), ()),  # one batch: the single-machine path
        ("budget", ("--memory-budget", "420MB"), (), ("--batch-stays", "400")),
        ("dask", ("--engine", "dask", "--scheduler", cluster), ("--batch-pings", "45000"),
         ("--batch-stays", "400")),
    ):  # fmt: skip
        lake = root / name
        shutil.copytree(base_lake, lake)
        results = pipeline(cli, lake, *extra, stays=stays, visits=visits)
        lakes[name] = (lake, results)
    return lakes


def test_batches_were_really_cut(runs):
    """Otherwise the equality below would be trivial."""
    for name in ("budget", "dask"):
        lake = runs[name][0]
        assert len(list((lake / "stays").glob("*.parquet"))) >= 4, name
        assert len(list((lake / "visits").glob("*.parquet"))) >= 4, name
    assert len(list((runs["single"][0] / "stays").glob("*.parquet"))) == 1


@pytest.mark.parametrize("other", ["budget", "dask"])
@pytest.mark.parametrize("name", DATASETS)
def test_datasets_equal_after_canonical_sort(runs, other, name):
    a, b = runs["single"][0], runs[other][0]
    assert_frame_equal(canonical(a, name), canonical(b, name), check_exact=True)


@pytest.mark.parametrize("other", ["budget", "dask"])
@pytest.mark.parametrize("name", ["homes", "devices", "visits"])
def test_counts_reconcile(runs, other, name):
    assert manifest_rows(runs["single"][0], name) == manifest_rows(runs[other][0], name)


@pytest.mark.parametrize("other", ["budget", "dask"])
def test_indices_equal_with_bootstrap_and_null(runs, other):
    single, theirs = runs["single"][1], runs[other][1]
    assert any(r.get("ci_low") is not None for r in single)  # bootstrap ran
    assert any(r.get("null_mean") is not None for r in single)  # and the null
    assert_same_indices(single, theirs)


def test_same_buckets_same_bytes(runs, fresh_lake, cli, cluster):
    """Local and Dask runs that cut the same buckets write byte-identical parts."""
    local = fresh_lake("local-batched")
    assert cli("stays", "--lake", local, "--batch-pings", "45000").code == 0
    dask_stays = runs["dask"][0] / "stays"
    names = sorted(p.name for p in dask_stays.glob("*.parquet"))
    assert names == sorted(p.name for p in (local / "stays").glob("*.parquet"))
    for n in names:
        assert (local / "stays" / n).read_bytes() == (dask_stays / n).read_bytes(), n
    assert manifest_rows(local, "stays") == manifest_rows(runs["dask"][0], "stays")
