"""`segtool report`: one self-contained HTML page about a lake, for planners.

What the lake holds, residential indices (table, exposure heat map), experienced indices
(map of place segregation, S_i by home group, isolation at home and out, co-presence
matrix), land use (mean S by dominant category), each with a plain-language paragraph
and references; a privacy note; parameters and versions. Figures are matplotlib SVG (or
PNG for very large maps) embedded as data URIs: no network, no external file. The same
lake gives the same bytes. Only hexagon- and group-level aggregates are shown, places
with fewer than k devices are left out.

    from segtool.report import ReportParams, build_report, write_report
    report = build_report(Lake("lake"), ReportParams(bootstrap=200, seed=1))
    write_report(report, Path("report.html"), figures_dir=Path("figures"))
"""

from __future__ import annotations

from pathlib import Path

from segtool.lake import Lake
from segtool.report.build import Report, render
from segtool.report.gather import ReportData, ReportParams, gather

__all__ = [
    "Report",
    "ReportData",
    "ReportParams",
    "build_report",
    "gather",
    "render",
    "write_report",
]


def build_report(lake: Lake, params: ReportParams | None = None) -> Report:
    """Gather everything from the lake and render the page."""
    return render(gather(lake, params or ReportParams()))


def write_report(report: Report, out: Path, figures_dir: Path | None = None) -> list[Path]:
    """Write the page atomically; with `figures_dir`, also each figure as PNG (for slides
    and for checking how they read). Returns the figure files written."""
    from segtool.lake import write_bytes_atomic, write_text_atomic
    from segtool.report.figures import to_bytes

    write_text_atomic(out, report.html)
    written = []
    if figures_dir is not None:
        for name, fig in report.figures.items():
            path = Path(figures_dir) / f"{name}.png"
            write_bytes_atomic(path, to_bytes(fig, "png", dpi=130))
            written.append(path)
    return written
