"""`segtool indices residential`: read counts → compute indices → present (thin layer)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from segtool import console
from segtool.errors import UsageError
from segtool.lake import Manifest
from segtool.options import Format, Output, Seed
from segtool.present import emit

INDEX_HELP = (
    "Index to compute (repeatable; default: all that apply): dissimilarity, gini, atkinson, "
    "isolation, interaction, correlation_ratio, entropy, theil_h, mutual_information, "
    "normalized_exposure, relative_diversity, squared_cv, simpson_concentration, "
    "simpson_interaction, hutchens, exposure; with --spatial also spatial_proximity."
)


def residential(
    input: Annotated[
        Path,
        typer.Argument(
            help="Counts table: CSV/TSV or Parquet (or a folder of Parquet files), long "
            "(unit, group, count) or wide (--wide).",
            show_default=False,
            metavar="INPUT",
        ),
    ],
    unit: Annotated[
        str | None,
        typer.Option(
            "--unit",
            help="Unit (area) column. Default: auto-detected (unit, area, tract, id, cell, …).",
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Group column (long), or the group count columns A,B,C (--wide). Default: auto-detected.",
        ),
    ] = None,
    count: Annotated[
        str | None,
        typer.Option(
            "--count", help="Count column. Default: auto-detected (n, count, freq, population, …)."
        ),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="One row per unit and one count column per group.")
    ] = False,
    focal: Annotated[
        str | None,
        typer.Option(
            "--focal", help="Two-group indices of this group against the rest (or --reference)."
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="With --focal: compare with this group only.")
    ] = None,
    index: Annotated[list[str] | None, typer.Option("--index", "-i", help=INDEX_HELP)] = None,
    within: Annotated[
        str | None,
        typer.Option(
            "--within",
            help="Stratum column (e.g. district): M and H split into between and within strata, with each stratum's own M and H.",
        ),
    ] = None,
    local: Annotated[
        Path | None,
        typer.Option(
            "--local",
            help="Write per-unit scores (location_quotient, local_entropy, local_mutual_information, ice) to FILE (.csv, .json or .parquet).",
            dir_okay=False,
        ),
    ] = None,
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap",
            min=0,
            help="Multinomial bootstrap replicates of the counts: se, percentile CI, debiased estimate (0 = off).",
        ),
    ] = 0,
    seed: Seed = 0,
    atkinson_b: Annotated[
        float,
        typer.Option("--atkinson-b", help="Shape parameter b of the Atkinson index, 0 < b < 1."),
    ] = 0.5,
    ice_high: Annotated[
        str | None,
        typer.Option(
            "--ice-high", help="Group at the top for the local ICE score (with --ice-low)."
        ),
    ] = None,
    ice_low: Annotated[
        str | None, typer.Option("--ice-low", help="Group at the bottom for the local ICE score.")
    ] = None,
    spatial: Annotated[
        int | None,
        typer.Option(
            "--spatial",
            min=0,
            metavar="K",
            help="Spatial (egohood) indices: units are H3 cells and each one's counts are "
            "replaced by the weighted sums over its grid_disk(K); adds spatial_proximity. "
            "K=0 gives the aspatial values.",
        ),
    ] = None,
    kernel: Annotated[
        str,
        typer.Option(
            "--kernel",
            help="With --spatial: weight by ring distance d: flat (1), linear (1 − d/(K+1)) "
            "or exp (exp(−d/λ)).",
        ),
    ] = "flat",
    decay: Annotated[
        float,
        typer.Option("--decay", help="With --kernel exp: λ, in rings."),
    ] = 1.0,
    fmt: Format = None,
    output: Output = None,
) -> None:
    """Residential segregation indices from a table of counts per unit and group.

    Multigroup indices by default; two-group indices with `--focal` (against the rest,
    or against `--reference`). Column names are auto-detected when not given, and the
    choice is printed. Duplicate (unit, group) rows are summed and units whose counts
    are all zero are dropped, each with a note.

    **Examples**

    ```
    segtool indices residential population.csv
    segtool indices residential tracts.csv --wide --unit tract --focal black --reference white
    segtool indices residential pop.parquet --within district --index mutual_information -i theil_h
    segtool indices residential pop.csv --bootstrap 500 --seed 1 --format json
    segtool indices residential pop.csv --local local.csv --ice-high Q4 --ice-low Q1 -o indices.csv
    segtool indices residential lake/population_cells --spatial 2 --kernel linear -f json
    segtool indices residential cells.csv --unit cell --spatial 3 --kernel exp --decay 1.5 --focal Q1
    ```

    With `--spatial K` the units must be H3 cells (UInt64 or hex strings, one
    resolution): every index is computed on egohood counts ñ_ug = Σ_v w(d(u,v)) n_vg over
    the table's cells v within K rings of u, and spatial_proximity is added; each row
    says which neighbourhood in its `neighbourhood` field (e.g. "grid_disk(2), linear").
    """
    from segtool.indices.counts import read_counts
    from segtool.indices.decompose import local_scores
    from segtool.indices.residential import INDICES, ResidentialParams, composition, compute

    sp_index = "spatial_proximity"  # = segtool.indices.spatial.SP_INDEX (imported on use)
    names = tuple(index) if index else INDICES
    proximity = spatial is not None and (not index or sp_index in names)
    sparams = None
    if spatial is None:
        if sp_index in names:
            raise UsageError(f"{sp_index} is a spatial index: add --spatial K")
        if kernel != "flat" or decay != 1.0:
            raise UsageError("--kernel and --decay apply to spatial indices: add --spatial K")
    else:
        from segtool.indices.spatial import SpatialParams

        if decay != 1.0 and kernel != "exp":
            raise UsageError("--decay is the λ of --kernel exp only")
        sparams = SpatialParams(spatial, kernel, decay)
    names = tuple(n for n in names if n != sp_index)
    params = ResidentialParams(
        indices=names,
        focal=focal,
        reference=reference,
        atkinson_b=atkinson_b,
        within="stratum" if within else None,
        bootstrap=bootstrap,
        seed=seed,
    )
    if (ice_high or ice_low) and local is None:
        raise UsageError("--ice-high/--ice-low give the local ICE score: add --local FILE")
    if local is not None and local.suffix.lower() not in (".csv", ".json", ".parquet", ".pq"):
        raise UsageError(f"--local {str(local)!r}: name a .csv, .json or .parquet file")

    counts = read_counts(input, unit=unit, group=group, count=count, wide=wide, within=within)
    console.info(counts.columns.describe())
    for note in counts.notes:
        console.note(note)
    s = counts.summary()
    console.info(
        f"read {s['rows_in']} rows: {s['rows_used']} used, {counts.rows_dropped} dropped; "
        f"{s['units']} units × {len(s['groups'])} groups"
    )

    comp = composition(counts.frame, within="stratum" if within else None)
    matrix = None
    if sparams is not None:
        from segtool.indices.spatial import h3_cells, neighbourhood_matrix, smooth

        matrix = neighbourhood_matrix(h3_cells(comp.units), spatial, kernel, decay)
        console.info(
            f"egohoods {sparams.label}: {matrix.nnz} neighbour pairs over {comp.n} cells "
            f"(mean {matrix.nnz / comp.n:.1f} a cell)"
        )

    def run(**kw):
        if sparams is None:
            return compute(comp, params, **kw)
        from segtool.indices.spatial import compute_spatial

        return compute_spatial(comp, params, sparams, proximity=proximity, matrix=matrix, **kw)

    if bootstrap:
        total = float(comp.counts.sum())
        if abs(total - round(total)) > 1e-6:
            console.note(
                f"counts are not whole numbers: each bootstrap replicate draws "
                f"{round(total)} individuals with probabilities n_ug / T"
            )
        with console.progress() as p:
            task = p.add_task("bootstrap replicates", total=bootstrap)
            result = run(on_replicates=lambda k: p.advance(task, k))
    else:
        result = run()

    def manifest(what: str, rows: int) -> Manifest:
        m = Manifest(
            command="segtool indices residential",
            parameters={
                **asdict(params),
                "within": within,
                "ice_high": ice_high,
                "ice_low": ice_low,
                "columns": counts.columns,
                **({"spatial": asdict(sparams), "neighbourhood": sparams.label} if sparams else {}),
            },
            seed=seed if bootstrap else None,
            rows_in=counts.rows_in,
            rows_written=counts.rows_in - counts.rows_dropped,
            rows_rejected=counts.rows_dropped,
            rejected_by_reason={
                k: v
                for k, v in (
                    ("zero_total_unit", counts.zero_unit_rows),
                    ("empty_group", counts.zero_group_rows),
                )
                if v
            },
            extra={"input_summary": s, "output": what, "result_rows": rows},
        )
        m.add_input(input) if input.is_file() else m.inputs.append({"path": str(input)})
        return m

    if local is not None:
        if sparams is None:
            scores = local_scores(comp, ice_high=ice_high, ice_low=ice_low)
        else:  # scores of each unit's egohood composition
            scores = local_scores(smooth(comp, matrix), ice_high=ice_high, ice_low=ice_low)
            import polars as pl

            scores = scores.with_columns(neighbourhood=pl.lit(sparams.label))
        emit(scores, None, local, manifest=manifest("local scores", scores.height))

    title = (
        "Residential segregation"
        + (f": {focal} vs {reference or 'the rest'}" if focal else f" ({len(s['groups'])} groups)")
        + (f", egohoods {sparams.label}" if sparams else "")
    )
    emit(result, fmt, output, title=title, manifest=manifest("indices", result.height))
