"""`segtool synth` and `segtool demo` from the command line, and the bundled sample."""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict

import polars as pl
import pytest

from segtool.synth import generate_city
from segtool.synth.generate import command_line
from segtool.synth.sample import SAMPLE_COMMAND, SAMPLE_PARAMS, bundled_sample


def test_synth_command_writes_the_files_and_a_summary(cli, tmp_path):
    out = tmp_path / "city"
    r = cli(
        "synth",
        "--out",
        out,
        "--devices",
        20,
        "--days",
        2,
        "--seed",
        4,
        "--segregation",
        0.8,
        "--format",
        "json",
    )
    assert r.code == 0, r.err
    items = {row["item"]: row["value"] for row in json.loads(r.out)}
    assert items["devices"] == "20"
    assert items["segregation parameter"] == "0.8"
    for name in (
        "areas.gpkg",
        "population.csv",
        "landuse.gpkg",
        "pois.gpkg",
        "pings.csv",
        "README.md",
    ):
        assert (out / name).exists(), name
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["command"] == "segtool synth"
    assert manifest["seed"] == 4
    assert manifest["parameters"]["segregation"] == 0.8
    assert set(manifest["outputs"]) >= {
        "pings.csv",
        "truth/stays.parquet",
        "truth/planted_rejects.csv",
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--segregation", "1.5"], "segregation"),
        (["--gap-share", "0.99"], "gap-share"),
        (["--start", "2024-02-30"], "start"),
        (["--files", "50"], "files"),
    ],
)
def test_bad_options_exit_1_without_traceback(cli, tmp_path, args, message):
    r = cli("synth", "--out", tmp_path / "x", "--devices", 5, "--days", 1, *args)
    assert r.code == 1
    assert message in r.err
    assert "Traceback" not in r.err


def test_refuses_to_overwrite_a_folder_it_did_not_make(cli, tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    r = cli("synth", "--out", tmp_path, "--devices", 5, "--days", 1)
    assert r.code == 1
    assert "not made by `segtool synth`" in r.err
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_bundled_sample_is_small_and_made_by_the_sample_parameters():
    sample = bundled_sample()
    assert sample is not None, "data/sample is missing"
    size = sum(p.stat().st_size for p in sample.rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024
    manifest = json.loads((sample / "_manifest.json").read_text())
    assert manifest["parameters"] == asdict(SAMPLE_PARAMS)
    assert command_line(SAMPLE_PARAMS, "data/sample") == SAMPLE_COMMAND
    readme = (sample / "README.md").read_text()
    assert SAMPLE_COMMAND.replace("data/sample", "DIR") in readme


@pytest.mark.slow
def test_regenerating_the_sample_gives_the_same_data(tmp_path):
    """Content, not bytes: Parquet and gzip bytes may change with library versions."""
    sample = bundled_sample()
    assert sample is not None
    generate_city(SAMPLE_PARAMS, tmp_path / "s")
    new = tmp_path / "s"
    for name in ("population.csv", "truth/planted_rejects.csv", "README.md"):
        assert (new / name).read_text() == (sample / name).read_text(), name
    with gzip.open(new / "pings.csv.gz", "rb") as a, gzip.open(sample / "pings.csv.gz", "rb") as b:
        assert a.read() == b.read()
    for name in ("stays", "devices", "places", "areas"):
        assert pl.read_parquet(new / "truth" / f"{name}.parquet").equals(
            pl.read_parquet(sample / "truth" / f"{name}.parquet")
        ), name
