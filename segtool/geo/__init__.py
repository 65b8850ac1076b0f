"""H3 helpers (polars-h3), hexagon polygons, exact area fractions."""
