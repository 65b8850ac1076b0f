"""`segtool ingest pings | stays | flows` (issue: ingest). The geographic inputs
(population, land use, POIs) are in `ingest_geo.py`; cli.py wires both into `ingest`."""

from segtool.errors import UsageError


def pings() -> None:
    """Ingest raw pings (not yet implemented)."""
    raise UsageError("`ingest pings` is not implemented yet")


def stays() -> None:
    """Ingest vendor stays (not yet implemented)."""
    raise UsageError("`ingest stays` is not implemented yet")


def flows() -> None:
    """Ingest aggregated flows (not yet implemented)."""
    raise UsageError("`ingest flows` is not implemented yet")
