"""`segtool demo`: every stage that exists, on the bundled sample."""

from segtool.errors import UsageError


def demo() -> None:
    """Run the whole pipeline on the bundled sample (not yet implemented)."""
    raise UsageError("`demo` is not implemented yet")
