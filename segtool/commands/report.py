"""`segtool report` — a thin layer over `segtool.report`."""

from __future__ import annotations

from pathlib import Path

import typer

from segtool import console
from segtool.errors import UsageError
from segtool.lake import Lake as LakeStore
from segtool.lake import Manifest, write_manifest_beside
from segtool.options import AllowStale, Lake, MinDevices, Seed


def report(
    lake: Lake = Path("lake"),
    allow_stale: AllowStale = False,
    out: Path = typer.Option(
        Path("report.html"), "--out", "-o", help="The HTML file to write.", dir_okay=False
    ),
    min_devices: MinDevices = 5,
    bootstrap: int = typer.Option(
        200,
        "--bootstrap",
        min=0,
        help="Bootstrap replicates for the confidence intervals of the residential indices "
        "and of the land-use means (0 = none).",
    ),
    null: int = typer.Option(
        0,
        "--null",
        min=0,
        help="Shuffles of the groups across devices: the experienced indices expected at random.",
    ),
    seed: Seed = 0,
    min_coverage: float = typer.Option(
        0.5, "--min-coverage", min=0.0, max=1.0, help="Land-use coverage a hexagon needs."
    ),
    title: str = typer.Option("Segregation report", "--title", help="The report's title."),
    figures: Path | None = typer.Option(
        None,
        "--figures",
        help="Also save every figure as PNG in this folder (slides, checking).",
        file_okay=False,
    ),
) -> None:
    """Write one self-contained HTML report of the lake for planners.

    What the lake holds (datasets, rows read, written and set aside), residential
    segregation (indices, exposure heat map), experienced segregation (a map of place
    segregation by hexagon, individual segregation by home group, isolation at home and
    where time is spent, the co-presence matrix), land use (mean segregation by dominant
    land use with confidence intervals), each with a plain-language explanation and
    references; a privacy note and every parameter and version. Figures are embedded
    (no network needed to open it); the same lake gives the same bytes. Only hexagon-
    and group-level aggregates appear, places with fewer than `--min-devices` devices
    are left out.

    **Examples**

    ```
    segtool report --lake lake --out report.html
    segtool report --lake lake --out report.html --null 50 --bootstrap 500 --seed 1
    segtool report --lake lake --out report.html --figures figures/   # PNGs too
    ```
    """
    from segtool.report import ReportParams, build_report, write_report

    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {str(out)!r}: name an .html file")
    params = ReportParams(
        min_devices=min_devices,
        bootstrap=bootstrap,
        null=null,
        seed=seed,
        min_coverage=min_coverage,
        title=title,
    )
    store = LakeStore(lake, allow_stale=allow_stale)
    with console.progress() as bar:
        bar.add_task("computing the report's indices and figures", total=None)
        result = build_report(store, params)
    written = write_report(result, out, figures)
    manifest = Manifest(command="report", parameters=params, seed=seed)
    for name in ("population", "visits", "devices", "homes", "landuse", "pois"):
        if store.exists(name):
            manifest.add_dataset_input(store, name)
    manifest.extra = {"summary": result.summary}
    write_manifest_beside(out, manifest)
    s = result.summary
    console.info(f"wrote {out} ({len(result.html) / 1e3:,.0f} kB, {len(s['figures'])} figures)")
    if "places_published" in s:
        console.info(
            f"places shown {s['places_published']:,} · suppressed {s['places_suppressed']:,} "
            f"(< {min_devices} devices) · histogram entries hidden {s['histogram_entries_hidden']:,}"
        )
    for name, why in s["sections_missing"].items():
        console.note(f"{name} section left out: {why}")
    if written:
        console.info(f"wrote {len(written)} figures to {figures}")
