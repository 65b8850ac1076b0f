"""Repair and sort out geometries before measuring them, vectorised.

- Invalid polygons (self-intersections, bow-ties, overlapping parts of a multipolygon)
  are repaired with `shapely.make_valid(method="structure", keep_collapsed=False)`, which
  keeps the polygonal area and drops parts that collapse to lines or points. The number
  repaired is reported.
- A polygon layer's feature "has area" when its (repaired) geometry's area is positive;
  points, lines and collapsed polygons have none.
"""

from __future__ import annotations

import numpy as np

POINT, MULTIPOINT = 0, 4


def missing(geoms: np.ndarray) -> np.ndarray:
    """True where a feature has no geometry or an empty one."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    return shapely.is_missing(geoms) | shapely.is_empty(geoms)


def repair(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """Valid geometries (invalid ones repaired) and how many needed repair."""
    import shapely

    geoms = np.asarray(geoms, dtype=object).copy()
    bad = ~missing(geoms)
    bad[bad] = ~shapely.is_valid(geoms[bad])
    if bad.any():
        geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    return geoms, int(bad.sum())


def has_area(geoms: np.ndarray) -> np.ndarray:
    """True where the geometry covers a positive area."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    out = ~missing(geoms)
    out[out] = shapely.area(geoms[out]) > 0
    return out


def is_point(geoms: np.ndarray) -> np.ndarray:
    """True for single points (a MultiPoint is not one)."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    out = ~missing(geoms)
    out[out] = shapely.get_type_id(geoms[out]) == POINT
    return out


def representative_points(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """Points stay; any other geometry becomes a point on its surface (inside a polygon,
    on a line). Returns the points and how many were converted."""
    import shapely

    geoms = np.asarray(geoms, dtype=object).copy()
    convert = ~missing(geoms) & ~is_point(geoms)
    if convert.any():
        fixed, _ = repair(geoms[convert])
        geoms[convert] = shapely.point_on_surface(fixed)
    return geoms, int(convert.sum())
