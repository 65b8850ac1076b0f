"""`segtool stays | homes | groups | visits` (issue: mobility)."""

from segtool.errors import UsageError


def stays() -> None:
    """Detect stays from pings (not yet implemented)."""
    raise UsageError("`stays` is not implemented yet")


def homes() -> None:
    """Detect homes from stays (not yet implemented)."""
    raise UsageError("`homes` is not implemented yet")


def groups() -> None:
    """Assign groups and weights to devices (not yet implemented)."""
    raise UsageError("`groups` is not implemented yet")


def visits() -> None:
    """Bin stays to H3 visits (not yet implemented)."""
    raise UsageError("`visits` is not implemented yet")
