"""Each device's group and representativeness weight, from its home and the register.

Hard groups (SPEC §3): the group of the device's home area.
- ``median`` rule, for ordered groups (income quartiles Q1–Q4, deciles D1–D10, …): the
  group of the area's median resident — the first group, in order, at which the cumulative
  share of residents reaches 1/2.
- ``plurality`` rule, for unordered groups (e.g. birth region): the area's largest group;
  ties go to the first group in order.
- ``auto`` (default): ``median`` when `order` is given or every label is one prefix plus a
  number (Q1…Q4), else ``plurality``. Groups are ordered by `order`, else by that number,
  else alphabetically.
- or a device attribute table (device, group), device ids already pseudonymised.

Soft groups: the device carries its home area's group composition, one Float64 column per
group (shares summing to 1).

Weights (inverse-probability, SPEC §3): w = residents of the home area ÷ devices homed
there, trimmed at sqrt(CV² + 1) · 3.5 · median(w) over devices (CV = sd/mean of w); trimmed
weights are capped, not redistributed.

Homes are matched to the register by area (population `unit` = homes `area`) or, for
gridded population, by cell (population `cell` = homes `home_cell`, same H3 resolution).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError

GroupRule = Literal["auto", "median", "plurality"]
_ORDERED = re.compile(r"^(\D*?)(\d+)$")
RESERVED = ("device", "weight", "group")


@dataclass(frozen=True)
class GroupParams:
    soft: bool = False
    rule: GroupRule = "auto"
    order: tuple[str, ...] | None = None
    trim: float = 3.5

    def __post_init__(self) -> None:
        if self.rule not in ("auto", "median", "plurality"):
            raise UsageError(f"--rule must be auto, median or plurality, not {self.rule!r}")
        if not self.trim > 0:
            raise UsageError("--trim must be positive")


@dataclass(frozen=True)
class Register:
    """How homes meet the population table: the key column on each side."""

    unit: str  # population column: "unit" or "cell"
    home: str  # homes column: "area" or "home_cell"


def register_key(population: pl.DataFrame | pl.LazyFrame) -> Register:
    cols = population.collect_schema().names()
    if "unit" in cols:
        return Register("unit", "area")
    if "cell" in cols:
        return Register("cell", "home_cell")
    raise InputError("the population dataset has neither a `unit` nor a `cell` column")


def group_order(groups: list[str], order: tuple[str, ...] | None = None) -> list[str]:
    """The groups in order: `order` if given (must name exactly these groups), else by the
    number in labels like Q1…Q4, else alphabetical."""
    groups = sorted(set(groups))
    if order:
        if sorted(set(order)) != groups or len(order) != len(groups):
            raise UsageError(
                f"--order names {', '.join(order)} but the population has groups "
                f"{', '.join(groups)}"
            )
        return list(order)
    if _is_numbered(groups):
        return sorted(groups, key=lambda g: int(_ORDERED.match(g).group(2)))  # type: ignore[union-attr]
    return groups


def _is_numbered(groups: list[str]) -> bool:
    matches = [_ORDERED.match(g) for g in groups]
    return bool(groups) and all(matches) and len({m.group(1) for m in matches}) == 1  # type: ignore[union-attr]


def resolve_rule(rule: GroupRule, groups: list[str], order: tuple[str, ...] | None) -> str:
    if rule != "auto":
        return rule
    return "median" if order or _is_numbered(sorted(set(groups))) else "plurality"


def area_groups(
    population: pl.DataFrame, params: GroupParams = GroupParams(), unit: str = "unit"
) -> tuple[pl.DataFrame, str, list[str]]:
    """Each unit's hard group (unit, group) or soft composition (unit, <one column per group>).

    Returns (frame, rule used, group order). Units without residents get no row.
    """
    pop = population.group_by(unit, "group").agg(pl.col("count").sum()).filter(pl.col("count") > 0)
    order = group_order(pop["group"].to_list(), params.order)
    bad = [g for g in order if g in RESERVED]
    if params.soft and bad:
        raise InputError(f"group name(s) {', '.join(bad)} clash with the devices/ columns")
    rank = {g: i for i, g in enumerate(order)}
    pop = pop.with_columns(
        pl.col("group").replace_strict(rank, return_dtype=pl.UInt32).alias("rank"),
        (pl.col("count") / pl.col("count").sum().over(unit)).alias("share"),
    ).sort(unit, "rank")
    if params.soft:
        wide = pop.pivot("group", index=unit, values="share", sort_columns=False).fill_null(0.0)
        return wide.select(unit, *[g for g in order if g in wide.columns]), "soft", order
    rule = resolve_rule(params.rule, order, params.order)
    if rule == "median":
        picked = pop.filter(pl.col("share").cum_sum().over(unit) >= 0.5 - 1e-12)
    else:
        picked = pop.sort(unit, "count", "rank", descending=[False, True, False])
    return picked.group_by(unit, maintain_order=True).first().select(unit, "group"), rule, order


@dataclass(frozen=True)
class WeightReport:
    cap: float
    trimmed: int
    median: float
    cv: float


def ipw_weights(
    homes: pl.DataFrame, population: pl.DataFrame, key: Register, trim: float = 3.5
) -> tuple[pl.DataFrame, WeightReport]:
    """device, weight: residents of the home unit ÷ devices homed there, trimmed (SPEC §3)."""
    residents = population.group_by(key.unit).agg(pl.col("count").sum().alias("residents"))
    counts = homes.group_by(key.home).agg(pl.len().alias("devices"))
    per_unit = counts.join(residents, left_on=key.home, right_on=key.unit).select(
        key.home, (pl.col("residents") / pl.col("devices")).alias("w")
    )
    w = homes.select("device", key.home).join(per_unit, on=key.home, how="inner")
    if w.height == 0:
        return w.select("device", pl.col("w").alias("weight")), WeightReport(
            math.nan, 0, math.nan, math.nan
        )
    values = w["w"].to_numpy()
    mean = float(values.mean())
    cv = float(values.std() / mean) if mean > 0 else 0.0
    median = float(np.median(values))
    cap = math.sqrt(cv * cv + 1.0) * trim * median
    out = w.select("device", pl.col("w").clip(upper_bound=cap).alias("weight"))
    return out, WeightReport(cap, int((values > cap).sum()), median, cv)


@dataclass(frozen=True)
class GroupResult:
    devices: pl.DataFrame  # device, group | <shares…>, weight
    dropped: dict[str, int]  # reason → devices
    rule: str
    order: list[str]
    weights: WeightReport | None


def assign_groups(
    homes: pl.DataFrame | None,
    population: pl.DataFrame | None,
    params: GroupParams = GroupParams(),
    attributes: pl.DataFrame | None = None,
) -> GroupResult:
    """Groups and weights of devices (SPEC §1 `devices/`), sorted by device.

    Needs `homes` and `population` (weights, and groups unless `attributes` gives them).
    Devices that cannot get a group or weight are left out and counted by reason.
    """
    if attributes is not None:
        attributes = _clean_attributes(attributes)
    if population is None or homes is None:
        if attributes is None:
            raise InputError("groups need homes/ and population/, or a device attribute file")
        devices = attributes.with_columns(pl.lit(1.0).alias("weight")).sort("device")
        return GroupResult(devices, {}, "attribute", sorted(set(devices["group"])), None)
    key = register_key(population)
    _check_cells(homes, population, key)
    dropped: dict[str, int] = {}
    located = homes.filter(pl.col(key.home).is_not_null())
    dropped["home_outside_areas"] = homes.height - located.height
    weights, report = ipw_weights(located, population, key, params.trim)
    if attributes is not None:
        grouped = located.select("device").join(attributes, on="device", how="inner")
        dropped["no_attribute"] = located.height - grouped.height
        rule, order = "attribute", sorted(set(attributes["group"]))
    else:
        table, rule, order = area_groups(population, params, key.unit)
        grouped = located.select("device", key.home).join(
            table, left_on=key.home, right_on=key.unit, how="inner"
        )
        grouped = grouped.drop(key.home)
        dropped["area_without_residents"] = located.height - grouped.height
    devices = grouped.join(weights, on="device", how="inner").sort("device")
    if attributes is not None:
        dropped["area_without_residents"] = grouped.height - devices.height
    return GroupResult(devices, {k: v for k, v in dropped.items() if v}, rule, order, report)


def _clean_attributes(attributes: pl.DataFrame) -> pl.DataFrame:
    if not {"device", "group"} <= set(attributes.columns):
        raise InputError("the attribute file needs columns `device` and `group`")
    try:
        out = attributes.select(
            pl.col("device").cast(pl.UInt64, strict=True), pl.col("group").cast(pl.String)
        )
    except pl.exceptions.InvalidOperationError as e:
        raise InputError(
            "attribute `device` values must be the lake's pseudonymised ids (unsigned integers)"
        ) from e
    dup = out.group_by("device").agg(pl.col("group").n_unique()).filter(pl.col("group") > 1)
    if dup.height:
        raise InputError(f"{dup.height} device(s) have more than one group in the attribute file")
    return out.unique("device").filter(pl.col("group").is_not_null())


def _check_cells(homes: pl.DataFrame, population: pl.DataFrame, key: Register) -> None:
    if key.unit != "cell" or homes.height == 0 or population.height == 0:
        return
    import polars_h3 as plh3

    def res(frame: pl.DataFrame, col: str) -> int:
        r = frame.head(1).select(plh3.get_resolution(col).alias("r"))["r"][0]
        if r is None:
            raise InputError(f"{col} {frame[col][0]} is not a valid H3 cell")
        return int(r)

    rh, rp = res(homes, "home_cell"), res(population, "cell")
    if rh != rp:
        raise UsageError(
            f"home cells are at H3 resolution {rh} but the population grid at {rp}",
            hint=f"run `segtool homes --res {rp}`",
        )


@dataclass(frozen=True)
class Coverage:
    table: pl.DataFrame  # published: units with ≥ k devices
    suppressed: int
    rho: float
    p_value: float
    units: int


def coverage(homes: pl.DataFrame, population: pl.DataFrame, key: Register, k: int = 5) -> Coverage:
    """Devices homed per unit against its residents, with Spearman ρ over all units
    (zero-device units included); units with fewer than `k` devices are suppressed."""
    from scipy.stats import spearmanr

    name = "area" if key.unit == "unit" else "cell"
    residents = population.group_by(key.unit).agg(pl.col("count").sum().alias("residents"))
    counts = (
        homes.filter(pl.col(key.home).is_not_null())
        .group_by(key.home)
        .agg(pl.len().cast(pl.Int64).alias("devices"))
    )
    table = (
        residents.join(counts, left_on=key.unit, right_on=key.home, how="full", coalesce=True)
        .rename({key.unit: name})
        .with_columns(pl.col("devices").fill_null(0), pl.col("residents").fill_null(0.0))
        .with_columns(
            pl.when(pl.col("residents") > 0)
            .then(pl.col("devices") / pl.col("residents") * 1000.0)
            .alias("devices_per_1000"),
            pl.when((pl.col("residents") > 0) & (pl.col("devices") > 0))
            .then(pl.col("residents") / pl.col("devices"))
            .alias("weight"),
        )
        .sort(name)
    )
    both = table.filter(pl.col("residents") > 0)
    if both.height >= 3 and both["devices"].n_unique() > 1 and both["residents"].n_unique() > 1:
        res = spearmanr(both["devices"].to_numpy(), both["residents"].to_numpy())
        rho, p = float(res.statistic), float(res.pvalue)
    else:
        rho = p = math.nan
    published = table.filter(pl.col("devices") >= k)
    return Coverage(published, table.height - published.height, rho, p, both.height)
