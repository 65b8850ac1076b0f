"""Area outlines for maps: register polygons (WKB, EPSG:4326) → their boundary lines as
(m, 2) arrays of (lon, lat), vectorised in shapely (one `get_coordinates` call)."""

from __future__ import annotations

import numpy as np
import polars as pl


def outlines(geometry: pl.Series) -> list[np.ndarray]:
    """Each ring of each (multi)polygon's boundary as an (m, 2) array of (lon, lat)."""
    import shapely

    if geometry.len() == 0:
        return []
    geoms = shapely.from_wkb(geometry.to_numpy())
    lines = shapely.get_parts(shapely.boundary(geoms[~shapely.is_empty(geoms)]))
    lines = shapely.get_parts(lines)  # MultiLineStrings (holes, multipolygons) → rings
    xy, index = shapely.get_coordinates(lines, return_index=True)
    if not len(xy):
        return []
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
    return np.split(xy, starts[1:])


def nice_length(span_m: float) -> float:
    """A round length (1, 2 or 5 × 10^n metres) of about a fifth of `span_m`, for a scale
    bar."""
    target = max(span_m / 5.0, 1.0)
    power = 10.0 ** np.floor(np.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target:
            return float(step * power)
    return float(power)  # pragma: no cover - step 1 always fits
