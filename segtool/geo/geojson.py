"""GeoJSON for map layers (RFC 7946: lon/lat WGS84), written through GDAL by pyogrio from
an Arrow table with a WKB column — no hand-written JSON — and atomically.

H3 cells are written as their hex strings (`8a1f…`): GeoJSON numbers are doubles, which
cannot hold a 64-bit cell id exactly."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from segtool.lake import atomic_file


def write_geojson(
    frame: pl.DataFrame, path: str | Path, geometry: str = "geometry", cells: tuple[str, ...] = ()
) -> None:
    """Write `frame` (WKB `geometry` in lon/lat) as a GeoJSON FeatureCollection; the UInt64
    H3 columns named in `cells` as hex strings."""
    import polars_h3 as plh3
    import pyogrio

    frame = frame.with_columns(plh3.int_to_str(c).alias(c) for c in cells if c in frame.columns)
    table = frame.to_arrow()
    path = Path(path)
    with atomic_file(path) as tmp:
        pyogrio.write_arrow(
            table,
            tmp,
            layer=path.stem,
            driver="GeoJSON",
            geometry_name=geometry,
            geometry_type="Unknown",
            crs="EPSG:4326",
            encoding="UTF-8",
            layer_options={"RFC7946": "YES", "WRITE_NAME": "NO"},
        )


def read_geojson(path: str | Path) -> pl.DataFrame:
    """A GeoJSON layer read back through GDAL (pyogrio): attributes + WKB `geometry`."""
    import pyogrio

    _, table = pyogrio.read_arrow(path)
    frame = pl.from_arrow(table)
    if "wkb_geometry" in frame.columns:
        frame = frame.rename({"wkb_geometry": "geometry"})
    return frame
