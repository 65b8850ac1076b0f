"""`segtool synth` (issue: synthetic city)."""

from segtool.errors import UsageError


def synth() -> None:
    """Generate a synthetic city (not yet implemented)."""
    raise UsageError("`synth` is not implemented yet")
