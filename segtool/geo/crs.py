"""Coordinate reference systems: parse what users type, move points to WGS84, and pick a
metric CRS for area computations. All via pyproj; vectorised over numpy arrays."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from segtool.errors import UsageError

WGS84 = "EPSG:4326"


@lru_cache(maxsize=32)
def parse_crs(text: str):
    """A pyproj CRS from 'EPSG:3006', '3006', a WKT or PROJ string; UsageError if unknown."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    value = text.strip()
    if value.isdigit():
        value = f"EPSG:{value}"
    try:
        return CRS.from_user_input(value)
    except CRSError as e:
        raise UsageError(
            f"unknown CRS {text!r}: {e}", hint="use e.g. EPSG:3006 or EPSG:4326"
        ) from None


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str):
    from pyproj import Transformer

    return Transformer.from_crs(parse_crs(src), parse_crs(dst), always_xy=True)


def to_wgs84(x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) in WGS84 from easting/northing (or lon/lat) in `crs`.

    `x` is the easting (or longitude), `y` the northing (or latitude), whatever the CRS's
    own axis order (always_xy).
    """
    lon, lat = _transformer(crs, WGS84).transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lat), np.asarray(lon)


def from_wgs84(lat: np.ndarray, lon: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) in `crs` from WGS84 lat/lon."""
    x, y = _transformer(WGS84, crs).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x), np.asarray(y)


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS84 UTM zone CRS containing (lon, lat), e.g. 'EPSG:32633' — a metric CRS for
    area computations where no national CRS is given."""
    zone = int((lon + 180) // 6) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"
