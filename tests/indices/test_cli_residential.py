"""`segtool indices residential`: the command-line contract."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

CMD = ("indices", "residential")
LONG = "tract,group,n\na,A,100\na,B,0\nb,A,60\nb,B,40\nc,A,40\nc,B,60\nd,A,0\nd,B,100\n"


@pytest.fixture
def long_csv(tmp_path):
    p = tmp_path / "pop.csv"
    p.write_text(LONG)
    return p


def test_help_has_worked_example(cli):
    r = cli(*CMD, "--help")
    assert r.code == 0
    assert "Examples" in r.out and "segtool indices residential population.csv" in r.out
    for opt in ("--unit", "--group", "--count", "--wide", "--focal", "--reference", "--index",
                "--within", "--local", "--bootstrap", "--seed", "--atkinson-b", "--ice-high",
                "--ice-low", "--format", "--output"):  # fmt: skip
        assert opt in r.out, opt


def test_table_output_and_messages(cli, long_csv):
    r = cli(*CMD, long_csv)
    assert r.code == 0, r.err
    assert "dissimilarity" in r.out and "0.6000" in r.out
    assert "unit='tract' (detected)" in r.err
    assert "read 8 rows: 8 used, 0 dropped; 4 units × 2 groups" in r.err


def test_json_contract(cli, long_csv):
    r = cli(*CMD, long_csv, "--format", "json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert isinstance(rows, list) and all("index" in x and "value" in x for x in rows)
    d = {x["index"]: x for x in rows if x.get("group") in (None, "A")}
    assert d["dissimilarity"]["value"] == pytest.approx(0.6)
    assert d["dissimilarity"].get("group") is None  # multigroup rows: no group
    assert d["isolation"]["group"] == "A" and d["isolation"]["other_group"] == "(rest)"
    assert d["mutual_information"]["value"] == pytest.approx(0.35664, abs=1e-5)
    assert {x["other_group"] for x in rows if x["index"] == "exposure"} == {"A", "B"}


def test_focal_reference_and_index_selection(cli, tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("tract,white,black,asian\na,100,0,5\nb,60,40,5\nc,40,60,5\nd,0,100,5\n")
    r = cli(*CMD, p, "--wide", "--focal", "black", "--reference", "white", "-i", "dissimilarity",
            "--index", "isolation", "-f", "json")  # fmt: skip
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert [x["index"] for x in rows] == ["dissimilarity", "isolation"]
    assert rows[0] == {"index": "dissimilarity", "group": "black", "other_group": "white",
                       "value": pytest.approx(0.6)}  # fmt: skip


def test_within_and_bootstrap_json(cli, tmp_path):
    p = tmp_path / "s.csv"
    p.write_text(
        "tract,district,group,n\n"
        + "".join(
            f"{u},{d},{g},{n}\n"
            for u, d, row in [("a", "X", (90, 10)), ("b", "X", (60, 40)), ("c", "Y", (30, 70)), ("d", "Y", (5, 95))]
            for g, n in zip("AB", row, strict=True)
        )
    )  # fmt: skip
    r = cli(*CMD, p, "--within", "district", "-i", "mutual_information", "--bootstrap", "50",
            "--seed", "3", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    comps = {(x.get("stratum"), x["component"]): x for x in rows}
    assert set(comps) == {
        (None, "total"),
        (None, "between"),
        (None, "within"),
        ("X", "within"),
        ("Y", "within"),
    }
    total = comps[(None, "total")]
    for key in ("se", "ci_low", "ci_high", "debiased"):
        assert isinstance(total[key], float) and math.isfinite(total[key])
    assert comps[(None, "between")]["value"] + comps[(None, "within")]["value"] == pytest.approx(
        total["value"]
    )
    assert comps[("X", "within")]["weight"] == pytest.approx(0.5)


def test_output_files_local_and_manifests_rerun_identical(cli, long_csv, tmp_path):
    out, loc = tmp_path / "out.csv", tmp_path / "local.parquet"
    args = (*CMD, long_csv, "-o", out, "--local", loc, "--ice-high", "A", "--ice-low", "B",
            "--bootstrap", "20")  # fmt: skip
    r = cli(*args)
    assert r.code == 0, r.err
    first = (out.read_bytes(), loc.read_bytes(), (tmp_path / "out.csv.manifest.json").read_bytes())
    manifest = json.loads(first[2])
    assert manifest["command"] == "segtool indices residential"
    assert manifest["rows_in"] == 8 and manifest["rows_rejected"] == 0 and manifest["seed"] == 0
    assert manifest["inputs"][0]["sha256"]
    assert manifest["parameters"]["columns"]["unit"] == "tract"
    scores = pl.read_parquet(loc)
    assert set(scores["index"]) == {
        "location_quotient",
        "local_entropy",
        "local_mutual_information",
        "ice",
    }
    assert (tmp_path / "local.parquet.manifest.json").exists()
    r = cli(*args)
    again = (out.read_bytes(), loc.read_bytes(), (tmp_path / "out.csv.manifest.json").read_bytes())
    assert again == first


def test_notes_for_duplicates_and_zero_units(cli, tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(LONG + "a,A,1\ne,A,0\ne,B,0\n")
    r = cli(*CMD, p, "-f", "json")
    assert r.code == 0
    assert "summed 1 duplicate (unit, group) row" in r.err
    assert "dropped 1 unit whose counts are all zero (2 rows)" in r.err
    assert "read 11 rows: 9 used, 2 dropped" in r.err
    assert all(math.isfinite(x["value"]) for x in json.loads(r.out))


@pytest.mark.parametrize(
    ("args", "text", "message"),
    [
        ((), "tract,group,n\na,A,1\nb,B,-3\n", "negative"),
        ((), "tract,group,n\na,A,1\nb,B,abc\n", "not numbers"),
        ((), "tract,group,n\n", "no data rows"),
        ((), "tract,group,n\na,A,1\na,B,2\n", "only one unit"),
        ((), "tract,group,n\na,A,1\nb,A,2\n", "only one group"),
        (("--focal", "Z"), LONG, "focal group 'Z' is not in the table"),
        (("--index", "nope"), LONG, "unknown index 'nope'"),
        (("--index", "ice"), LONG, "--local"),
        (("--count", "zz"), LONG, "--count column 'zz' is not in the table"),
        (("--ice-high", "A", "--ice-low", "B"), LONG, "add --local FILE"),
        (("--local", "x.txt"), LONG, "name a .csv"),
        (("--format", "parquet"), LONG, "--format parquet needs --output"),
        (("--atkinson-b", "2"), LONG, "--atkinson-b"),
        (("--bootstrap", "-1"), LONG, "greater than or equal to 0"),
    ],
)
def test_user_mistakes_exit_1_without_traceback(cli, tmp_path, args, text, message):
    p = tmp_path / "t.csv"
    p.write_text(text)
    r = cli(*CMD, p, *args)
    assert r.code == 1, (r.out, r.err)
    assert message in r.err
    assert "Traceback" not in r.err and "internal error" not in r.err


def test_missing_input_file(cli, tmp_path):
    r = cli(*CMD, tmp_path / "nope.csv")
    assert r.code == 1 and "no such file" in r.err


def test_bootstrap_of_fractional_counts_notes_the_rounding(cli, tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("tract,group,n\na,A,1.5\na,B,2\nb,A,3\nb,B,0.25\n")
    r = cli(*CMD, p, "--bootstrap", "5", "-i", "dissimilarity", "-f", "json")
    assert r.code == 0, r.err
    assert "draws 7 individuals" in r.err
    assert json.loads(r.out)[0]["se"] >= 0
