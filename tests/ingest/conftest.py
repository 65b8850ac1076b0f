"""Fixtures for the ingest tests: a secret in the environment, file writers, lake readers."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

SECRET = "test-secret-0123456789abcdef"
VENDOR_HEADER = "device_id,timestamp,latitude,longitude,accuracy"


@pytest.fixture(autouse=True)
def salt(monkeypatch):
    monkeypatch.setenv("SEGTOOL_SALT", SECRET)
    monkeypatch.delenv("SEGTOOL_LAKE", raising=False)
    return SECRET


@pytest.fixture
def write(tmp_path):
    """write("name.csv", text_or_bytes, gz=False) -> Path"""

    def _write(name: str, content: str | bytes, gz: bool = False) -> Path:
        data = content.encode() if isinstance(content, str) else content
        path = tmp_path / name
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        return path

    return _write


@pytest.fixture
def lake_dir(tmp_path) -> Path:
    return tmp_path / "lake"


def read(lake: Path, name: str) -> pl.DataFrame:
    files = sorted((lake / name).rglob("*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.concat(
        [pl.read_parquet(f, hive_partitioning=False) for f in files], how="diagonal_relaxed"
    )


def lake_texts(lake: Path) -> tuple[str, bytes]:
    """Every value of every Parquet file as text (decoded from the compressed pages), and
    the raw bytes of every file (metadata, statistics, manifests)."""
    texts, raw = [], []
    for f in sorted(p for p in lake.rglob("*") if p.is_file()):
        raw.append(f.read_bytes())
        if f.suffix == ".parquet":
            table = pq.read_table(f)
            for col in table.columns:
                texts.extend(str(v) for v in col.to_pylist())
    return "\n".join(texts), b"\n".join(raw)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def helpers():
    class H:
        pass

    h = H()
    h.read = read
    h.lake_texts = lake_texts
    h.tree_bytes = tree_bytes
    h.VENDOR_HEADER = VENDOR_HEADER
    return h
