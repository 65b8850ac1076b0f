"""examples/pipeline: make -j2 builds the chain; a second make rebuilds nothing; `touch`
rebuilds nothing; one changed parameter re-runs only the stages that depend on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGE_LINE = re.compile(
    r"^(ingest \w+|stays|homes|groups|visits|indices \w+|report): up to date", re.M
)
MANIFESTS = {
    "ingest pings": "lake/pings/_manifest.json",
    "ingest population": "lake/population/_manifest.json",
    "ingest landuse": "lake/landuse/_manifest.json",
    "ingest pois": "lake/pois/_manifest.json",
    "stays": "lake/stays/_manifest.json",
    "homes": "lake/homes/_manifest.json",
    "groups": "lake/devices/_manifest.json",
    "visits": "lake/visits/_manifest.json",
    "indices experienced": "out/experienced.json.manifest.json",
    "report": "out/report.html.manifest.json",
}


def _env() -> dict:
    env = dict(os.environ, CI="true", PYTHONPATH=str(REPO))
    env.pop("SEGTOOL_LAKE", None)
    env.pop("SEGTOOL_CONFIG", None)
    return env


def _make(where: Path) -> str:
    if shutil.which("make") is None:  # pragma: no cover - make is on every CI image
        pytest.fail("make is not installed")
    done = subprocess.run(
        ["make", "-j2", f"SEGTOOL={sys.executable} -m segtool"],
        cwd=where,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _bytes(where: Path) -> dict[str, bytes]:
    return {k: (where / v).read_bytes() for k, v in MANIFESTS.items()}


@pytest.mark.slow
def test_make_builds_once_and_rebuilds_only_what_depends_on_a_change(tmp_path):
    sample = tmp_path / "data" / "sample"
    shutil.copytree(REPO / "data" / "sample", sample, ignore=shutil.ignore_patterns("truth"))
    where = tmp_path / "examples" / "pipeline"
    shutil.copytree(
        REPO / "examples" / "pipeline", where, ignore=shutil.ignore_patterns("lake", "out")
    )

    first = _make(where)
    assert not STAGE_LINE.findall(first)  # everything was built
    built = _bytes(where)
    assert (where / "out" / "report.html").stat().st_size > 10_000
    report_manifest = json.loads(built["report"])
    assert report_manifest["invocation"]["options"]["bootstrap"] == 20  # from segtool.toml

    assert "Nothing to be done" in _make(where)

    # new times, same bytes: make runs the recipes, segtool rebuilds nothing
    for f in sample.iterdir():
        os.utime(f)
    os.utime(where / "segtool.toml")
    touched = _make(where)
    assert sorted(STAGE_LINE.findall(touched)) == sorted(MANIFESTS)
    assert _bytes(where) == built

    # one parameter: visits and what reads them re-run, nothing upstream
    conf = where / "segtool.toml"
    conf.write_text(conf.read_text().replace("res = 9", "res = 10"))
    changed = _make(where)
    current = set(STAGE_LINE.findall(changed))
    rebuilt = {"visits", "indices experienced", "report"}
    assert current == set(MANIFESTS) - rebuilt
    after = _bytes(where)
    for stage in MANIFESTS:
        assert (after[stage] == built[stage]) == (stage not in rebuilt), stage
    assert json.loads(after["visits"])["parameters"]["visits"]["res"] == 10

    # `segtool run` agrees: the whole chain is current
    done = subprocess.run(
        [sys.executable, "-m", "segtool", "run", "--format", "json"],
        cwd=where,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert {r["stage"] for r in table} == {
        "ingest.pings", "ingest.population", "ingest.landuse", "ingest.pois", "stays",
        "homes", "groups", "visits", "indices.experienced", "report",
    }  # fmt: skip
    assert {r["status"] for r in table} == {"up to date"}
    names = [r["stage"] for r in table]
    assert names.index("stays") < names.index("homes") < names.index("groups")
    assert names.index("indices.experienced") < names.index("report")
