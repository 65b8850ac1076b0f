"""Stages refuse stale inputs (the issue: `homes` used the stays of replaced pings)."""

from __future__ import annotations

import json

from tests.lake.helpers import ping_lines, write_pings


def test_homes_refuses_stays_of_replaced_pings(cli, tmp_path):
    lake = tmp_path / "lake"
    first = write_pings(tmp_path / "a.csv", ping_lines(range(3)))
    second = write_pings(tmp_path / "b.csv", ping_lines(range(3, 5)))
    assert cli("ingest", "pings", first, "--lake", lake).code == 0
    r = cli("stays", "--lake", lake)
    assert r.code == 0, r.err
    stays_manifest = json.loads((lake / "stays" / "_manifest.json").read_text())
    assert [i["dataset"] for i in stays_manifest["inputs"]] == ["pings"]
    assert "stale_inputs" not in stays_manifest

    assert cli("homes", "--lake", lake).code == 0  # current: fine
    assert cli("ingest", "pings", second, "--lake", lake).code == 0  # replace the pings

    r = cli("homes", "--lake", lake)
    assert r.code == 1
    r.err = " ".join(r.err.split())
    assert f"stays/ was built from an earlier pings/; run `segtool stays --lake {lake}`" in r.err
    assert "--allow-stale" in r.err and "Traceback" not in r.err

    info = {
        d["dataset"]: d for d in json.loads(cli("lake", "info", "--lake", lake, "-f", "json").out)
    }
    assert info["stays"]["stale"].startswith("stays/ was built from an earlier pings/")
    assert info["homes"]["stale"].startswith("homes/ was built from stays/, which is itself stale")
    assert info["pings"]["stale"] is None

    r = cli("homes", "--lake", lake, "--allow-stale")
    assert r.code == 0, r.err
    r.err = " ".join(r.err.split())
    assert "--allow-stale: stays/ was built from an earlier pings/" in r.err
    recorded = json.loads((lake / "homes" / "_manifest.json").read_text())["stale_inputs"]
    assert [(s["dataset"], s["upstream"], s["cause"]) for s in recorded] == [
        ("stays", "pings", "changed")
    ]

    # rebuilding stays makes the lineage current again
    assert cli("stays", "--lake", lake).code == 0
    assert cli("homes", "--lake", lake).code == 0
    assert "stale_inputs" not in json.loads((lake / "homes" / "_manifest.json").read_text())
