"""Where work runs: in this process (one partition at a time, under a memory budget) or on
a Dask cluster. The only module that imports dask (lazily: segtool works without it).

A stage hands the engine a pure per-partition function and a list of partitions (each a
tuple of plain arguments: paths, bucket numbers, small frames, frozen parameters); the
engine yields the function's results in partition order, whichever engine ran them, so
the stage combines them (sums of additive counts, concatenation of small tables) the same
way every time. Partitions are sets of whole devices: `bucket = device mod n`, where the
device id is already a keyed-hash pseudonym (SPEC §6), so buckets are even and stable.

- `local` (default): partitions run one after the other in this process, so peak memory
  is set by the largest partition, which `--memory-budget` sizes; the budget is also
  passed on to polars' streaming engine (`POLARS_OOC_MEMORY_BUDGET_MB`, spilling to disk).
- `dask`: partitions run as `dask.distributed` tasks (retried twice if a worker dies), on
  the scheduler at `--scheduler` / `$SEGTOOL_DASK_SCHEDULER`, else on a `LocalCluster`
  started here. Workers must see the lake at the same path (a shared file system).

Results do not depend on the engine: the partitions and the per-partition functions are
the same, and results are combined in partition order (tests/engine/ checks equality).
"""

from __future__ import annotations

import math
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segtool.errors import SegtoolError, UsageError

ENGINES = ("local", "dask")
SCHEDULER_ENV = "SEGTOOL_DASK_SCHEDULER"
BUDGET_ENV = "SEGTOOL_MEMORY_BUDGET"
CONNECT_TIMEOUT_S = 3
RETRIES = 2  # a partition whose worker dies is run again up to twice
# Share of the budget the polars streaming engine may hold before spilling; the rest is
# left to the stage's own arrays (a batch being processed) and the interpreter.
POLARS_SHARE = 0.5
BASE_BYTES = 400 * 2**20  # Python, polars, numba and their libraries: RSS before any data

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


_HINT = f"start one with `dask scheduler`, or check --scheduler / ${SCHEDULER_ENV}"


class EngineError(SegtoolError):
    """The cluster cannot be reached, or a partition failed there (nothing was written)."""


def parse_size(text: str | int | None) -> int | None:
    """'4GB', '3.5G', '512MB', '2GiB' or a plain number of bytes → bytes (None stays None).

    Units are binary (1 GB = 2³⁰ bytes), as memory is counted by the operating system."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise UsageError(f"memory budget {text!r} is not a size", hint="e.g. 4GB, 512MB, 3.5G")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value < 2**20:
        raise UsageError(f"memory budget {text!r} is below 1 MB", hint="e.g. 4GB")
    return int(value)


@dataclass(frozen=True)
class EngineSettings:
    """Which engine, where its scheduler is, and the memory budget per process (bytes).

    `workers` sizes a LocalCluster (default: the machine's cores) and is ignored with a
    scheduler address. With Dask the budget applies to each worker."""

    engine: str = "local"
    scheduler: str | None = None
    memory_budget: int | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}", hint="local or dask")
        if self.scheduler and self.engine != "dask":
            raise UsageError("--scheduler needs --engine dask")
        if self.workers is not None and self.workers < 1:
            raise UsageError("--workers must be at least 1")

    def rows_per_batch(self, default: int, bytes_per_row: int) -> int:
        """Rows of a partition: `default`, lowered so that one partition's working set
        (`bytes_per_row` × rows, measured per stage) fits the budget beside the fixed
        start-up memory. Never below 10,000 rows (unless `default` is)."""
        if default < 1:
            raise UsageError("the batch size must be at least 1")
        if self.memory_budget is None:
            return default
        free = max(self.memory_budget - BASE_BYTES, 0) * (1 - POLARS_SHARE)
        return min(default, max(10_000, int(free // max(bytes_per_row, 1))))

    def batches(self, rows: int, default: int, bytes_per_row: int) -> int:
        """How many device buckets `rows` rows need (at least 1)."""
        return max(1, math.ceil(rows / self.rows_per_batch(default, bytes_per_row)))

    def describe(self) -> dict[str, Any]:
        """For manifests and summaries (does not change any result)."""
        return {
            "engine": self.engine,
            "memory_budget_bytes": self.memory_budget,
            "workers": self.workers if self.engine == "dask" and not self.scheduler else None,
        }


def settings(
    engine: str = "local",
    scheduler: str | None = None,
    memory_budget: str | int | None = None,
    workers: int | None = None,
) -> EngineSettings:
    """EngineSettings from option values (sizes as text, e.g. '4GB')."""
    return EngineSettings(str(engine), scheduler or None, parse_size(memory_budget), workers)


def apply_memory_budget(budget: int | None) -> None:
    """Hand the polars streaming engine its share of the budget (it spills beyond it).

    Set before any streaming query runs in this process (polars reads it once)."""
    if budget is not None:
        mb = max(64, int(budget * POLARS_SHARE // 2**20))
        os.environ["POLARS_OOC_MEMORY_BUDGET_MB"] = str(mb)


class Runner(AbstractContextManager):
    """Runs per-partition functions; use as a context manager around one command."""

    def __init__(self, cfg: EngineSettings):
        self.cfg = cfg

    def __enter__(self) -> Runner:
        apply_memory_budget(self.cfg.memory_budget)
        return self

    def __exit__(self, *exc) -> None:
        return None

    @property
    def parallelism(self) -> int:
        """Partitions that run at once: 1 here; the cluster's worker threads with Dask."""
        return 1

    def map(
        self, fn: Callable[..., Any], parts: Sequence[tuple], shared: tuple = ()
    ) -> Iterator[Any]:
        """`fn(*shared, *part)` for every part, results in part order. `shared` holds the
        arguments every part gets (sent once to each Dask worker).

        Lazy: in this process the next part starts only when the caller asks for it, so
        one part's data is in memory at a time."""
        for part in parts:
            yield fn(*shared, *part)


class DaskRunner(Runner):
    """Partitions as tasks on a dask.distributed cluster (LocalCluster if no address)."""

    def __init__(self, cfg: EngineSettings):
        super().__init__(cfg)
        self.client = None
        self.cluster = None

    def __enter__(self) -> DaskRunner:
        apply_memory_budget(self.cfg.memory_budget)  # inherited by LocalCluster workers
        address = self.cfg.scheduler
        if address and (why := _reachable(address)):  # before importing Dask: fails fast
            raise EngineError(f"cannot reach the Dask scheduler at {address!r} ({why})", hint=_HINT)
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:
            raise UsageError(
                "--engine dask needs Dask distributed, which is not installed",
                hint="pip install 'segtool[dask]'",
            ) from e
        if address:
            self.client = _connect(Client, address)
        else:
            n = self.cfg.workers or max(1, os.cpu_count() or 1)
            self.cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                memory_limit=self.cfg.memory_budget or "auto",
                dashboard_address=":0",  # any free port: never clash
                silence_logs=40,  # errors only: worker chatter would drown the summary
            )
            self.client = Client(self.cluster, set_as_default=False)
        return self

    @property
    def parallelism(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def map(
        self, fn: Callable[..., Any], parts: Sequence[tuple], shared: tuple = ()
    ) -> Iterator[Any]:
        from distributed import KilledWorker

        client = self.client
        if not parts:
            return
        # shared arguments go to every worker once instead of once per task
        sent = [
            client.scatter(x, broadcast=True, hash=False) if x is not None else None for x in shared
        ]
        columns = [[s] * len(parts) for s in sent] + [list(c) for c in zip(*parts, strict=True)]
        futures = client.map(
            fn,
            *columns,
            key=[f"{getattr(fn, '__name__', 'part')}-{uuid.uuid4().hex}" for _ in parts],
            retries=RETRIES,
            pure=False,
        )
        try:
            for i, future in enumerate(futures):
                try:
                    yield future.result()
                except KilledWorker:
                    raise EngineError(
                        f"partition {i + 1} of {len(parts)} failed: its worker died "
                        f"{RETRIES + 1} times (out of memory?); nothing was written",
                        hint="give the workers more memory or use smaller batches "
                        "(--memory-budget)",
                    ) from None
        finally:
            client.cancel(futures)


def _reachable(address: str) -> str | None:
    """Why a tcp:// scheduler address cannot be reached (a quick socket check), or None."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parts.hostname, parts.port or 8786
    except ValueError as e:
        return f"not an address ({e})"
    if parts.scheme not in ("tcp", "tls") or not host:
        return None  # other transports (inproc, ucx, ws): let Dask try
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def _connect(client_class, address: str):
    """A Client of the scheduler at `address`, or an EngineError within a few seconds."""
    why = _reachable(address)
    if why is None:
        client = client_class.__new__(client_class)
        try:
            client.__init__(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            return client
        except Exception as e:  # timeouts, refused handshakes, garbage from a non-Dask port
            why = f"{type(e).__name__}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s"
            with suppress(Exception):  # no second wait (and traceback) when it is collected
                client.status = "closed"
                client._loop_runner.stop()
    raise EngineError(f"cannot reach the Dask scheduler at {address!r} ({why})", hint=_HINT)


def runner(cfg: EngineSettings) -> Runner:
    """The engine of `cfg`, to be used as `with runner(cfg) as run: run.map(...)`."""
    return DaskRunner(cfg) if cfg.engine == "dask" else Runner(cfg)


def write_part(frame, path: str | Path) -> int:
    """Write one dataset part atomically (temp file + rename) and return its rows.

    Rechunked first, so the bytes do not depend on how the engine chunked the frame;
    a retried task overwrites its own part, never another's."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.rechunk().write_parquet(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return frame.height
