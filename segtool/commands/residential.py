"""`segtool indices residential` (issue: foundation / residential engine)."""

from segtool.errors import UsageError


def residential() -> None:
    """Residential segregation indices from a table of counts (not yet implemented)."""
    raise UsageError("`indices residential` is not implemented yet")
