"""What a lake holds: for every dataset (and every rejects dataset) its rows, files and
size, distinct devices (where a `device` column exists), time range (over its Datetime
columns), bounding box (of `lat`/`lon`, of H3 cell centres, or from GeoParquet metadata),
its last manifest, and whether it is stale (built from an earlier version of an upstream
dataset: `segtool.lineage`).

Everything is computed generically from the files, in one streaming pass per dataset, so
datasets added by any command are described the same way. The bounding box is the only
trace of coordinates in the output — a summary for the lake's owner, never points.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from segtool.lake import MANIFEST_NAME, Lake

REJECTS = "_rejects"

_FIELDS = {
    "dataset": pl.String,
    "kind": pl.String,
    "files": pl.Int64,
    "bytes": pl.Int64,
    "rows": pl.Int64,
    "devices": pl.Int64,
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "min_lon": pl.Float64,
    "min_lat": pl.Float64,
    "max_lon": pl.Float64,
    "max_lat": pl.Float64,
    "command": pl.String,
    "rows_in": pl.Int64,
    "rows_written": pl.Int64,
    "rows_rejected": pl.Int64,
    "stale": pl.String,
}


def dataset_names(lake: Lake) -> list[str]:
    """Datasets with a manifest, then `_rejects/<name>` for each rejects dataset."""
    names = list(lake.datasets())
    rejects = lake.root / REJECTS
    if rejects.is_dir():
        names += [
            f"{REJECTS}/{p.name}"
            for p in sorted(rejects.iterdir())
            if p.is_dir() and (p / MANIFEST_NAME).exists()
        ]
    return names


def _geo_bbox(files: list[Path]) -> list[float] | None:
    """Union of the GeoParquet `bbox` of the primary geometry column, if recorded."""
    import pyarrow.parquet as pq

    boxes = []
    for f in files:
        meta = pq.ParquetFile(f).schema_arrow.metadata or {}
        geo = meta.get(b"geo")
        if not geo:
            return None
        info = json.loads(geo)
        col = info.get("columns", {}).get(info.get("primary_column", ""), {})
        if "bbox" not in col or len(col["bbox"]) != 4:
            return None
        boxes.append(col["bbox"])
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def describe(lake: Lake, name: str) -> dict:
    """One dataset's summary (see the module docstring) as a dict; `manifest` holds the
    dataset's `_manifest.json`."""
    import pyarrow.parquet as pq

    root = lake.path(name)
    files = sorted(root.rglob("*.parquet"))
    manifest = lake.manifest(name) or {}
    row: dict = {k: None for k in _FIELDS}
    row.update(
        dataset=name,
        kind="rejects" if name.startswith(f"{REJECTS}/") else "dataset",
        files=len(files),
        bytes=sum(f.stat().st_size for f in files),
        rows=sum(pq.ParquetFile(f).metadata.num_rows for f in files),
        command=manifest.get("command"),
        rows_in=manifest.get("rows_in"),
        rows_written=manifest.get("rows_written"),
        rows_rejected=manifest.get("rows_rejected"),
    )
    if files and row["rows"]:
        lf = pl.scan_parquet([str(f) for f in files], hive_partitioning=False)
        schema = lf.collect_schema()
        aggs = []
        if "device" in schema:
            aggs.append(pl.col("device").n_unique().alias("devices"))
        times = [c for c, t in schema.items() if isinstance(t, pl.Datetime)]
        if times:
            utc = [
                pl.col(c).dt.convert_time_zone("UTC")
                if schema[c].time_zone
                else pl.col(c).dt.replace_time_zone("UTC")
                for c in times
            ]
            aggs += [
                pl.min_horizontal(e.min() for e in utc).dt.cast_time_unit("us").alias("start"),
                pl.max_horizontal(e.max() for e in utc).dt.cast_time_unit("us").alias("end"),
            ]
        cells = [
            c for c, t in schema.items() if t == pl.UInt64 and (c == "cell" or c.endswith("_cell"))
        ]
        if {"lat", "lon"} <= set(schema) and schema["lat"].is_float():
            aggs += [
                pl.col("lon").min().alias("min_lon"),
                pl.col("lat").min().alias("min_lat"),
                pl.col("lon").max().alias("max_lon"),
                pl.col("lat").max().alias("max_lat"),
            ]
        elif cells:
            import polars_h3 as plh3

            lats = [plh3.cell_to_lat(pl.col(c)) for c in cells]
            lons = [plh3.cell_to_lng(pl.col(c)) for c in cells]
            aggs += [
                pl.min_horizontal(e.min() for e in lons).alias("min_lon"),
                pl.min_horizontal(e.min() for e in lats).alias("min_lat"),
                pl.max_horizontal(e.max() for e in lons).alias("max_lon"),
                pl.max_horizontal(e.max() for e in lats).alias("max_lat"),
            ]
        elif "geometry" in schema:
            box = _geo_bbox(files)
            if box:
                row.update(min_lon=box[0], min_lat=box[1], max_lon=box[2], max_lat=box[3])
        if aggs:
            stats = lf.select(aggs).collect(engine="streaming").row(0, named=True)
            row.update(stats)
    if row["kind"] == "dataset":
        from segtool.lineage import stale_inputs

        found = stale_inputs(lake, name)
        if found:  # the direct causes: what to rebuild
            row["stale"] = "; ".join(s.message for s in found if s.dataset == name)
    row["manifest"] = manifest
    return row


def lake_info(lake: Lake) -> pl.DataFrame:
    """One row per dataset (see `describe`); the `manifest` column holds dicts (Object)."""
    rows = [describe(lake, name) for name in dataset_names(lake)]
    frame = pl.DataFrame({k: [r[k] for r in rows] for k in _FIELDS}, schema=_FIELDS)
    return frame.with_columns(pl.Series("manifest", [r["manifest"] for r in rows], dtype=pl.Object))
