"""`segtool report`: the same bytes for the same lake, one self-contained file (no
network), text escaped, no device id or raw coordinate anywhere (also not inside the
figures), suppression below k, sections that are missing say so, figures as PNG."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import polars as pl
import pytest

from segtool.report.gather import s_i_histogram
from tests.report.lakes import NASTY, build_lake


def _decoded_images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/[^;]+;base64,([^"]+)"', text)]


def test_report_of_a_lake(cli, lake, tmp_path):
    """One test renders the shared lake twice (rendering is the slow part) and checks the
    page from every side with the helpers below."""
    root, ids, coords = lake
    args = ["--bootstrap", "20", "--null", "3", "--seed", "1"]
    r1 = cli("report", "--lake", root, "--out", tmp_path / "r1.html", *args,
             "--figures", tmp_path / "fig")  # fmt: skip
    assert r1.code == 0, r1.err
    assert "places shown 12 · suppressed 2" in r1.err
    r2 = cli("report", "--lake", root, "--out", tmp_path / "r2.html", *args)
    assert r2.code == 0, r2.err
    check_same_bytes(tmp_path)
    text = (tmp_path / "r1.html").read_text()
    check_self_contained(text)
    check_no_device_ids_or_raw_coordinates(text, tmp_path, ids, coords)
    check_escaped(text)
    check_sections(text, tmp_path)
    check_pngs(tmp_path / "fig")


def check_same_bytes(out):
    assert (out / "r1.html").read_bytes() == (out / "r2.html").read_bytes()
    assert (out / "r1.html.manifest.json").read_bytes() == (
        out / "r2.html.manifest.json"
    ).read_bytes()


def check_self_contained(text):
    assert "<script" not in text.lower()
    assert not re.search(r"(src|href)=\"(?!data:)", text)
    assert "http://" not in text and "https://" not in text
    images = _decoded_images(text)
    assert len(images) == 6
    for svg in images:
        assert svg.startswith(b"<?xml") and b"<svg" in svg
        # no external references inside the SVGs either, and no creation date
        assert b'href="http' not in svg and b"<dc:date>" not in svg


def check_no_device_ids_or_raw_coordinates(text, out, ids, coords):
    everything = text + "".join(i.decode("utf-8", "replace") for i in _decoded_images(text))
    everything += (out / "r1.html.manifest.json").read_text()
    for device in ids:
        assert str(int(device)) not in everything
        assert f"{int(device):x}" not in everything
    for lat, lon in coords:
        for v in (lat, lon):
            assert f"{v:.5f}" not in everything and repr(float(v)) not in everything
    # the lake table shows no bounding box (min/max of raw positions)
    assert "bbox" not in text and "min_lat" not in text


def check_escaped(text):
    assert NASTY not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in text


def check_sections(text, out):
    for heading in (
        "1. What the lake holds",
        "2. Residential segregation",
        "3. Experienced segregation",
        "4. Land use",
        "5. Privacy",
        "6. Parameters and versions",
        "References",
    ):
        assert heading in text
    assert "Moro, E." in text and "Massey, D. S." in text
    assert "matplotlib" in text and "&quot;null&quot;: 3" in text
    # the small lake has no register areas: only the linkage section says why it is missing
    assert text.count("Not in this report") == text.count(
        "Not in this report: the lake has no areas"
    )
    assert "At a glance" in text and "expected if groups mixed at random" in text
    # privacy note with the suppression counts
    assert "fewer than 5 distinct devices" in text and "2 of 14 places" in text
    manifest = json.loads((out / "r1.html.manifest.json").read_text())
    assert manifest["command"] == "report" and manifest["seed"] == 1
    assert manifest["summary"]["places_suppressed"] == 2
    assert {i["dataset"] for i in manifest["inputs"]} >= {"visits", "devices", "landuse"}


def check_pngs(folder):
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == sorted(
        f"{n}.png"
        for n in (
            "residential_exposure",
            "place_segregation_map",
            "individual_segregation_histogram",
            "isolation",
            "experienced_exposure",
            "landuse_means",
        )
    )
    assert all((folder / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_published_places_have_at_least_k_devices(lake):
    from segtool.lake import Lake
    from segtool.report import ReportParams, gather

    root, _, _ = lake
    data = gather(Lake(root), ReportParams(bootstrap=0, min_devices=5))
    places = data.experienced.data["places"]
    assert places.height == 12 and (places["devices"] >= 5).all()
    assert data.experienced.data["summary"]["units_suppressed"] == 2
    hist = data.experienced.data["histogram"]
    assert ((hist["devices"] == 0) | (hist["devices"] >= 5)).all()


def test_histogram_hides_bins_below_k_by_hand():
    devices = pl.DataFrame(
        {
            "group": ["a"] * 7 + ["b"] * 6,
            "weight": [1.0] * 13,
            # a: 6 devices in bin [0.5, 0.75), 1 in [0, 0.25); b: 6 in [0.75, 1]
            "segregation": [0.6] * 6 + [0.1] + [1.0] * 6,
        }
    )
    hist, hidden = s_i_histogram(devices, ["a", "b"], k=5, bins=4)
    a = hist.filter(pl.col("group") == "a")
    assert a["devices"].to_list() == [0, 0, 6, 0]
    assert a["share"].to_list() == pytest.approx([0, 0, 6 / 7, 0])
    b = hist.filter(pl.col("group") == "b")
    assert b["devices"].to_list() == [0, 0, 0, 6] and b["share"].sum() == pytest.approx(1)
    assert hidden == 1


def test_histogram_soft_membership_counts_shares():
    devices = pl.DataFrame(
        {
            "share_a": [0.5] * 6,
            "share_b": [0.5] * 6,
            "weight": [2.0] * 6,
            "segregation": [0.2] * 6,
        }
    )
    hist, hidden = s_i_histogram(devices, ["a", "b"], k=5, bins=5)
    assert hidden == 0
    hit = hist.filter((pl.col("bin_low") - 0.2).abs() < 1e-12)
    assert hit["share"].to_list() == [1.0, 1.0] and hit["devices"].to_list() == [6, 6]


def test_missing_datasets_give_a_partial_report(cli, tmp_path):
    root, _, _ = build_lake(tmp_path / "lake", with_visits=False, with_landuse=False)
    out = tmp_path / "r.html"
    r = cli("report", "--lake", root, "--out", out, "--bootstrap", "0")
    assert r.code == 0, r.err
    text = out.read_text()
    assert text.count("Not in this report") == 3  # experienced, land use, linkage
    assert "segtool visits" in text and "segtool ingest landuse" in text
    assert "experienced section left out" in r.err
    assert "Dissimilarity D" in text
    assert len(_decoded_images(text)) == 1  # the residential exposure matrix


def test_segregation_profile_when_the_lake_has_population_cells(cli, tmp_path):
    from segtool.indices.spatial import segregation_profile
    from segtool.lake import Lake

    root, _, _ = build_lake(
        tmp_path / "lake", with_visits=False, with_landuse=False, with_cells=True
    )
    out = tmp_path / "r.html"
    r = cli("report", "--lake", root, "--out", out, "--bootstrap", "0")
    assert r.code == 0, r.err
    text = out.read_text()
    assert "Line chart of residential segregation against egohood radius" in text
    assert len(_decoded_images(text)) == 2  # exposure matrix + profile
    cells = pl.read_parquet(Lake(root).path("population_cells") / "*.parquet")
    profile = segregation_profile(cells.rename({"cell": "unit", "count": "n"}))
    d = profile.filter(pl.col("index") == "dissimilarity").sort("k")["value"]
    assert d[0] > d[-1] > 0  # the east–west contrast shows at every scale, less when smoothed
    table = re.sub(r"<[^>]+>", " ", text[text.index("radius (m)") :][:2000])
    assert f"{d[0]:.3f}" in table and f"{d[2]:.3f}" in table


def test_unusable_population_cells_are_named_in_the_report(cli, tmp_path):
    from segtool.lake import Lake, Manifest

    root, _, _ = build_lake(tmp_path / "lake", with_visits=False, with_landuse=False)
    cells = pl.DataFrame(  # not H3 cells: the profile cannot be computed
        {"cell": pl.Series([1, 1, 2, 2], dtype=pl.UInt64), "group": ["a", "b"] * 2,
         "count": [1.0, 2.0, 3.0, 4.0]}
    )  # fmt: skip
    with Lake(root).writing("population_cells", Manifest(command="test")) as tmp:
        cells.write_parquet(tmp / "part-0.parquet")
    out = tmp_path / "r.html"
    r = cli("report", "--lake", root, "--out", out, "--bootstrap", "0")
    assert r.code == 0, r.err
    text = out.read_text()
    assert "Not in this report: segregation by scale could not be computed" in text
    assert "H3 cells" in text
    assert "Dissimilarity D" in text  # the rest of the residential section is there


def test_usage_errors(cli, tmp_path):
    r = cli("report", "--lake", tmp_path / "nowhere", "--out", tmp_path / "r.html")
    assert r.code == 1 and "no lake" in r.err and "Traceback" not in r.err
    r = cli("report", "--lake", tmp_path, "--out", tmp_path / "r.txt")
    assert r.code == 1 and ".html" in r.err


def test_help_has_an_example(cli):
    r = cli("report", "--help")
    assert r.code == 0 and "segtool report --lake lake --out report.html" in r.out


def test_figure_bytes_are_deterministic():
    from segtool.report import figures as F

    m = np.array([[0.7, 0.3], [0.2, 0.8]])
    a = F.to_bytes(F.heatmap(m, ["x", "$y$"], ["x", "$y$"], "t", "l"))
    b = F.to_bytes(F.heatmap(m, ["x", "$y$"], ["x", "$y$"], "t", "l"))
    assert a == b and b"<dc:date>" not in a
