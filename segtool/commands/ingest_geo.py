"""`segtool ingest population | landuse | pois` (issue: ingest, geographic part)."""

from segtool.errors import UsageError


def population() -> None:
    """Ingest register population and area polygons (not yet implemented)."""
    raise UsageError("`ingest population` is not implemented yet")


def landuse() -> None:
    """Ingest land-use polygons as per-hexagon shares (not yet implemented)."""
    raise UsageError("`ingest landuse` is not implemented yet")


def pois() -> None:
    """Ingest points of interest as per-hexagon counts (not yet implemented)."""
    raise UsageError("`ingest pois` is not implemented yet")
