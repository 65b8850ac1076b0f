"""Which register area contains each point: vectorised point-in-polygon with shapely's STRtree.

`areas` is the lake's `areas/` dataset: `area` (String) and `geometry` (WKB polygons,
EPSG:4326, lon/lat). Points on a shared border go to the first matching area in
`area` sort order, so the answer is deterministic.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def areas_of_points(lat: np.ndarray, lon: np.ndarray, areas: pl.DataFrame) -> pl.Series:
    """Area id of each (lat, lon) point, null where no area contains it."""
    import shapely

    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    areas = areas.sort("area")
    geoms = shapely.from_wkb(areas["geometry"].to_numpy())
    tree = shapely.STRtree(geoms)
    points = shapely.points(lon, lat)
    point_idx, area_idx = tree.query(points, predicate="intersects")
    # first (lowest sorted) area per point; points in no area get a null index
    first = pl.DataFrame({"p": point_idx, "a": area_idx}).group_by("p").agg(pl.col("a").min())
    index = pl.DataFrame({"p": np.arange(len(lat), dtype=point_idx.dtype)}).join(
        first, on="p", how="left", maintain_order="left"
    )["a"]
    return areas["area"].gather(index).alias("area")
