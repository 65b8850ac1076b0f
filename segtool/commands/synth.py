"""`segtool synth`: a synthetic city with known segregation (see docs/synth.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from segtool import console
from segtool.options import Format, Output
from segtool.present import emit


def synth(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder to write (replaced if an earlier synth output).", file_okay=False
        ),
    ],
    devices: Annotated[
        int, typer.Option("--devices", "-n", help="Phones in the panel.", min=1)
    ] = 400,
    days: Annotated[
        int, typer.Option("--days", "-d", help="Local days observed.", min=1, max=366)
    ] = 14,
    seed: Annotated[int, typer.Option("--seed", help="Seed for every random draw.", min=0)] = 0,
    segregation: Annotated[
        float,
        typer.Option(
            "--segregation",
            help="Residential income segregation: 0 = every area has the city's mix, 1 = one quartile per area.",
            min=0.0,
            max=1.0,
        ),
    ] = 0.5,
    homophily: Annotated[
        float,
        typer.Option(
            "--homophily",
            help="How strongly people choose places frequented by their own group (0 = not at all).",
            min=0.0,
            max=20.0,
        ),
    ] = 1.0,
    start: Annotated[
        str, typer.Option("--start", help="First local day (ISO date).")
    ] = "2024-03-25",
    areas: Annotated[
        int, typer.Option("--areas", help="Register areas (0 = devices / 8, at least 12).", min=0)
    ] = 0,
    ping_interval: Annotated[
        float, typer.Option("--ping-interval", help="Mean minutes between pings while observed.")
    ] = 4.0,
    gap_share: Annotated[
        float, typer.Option("--gap-share", help="Share of time without pings (gaps).")
    ] = 0.25,
    accuracy: Annotated[
        float, typer.Option("--accuracy", help="Median reported GPS accuracy, metres.")
    ] = 12.0,
    outlier_share: Annotated[
        float, typer.Option("--outlier-share", help="Share of pings jumping 150–1500 m.")
    ] = 0.002,
    gap_mean: Annotated[
        float,
        typer.Option(
            "--gap-mean",
            help="Mean minutes of one gap (e.g. 33 with --gap-share 0.3: app-style duty cycling).",
        ),
    ] = 120.0,
    bursts: Annotated[
        float,
        typer.Option("--bursts", help="Bursts a day per device (5–30 pings 1–10 s apart)."),
    ] = 0.0,
    noise: Annotated[
        float,
        typer.Option(
            "--noise",
            help="GPS error σ per axis, metres (0: follows the reported accuracy).",
        ),
    ] = 0.0,
    low_accuracy_share: Annotated[
        float,
        typer.Option(
            "--low-accuracy-share", help="Share of rows with accuracy > 100 m (rejected by ingest)."
        ),
    ] = 0.002,
    duplicate_share: Annotated[
        float,
        typer.Option(
            "--duplicate-share", help="Share of rows duplicated exactly (rejected by ingest)."
        ),
    ] = 0.003,
    malformed_share: Annotated[
        float,
        typer.Option(
            "--malformed-share", help="Share of rows planted malformed (rejected by ingest)."
        ),
    ] = 0.002,
    gzip: Annotated[bool, typer.Option("--gzip/--no-gzip", help="Write pings as .csv.gz.")] = False,
    files: Annotated[
        int,
        typer.Option("--files", help="Split the pings into this many files (by device).", min=1),
    ] = 1,
    fmt: Format = None,
    output: Output = None,
) -> None:
    """Generate a synthetic city with planted segregation: the files users bring, plus the truth.

    Writes register areas (`areas.gpkg`, DeSO-like, EPSG:3006) and residents by income
    quartile (`population.csv`), land use (`landuse.gpkg`) and POIs (`pois.gpkg`), vendor
    pings (`pings.csv[.gz]`: GPS error, irregular sampling, gaps, duplicates and a few
    malformed rows), and the ground truth in `truth/` (homes, groups, work places, true
    stays, planted bad rows). Daily life follows an exploration and preferential return
    model. Same seed, same bytes. The model is described in docs/synth.md.

    **Examples**

    ```
    segtool synth --out city --devices 300 --days 14 --seed 1
    segtool synth --out city --devices 1000 --days 21 --seed 7 --segregation 0.8 --homophily 2 --gzip
    segtool synth --out big --devices 20000 --days 14 --seed 1 --files 8 --gzip
    segtool synth --out noisy --devices 1000 --days 7 --noise 15 --ping-interval 7 --gap-share 0.3 --gap-mean 33 --bursts 2
    ```
    """
    from segtool.synth import SynthParams, generate_city

    params = SynthParams(
        devices=devices,
        days=days,
        seed=seed,
        segregation=segregation,
        homophily=homophily,
        start=start,
        areas=areas,
        ping_interval_min=ping_interval,
        gap_share=gap_share,
        accuracy_m=accuracy,
        outlier_share=outlier_share,
        gap_mean_min=gap_mean,
        bursts_per_day=bursts,
        noise_m=noise,
        low_accuracy_share=low_accuracy_share,
        duplicate_share=duplicate_share,
        malformed_share=malformed_share,
        gzip=gzip,
        files=files,
    )
    began = time.perf_counter()
    report = generate_city(params, out)
    console.info(f"generated {report.ping_rows:,} ping rows in {time.perf_counter() - began:.1f} s")
    rows = report.summary_rows()
    frame = pl.DataFrame({"item": [r[0] for r in rows], "value": [r[1] for r in rows]})
    emit(frame, fmt, output, title=f"synthetic city in {out}")
