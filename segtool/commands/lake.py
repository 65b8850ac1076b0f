"""`segtool lake info` (issue: ingest)."""

from segtool.errors import UsageError


def info() -> None:
    """Describe the lake's datasets (not yet implemented)."""
    raise UsageError("`lake info` is not implemented yet")
