"""Small geometry fixtures built in code (nothing large is committed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely

SWEREF = "EPSG:3006"
X0, Y0 = 674_000.0, 6_580_000.0  # central Stockholm in SWEREF 99 TM


def write_layer(path: Path, geoms, crs: str | None = SWEREF, **fields) -> Path:
    """Write a vector layer (format from the suffix) or GeoParquet (.parquet)."""
    import geopandas as gpd
    import pyogrio

    frame = gpd.GeoDataFrame(fields, geometry=list(geoms), crs=crs)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        pyogrio.write_dataframe(frame, path)
    return path


def grid_areas(nx: int = 3, ny: int = 2, size: float = 1000.0):
    """(ids, squares): a grid of size-metre squares, ids A<i><j>."""
    ids, geoms = [], []
    for i in range(nx):
        for j in range(ny):
            ids.append(f"A{i}{j}")
            geoms.append(
                shapely.box(X0 + i * size, Y0 + j * size, X0 + (i + 1) * size, Y0 + (j + 1) * size)
            )
    return ids, geoms


@pytest.fixture
def areas_gpkg(tmp_path) -> Path:
    ids, geoms = grid_areas()
    return write_layer(tmp_path / "areas.gpkg", geoms, deso=ids)


# Stockholm City Hall, 59.3275 N 18.0543 E, in SWEREF 99 TM by Lantmäteriet's Krüger
# formulas (the formulas themselves are checked against pyproj in tests/geo/test_project.py).
CITY_HALL_LATLON = (59.3275, 18.0543)
CITY_HALL_3006 = (673767.9065743105, 6580505.297290286)


def voronoi_areas(n: int = 12, seed: int = 1, size: float = 3000.0):
    """(ids, polygons): n irregular areas tiling a size x size square, one with a hole
    whose inside is another area (an enclave)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = shapely.box(X0, Y0, X0 + size, Y0 + size)
    pts = shapely.points(rng.uniform(X0, X0 + size, n), rng.uniform(Y0, Y0 + size, n))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame))
    cells = list(shapely.intersection(cells, frame))
    enclave = cells[0].centroid.buffer(120)
    cells[0] = cells[0].difference(enclave)
    cells.append(enclave)
    return [f"V{i:02d}" for i in range(len(cells))], cells


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """Messages name long temporary paths: keep rich from wrapping them mid-assertion."""
    monkeypatch.setenv("COLUMNS", "1000")
