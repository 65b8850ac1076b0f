"""Faults of the machine and of the user's paths are plain errors (exit 1), never bugs:
a read-only lake, a full disk, a file where a folder is expected, an output equal to an
input, an empty --lake; weak secrets are refused; a truncated .gz names its last line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest

from segtool.lakegc import staging
from tests.lake.helpers import ping_lines, write_pings


@contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs at `path` (needs root); yields False when it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    ok = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def said(r) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(r.err.replace("│", " ").split())


def leftovers(lake: Path) -> list[str]:
    from segtool.lake import Lake

    return [s.path.name for s in staging(Lake(lake))]


def test_full_disk_is_a_user_error_and_leaves_nothing_half_written(cli, tmp_path, monkeypatch):
    small = tmp_path / "small"
    big = write_pings(tmp_path / "big.csv", ping_lines(range(400), 60))  # ~1.5 MB of text
    seed = write_pings(tmp_path / "seed.csv", ping_lines(range(2)))
    with tmpfs(small, "600k") as mounted:
        lake = small / "lake"
        assert cli("ingest", "pings", seed, "--lake", lake).code == 0
        before = json.loads((lake / "pings" / "_manifest.json").read_text())
        if not mounted:  # no tmpfs here: the Parquet writer reports a full disk instead
            import segtool.ingest.partitions as partitions

            def full(*a, **k):
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(partitions, "write_table", full)
        r = cli("ingest", "pings", big, "--lake", lake, "--append")
        assert r.code == 1, r.err
        assert "no space left on the device" in said(r) and "Traceback" not in said(r)
        assert "nothing was half-written" in said(r)
        if mounted:
            assert "MB free now" in said(r)
        assert leftovers(lake) == []
        # the old version is intact and still the current one
        assert json.loads((lake / "pings" / "_manifest.json").read_text()) == before


def test_read_only_lake_is_a_user_error(cli, tmp_path):
    ro = tmp_path / "ro"
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    with tmpfs(ro, "4m") as mounted:
        lake = ro / "lake"
        assert cli("ingest", "pings", f, "--lake", lake).code == 0
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        elif os.geteuid() != 0:
            lake.chmod(0o555)
        else:
            pytest.skip("root without mount: nothing is read-only")
        r = cli("stays", "--lake", lake)
        assert r.code == 1, r.err
        assert "cannot write" in said(r) and (
            "read-only file system" in said(r) or "permission denied" in said(r)
        )
        assert "Traceback" not in said(r) and "bug" not in said(r)
        lake.chmod(0o755) if not mounted else None


def test_file_where_a_folder_is_expected(cli, tmp_path):
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    for args in (
        ("ingest", "pings", f, "--lake", a_file),
        ("lake", "info", "--lake", a_file),
        ("lake", "info", "--lake", a_file / "sub"),
    ):
        r = cli(*args)
        assert r.code == 1, (args, r.err)
        assert "a file where a folder is expected" in said(r), r.err
    lake = tmp_path / "lake"
    assert cli("ingest", "pings", f, "--lake", lake).code == 0
    r = cli("stays", "--lake", lake, "-o", a_file / "out.json")
    assert r.code == 1 and "a file where a folder is expected" in said(r), r.err
    assert a_file.read_text() == "x"


def test_output_equal_to_an_input_is_refused(cli, tmp_path):
    counts = tmp_path / "counts.csv"
    text = "unit,group,n\nA,x,10\nA,y,5\nB,x,2\nB,y,9\n"
    counts.write_text(text)
    r = cli("indices", "residential", counts, "-o", counts)
    assert r.code == 1, r.err
    assert "is the input" in said(r)
    assert counts.read_text() == text
    link = tmp_path / "link.csv"
    os.link(counts, link)  # the same file under another name
    assert cli("indices", "residential", counts, "-o", link).code == 1
    assert counts.read_text() == text


def test_empty_lake_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    r = cli("ingest", "pings", f, "--lake", "")
    assert r.code == 1 and "must not be empty" in said(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_refused_ingest_leaves_no_lake_folder(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("device_id,timestamp,latitude,longitude\n")  # a header without rows
    lake = tmp_path / "lake"
    assert cli("ingest", "pings", bad, "--lake", lake).code == 1
    assert not lake.exists()


@pytest.mark.parametrize("secret", [" " * 16, "a" * 16, "\t \n" * 8, "abababababababab1234"])
def test_weak_secrets_are_refused(cli, tmp_path, monkeypatch, secret):
    monkeypatch.setenv("SEGTOOL_SALT", secret)
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    r = cli("ingest", "pings", f, "--lake", tmp_path / "lake")
    assert r.code == 1, r.err
    assert "whitespace" in said(r) or "distinct byte" in said(r)
    assert not (tmp_path / "lake").exists()


def test_a_secret_with_eight_distinct_bytes_is_enough(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_SALT", "abcdefgh" * 2)
    f = write_pings(tmp_path / "p.csv", ping_lines(range(3)))
    assert cli("ingest", "pings", f, "--lake", tmp_path / "lake").code == 0


def _decodable_lines_oracle(data: bytes) -> int:
    """Complete lines a byte-at-a-time gzip reader gets before the damage."""
    import io

    out = bytearray()
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
        try:
            while b := g.read(1):
                out += b
        except (EOFError, zlib.error, gzip.BadGzipFile):
            pass
    return out.count(b"\n")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_gzip_names_the_last_line_that_decodes(cli, tmp_path, keep):
    lines = ping_lines(range(40), 30)  # 1,200 rows
    text = ("device_id,timestamp,latitude,longitude,accuracy\n" + "\n".join(lines) + "\n").encode()
    data = gzip.compress(text, mtime=0)
    cut = data[: int(len(data) * keep)]
    f = tmp_path / "p.csv.gz"
    f.write_bytes(cut)
    expected = _decodable_lines_oracle(cut)
    assert 1 < expected < len(lines)
    r = cli("ingest", "pings", f, "--lake", tmp_path / "lake")
    assert r.code == 1, r.err
    assert f"truncated or corrupt after line {expected}:" in said(r), r.err
