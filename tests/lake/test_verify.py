"""`segtool lake verify`: a clean lake passes; each kind of damage is found and named."""

from __future__ import annotations

import json
import uuid

import polars as pl
import pytest

from segtool.lake import MANIFEST_NAME, Lake, Manifest
from segtool.lakeverify import ERROR, verify_lake


def _lake(tmp_path) -> Lake:
    lake = Lake(tmp_path / "lake")
    for name, n in (("stays", 10), ("visits", 7)):
        m = Manifest(command=name, rows_in=n + 2, rows_written=n, rows_rejected=2)
        with lake.writing(name, m) as tmp:
            pl.DataFrame({"x": list(range(n))}).write_parquet(tmp / "part-00000.parquet")
            (tmp / "date=2024-01-01").mkdir()
            pl.DataFrame({"x": [1, 2, 3]}).write_parquet(tmp / "date=2024-01-01" / "p.parquet")
    return lake


def _errors(lake: Lake) -> list[tuple[str, str]]:
    return [(f.dataset, f.check) for f in verify_lake(lake) if f.status == ERROR]


def test_clean_lake_verifies(tmp_path, cli):
    lake = _lake(tmp_path)
    assert _errors(lake) == []
    manifest = lake.manifest("stays")
    assert [p["rows"] for p in manifest["parts"]] == [3, 10]  # sorted by path
    r = cli("lake", "verify", "--lake", lake.root, "--all", "--format", "json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert {(x["dataset"], x["status"]) for x in rows} == {("stays", "ok"), ("visits", "ok")}


@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda d: (d / "part-00000.parquet").unlink(), ("stays", "files present")),
        (lambda d: (d / "extra.parquet").write_bytes(b"x"), ("stays", "orphaned file")),
        (
            lambda d: (d / "date=2024-01-01" / "p.parquet").write_bytes(b"0" * 10),
            ("stays", "bytes"),
        ),
    ],
)
def test_damage_inside_a_dataset_is_found(tmp_path, cli, damage, expect):
    lake = _lake(tmp_path)
    damage(lake.path("stays"))
    found = _errors(lake)
    assert expect in found and {d for d, _ in found} == {"stays"}
    r = cli("lake", "verify", "--lake", lake.root)
    assert r.code == 1
    assert expect[1] in r.out and "does not match its manifests" in " ".join(r.err.split())


def test_same_size_other_bytes_fail_the_hash_not_the_size(tmp_path):
    lake = _lake(tmp_path)
    p = lake.path("stays") / "part-00000.parquet"
    size = p.stat().st_size
    pl.DataFrame({"x": list(range(10))[::-1]}).write_parquet(p)  # same rows, same stats
    assert p.stat().st_size == size
    assert _errors(lake) == [("stays", "sha256")]
    assert [f for f in verify_lake(lake, hashes=False) if f.status == ERROR] == []


def test_rows_and_counts_that_do_not_reconcile(tmp_path):
    lake = _lake(tmp_path)
    mpath = lake.path("visits") / MANIFEST_NAME
    m = json.loads(mpath.read_text())
    m["rows_in"] = 100
    m["parts"][0]["rows"] = 4  # the file holds 3
    mpath.write_text(json.dumps(m))
    assert sorted(_errors(lake)) == [("visits", "rows"), ("visits", "rows_in = written + rejected")]


def test_leftover_staging_and_orphans_in_the_lake(tmp_path, cli):
    lake = _lake(tmp_path)
    (lake.root / f".tmp-stays-{uuid.uuid4().hex}").mkdir()
    (lake.root / "notes.txt").write_text("hi")
    (lake.root / "homes").mkdir()  # a folder without a manifest
    found = _errors(lake)
    assert ("stays", "leftover staging") in found
    assert ("notes.txt", "orphaned") in found and ("homes", "orphaned") in found
    r = cli("lake", "verify", "--lake", lake.root, "--format", "csv")
    assert r.code == 1 and "leftover staging" in " ".join(r.out.split())
    assert cli("lake", "gc", "--lake", lake.root).code == 0
    assert ("stays", "leftover staging") not in _errors(lake)


def test_missing_lake_is_exit_1(tmp_path, cli):
    r = cli("lake", "verify", "--lake", tmp_path / "nope")
    assert r.code == 1 and "does not exist" in " ".join(r.err.split())
