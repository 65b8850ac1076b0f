"""Reproject shapely geometry arrays with pyproj, and choose a metric CRS for areas.

Everything is vectorised: `shapely.transform` hands all coordinates of all geometries to
one pyproj call. Axis order is always (x, y) = (easting, northing) or (lon, lat).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from segtool.errors import InputError
from segtool.geo.crs import WGS84, parse_crs, utm_crs_for


def crs_name(crs: str) -> str:
    """A short, stable name for a CRS: 'EPSG:3006' where it has an authority, else its WKT."""
    parsed = parse_crs(crs)
    auth = parsed.to_authority(min_confidence=90)
    if auth is not None:
        name, code = auth
        if name == "OGC" and code == "CRS84":
            return WGS84  # the same datum; we always use (lon, lat) order
        return f"{name}:{code}"
    return parsed.to_wkt()


def same_crs(a: str, b: str) -> bool:
    return crs_name(a) == crs_name(b)


def is_metric(crs: str) -> bool:
    """True for a projected CRS whose axes are in metres (e.g. EPSG:3006, UTM zones)."""
    parsed = parse_crs(crs)
    if not parsed.is_projected:
        return False
    units = {ax.unit_name.lower() for ax in parsed.axis_info[:2]}
    return units <= {"metre", "meter", "m"}


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str):
    from pyproj import Transformer

    return Transformer.from_crs(parse_crs(src), parse_crs(dst), always_xy=True)


def transform_geoms(geoms: np.ndarray, src: str, dst: str) -> np.ndarray:
    """`geoms` (shapely array, coordinates in `src`) with coordinates in `dst`.

    Raises InputError when a coordinate cannot be transformed (outside the CRS's domain).
    """
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    if same_crs(src, dst) or geoms.size == 0:
        return geoms
    tr = _transformer(crs_name(src), crs_name(dst))

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(geoms, move)
    coords = shapely.get_coordinates(out)
    if coords.size and not np.isfinite(coords).all():
        raise InputError(
            f"some coordinates cannot be transformed from {crs_name(src)} to {crs_name(dst)}",
            hint="check that the file's CRS is the right one",
        )
    return out


def metric_crs_for(crs: str, geoms: np.ndarray) -> str:
    """The CRS in which areas are measured: `crs` itself when it is projected in metres
    (e.g. SWEREF 99 TM, EPSG:3006), else the UTM zone of the layer's centre."""
    import shapely

    if is_metric(crs):
        return crs_name(crs)
    geoms = np.asarray(geoms, dtype=object)
    present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    if present.size == 0:
        return "EPSG:32633"  # nothing to measure; any metric CRS will do
    xmin, ymin, xmax, ymax = shapely.total_bounds(transform_geoms(present, crs, WGS84))
    return utm_crs_for((xmin + xmax) / 2, (ymin + ymax) / 2)


def points_lonlat(points: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 (lon, lat) of point geometries in `crs`; NaN where a point is missing or
    outside the projection's domain (it does not survive the round trip back to `crs`,
    e.g. a northing of 1e12 m)."""
    import shapely

    points = np.asarray(points, dtype=object)
    lon = np.full(points.size, np.nan)
    lat = np.full(points.size, np.nan)
    present = ~(shapely.is_missing(points) | shapely.is_empty(points))
    if not present.any():
        return lon, lat
    x, y = shapely.get_x(points[present]), shapely.get_y(points[present])
    if same_crs(crs, WGS84):
        lo, la = x, y
    else:
        with np.errstate(all="ignore"):
            lo, la = _transformer(crs_name(crs), WGS84).transform(x, y)
            bx, by = _transformer(WGS84, crs_name(crs)).transform(lo, la)
        tol = 1e-6 * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
        bad = ~(np.abs(bx - x) <= tol) | ~(np.abs(by - y) <= tol)
        lo = np.where(bad, np.nan, lo)
        la = np.where(bad, np.nan, la)
    lon[present], lat[present] = lo, la
    return lon, lat
