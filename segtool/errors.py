"""The two kinds of failure and their exit codes.

- `SegtoolError` (and subclasses): the user's input or usage is wrong. The CLI prints the
  message (no traceback) and exits with 1.
- anything else: a bug in segtool. The CLI prints a short note and exits with 2
  (set SEGTOOL_DEBUG=1 to see the traceback).
"""

EXIT_OK = 0
EXIT_USER = 1
EXIT_INTERNAL = 2


class SegtoolError(Exception):
    """A user mistake or bad input: the message says what is wrong and, where known, how to fix it."""

    exit_code = EXIT_USER

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(SegtoolError):
    """An input file or table is missing, unreadable or malformed."""


class UsageError(SegtoolError):
    """Options that contradict each other or name things that do not exist."""


class StaleInputError(SegtoolError):
    """A stage's input was built from an older version of its own upstream dataset.

    `stale` holds the `segtool.lineage.StaleInput` entries found."""

    def __init__(self, message: str, *, hint: str | None = None, stale: list | None = None):
        super().__init__(message, hint=hint)
        self.stale = list(stale or [])
