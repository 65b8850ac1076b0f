"""`segtool indices landuse` — a thin layer over `segtool.indices.landuse`."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer

from segtool import console
from segtool.errors import InputError, UsageError
from segtool.lake import Lake as LakeStore
from segtool.lake import Manifest, atomic_file, write_manifest_beside
from segtool.options import (
    AllowStale,
    Format,
    Lake,
    MinDevices,
    Output,
    Reference,
    ReferenceShares,
    Seed,
)
from segtool.present import emit

COMMAND = "indices landuse"


def landuse(
    lake: Lake = Path("lake"),
    allow_stale: AllowStale = False,
    places: Path | None = typer.Option(
        None,
        "--places",
        help="Per-place results of `segtool indices experienced --places` (Parquet, "
        "GeoParquet or CSV with place, segregation, weighted_dwell, devices) instead of "
        "computing S from the lake's visits.",
        dir_okay=False,
    ),
    min_devices: MinDevices = 5,
    reference: Reference = ReferenceShares.uniform,
    min_coverage: float = typer.Option(
        0.5,
        "--min-coverage",
        min=0.0,
        max=1.0,
        help="Leave out hexagons whose mapped land-use share is below this (counted).",
    ),
    reference_category: str | None = typer.Option(
        None,
        "--reference-category",
        help="Baseline category of the regression (default: the one with the largest "
        "total share, e.g. residential).",
    ),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=0, help="Bootstrap replicates over places (0 = no CIs)."
    ),
    seed: Seed = 0,
    level: float = typer.Option(0.95, "--level", help="Confidence level of the bootstrap CIs."),
    hexagons: Path | None = typer.Option(
        None,
        "--hexagons",
        help="Write the per-hexagon table (S, coverage, dominant category, mix entropy, "
        "shares, POIs): Parquet, CSV, or GeoParquet (QGIS) when the name ends in .geoparquet.",
        dir_okay=False,
    ),
    fmt: Format = None,
    output: Output = None,
) -> None:
    """Segregation and land use: which kinds of places bring groups together.

    Per hexagon: land-use shares by category (`landuse/`), the dominant category, mix
    entropy −Σ p_c ln p_c / ln C, POI count and diversity (`pois/`), joined to place
    segregation S (Moro et al. 2021; from the lake's visits, places with fewer than
    `--min-devices` devices set aside). Reports the dwell-weighted mean S by dominant
    category (`mean_place_segregation`), Spearman correlations of S with mix entropy,
    POI diversity, POI count and each category's share (`spearman`), and a regression of
    S on the shares (against `--reference-category`) and mix entropy
    (`regression_coefficient`, `regression_r2`), with bootstrap CIs over places.

    **Examples**

    ```
    segtool indices landuse --lake lake
    segtool indices landuse --lake lake --bootstrap 2000 --seed 1 -f json -o landuse.json
    segtool indices landuse --places places.geoparquet --lake lake --hexagons hex.geoparquet
    ```
    """
    from segtool.indices.landuse import (
        LanduseParams,
        analyse,
        landuse_from_lake,
    )

    params = LanduseParams(
        min_devices=min_devices,
        reference=reference.value,
        min_coverage=min_coverage,
        reference_category=reference_category,
        bootstrap=bootstrap,
        seed=seed,
        level=level,
    )
    if hexagons is not None and hexagons.suffix.lower() not in (
        ".parquet", ".pq", ".geoparquet", ".csv",
    ):  # fmt: skip
        raise UsageError(f"--hexagons {str(hexagons)!r}: name a .parquet, .geoparquet or .csv file")
    store = LakeStore(lake, allow_stale=allow_stale)
    store.require("landuse")
    manifest = Manifest(command=COMMAND, parameters=params, seed=seed if bootstrap else None)

    with console.progress() as bar:
        task = bar.add_task("bootstrap replicates", total=bootstrap or None, visible=bootstrap > 0)
        tick = lambda k: bar.advance(task, k)  # noqa: E731
        if places is None:
            for name in ("visits", "devices", "population", "landuse", "pois"):
                if store.exists(name):
                    manifest.add_dataset_input(store, name)
            result = landuse_from_lake(store, params, on_replicates=tick)
        else:
            frame, suppressed = _read_places(places)
            manifest.add_input(places, role="places")
            for name in ("landuse", "pois"):
                if store.exists(name):
                    manifest.add_dataset_input(store, name)
            pois = store.scan("pois") if store.exists("pois") else None
            result = analyse(
                frame,
                store.scan("landuse"),
                pois,
                params,
                suppressed_places=suppressed,
                on_replicates=tick,
            )

    s = result.summary
    manifest.rows_in = s["places"] + s["places_without_landuse"] + s["places_low_coverage"]
    manifest.rows_written = s["places"]
    manifest.rows_rejected = s["places_without_landuse"] + s["places_low_coverage"]
    manifest.rejected_by_reason = {
        k: s[k] for k in ("places_without_landuse", "places_low_coverage") if s[k]
    }
    manifest.extra = {"summary": s}
    emit(result.indices, fmt, output, title="Segregation and land use", manifest=manifest)
    if hexagons is not None:
        _write_hexagons(result.hexagons, hexagons, manifest)
    console.info(
        f"places analysed {s['places']:,} · suppressed {s['suppressed_places']:,} "
        f"(< {min_devices} devices) · without land use {s['places_without_landuse']:,} · "
        f"land-use coverage < {min_coverage:g}: {s['places_low_coverage']:,} · "
        f"regression baseline: {s['reference_category']}"
    )
    for note in s["notes"]:
        console.note(note)


def _read_places(path: Path) -> tuple[pl.DataFrame, int]:
    """A places table and the number of places its run suppressed (from its manifest)."""
    from segtool.indices.experienced import read_table

    frame = read_table(path).collect()
    if "weighted_dwell" not in frame.columns:
        raise InputError(
            f"{path} has no weighted_dwell column",
            hint="write it with `segtool indices experienced --places FILE`",
        )
    if "stratum" in frame.columns and frame["stratum"].drop_nulls().len():
        raise InputError(
            f"{path} holds places by stratum (--by): run experienced without --by for land use"
        )
    if frame.schema["place"] == pl.String:
        import polars_h3 as plh3

        frame = frame.with_columns(plh3.str_to_int("place").alias("place"))
    suppressed = 0
    mpath = Path(f"{path}.manifest.json")
    if mpath.exists():
        summary = json.loads(mpath.read_text()).get("summary", {})
        suppressed = int(summary.get("units_suppressed") or 0)
    return frame.drop("geometry", strict=False), suppressed


def _write_hexagons(frame: pl.DataFrame, path: Path, manifest: Manifest) -> None:
    suffix = path.suffix.lower()
    if suffix == ".geoparquet":
        from segtool.geo.geoparquet import write_geoparquet
        from segtool.geo.hexagons import with_cell_polygons

        write_geoparquet(with_cell_polygons(frame, "place"), path)
    elif suffix == ".csv":
        with atomic_file(path) as tmp:
            frame.write_csv(tmp)
    else:
        with atomic_file(path) as tmp:
            frame.write_parquet(tmp)
    write_manifest_beside(path, manifest)
    console.info(f"wrote {path} ({frame.height} hexagons)")
