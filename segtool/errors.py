"""The two kinds of failure and their exit codes.

- `SegtoolError` (and subclasses): the user's input or usage is wrong. The CLI prints the
  message (no traceback) and exits with 1.
- anything else: a bug in segtool. The CLI prints a short note and exits with 2
  (set SEGTOOL_DEBUG=1 to see the traceback).
"""

import errno
import os
import re
from pathlib import Path

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


class BusyError(SegtoolError):
    """Another job holds the dataset this run writes (its lock), longer than `--wait`.

    `holder` is the `segtool.lakelock.Holder` read from the lock file."""

    def __init__(self, message: str, *, hint: str | None = None, holder=None):
        super().__init__(message, hint=hint)
        self.holder = holder


class ConflictError(SegtoolError):
    """Another job committed the dataset this run replaces, or an input it read, while it
    ran: nothing was written, so no result mixes two versions."""


# -- faults of the machine, not of segtool -----------------------------------------------
# One mapping from operating-system errors to plain messages, used by the CLI for every
# command (no try/except per command). polars reports some OS errors as its own exceptions
# with "(os error N)" in the text, so the errno is also read from there.

_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_FULL = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_NOT_FOLDER = {errno.ENOTDIR, errno.EEXIST}


def os_errno(e: BaseException) -> int | None:
    """The errno of an OS error, also when polars wrapped it in its own exception."""
    code = getattr(e, "errno", None) if isinstance(e, OSError) else None
    if code is None:
        m = _OS_ERROR.search(str(e))
        code = int(m.group(1)) if m else None
    return code


def _path_in_message(text: str) -> str | None:
    m = re.search(r"\(os error \d+\): (.+)$", text.strip())
    return m.group(1).strip() if m else None


def _dataset_of(path: str) -> Path | None:
    """The lake dataset folder (one holding `_manifest.json`) that `path` lay in, if any."""
    p = Path(path)
    if p.exists():
        return None
    for parent in p.parents:
        if (parent / "_manifest.json").exists():
            return parent
    return None


def disk_full(e: BaseException) -> bool:
    return os_errno(e) in _FULL


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def os_fault(e: BaseException) -> SegtoolError | None:
    """A user-facing error for an OS fault (full disk, read-only or forbidden path, a file
    where a folder is expected), or None when `e` is not one (then it is a bug)."""
    code = os_errno(e)
    if code is None:
        return None
    path = getattr(e, "segtool_path", None) or getattr(e, "filename", None)
    where = f" {str(path)!r}" if path else ""
    if code in _FULL:
        written = getattr(e, "segtool_bytes_written", None)
        need = f"; this step needed more than {_mb(written)}" if written else ""
        free = ""
        if path:
            try:
                import shutil

                probe = next((p for p in [Path(path), *Path(path).parents] if p.exists()), None)
                if probe is not None:
                    free = f" ({_mb(shutil.disk_usage(probe).free)} free now)"
            except OSError:  # pragma: no cover - the probe itself failed
                pass
        return SegtoolError(
            f"no space left on the device of{where or ' the output'}{need}{free}; "
            "nothing was half-written and the staging was removed",
            hint="free some space or point --lake / -o (or TMPDIR) at a larger disk",
        )
    if code in _DENIED:
        why = "read-only file system" if code == errno.EROFS else "permission denied"
        return SegtoolError(
            f"cannot write{where or ' the output'}: {why}",
            hint="use a folder you may write to (--lake, -o), or fix its permissions",
        )
    if code in _NOT_FOLDER or code == errno.EISDIR:
        what = (
            "a folder where a file is expected"
            if code == errno.EISDIR
            else "a file where a folder is expected (or on the way to it)"
        )
        return SegtoolError(
            f"{(where.strip() or 'a path')}: {what}",
            hint="check --lake and -o: they must not run through an existing file",
        )
    if code == errno.ENOENT:  # only a lake file that vanished mid-read is the machine's doing
        gone = path or _path_in_message(str(e))
        dataset = _dataset_of(gone) if gone else None
        if dataset is None:
            return None
        return SegtoolError(
            f"a file of {str(dataset)!r} vanished while this run read it: another job "
            "replaced that dataset meanwhile; nothing was written",
            hint="run the command again (it then reads the new version)",
        )
    if code in (errno.ENAMETOOLONG, errno.ELOOP, errno.EIO):
        return SegtoolError(f"cannot use{where or ' a path'}: {os.strerror(code)}")
    return None
