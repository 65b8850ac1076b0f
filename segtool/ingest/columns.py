"""Which input column plays which role: explicit options, a TOML config, or auto-detection.

Each dataset declares its *roles* (pings: id, time, lat, lon, accuracy). A role is filled,
in this order of precedence, by

1. the command-line option (`--id device_id`),
2. the `[columns]` table of a TOML file given with `--config`,
3. auto-detection: the first alias of the role (in the order listed in `ALIASES`) that
   matches a header name, compared case-insensitively with spaces, dashes and dots
   read as underscores.

A TOML config looks like::

    [columns]
    id = "hashed_uid"
    time = "event_ts"
    lat = "y"
    lon = "x"

    [options]          # optional: defaults for options not given on the command line
    tz = "UTC"
    crs = "EPSG:3006"
    max_accuracy = 50

Required roles that stay unfilled, and names that are not in the header, are usage errors
that list the header, so the user sees what to map.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from segtool.errors import UsageError

# Aliases per role, most specific first. Matching is on normalised names (see `normalise`).
ALIASES: dict[str, tuple[str, ...]] = {
    "id": (
        "device_id",
        "device",
        "deviceid",
        "id",
        "uid",
        "user_id",
        "userid",
        "user",
        "caid",
        "maid",
        "ad_id",
        "advertiser_id",
        "idfa",
        "gaid",
        "hashed_id",
        "hashed_uid",
    ),
    "time": (
        "ts",
        "timestamp",
        "time",
        "datetime",
        "date_time",
        "epoch",
        "event_time",
        "utc_timestamp",
        "location_at",
        "timestamp_utc",
        "unix_time",
        "unixtime",
        "interval_start",
        "period_start",
        "time_bin",
        "hour",
    ),
    "lat": ("lat", "latitude", "y", "northing", "n"),
    "lon": ("lon", "lng", "long", "longitude", "x", "easting", "e"),
    "accuracy": (
        "accuracy",
        "accuracy_m",
        "horizontal_accuracy",
        "hacc",
        "h_accuracy",
        "acc",
        "precision",
        "uncertainty",
    ),
    "start": (
        "start",
        "start_time",
        "started_at",
        "start_ts",
        "arrival",
        "arrival_time",
        "t_start",
        "begin",
        "from_time",
    ),
    "end": (
        "end",
        "end_time",
        "ended_at",
        "finished_at",
        "end_ts",
        "departure",
        "departure_time",
        "t_end",
        "to_time",
    ),
    "n_pings": ("n_pings", "pings", "n_points", "point_count", "num_pings"),
    "origin": (
        "origin",
        "origin_area",
        "origin_cell",
        "home",
        "home_area",
        "home_cell",
        "from",
        "src",
        "source",
        "o",
        "o_area",
        "origin_id",
    ),
    "destination": (
        "destination",
        "destination_area",
        "destination_cell",
        "dest",
        "to",
        "dst",
        "target",
        "d",
        "d_area",
        "destination_id",
        "dest_cell",
    ),
    "count": ("count", "n", "trips", "flow", "visitors", "volume", "value", "total"),
    "slot": ("slot", "time_slot", "timeslot", "half_hour", "halfhour"),
    "daytype": ("daytype", "day_type"),
}


def normalise(name: str) -> str:
    """Header name as compared with aliases: lower case, spaces/dashes/dots as underscores."""
    return re.sub(r"[\s\-.]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class Roles:
    """The roles a dataset needs (`required`) and may use (`optional`)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(frozen=True)
class Config:
    """What a `--config` TOML file says: column names per role and option defaults."""

    columns: dict[str, str]
    options: dict[str, object]
    path: str | None = None


EMPTY_CONFIG = Config({}, {})


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config (see the module docstring); an empty one for `None`."""
    if path is None:
        return EMPTY_CONFIG
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {str(p)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"config file {str(p)!r} is not valid TOML: {e}") from None
    columns = data.get("columns", {})
    options = data.get("options", {})
    unknown = sorted(set(data) - {"columns", "options"})
    if unknown:
        raise UsageError(
            f"config file {str(p)!r} has unknown table(s) {', '.join(unknown)}",
            hint="use [columns] (role = column name) and [options]",
        )
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise UsageError(f"config file {str(p)!r}: [columns] must map roles to column names")
    known = set(ALIASES)
    bad = sorted(set(columns) - known)
    if bad:
        raise UsageError(
            f"config file {str(p)!r}: unknown role(s) {', '.join(bad)} in [columns]",
            hint=f"roles are {', '.join(sorted(known))}",
        )
    return Config(dict(columns), dict(options), str(p))


def resolve(
    header: list[str],
    roles: Roles,
    explicit: dict[str, str | None],
    config: Config = EMPTY_CONFIG,
    *,
    source: str = "input",
) -> dict[str, str]:
    """Map each role to a header column: explicit option > config > auto-detection.

    Returns {role: column} for every required role and each optional role found.
    Raises UsageError naming the file and listing its header when a required role cannot
    be filled or a named column does not exist.
    """
    mapping: dict[str, str] = {}
    by_norm: dict[str, str] = {}
    for name in header:
        by_norm.setdefault(normalise(name), name)
    for role in roles.all:
        wanted = explicit.get(role) or config.columns.get(role)
        if wanted:
            if wanted in header:
                mapping[role] = wanted
            elif normalise(wanted) in by_norm:
                mapping[role] = by_norm[normalise(wanted)]
            else:
                raise UsageError(
                    f"{source}: no column {wanted!r} (asked for as the {role} column)",
                    hint=f"the header has: {_show(header)}",
                )
            continue
    taken = set(mapping.values())
    for role in roles.all:
        if role in mapping:
            continue
        for alias in ALIASES.get(role, ()):
            name = by_norm.get(alias)
            if name is not None and name not in taken:
                mapping[role] = name
                taken.add(name)
                break
    missing = [r for r in roles.required if r not in mapping]
    if missing:
        opts = " ".join(f"--{r.replace('_', '-')} COLUMN" for r in missing)
        raise UsageError(
            f"{source}: cannot tell which column is the {', '.join(missing)} column",
            hint=f"the header has: {_show(header)}; name it with {opts} or a --config file",
        )
    return mapping


def _show(header: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(h) for h in header[:limit])
    return shown + (f", … ({len(header)} columns)" if len(header) > limit else "")
