"""Lineage: which lake datasets a dataset was built from, and whether they changed since.

Every stage records, in its output's manifest, the sha256 of the `_manifest.json` of each
lake dataset it read::

    "inputs": [{"dataset": "pings", "manifest_sha256": "9f2c…"}]

(`Manifest.add_dataset_input`). Manifests carry no wall-clock time, so a re-run on the same
inputs writes the same manifest bytes: *equal hashes mean "built from this very version"*.

A dataset D is **stale** when, for an upstream U it recorded,

- U's current manifest hash differs from the recorded one (U was rebuilt since), or
- U is no longer in the lake, or
- U is itself stale (transitively: `homes/` built from `stays/` built from an earlier
  `pings/` is stale *because of* `stays/`).

One check answers both questions the project asks of lineage: a stage refuses stale inputs
(`require_current`, unless `--allow-stale`, which warns and records the stale inputs in the
output's manifest under `stale_inputs`; `Manifest.add_dataset_input` runs this check, so
every stage that records its inputs is checked), and a pipeline skips a stage whose output is
current and built with the same parameters (`rebuild_reasons(...) == []`). `segtool lake
info` marks stale datasets (`stale_datasets`).

Only the hashes of the manifests are compared, never the data: each commit writes a new
manifest (`Lake.writing`), so the manifest hash names the version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segtool.errors import StaleInputError

if TYPE_CHECKING:  # pragma: no cover
    from segtool.lake import Lake, Manifest

STALE_KEY = "stale_inputs"  # where --allow-stale records what it used (Manifest.stale_inputs)

# What each stage's output may read (optional inputs included), for pipelines that need the
# order of stages before any manifest exists. The manifests' recorded inputs stay the truth.
READS: dict[str, tuple[str, ...]] = {
    "stays": ("pings",),
    "homes": ("stays", "areas"),
    "devices": ("homes", "population", "areas"),
    "visits": ("stays",),
    "exposure": ("visits", "devices", "flows", "population"),
}


@dataclass(frozen=True)
class StaleInput:
    """`dataset` was built from a version of `upstream` that is no longer the current one.

    `recorded` is the upstream manifest hash `dataset` was built from, `current` the hash of
    the upstream's manifest now (None: the upstream is gone). `cause` says why:
    "changed" (rebuilt since), "missing" (removed), "stale" (the upstream is itself stale;
    its own entries are in the list too). `rebuild` is the command that rebuilds `dataset`.
    """

    dataset: str
    upstream: str
    recorded: str | None
    current: str | None
    cause: str
    rebuild: str

    @property
    def message(self) -> str:
        if self.cause == "missing":
            what = (
                f"{self.dataset}/ was built from {self.upstream}/, which is no longer in the lake"
            )
        elif self.cause == "stale":
            what = f"{self.dataset}/ was built from {self.upstream}/, which is itself stale"
        else:
            what = f"{self.dataset}/ was built from an earlier {self.upstream}/"
        return f"{what}; run {self.rebuild}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "upstream": self.upstream,
            "recorded": self.recorded,
            "current": self.current,
            "cause": self.cause,
            "rebuild": self.rebuild,
            "message": self.message,
        }


def manifest_digest(lake: Lake, name: str) -> str | None:
    """sha256 of dataset `name`'s current `_manifest.json`, None if it has none."""
    from segtool.lake import MANIFEST_NAME

    path = lake.path(name) / MANIFEST_NAME
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def recorded_upstreams(manifest: dict | None) -> dict[str, str | None]:
    """The lake datasets a manifest says its dataset was built from: name → manifest hash."""
    out: dict[str, str | None] = {}
    for entry in (manifest or {}).get("inputs") or []:
        if isinstance(entry, dict) and "dataset" in entry:
            out[str(entry["dataset"])] = entry.get("manifest_sha256")
    return out


def rebuild_command(lake: Lake, name: str) -> str:
    """The command that (re)builds dataset `name`, e.g. `segtool stays --lake lake`."""
    from segtool.lake import PRODUCED_BY

    made_by = (lake.manifest(name) or {}).get("command") if lake.exists(name) else None
    if made_by:
        cmd = made_by if str(made_by).startswith("segtool") else f"segtool {made_by}"
    else:
        cmd = PRODUCED_BY.get(name, f"the command that makes {name}/")
    return f"`{cmd} --lake {lake.root}`"


def stale_inputs(lake: Lake, name: str, *, transitive: bool = True) -> list[StaleInput]:
    """Why dataset `name` is stale (empty: it is current).

    Direct causes come first, then (with `transitive`) the causes of each stale upstream,
    so the first entry whose `dataset` is not `name` names the dataset to rebuild first.
    """
    out: list[StaleInput] = []
    _collect(lake, name, transitive, out, set())
    return out


def _collect(lake: Lake, name: str, transitive: bool, out: list[StaleInput], seen: set) -> bool:
    if name in seen:
        return any(s.dataset == name for s in out)
    seen.add(name)
    manifest = lake.manifest(name) if lake.exists(name) else None
    stale = False
    for up, recorded in sorted(recorded_upstreams(manifest).items()):
        current = manifest_digest(lake, up)
        cause = None
        if current is None:
            cause = "missing"
        elif current != recorded:
            cause = "changed"
        elif transitive and _collect(lake, up, transitive, out, seen):
            cause = "stale"
        if cause:
            stale = True
            out.append(StaleInput(name, up, recorded, current, cause, rebuild_command(lake, name)))
    return stale


def check_inputs(lake: Lake, names: list[str] | tuple[str, ...]) -> list[StaleInput]:
    """Every reason why one of the datasets `names` (the inputs of a stage) is stale."""
    out: list[StaleInput] = []
    seen: set = set()
    for name in names:
        if lake.exists(name):
            _collect(lake, name, True, out, seen)
    return out


def require_current(
    lake: Lake,
    names: list[str] | tuple[str, ...],
    *,
    allow_stale: bool = False,
    manifest: Manifest | None = None,
) -> list[StaleInput]:
    """Refuse to read stale inputs: raise `StaleInputError` naming the stale dataset and the
    command that rebuilds it. With `allow_stale`, warn instead, record the stale inputs in
    `manifest.stale_inputs` (if given) and return them."""
    found = check_inputs(lake, names)
    if not found:
        return []
    root = _root_cause(found)
    if not allow_stale:
        raise StaleInputError(
            root.message,
            hint="rebuild it first, or pass --allow-stale to use it anyway (recorded in "
            "the output's manifest)",
            stale=found,
        )
    from rich.markup import escape

    from segtool import console

    for s in found:
        if s.cause != "stale":
            console.note(escape(f"--allow-stale: {s.message}"))
    if manifest is not None:
        known = {(d["dataset"], d["upstream"]) for d in manifest.stale_inputs}
        manifest.stale_inputs += [
            s.to_dict() for s in found if (s.dataset, s.upstream) not in known
        ]
    return found


def _root_cause(found: list[StaleInput]) -> StaleInput:
    """The entry nearest the source: a changed/missing upstream, the last one found
    (found depth-first, so the deepest)."""
    direct = [s for s in found if s.cause != "stale"]
    return direct[-1] if direct else found[-1]


def stale_datasets(lake: Lake, names: list[str] | None = None) -> dict[str, list[StaleInput]]:
    """For each dataset of the lake (or of `names`) that is stale, why (see `stale_inputs`)."""
    names = lake.datasets() if names is None else names
    out = {}
    for name in names:
        found = stale_inputs(lake, name)
        if found:
            out[name] = found
    return out


def rebuild_reasons(
    lake: Lake,
    name: str,
    *,
    command: str | None = None,
    parameters: Any = None,
) -> list[str]:
    """Why dataset `name` must be (re)built; empty when it is up to date.

    Up to date: it exists, is not stale (see `stale_inputs`), was not built with
    `--allow-stale`, and — when given — was made by `command` with `parameters` (compared as
    the manifest serialises them).
    """
    from segtool.lake import _jsonable

    if not lake.exists(name):
        return [f"{name}/ is not in the lake"]
    manifest = lake.manifest(name) or {}
    reasons = [s.message for s in stale_inputs(lake, name)]
    if manifest.get(STALE_KEY):
        reasons.append(f"{name}/ was built with --allow-stale from stale inputs")
    if command is not None and manifest.get("command") != command:
        reasons.append(f"{name}/ was made by `{manifest.get('command')}`, not `{command}`")
    if parameters is not None:
        want = json.dumps(_jsonable(parameters), sort_keys=True)
        have = json.dumps(manifest.get("parameters"), sort_keys=True)
        if want != have:
            reasons.append(f"{name}/ was built with other parameters")
    return reasons
