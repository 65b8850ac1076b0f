"""Advisory locks that let several jobs share one lake (`fcntl.flock`, Linux/macOS).

- **Writers** of a dataset hold `<lake>/.locks/<name>.lock` exclusively from before they
  read the version they build on until the new version is renamed into place. A second
  writer polls for `wait` seconds; then it either proceeds (an append then includes the
  first writer's rows, because it reads the dataset only once it holds the lock) or exits 1
  naming the holder (pid, host, command, since), which the holder wrote into the lock file.
  The holder removes the lock file as it lets go (a waiter then checks that the file it
  locked is still the one at the path), so an idle lake holds no lock files.
  `_rejects/<name>` shares the lock of `<name>`. The kernel drops a lock when its process
  dies, even by `kill -9`, so a lock is never left behind.
- **Readers** take no lock and never wait. A new version replaces the old one by one
  rename, so a reader lists either version, never a mix. A stage records the manifest
  hash of each input it read (`segtool.lineage`) and, just before its own commit, checks
  that those inputs are still current (`Lake.writing`): an input replaced while the stage
  read it makes the stage refuse to commit (exit 1, run again) instead of writing a result
  built from two versions.

Locks are re-entrant within one process.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from segtool.errors import BusyError

if TYPE_CHECKING:  # pragma: no cover
    from segtool.lake import Lake

LOCKS = ".locks"
DEFAULT_WAIT = 5.0  # seconds; --wait / SEGTOOL_WAIT
POLL = 0.05

_held: dict[str, list] = {}  # lock path -> [fd, depth]: writer locks of this process


def lock_key(name: str) -> str:
    """The lock that guards dataset `name`: `_rejects/pings` is guarded with `pings`."""
    parts = Path(name).parts
    return (parts[-1] if parts and parts[0] == "_rejects" else name).replace("/", "%")


def lock_path(lake: Lake, name: str) -> Path:
    return lake.root / LOCKS / f"{lock_key(name)}.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a writer lock, as written into the lock file."""

    pid: int | None
    host: str | None
    command: str | None
    since: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "another job"
        return f"pid {self.pid} on {self.host}, `{self.command}`, since {self.since}"


def read_holder(path: Path) -> Holder:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    return Holder(info.get("pid"), info.get("host"), info.get("command"), info.get("since"))


def _me() -> bytes:
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "segtool"
    if prog in ("__main__.py", "segtool", "-c", ""):  # python -m segtool, the script, in-process
        prog = "segtool"
    argv = " ".join([prog, *sys.argv[1:]])
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": argv,
            "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
    ).encode()


def holds(lake: Lake, name: str) -> bool:
    """Whether this process holds the writer lock of `name`."""
    return str(lock_path(lake, name)) in _held


def waiting(lake: Lake, name: str) -> list[int]:
    """Pids of the jobs waiting for the writer lock of `name` (as they announce it)."""
    path = lock_path(lake, name)
    prefix = f"{path.name}.waiting-"
    if not path.parent.is_dir():
        return []
    return sorted(int(p.name[len(prefix) :]) for p in path.parent.glob(f"{prefix}*"))


@contextmanager
def writer_lock(lake: Lake, name: str, *, wait: float | None = None) -> Iterator[Holder | None]:
    """Hold the writer lock of dataset `name`; yields the last job it had to wait for (None
    if the lock was free).

    Raises `BusyError` (exit 1) naming the holder when it is still held after `wait` seconds.
    """
    path = lock_path(lake, name)
    key = str(path)
    if key in _held:  # re-entrant: this process already holds it
        _held[key][1] += 1
        try:
            yield None
        finally:
            _held[key][1] -= 1
        return
    wait = DEFAULT_WAIT if wait is None else max(0.0, float(wait))
    waited: Holder | None = None
    waiting = path.with_name(f"{path.name}.waiting-{os.getpid()}")  # shows who queues
    deadline = time.monotonic() + wait
    fd = -1
    try:
        while True:
            if fd < 0:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(fd, path):
                    break
                os.close(fd)  # the holder removed that file as it let go: open it afresh
                fd = -1
                continue
            except BlockingIOError:
                if waited is None:
                    waiting.touch()
                seen = read_holder(path)  # the latest holder: the one that may commit
                if seen.pid is not None or waited is None:
                    waited = seen
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = read_holder(path)
                    raise BusyError(
                        f"{name}/ in {str(lake.root)!r} is being written by {holder.describe()}"
                        f" (waited {wait:g} s)",
                        hint="let that job finish, or give it longer with --wait SECONDS",
                        holder=holder,
                    ) from None
                time.sleep(min(POLL, left))
        os.ftruncate(fd, 0)
        os.pwrite(fd, _me(), 0)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    finally:
        if waited is not None:
            waiting.unlink(missing_ok=True)
    _held[key] = [fd, 1]
    try:
        yield waited
    finally:
        del _held[key]
        try:  # remove the file while still holding it (waiters check they lock the live file)
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # drops the lock


def _same_file(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (not one a previous holder removed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
