"""The one mapping from OS errors to user-facing messages (segtool.errors.os_fault)."""

from __future__ import annotations

import errno

import pytest

from segtool.errors import SegtoolError, disk_full, os_errno, os_fault


class ComputeError(Exception):  # stands in for polars' own exception type
    pass


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/x/y"), errno.ENOSPC, "no space left"),
        (ComputeError("parquet: underlying IO error: No space left on device (os error 28)"), 28, "no space left"),
        (PermissionError(errno.EACCES, "Permission denied", "/ro/lake"), errno.EACCES, "permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "/ro"), errno.EROFS, "read-only file system"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/x"), errno.ENOTDIR, "a file where a folder"),
        (FileExistsError(errno.EEXIST, "File exists", "/f"), errno.EEXIST, "a file where a folder"),
        (OSError("Not a directory (os error 20): /etc/passwd/x.parquet"), 20, "a file where a folder"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/d"), errno.EISDIR, "a folder where a file"),
    ],
)  # fmt: skip
def test_os_faults_become_user_errors(exc, code, words):
    assert os_errno(exc) == code
    fault = os_fault(exc)
    assert isinstance(fault, SegtoolError) and fault.exit_code == 1
    assert words in str(fault)
    assert disk_full(exc) == (code == errno.ENOSPC)


def test_full_disk_says_how_much_was_staged(tmp_path):
    e = OSError(errno.ENOSPC, "No space left on device")
    e.segtool_bytes_written = 12_500_000
    e.segtool_path = str(tmp_path / "lake" / "pings")
    msg = str(os_fault(e))
    assert "needed more than 12.5 MB" in msg and "MB free now" in msg


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad"), KeyError("x"), OSError("no errno here"), RuntimeError("(os error x)")],
)
def test_other_errors_stay_bugs(exc):
    assert os_fault(exc) is None


def test_a_lake_file_that_vanished_mid_read_is_named(tmp_path):
    import polars as pl

    ds = tmp_path / "lake" / "pings"
    ds.mkdir(parents=True)
    (ds / "_manifest.json").write_text("{}")
    files = []
    for i in range(2):
        files.append(ds / f"part-{i}.parquet")
        pl.DataFrame({"a": [i]}).write_parquet(files[-1])
    lf = pl.scan_parquet([str(f) for f in files])
    files[1].unlink()  # another job's commit removed the old version
    with pytest.raises(Exception) as e:
        lf.collect()
    fault = os_fault(e.value)
    assert fault is not None and "vanished while this run read it" in str(fault)
    assert str(ds) in str(fault)
    # a missing file outside any dataset stays what it was
    assert os_fault(FileNotFoundError(2, "No such file", str(tmp_path / "nope.csv"))) is None
