"""Reprojection and the choice of metric CRS. The oracle for SWEREF 99 TM is Krüger's
series for the Gauss conformal projection as published by Lantmäteriet (GRS 80,
central meridian 15° E, scale 0.9996, false easting 500 000 m), written out here."""

import math

import numpy as np
import pytest
import shapely

from segtool.geo.project import crs_name, is_metric, metric_crs_for, transform_geoms


def sweref99tm(lat: float, lon: float) -> tuple[float, float]:
    """(easting, northing) of a GRS 80 point in SWEREF 99 TM (Krüger, Lantmäteriet)."""
    a, f = 6378137.0, 1 / 298.257222101
    lon0, k0, fn, fe = math.radians(15.0), 0.9996, 0.0, 500000.0
    e2 = f * (2 - f)
    n = f / (2 - f)
    a_hat = a / (1 + n) * (1 + n**2 / 4 + n**4 / 64)
    A = e2
    B = (5 * e2**2 - e2**3) / 6
    C = (104 * e2**3 - 45 * e2**4) / 120
    D = 1237 * e2**4 / 1260
    b1 = n / 2 - 2 * n**2 / 3 + 5 * n**3 / 16 + 41 * n**4 / 180
    b2 = 13 * n**2 / 48 - 3 * n**3 / 5 + 557 * n**4 / 1440
    b3 = 61 * n**3 / 240 - 103 * n**4 / 140
    b4 = 49561 * n**4 / 161280
    phi, lam = math.radians(lat), math.radians(lon)
    s = math.sin(phi)
    phi_star = phi - s * math.cos(phi) * (A + B * s**2 + C * s**4 + D * s**6)
    dl = lam - lon0
    xi = math.atan(math.tan(phi_star) / math.cos(dl))
    eta = math.atanh(math.cos(phi_star) * math.sin(dl))
    x = (
        k0
        * a_hat
        * (
            xi
            + sum(
                b * math.sin(2 * k * xi) * math.cosh(2 * k * eta)
                for k, b in enumerate((b1, b2, b3, b4), 1)
            )
        )
        + fn
    )
    y = (
        k0
        * a_hat
        * (
            eta
            + sum(
                b * math.cos(2 * k * xi) * math.sinh(2 * k * eta)
                for k, b in enumerate((b1, b2, b3, b4), 1)
            )
        )
        + fe
    )
    return y, x


@pytest.mark.parametrize("lat,lon", [(59.3293, 18.0686), (67.8558, 20.2253), (55.6050, 13.0038)])
def test_sweref_point_lands_at_its_wgs84_position(lat, lon):
    e, n = sweref99tm(lat, lon)
    [moved] = transform_geoms(np.array([shapely.Point(e, n)]), "EPSG:3006", "EPSG:4326")
    assert moved.x == pytest.approx(lon, abs=1e-8)  # ~1 mm
    assert moved.y == pytest.approx(lat, abs=1e-8)


def test_metric_crs_choice():
    assert is_metric("EPSG:3006") and not is_metric("EPSG:4326")
    assert metric_crs_for("EPSG:3006", np.array([shapely.Point(1, 2)])) == "EPSG:3006"
    stockholm = np.array([shapely.box(18.0, 59.3, 18.1, 59.4)])
    assert metric_crs_for("EPSG:4326", stockholm) == "EPSG:32634"
    assert crs_name("OGC:CRS84") == "EPSG:4326"
    assert crs_name("3006") == "EPSG:3006"
