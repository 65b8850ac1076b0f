"""`segtool demo`: every stage that exists, on the bundled sample.

The demo is a list of stages (`STAGES`), each a function `(DemoContext) -> rows` that does
its work (usually by running a segtool command on the sample or on the demo lake) and
returns `(item, value)` rows for the summary. A new capability appends its stage:

    def _ingest(ctx: DemoContext) -> list[tuple[str, str]]:
        ctx.run("ingest", "pings", *ctx.pings, "--lake", ctx.lake, "--synthetic")
        return [("pings in the lake", f"{...:,}")]

    STAGES.append(Stage("ingest", "pings into the lake", _ingest))

`ctx.run(...)` runs a segtool command in-process and raises if it fails, so `make demo`
fails loudly when a stage breaks.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from segtool import console
from segtool.errors import InputError, SegtoolError
from segtool.lake import sha256_file
from segtool.present import emit


@dataclass
class DemoContext:
    """What the stages share: the sample folder, the demo lake and a scratch folder."""

    sample: Path
    lake: Path
    work: Path
    manifest: dict = field(default_factory=dict)

    @property
    def pings(self) -> list[Path]:
        return sorted(self.sample.glob("pings*.csv*"))

    def run(self, *args) -> None:
        """Run `segtool ARGS…` in-process; raise if it exits non-zero."""
        from segtool.cli import main

        code = main([str(a) for a in args])
        if code != 0:
            raise SegtoolError(
                f"demo stage failed: `segtool {' '.join(map(str, args))}` exited with {code}"
            )


@dataclass(frozen=True)
class Stage:
    name: str
    does: str
    run: Callable[[DemoContext], list[tuple[str, str]]]


def _sample_stage(ctx: DemoContext) -> list[tuple[str, str]]:
    """Check the sample against its manifest and describe what it holds."""
    m = ctx.manifest
    outputs = m.get("outputs", {})
    changed = [
        name
        for name, meta in outputs.items()
        if not (ctx.sample / name).exists() or sha256_file(ctx.sample / name) != meta["sha256"]
    ]
    if changed:
        console.note(f"the sample differs from its manifest: {', '.join(changed)}")
    s = m.get("summary", {})
    p = m.get("parameters", {})
    planted = s.get("planted_rejects", {})
    rows = [
        ("sample", str(ctx.sample)),
        (
            "intact",
            "yes (sha256 as in _manifest.json)"
            if not changed
            else f"no: {len(changed)} files changed",
        ),
        ("period", f"{p.get('start')} + {p.get('days')} days ({s.get('time_zone')})"),
        (
            "register areas",
            f"{s.get('areas', 0):,} (areas.gpkg, EPSG:3006; residents in population.csv)",
        ),
        ("residents", f"{s.get('residents', 0):,} in income quartiles Q1–Q4"),
        (
            "planted segregation",
            f"--segregation {p.get('segregation')}: D = {s.get('dissimilarity', 0):.3f}, M = {s.get('mutual_information', 0):.3f}",
        ),
        ("planted homophily", f"--homophily {p.get('homophily')}"),
        ("POIs", f"{s.get('pois', 0):,} (pois.gpkg); land use in landuse.gpkg"),
        ("devices", f"{s.get('devices', 0):,}"),
        ("ping rows", f"{s.get('ping_rows', 0):,} in {', '.join(f.name for f in ctx.pings)}"),
        ("  clean", f"{s.get('clean_pings', 0):,}"),
        (
            "  planted bad rows",
            f"{sum(planted.values()):,} ({', '.join(f'{k} {v}' for k, v in sorted(planted.items()))})",
        ),
        ("true stays", f"{s.get('stays', 0):,} (truth/stays.parquet)"),
    ]
    return rows


STAGES: list[Stage] = [
    Stage("sample", "the bundled synthetic city", _sample_stage),
]


def _prepare_sample(sample: Path | None, work: Path) -> Path:
    from segtool.synth import generate_city
    from segtool.synth.sample import SAMPLE_PARAMS, bundled_sample

    if sample is not None:
        if not (sample / "_manifest.json").exists():
            raise InputError(f"{str(sample)!r} is not a synth output (no _manifest.json)")
        return sample
    found = bundled_sample()
    if found is not None:
        return found
    console.note("no bundled sample found (data/sample); generating it")
    target = work / "sample"
    generate_city(SAMPLE_PARAMS, target)
    return target


def demo(
    sample: Annotated[
        Path | None,
        typer.Option(
            "--sample",
            help="A `segtool synth` folder to use instead of the bundled sample.",
            file_okay=False,
        ),
    ] = None,
    lake: Annotated[
        Path | None,
        typer.Option(
            "--lake",
            help="Lake folder for the demo (default: a temporary folder, removed afterwards).",
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary lake and print its path.")
    ] = False,
) -> None:
    """Run every stage that exists on the bundled sample and print a summary.

    The sample (`data/sample/`, made by `segtool synth`) is a synthetic city around
    Stockholm with planted segregation and known truth. Each stage of the pipeline that
    exists runs on it into a temporary lake.

    **Examples**

    ```
    segtool demo
    segtool demo --keep
    segtool demo --sample my-city --lake demo-lake
    ```
    """
    work = Path(tempfile.mkdtemp(prefix="segtool-demo-"))
    try:
        ctx = DemoContext(
            sample=_prepare_sample(sample, work),
            lake=lake if lake is not None else work / "lake",
            work=work,
        )
        ctx.manifest = json.loads((ctx.sample / "_manifest.json").read_text())
        rows: list[tuple[str, str, str]] = []
        timing: list[tuple[str, str, float]] = []
        total = time.perf_counter()
        for stage in STAGES:
            console.info(f"[bold]demo:[/] {stage.name} — {stage.does}")
            began = time.perf_counter()
            for item, value in stage.run(ctx):
                rows.append((stage.name, item, value))
            timing.append((stage.name, stage.does, time.perf_counter() - began))
        summary = pl.DataFrame(rows, schema=["stage", "item", "value"], orient="row")
        emit(summary, "table", None, title="segtool demo")
        times = pl.DataFrame(timing, schema=["stage", "does", "seconds"], orient="row")
        emit(times, "table", None, title=f"stages ({time.perf_counter() - total:.1f} s in all)")
        if keep:
            console.info(f"kept the demo folder {work} (lake: {ctx.lake})")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
