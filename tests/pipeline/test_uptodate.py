"""A stage whose output records the same inputs (content hashes), options and segtool
version does nothing and says "up to date"; anything else, or --force, rebuilds it."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segtool.errors import UsageError
from segtool.pipeline.stages import BY_NAME, dependencies, order, stage_names
from tests.mobility.helpers import stays
from tests.mobility.lakes import write_dataset

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEGTOOL_LAKE", raising=False)
    monkeypatch.delenv("SEGTOOL_CONFIG", raising=False)
    return tmp_path


def test_file_inputs_by_content_options_and_force(here, cli):
    pois = here / "pois.gpkg"
    shutil.copy(SAMPLE / "pois.gpkg", pois)
    args = ("ingest", "pois", pois, "--category", "category", "--lake", "L")
    manifest = here / "L" / "pois" / "_manifest.json"
    r = cli(*args)
    assert r.code == 0 and "up to date" not in said(r)
    built = manifest.read_bytes()
    record = json.loads(built)["invocation"]
    assert record["files"] == {str(pois): _sha(pois)} and record["options"]["res"] == 9

    r = cli(*args)
    assert r.code == 0 and "ingest pois: up to date" in said(r)
    assert manifest.read_bytes() == built

    os.utime(pois, (1e9, 1e9))  # new time, same bytes
    assert "up to date" in said(cli(*args))

    r = cli(*args, "--res", "8")
    assert "up to date" not in said(r) and "other options (res)" in said(r)
    assert json.loads(manifest.read_bytes())["invocation"]["options"]["res"] == 8
    assert "up to date" in said(cli(*args, "--res", "8"))

    r = cli(*args, "--res", "8", "--force")
    assert r.code == 0 and "up to date" not in said(r)

    data = pois.read_bytes()  # other bytes under the same name
    pois.write_bytes(data + b"\0")
    r = cli(*args, "--res", "8")
    assert "up to date" not in said(r) and "other input files" in said(r)


def said(r) -> str:
    """stderr with rich's line wrapping undone (xdist workers run with COLUMNS=80)."""
    return " ".join(r.err.split())


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stays(shift_min: int = 0):
    t0 = datetime(2024, 5, 6, 21, 0, tzinfo=UTC)
    rows = [
        (d, t0 + timedelta(days=n, minutes=shift_min), t0 + timedelta(days=n, hours=9))
        for d in (1, 2)
        for n in range(4)
    ]
    return stays(rows)


def test_dataset_inputs_by_manifest_hash_and_version(here, cli, monkeypatch):
    write_dataset("L", "stays", _stays(), command="stays")
    assert cli("homes", "--lake", "L").code == 0
    homes = here / "L" / "homes" / "_manifest.json"
    built = homes.read_bytes()
    assert "homes: up to date" in said(cli("homes", "--lake", "L"))

    write_dataset("L", "stays", _stays(), command="stays")  # the same bytes again
    assert "up to date" in said(cli("homes", "--lake", "L"))
    assert homes.read_bytes() == built

    write_dataset("L", "stays", _stays(shift_min=10), command="stays")  # other content
    r = cli("homes", "--lake", "L")
    assert r.code == 0 and "up to date" not in said(r) and "stays/" in said(r)
    assert "up to date" in said(cli("homes", "--lake", "L"))

    import segtool

    monkeypatch.setattr(segtool, "__version__", "999.0")
    r = cli("homes", "--lake", "L")
    assert "up to date" not in said(r) and "segtool" in said(r)

    (here / "L" / "homes" / "part-00000.parquet").unlink()  # the output damaged
    r = cli("homes", "--lake", "L")
    assert "up to date" not in said(r) and "lacks" in said(r)


def test_printing_and_appending_commands_always_run(here):
    """Without --output a command has nothing to be current about; --append always adds."""
    from segtool.lake import Lake
    from segtool.pipeline.current import check

    lake = Lake("L")
    status = check(BY_NAME["indices.experienced"], {"output": None, "places": None}, lake)
    assert not status.current and "no output file" in status.reasons[0]
    status = check(BY_NAME["ingest.pings"], {"append": True, "files": []}, lake)
    assert not status.current and "--append" in status.reasons[0]


def test_stage_order_and_names():
    names = stage_names(["report", "ingest", "stays", "visits", "homes", "groups"])
    chosen = [BY_NAME[n] for n in names]
    got = order(dependencies(chosen))
    assert got.index("ingest.pings") < got.index("stays") < got.index("homes")
    assert got.index("homes") < got.index("groups") < got.index("report")
    assert got.index("ingest.population") < got.index("groups")
    assert got.index("stays") < got.index("visits") < got.index("report")
    with pytest.raises(UsageError, match="no stage 'stay'"):
        stage_names(["stay"])
    with pytest.raises(UsageError, match="cycle"):
        order(dependencies(chosen, after={"stays": ["report"]}))


def test_run_refuses_before_writing_anything(here, cli):
    r = cli("run", "nosuch")
    assert r.code == 1 and "no stage 'nosuch'" in said(r)
    (here / "segtool.toml").write_text('lake = "L"\n')
    r = cli("run", "ingest.pings", "stays")
    assert r.code == 1 and "ingest.pings cannot run" in said(r) and "[ingest.pings]" in said(r)
    assert not (here / "L").exists()


def test_manifests_record_effective_options_never_the_secret(here, cli, monkeypatch):
    secret = "k3y-for-the-test-0123456789"
    monkeypatch.setenv("SEGTOOL_SALT", secret)
    csv = here / "p.csv"
    csv.write_text(
        "id,ts,lat,lon\nphone-a,2024-05-06T08:00:00Z,59.33,18.06\n"
        "phone-b,2024-05-06T08:05:00Z,59.34,18.07\n"
    )
    (here / "segtool.toml").write_text('lake = "L"\n[ingest.pings]\nmax_accuracy = 50.0\n')
    r = cli("ingest", "pings", csv)
    assert r.code == 0, r.err
    text = (here / "L" / "pings" / "_manifest.json").read_text()
    assert json.loads(text)["invocation"]["options"]["max_accuracy"] == 50.0
    for path in (here / "L").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and b"phone-a" not in data, path
