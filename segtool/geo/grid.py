"""From geometry to H3 cells, vectorised: points → the cell containing each, and polygon
extents → every cell whose hexagon may overlap them.

Candidate cells (H3 'overlap' containment). polars-h3's `polygon_to_cells` runs in Rust
over a whole column of polygons but offers only centre containment; h3-py's
`h3shape_to_cells_experimental(..., contain="overlap")` offers overlap containment but
takes one shape per Python call. We get overlap containment from the vectorised call by
a margin: a hexagon that overlaps a shape P has its centre within its circumradius of P,
so every such centre lies in P's bounding box grown by a margin ≥ the largest
circumradius. The margin is twice the average edge length (an H3 hexagon's
circumradius equals its edge length, and edges vary by far less than 2x across the
globe). The result is a superset of the overlapping cells; the exact intersection areas
computed afterwards (`segtool.geo.fractions`) drop the extra ones. `tests/geo` checks the
superset property against h3-py's overlap mode.
"""

from __future__ import annotations

import h3
import numpy as np
import polars as pl
import polars_h3 as plh3

from segtool.geo.crs import WGS84
from segtool.geo.project import transform_geoms

MIN_RES, MAX_RES = 5, 12
TILE_EDGES = 16  # grid tiles for candidate search (and the subdivision size in fractions.py)


def edge_length_m(res: int) -> float:
    """Average H3 hexagon edge length (= circumradius) at `res`, in metres."""
    return float(h3.average_hexagon_edge_length(res, unit="m"))


def candidate_margin_m(res: int) -> float:
    """How far beyond a shape's bounding box a centre of an overlapping hexagon may lie."""
    return 2.0 * edge_length_m(res)


def cells_of_points(lat: np.ndarray, lon: np.ndarray, res: int) -> np.ndarray:
    """The H3 cell (UInt64) containing each WGS84 point."""
    frame = pl.DataFrame(
        {"lat": np.asarray(lat, dtype=np.float64), "lon": np.asarray(lon, dtype=np.float64)}
    )
    return (
        frame.select(plh3.latlng_to_cell("lat", "lon", res).alias("cell"))["cell"]
        .cast(pl.UInt64)
        .to_numpy()
    )


def candidate_cells(bounds: np.ndarray, crs: str, res: int) -> np.ndarray:
    """Sorted unique H3 cells whose hexagons may overlap any of the boxes `bounds`
    (rows of xmin, ymin, xmax, ymax in the metric CRS `crs`).

    A superset of H3's 'overlap' containment for every shape inside those boxes. The
    boxes are first snapped to a grid of `TILE_EDGES` hexagon edges, so many small shapes
    in one tile cost one polygon-to-cells call, not one each.
    """
    import shapely

    bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
    if bounds.shape[0] == 0:
        return np.empty(0, dtype=np.uint64)
    m = candidate_margin_m(res)
    size = TILE_EDGES * edge_length_m(res)
    ix0, iy0 = np.floor(bounds[:, 0] / size), np.floor(bounds[:, 1] / size)
    nx = (np.floor(bounds[:, 2] / size) - ix0 + 1).astype(np.int64)
    ny = (np.floor(bounds[:, 3] / size) - iy0 + 1).astype(np.int64)
    n = nx * ny
    k = np.arange(n.sum()) - np.repeat(np.r_[0, np.cumsum(n)[:-1]], n)
    tx = np.repeat(ix0, n) + k % np.repeat(nx, n)
    ty = np.repeat(iy0, n) + k // np.repeat(nx, n)
    tiles = np.unique(np.column_stack([tx, ty]), axis=0)
    x0, y0 = tiles[:, 0] * size, tiles[:, 1] * size
    boxes = shapely.box(x0 - m, y0 - m, x0 + size + m, y0 + size + m)
    # Densify, so that each edge's image in lon/lat stays within metres of its true curve.
    boxes = shapely.segmentize(boxes, max_segment_length=max(m, 1.0))
    boxes_ll = transform_geoms(boxes, crs, WGS84)
    cells = (
        pl.DataFrame({"g": shapely.to_wkb(boxes_ll)}, schema={"g": pl.Binary})
        .select(plh3.polygon_to_cells("g", res).alias("cell"))
        .explode("cell")
        .drop_nulls()
        .unique()
        .sort("cell")
    )
    return cells["cell"].cast(pl.UInt64).to_numpy()
