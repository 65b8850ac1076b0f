"""Parameters of a linkage run: one frozen dataclass the manifest serialises."""

from __future__ import annotations

from dataclasses import dataclass

from segtool.errors import UsageError

UNITS = ("areas", "cells")
FAMILIES = ("poisson", "quasipoisson", "negbin")
NETWORKS = ("visitation", "copresence")


@dataclass(frozen=True)
class LinkageParams:
    """Every choice behind `segtool indices linkage`.

    - `units`: `areas` (the lake's register areas: home area of the device, area holding
      the visited cell's centre) or `cells` (H3 parents at resolution `res`).
    - `attribute`: the area attribute of homophily — `median` (the median resident's
      position on the ordered groups, 0…K, interpolated inside the median group),
      `share:<group>` (the share of that group among residents) or the name of a column
      of a user table (`attributes=` in the API, `--attributes FILE` on the CLI).
    - `min_devices`: published edges behind fewer distinct devices are suppressed and
      counted (the homophily statistics are aggregates over all edges).
    - `permutations`: replicates of the null that shuffles the attribute over areas.
    - `bootstrap`: cluster-bootstrap replicates (origins resampled) of the gravity GLM.
    - `family`: `poisson`, `quasipoisson` (Pearson-scaled SEs) or `negbin` (NB2 with
      `alpha` estimated by maximum likelihood once on the full data).
    - `copresence`: also build the co-presence network (needs device visits).
    - `max_pairs`: the gravity design holds every origin × destination pair (zeros
      included, Santos Silva & Tenreyro 2006) up to this many pairs, else only the
      linked ones.
    """

    units: str = "areas"
    res: int = 7
    attribute: str = "median"
    min_devices: int = 5
    permutations: int = 200
    bootstrap: int = 200
    family: str = "poisson"
    copresence: bool = True
    max_pairs: int = 1_000_000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise UsageError(f"--units must be one of {', '.join(UNITS)}, got {self.units!r}")
        if not 0 <= int(self.res) <= 15:
            raise UsageError(f"--res must be an H3 resolution (0–15), got {self.res}")
        if self.family not in FAMILIES:
            raise UsageError(f"--family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.min_devices < 1:
            raise UsageError("--min-devices must be at least 1")
        if self.permutations < 0 or self.bootstrap < 0:
            raise UsageError("--permutations and --bootstrap take a number of replicates (≥ 0)")
        if not 0 < self.level < 1:
            raise UsageError(f"--level must lie strictly between 0 and 1, got {self.level}")
        if not self.attribute or self.attribute == "share:":
            raise UsageError("--attribute must be median, share:<group> or a column name")
