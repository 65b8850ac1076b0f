"""`segtool demo` (what `make demo` runs): every stage runs on the bundled sample, the
summary names each stage's results and the result files are written."""

import json

import polars as pl

from segtool.commands.demo import STAGES


def test_demo_runs_every_stage_and_writes_results(cli, tmp_path):
    out = tmp_path / "results"
    r = cli("demo", "--out", out)
    assert r.code == 0, r.err
    for stage in STAGES:
        assert f"demo: {stage.name}" in r.err
    for item in ("planted segregation", "rejected (in _rejects/)", "homes found",
                 "dissimilarity D", "place segregation S", "home cell as in the truth"):  # fmt: skip
        assert item in r.out, item
    residential = pl.DataFrame(json.loads((out / "residential.json").read_text()))
    d = residential.filter(pl.col("index") == "dissimilarity")["value"][0]
    assert 0.45 < d < 0.52  # the sample was made with planted D = 0.487
    spatial = json.loads((out / "residential_spatial.json").read_text())
    cells = json.loads((out / "residential_cells.json").read_text())
    assert spatial[0]["neighbourhood"] == "grid_disk(2), flat"
    # smoothing over ~1 km mixes neighbouring cells: less segregation, but not none
    assert 0.1 < spatial[0]["value"] < cells[0]["value"] < 1
    experienced = json.loads((out / "experienced.json").read_text())
    assert any(row["index"] == "place_segregation" for row in experienced)
    assert (out / "places.geoparquet").exists()
    assert (out / "residential.json.manifest.json").exists()
