"""The report's linkage section: present with its heat map and map on a lake with areas,
no device id on the page, suppression stated; a clear reason when the lake lacks areas."""

from __future__ import annotations

import pytest

from segtool.lake import Lake
from segtool.report.build import render
from segtool.report.gather import ReportParams, gather
from tests.indices.linkage_world import city


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    lake, truth = city(tmp_path_factory.mktemp("rep") / "lake", side=3, per_area=8, seed=4)
    return render(gather(lake, ReportParams(bootstrap=20, seed=1))), truth


def test_section_with_figures_and_no_device_ids(page):
    report, truth = page
    html = report.html
    assert "4b. Linkage: which neighbourhoods are tied together" in html
    assert {"linkage_mixing", "linkage_map"} <= set(report.figures)
    assert "visitation links published" in html and "suppressed (fewer than 5 devices)" in html
    assert "Heine, C." in html
    assert "linkage" not in report.summary["sections_missing"]
    for dev in truth["ids"]:
        assert str(int(dev)) not in html


def test_reason_when_the_lake_has_no_areas(tmp_path):
    import shutil

    from segtool.report.linkage import linkage_section

    lake, _ = city(tmp_path / "lake", side=3, per_area=6, seed=1)
    shutil.rmtree(lake.path("areas"))
    section = linkage_section(Lake(lake.root), ReportParams(bootstrap=0))
    assert section.missing.startswith("the lake has no areas dataset")
