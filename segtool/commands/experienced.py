"""`segtool indices experienced` (issue: experienced segregation)."""

from segtool.errors import UsageError


def experienced() -> None:
    """Experienced (exposure) segregation from visits (not yet implemented)."""
    raise UsageError("`indices experienced` is not implemented yet")
