"""H3 hexagons as polygons, vectorised: cells (UInt64) → WKB polygons in EPSG:4326 (lon, lat).

Uses polars-h3 for the boundaries and shapely 2's array constructors, so there is no
Python loop over cells. Pentagons (5 vertices) are handled by ragged ring indices.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import polars_h3 as plh3


def cell_polygons_wkb(cells: pl.Series) -> pl.Series:
    """WKB polygons (lon/lat, closed rings) of H3 cells, in the order given."""
    import shapely

    if cells.len() == 0:
        return pl.Series("geometry", [], dtype=pl.Binary)
    bounds = (
        pl.DataFrame({"cell": cells.cast(pl.UInt64)})
        .with_row_index("i")
        .with_columns(plh3.cell_to_boundary("cell").alias("b"))
        .explode("b")
        .select(
            "i",
            pl.col("b").list.get(1).alias("lon"),
            pl.col("b").list.get(0).alias("lat"),
        )
    )
    coords = bounds.select("lon", "lat").to_numpy()
    ring_index = bounds["i"].to_numpy().astype(np.int64)
    rings = shapely.linearrings(coords, indices=ring_index)  # closes each ring
    polygons = shapely.polygons(rings)
    return pl.Series("geometry", shapely.to_wkb(polygons), dtype=pl.Binary)


def with_cell_polygons(frame: pl.DataFrame, cell: str = "cell") -> pl.DataFrame:
    """Add a WKB `geometry` column holding each row's hexagon."""
    return frame.with_columns(cell_polygons_wkb(frame[cell]).alias("geometry"))
