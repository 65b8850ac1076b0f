"""Parameters of the experienced indices: one frozen dataclass the manifest serialises."""

from __future__ import annotations

import re
from dataclasses import dataclass

from segtool.errors import UsageError

STRATA = ("slot", "hour", "daytype")
INDICES = (
    "place_segregation",
    "ice",
    "individual_segregation",
    "home_segregation",
    "experienced_isolation",
    "residential_isolation",
    "exposure",
    "economic_segregation",
)
REFERENCES = ("uniform", "population")
RESAMPLERS = ("poisson", "multinomial")


@dataclass(frozen=True)
class ExperiencedParams:
    """Every choice behind an experienced-segregation run.

    - `by`: strata of the place units (any of `slot`, `hour`, `daytype`); a unit is a
      place × stratum, and individual exposure uses the units' compositions.
    - `bin`: co-presence time bin (`5m`, `30m`, `1h`, … any `<n>s|m|h`).
    - `reference`: reference shares r_g of S — `uniform` (1/K, Moro et al.) or
      `population` (π_g from the population, else from the weighted devices).
    - `leave_one_out`: also report S_i with each device's own time removed from the places.
    - `min_devices`: units visited by fewer distinct devices are set aside before any
      index is computed (privacy) and counted.
    - `ice_high` / `ice_low`: the two groups of the index of concentration at the extremes.
    - `ses_rank`: turn SES values into percentile ranks before the economic index.
    - `bootstrap`, `resample`, `null`, `seed`, `level`: inference (see `resample.py`).
    - `tz`: time zone for slot/daytype derived from naive or UTC starts (plain tables).
    - `indices`: compute only these (empty: all that apply) — also skips their replicates.
    """

    by: tuple[str, ...] = ()
    bin: str = "30m"
    reference: str = "uniform"
    leave_one_out: bool = False
    min_devices: int = 5
    ice_high: str | None = None
    ice_low: str | None = None
    ses_rank: bool = False
    bootstrap: int = 0
    resample: str = "poisson"
    null: int = 0
    seed: int = 0
    level: float = 0.95
    tz: str = "Europe/Stockholm"
    indices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [i for i in self.indices if i not in INDICES]
        if unknown:
            raise UsageError(f"--index {unknown[0]!r} is not one of {', '.join(INDICES)}")
        bad = [b for b in self.by if b not in STRATA]
        if bad:
            raise UsageError(f"--by {bad[0]!r} is not one of {', '.join(STRATA)}")
        if len(set(self.by)) != len(self.by):
            raise UsageError("--by names a stratum twice")
        if "slot" in self.by and "hour" in self.by:
            raise UsageError("--by slot and --by hour overlap: choose one")
        if self.reference not in REFERENCES:
            raise UsageError(f"--reference must be one of {', '.join(REFERENCES)}")
        if self.resample not in RESAMPLERS:
            raise UsageError(f"--resample must be one of {', '.join(RESAMPLERS)}")
        if self.min_devices < 1:
            raise UsageError("--min-devices must be at least 1")
        if self.bootstrap < 0 or self.null < 0:
            raise UsageError("--bootstrap and --null take a number of replicates (≥ 0)")
        if (self.ice_high is None) != (self.ice_low is None):
            raise UsageError("ICE needs both --ice-high and --ice-low")
        if self.ice_high is not None and self.ice_high == self.ice_low:
            raise UsageError("--ice-high and --ice-low must be different groups")
        if not 0.5 < self.level < 1:
            raise UsageError("--level must lie between 0.5 and 1")
        bin_seconds(self.bin)

    @property
    def bin_s(self) -> int:
        return bin_seconds(self.bin)

    def wants(self, *names: str) -> bool:
        """Whether any of these indices is to be computed."""
        return not self.indices or any(n in self.indices for n in names)


_BIN = re.compile(r"^\s*(\d+)\s*(s|m|min|h)\s*$", re.IGNORECASE)


def bin_seconds(text: str) -> int:
    """`5m` → 300, `1h` → 3600, `90s` → 90."""
    m = _BIN.match(str(text))
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"--bin {text!r} is not a duration such as 5m, 30m or 1h")
    n, unit = int(m.group(1)), m.group(2).lower()
    return n * {"s": 1, "m": 60, "min": 60, "h": 3600}[unit]
