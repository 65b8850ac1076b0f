"""Edges of a network as straight lines between unit centroids (WKB LineStrings, lon/lat),
ready for `geoparquet.write_geoparquet` — one vectorised shapely call, no loop."""

from __future__ import annotations

import numpy as np
import polars as pl


def lines_wkb(lat1, lon1, lat2, lon2) -> pl.Series:
    """WKB LineStrings from (lon1, lat1) to (lon2, lat2), one per row."""
    import shapely

    coords = np.stack(
        [
            np.column_stack([np.asarray(lon1, float), np.asarray(lat1, float)]),
            np.column_stack([np.asarray(lon2, float), np.asarray(lat2, float)]),
        ],
        axis=1,
    )  # (n, 2 points, 2)
    lines = shapely.linestrings(coords)
    return pl.Series("geometry", shapely.to_wkb(lines), dtype=pl.Binary)


def with_edge_lines(
    edges: pl.DataFrame,
    units: pl.DataFrame,
    origin: str = "origin",
    destination: str = "destination",
) -> pl.DataFrame:
    """`edges` with a `geometry` column: the line from the origin's centroid to the
    destination's (`units`: unit, lat, lon). Edges from a unit to itself are left out
    (a line needs two points)."""
    geo = units.select("unit", "lat", "lon")
    e = (
        edges.filter(pl.col(origin) != pl.col(destination))
        .join(geo.rename({"unit": origin, "lat": "__la", "lon": "__oa"}), on=origin, how="left")
        .join(
            geo.rename({"unit": destination, "lat": "__lb", "lon": "__ob"}),
            on=destination,
            how="left",
        )
        .filter(pl.all_horizontal(pl.col("__la", "__oa", "__lb", "__ob").is_not_null()))
    )
    geom = (
        lines_wkb(e["__la"], e["__oa"], e["__lb"], e["__ob"])
        if e.height
        else pl.Series("geometry", [], pl.Binary)
    )
    return e.drop("__la", "__oa", "__lb", "__ob").with_columns(geom)
