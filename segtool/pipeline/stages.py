"""The stages of the pipeline: the command that runs each, what it reads and what it makes.

A stage's *outputs* are lake datasets (`stays/`) or files named by one of its options
(`--output`, `--out`); its *reads* are the lake datasets it may read, optional ones
included (e.g. `homes` reads `areas/` when present). `segtool run` orders stages by
these, and the up-to-date check records the reads' manifest hashes.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass

from segtool.errors import UsageError


@dataclass(frozen=True)
class Stage:
    name: str  # as `segtool run` names it: "stays", "ingest.pings", "indices.experienced"
    command: tuple[str, ...]  # the command path: ("ingest", "pings")
    makes: tuple[str, ...] = ()  # lake datasets written
    file_options: tuple[str, ...] = ()  # options naming output files (their manifests beside)
    reads: tuple[str, ...] = ()  # lake datasets read (optional ones included)
    ignore: tuple[str, ...] = ("force", "fmt", "output", "lake", "allow_stale", "wait")
    optional: bool = False  # `run` runs it only when the config has its table
    rerun_if: tuple[str, ...] = ()  # options that make every run do the work (e.g. --append)

    @property
    def outputs_files(self) -> bool:
        return bool(self.file_options) and not self.makes


_REPORT_READS = ("population", "population_cells", "areas", "visits", "devices", "homes")
_FILE_IGNORE = ("force", "lake", "allow_stale", "wait")

STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest.pings", ("ingest", "pings"), makes=("pings",), optional=True, rerun_if=("append",)
    ),
    Stage(
        "ingest.stays", ("ingest", "stays"), makes=("stays",), optional=True, rerun_if=("append",)
    ),
    Stage("ingest.flows", ("ingest", "flows"), makes=("flows",), optional=True),
    Stage("ingest.population", ("ingest", "population"), makes=("population",), optional=True),
    Stage("ingest.landuse", ("ingest", "landuse"), makes=("landuse",), optional=True),
    Stage("ingest.pois", ("ingest", "pois"), makes=("pois",), optional=True),
    Stage("stays", ("stays",), makes=("stays",), reads=("pings",)),
    Stage("homes", ("homes",), makes=("homes",), reads=("stays", "areas")),
    Stage("groups", ("groups",), makes=("devices",), reads=("homes", "population", "areas")),
    Stage("visits", ("visits",), makes=("visits",), reads=("stays",)),
    Stage(
        "indices.residential",
        ("indices", "residential"),
        file_options=("output", "local"),
        reads=("population", "population_cells"),
        ignore=_FILE_IGNORE,
        optional=True,
    ),
    Stage(
        "indices.experienced",
        ("indices", "experienced"),
        file_options=("output", "places"),
        reads=("visits", "devices", "homes", "population", "flows"),
        ignore=_FILE_IGNORE,
        optional=True,
    ),
    Stage(
        "indices.landuse",
        ("indices", "landuse"),
        file_options=("output", "places"),
        reads=("visits", "devices", "landuse", "pois"),
        ignore=_FILE_IGNORE,
        optional=True,
    ),
    Stage(
        "report",
        ("report",),
        file_options=("out",),
        reads=(*_REPORT_READS, "landuse", "pois"),
        ignore=(*_FILE_IGNORE, "figures"),  # a copy of the figures: not part of the result
        rerun_if=("figures",),
    ),
)
BY_NAME = {s.name: s for s in STAGES}
BY_COMMAND = {s.command: s for s in STAGES}
# `segtool run ingest` runs every ingest.* stage, `indices` every indices.* one.
FAMILIES = ("ingest", "indices")


def stage_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand family names (`ingest`, `indices`) and refuse unknown ones."""
    out: list[str] = []
    for name in names:
        name = name.strip().replace(" ", ".")
        if name in FAMILIES:
            out += [s.name for s in STAGES if s.name.startswith(name + ".")]
        elif name in BY_NAME:
            out.append(name)
        else:
            known = ", ".join([*FAMILIES, *BY_NAME])
            raise UsageError(f"no stage {name!r}", hint=f"stages: {known}")
    return list(dict.fromkeys(out))


def dependencies(stages: list[Stage], after: dict[str, list[str]] | None = None) -> dict:
    """stage name → the stages (among `stages`) it depends on: those that make what it
    reads, plus `after` (extra edges, e.g. from the config's `[run] after`)."""
    makers: dict[str, list[str]] = {}
    for s in stages:
        for d in s.makes:
            makers.setdefault(d, []).append(s.name)
    graph = {}
    for s in stages:
        need = {m for d in s.reads for m in makers.get(d, []) if m != s.name}
        if s.name == "report":  # the report shows every index stage's subject
            need |= {t.name for t in stages if t.name.startswith("indices.")}
        graph[s.name] = need
    for name, extra in (after or {}).items():
        for e in extra:
            if name not in graph or e not in graph:
                raise UsageError(f"[run] after: no stage {name if name not in graph else e!r}")
            graph[name].add(e)
    return graph


def order(graph: dict[str, set[str]]) -> list[str]:
    """A dependency order (stable: ties in the order of STAGES); a cycle is an error."""
    rank = {s.name: i for i, s in enumerate(STAGES)}
    ts = graphlib.TopologicalSorter(graph)
    try:
        ts.prepare()
    except graphlib.CycleError as e:
        cycle = " → ".join(e.args[1])
        raise UsageError(f"the stages form a cycle: {cycle}") from None
    out = []
    while ts.is_active():
        ready = sorted(ts.get_ready(), key=lambda n: rank.get(n, 999))
        out += ready
        ts.done(*ready)
    return out
