"""The report in a real browser (headless Chromium): no console errors, no request to any
external URL, a non-blank screenshot of the expected size, every figure rendered with a
caption that gives its units; and the place map's area outlines and scale bar.

In CI (CI=true) Chromium must be there (`.ci/run` installs Debian's `chromium`): the test
fails instead of skipping."""

from __future__ import annotations

import io
import json

import h3
import numpy as np
import polars as pl
import pytest
import shapely

from segtool.lake import Lake, Manifest
from tests.report.browser import find_chromium, in_ci, open_page
from tests.report.lakes import CELLS, build_lake

WIDTH, HEIGHT = 1200, 900


def _needs_chromium():
    if find_chromium() is None:
        if in_ci():
            pytest.fail("chromium is not installed (CI must run this test: see .ci/run)")
        pytest.skip("chromium is not installed")


def _add_areas(lake: Lake) -> list:
    """Two register areas splitting the hexagons west | east at the median longitude."""
    lons = [h3.cell_to_latlng(h3.int_to_str(c))[1] for c in CELLS]
    lats = [h3.cell_to_latlng(h3.int_to_str(c))[0] for c in CELLS]
    mid = float(np.median(lons))
    s, n, w, e = min(lats) - 0.01, max(lats) + 0.01, min(lons) - 0.01, max(lons) + 0.01
    polys = [shapely.box(w, s, mid, n), shapely.box(mid, s, e, n)]
    frame = pl.DataFrame(
        {"area": ["west", "east"], "geometry": shapely.to_wkb(polys).tolist()},
        schema={"area": pl.String, "geometry": pl.Binary},
    )
    m = Manifest(command="test areas", rows_in=2, rows_written=2, rows_rejected=0)
    with lake.writing("areas", m) as tmp:
        frame.write_parquet(tmp / "part-0.parquet")
    return polys


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    _needs_chromium()
    from segtool.cli import main

    root = tmp_path_factory.mktemp("browser")
    lake_root, _, _ = build_lake(root / "lake", with_cells=True)
    _add_areas(Lake(lake_root))
    out = root / "report.html"
    code = main(["report", "--lake", str(lake_root), "--out", str(out), "--bootstrap", "10",
                 "--figures", str(root / "fig")])  # fmt: skip
    assert code == 0
    figures = json.loads((root / "report.html.manifest.json").read_text())["summary"]["figures"]
    return out, figures, open_page(out, WIDTH, HEIGHT), root


def test_no_console_errors_and_no_external_requests(rendered):
    _, _, page, _ = rendered
    assert page.console == []
    assert page.external == []
    assert page.requests and page.requests[0].startswith("file:")


def test_screenshot_is_the_viewport_and_not_blank(rendered):
    from PIL import Image

    _, _, page, root = rendered
    (root / "screenshot.png").write_bytes(page.screenshot)
    img = Image.open(io.BytesIO(page.screenshot)).convert("L")
    assert img.size == (WIDTH, HEIGHT)
    pixels = np.asarray(img, dtype=float)
    assert pixels.std() > 10  # text and tables, not one flat colour
    assert (pixels < 128).mean() > 0.005  # some dark ink (text) on the page
    assert page.height > HEIGHT  # the report runs below the first screen


def test_every_figure_rendered_with_caption_and_units(rendered):
    _, figures, page, _ = rendered
    assert len(page.figures) == len(figures) >= 6
    assert "place_segregation_map" in figures and "segregation_profile" in figures
    for f in page.figures:
        assert f["loaded"], f["alt"]
        assert f["width"] > 200 and f["height"] > 100, f
        assert f["alt"], f
        assert f["caption"] and "Units: " in f["caption"], f
        assert len(f["caption"].split("Units: ")[1].strip(" .")) > 3, f


def test_place_map_has_outlines_and_scale_bar(rendered):
    _, _, page, _ = rendered
    caption = next(f["caption"] for f in page.figures if f["alt"].startswith("Map of hexagons"))
    assert "outlines of the register areas" in caption and "bar" in caption


def test_outlines_and_scale_bar_by_hand():
    from segtool.geo.outlines import nice_length, outlines
    from segtool.report import figures as F

    polys = [shapely.box(18.0, 59.3, 18.1, 59.4), shapely.Polygon(
        [(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (2, 1), (2, 2), (1, 2)]])]  # fmt: skip
    rings = outlines(pl.Series(shapely.to_wkb(polys).tolist(), dtype=pl.Binary))
    assert [r.shape for r in rings] == [(5, 2), (5, 2), (5, 2)]  # box, shell, hole: closed
    assert np.allclose(rings[0].min(axis=0), [18.0, 59.3])
    assert [nice_length(x) for x in (1000, 4999, 5000, 12_000, 80_000)] == [
        200,
        500,
        1000,
        2000,
        10_000,
    ]

    fig = F.new_figure(4, 4)
    ax = fig.add_subplot()
    ax.set_xlim(18.0, 18.1)
    ax.set_ylim(59.3, 59.35)
    lat = 60.0  # cos 60° = 1/2: one degree of longitude is 55.66 km
    length = F.scale_bar(ax, lat)
    assert length == 1000.0  # 0.1° ≈ 5.6 km across: a fifth is 1.1 km → 1 km
    (line,) = ax.get_lines()
    x = line.get_xdata()
    assert x[1] - x[0] == pytest.approx(1000 / 55_660.0, rel=1e-9)
    assert ax.texts[-1].get_text() == "1 km"
