"""Point in area: the lowest area id wins on shared borders; points outside get null."""

import numpy as np
import polars as pl
import shapely

from segtool.geo.areas import areas_of_points


def _areas() -> pl.DataFrame:
    boxes = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]  # lon/lat boxes
    return pl.DataFrame({"area": ["b", "a"], "geometry": shapely.to_wkb(boxes)})


def test_inside_border_and_outside():
    got = areas_of_points(np.array([0.5, 0.5, 5.0]), np.array([0.5, 1.0, 5.0]), _areas())
    assert got.dtype == pl.String
    assert got.to_list() == ["b", "a", None]


def test_no_points():
    assert areas_of_points(np.array([]), np.array([]), _areas()).to_list() == []
