"""Readers: the lake's `visits/` + `homes/` (+ `devices/`, `areas/`, `population/`), or
aggregated `flows/`, turned into one `LinkageData`.

`LinkageData.rows` is a lazy frame of weighted visit pieces

    device, origin, destination, cell, bin, x

with `origin` the device's home unit, `destination` the unit of the visited cell, `cell`
the visited H3 cell at the analysis resolution, `bin` the half-hour time bin (start µs //
30 min: lake visits are cut at half hours) and x = w_i · dwell_s (w_i the device's
representativeness weight). Units are String ids: register areas, or H3 cells (hex
strings) at `params.res`. `LinkageData.units` holds one row per unit with its centroid
(lat, lon), its residents and its attribute (null where unknown).

Visits that cannot be placed are excluded and counted by reason (`home_unknown`: the
device has no home, or no home area; `device_unknown`: not in `devices/`;
`destination_outside_areas`: the visited cell's centre lies in no area; `bad_dwell`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import polars_h3 as plh3

from segtool.errors import InputError, UsageError
from segtool.indices.linkage.params import LinkageParams

BIN_US = 1_800_000_000  # 30 minutes


@dataclass
class LinkageData:
    """Prepared input: visit pieces (lazy), units (eager), counts (`summary`)."""

    rows: pl.LazyFrame
    units: pl.DataFrame
    summary: dict = field(default_factory=dict)
    kind: str = "visits"  # or "flows": no devices, no co-presence


# --------------------------------------------------------------------------- attribute


def attribute_of(composition: pl.DataFrame, attribute: str) -> pl.DataFrame:
    """Per unit: `residents` (Σ count) and `attribute` from a long (unit, group, count).

    `median`: groups in sort order (Q1 < Q2 < …) as ranks 1…K; with F the cumulative
    shares, the median resident falls in the first group g with F_g ≥ ½, and its position
    is (g − 1) + (½ − F_{g−1}) / π_g ∈ [0, K] (linear inside the group, as a grouped
    median is interpolated). `share:<group>`: π_g. Units without residents get null.
    """
    comp = composition.group_by("unit", "group").agg(pl.col("count").sum())
    groups = sorted(comp["group"].unique().to_list())
    totals = comp.group_by("unit").agg(pl.col("count").sum().alias("residents"))
    if attribute.startswith("share:"):
        g = attribute.split(":", 1)[1]
        if g not in groups:
            raise UsageError(
                f"--attribute {attribute}: no group {g!r} among the residents' groups "
                f"({', '.join(groups)})"
            )
        share = comp.filter(pl.col("group") == g).select("unit", pl.col("count").alias("__g"))
        out = totals.join(share, on="unit", how="left").with_columns(
            (pl.col("__g").fill_null(0.0) / pl.col("residents")).alias("attribute")
        )
    elif attribute == "median":
        rank = {g: i for i, g in enumerate(groups)}
        s = (
            comp.with_columns(
                pl.col("group").replace_strict(rank, return_dtype=pl.Int32).alias("r")
            )
            .sort("unit", "r")
            .join(totals, on="unit")
            .with_columns((pl.col("count") / pl.col("residents")).alias("p"))
            .with_columns(pl.col("p").cum_sum().over("unit").alias("F"))
            .filter(pl.col("F") >= 0.5 - 1e-12)
            .group_by("unit")
            .agg(pl.all().first())
        )
        out = totals.join(
            s.select(
                "unit",
                (pl.col("r") + (0.5 - (pl.col("F") - pl.col("p"))) / pl.col("p")).alias(
                    "attribute"
                ),
            ),
            on="unit",
            how="left",
        )
    else:
        raise UsageError(
            f"--attribute {attribute!r}: use median, share:<group>, or a column of --attributes"
        )
    out = out.with_columns(
        pl.when(pl.col("residents") > 0).then(pl.col("attribute")).alias("attribute")
    )
    return out.select("unit", "residents", pl.col("attribute").cast(pl.Float64))


def attribute_from_table(table: pl.DataFrame, attribute: str) -> pl.DataFrame:
    """A user's table (unit or area column + the attribute column) → unit, attribute."""
    key = "unit" if "unit" in table.columns else "area" if "area" in table.columns else None
    if key is None:
        raise InputError("the attributes table needs a unit (or area) column")
    if attribute not in table.columns:
        raise InputError(
            f"the attributes table has no column {attribute!r}",
            hint=f"its columns: {', '.join(table.columns)}",
        )
    if not table.schema[attribute].is_numeric():
        raise InputError(
            f"attribute column {attribute!r} is {table.schema[attribute]}: expected numbers"
        )
    t = table.select(pl.col(key).cast(pl.String).alias("unit"), pl.col(attribute).cast(pl.Float64))
    if t["unit"].is_duplicated().any():
        raise InputError("the attributes table has more than one row for some units")
    return t.select("unit", pl.col(attribute).fill_nan(None).alias("attribute"))


# --------------------------------------------------------------------------- geometry


def area_centroids(areas: pl.DataFrame) -> pl.DataFrame:
    """unit, lat, lon of each area's centroid (computed in lon/lat: areas are small)."""
    import shapely

    geoms = shapely.from_wkb(areas["geometry"].to_numpy())
    c = shapely.centroid(geoms)
    return pl.DataFrame(
        {"unit": areas["area"].cast(pl.String), "lat": shapely.get_y(c), "lon": shapely.get_x(c)}
    )


def cell_centroids(units: pl.Series) -> pl.DataFrame:
    cells = pl.DataFrame({"unit": units}).with_columns(plh3.str_to_int("unit").alias("__c"))
    return cells.select(
        "unit", plh3.cell_to_lat("__c").alias("lat"), plh3.cell_to_lng("__c").alias("lon")
    )


def _cells_to_areas(cells: pl.Series, areas: pl.DataFrame) -> pl.DataFrame:
    from segtool.geo.areas import areas_of_points

    c = pl.DataFrame({"cell": cells})
    ll = c.select(plh3.cell_to_lat("cell").alias("lat"), plh3.cell_to_lng("cell").alias("lng"))
    found = areas_of_points(ll["lat"].to_numpy(), ll["lng"].to_numpy(), areas)
    return c.with_columns(found.alias("destination"))


# --------------------------------------------------------------------------- lake


def _scan(lake, name: str) -> pl.LazyFrame:
    from segtool.schema import validate

    lf = lake.scan(name)
    validate(name, lf.collect_schema())
    return lf


def from_lake(
    lake,
    params: LinkageParams | None = None,
    *,
    attributes: pl.DataFrame | None = None,
) -> LinkageData:
    """Visits of the lake placed between home units and visited units (module docstring)."""
    params = params or LinkageParams()
    for name in ("visits", "homes"):
        if not lake.exists(name):
            raise InputError(
                f"the lake has no {name}/ dataset",
                hint="run `segtool homes` and `segtool visits` first (or use --use-flows)",
            )
    visits = _scan(lake, "visits")
    homes = _scan(lake, "homes").collect()
    visit_res = visits.select(plh3.get_resolution(pl.col("cell").first())).collect().item()
    if visit_res is None:
        raise InputError("dataset 'visits' is empty")

    if params.units == "areas":
        if "area" not in homes.columns or homes["area"].null_count() == homes.height:
            raise InputError(
                "homes/ has no home areas",
                hint="ingest population with --areas before `segtool homes`, or use --units cells",
            )
        if not lake.exists("areas"):
            raise InputError("the lake has no areas/ dataset", hint="or use --units cells")
        areas = _scan(lake, "areas").collect()
        home = homes.select("device", pl.col("area").cast(pl.String).alias("origin"))
        cells = visits.select(pl.col("cell").unique()).collect(engine="streaming")["cell"].sort()
        dest = _cells_to_areas(cells, areas)
        centroids = area_centroids(areas)
    else:
        if params.res > visit_res:
            raise UsageError(
                f"--res {params.res} is finer than the visits' resolution {visit_res}: "
                f"choose --res {visit_res} or coarser"
            )
        home = homes.select(
            "device",
            plh3.int_to_str(plh3.cell_to_parent("home_cell", params.res)).alias("origin"),
        )
        dest = None
        centroids = None

    has_devices = lake.exists("devices")
    weights = _scan(lake, "devices").select("device", "weight").collect() if has_devices else None
    rows = visits.select("device", "cell", "start", "dwell_s").join(
        home.lazy(), on="device", how="left"
    )
    if weights is not None:
        rows = rows.join(weights.lazy(), on="device", how="left")
    else:
        rows = rows.with_columns(pl.lit(1.0).alias("weight"))
    if dest is not None:
        rows = rows.join(dest.lazy(), on="cell", how="left")
    else:
        rows = rows.with_columns(
            plh3.int_to_str(plh3.cell_to_parent("cell", params.res)).alias("destination")
        )
    reason = (
        pl.when(
            pl.col("dwell_s").is_null() | ~pl.col("dwell_s").is_finite() | (pl.col("dwell_s") <= 0)
        )
        .then(pl.lit("bad_dwell"))
        .when(pl.col("origin").is_null())
        .then(pl.lit("home_unknown"))
        .when(pl.col("weight").is_null())
        .then(pl.lit("device_unknown"))
        .when(pl.col("destination").is_null())
        .then(pl.lit("destination_outside_areas"))
    )
    rows = rows.with_columns(reason.otherwise(pl.lit(None, pl.String)).alias("__reason"))
    # one pass: visits by reason, the units present, visits crossing a half hour
    crosses = (pl.col("start").dt.epoch("us") % BIN_US) + (pl.col("dwell_s") * 1e6).round() > (
        BIN_US + 1
    )
    pass1 = (
        rows.group_by("__reason", "origin", "destination")
        .agg(pl.len(), crosses.sum().alias("__cross"))
        .collect(engine="streaming")
    )
    counts = pass1.group_by("__reason").agg(pl.col("len").sum())
    rejected = {
        r: int(n) for r, n in zip(counts["__reason"], counts["len"], strict=True) if r is not None
    }
    rows_in = int(counts["len"].sum())
    if rows_in == sum(rejected.values()):
        raise InputError(
            "no visit could be placed between a home unit and a visited unit",
            hint="visits set aside: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(rejected.items())),
        )
    start_us = pl.col("start").dt.epoch("us")
    good = rows.filter(pl.col("__reason").is_null()).select(
        "device",
        "origin",
        "destination",
        "cell",
        (start_us // BIN_US).alias("bin"),
        (pl.col("weight") * pl.col("dwell_s")).alias("x"),
    )
    crossing = int(pass1["__cross"].sum())
    summary: dict = {
        "source": "lake",
        "units": params.units,
        "rows_in": rows_in,
        "rejected_by_reason": dict(sorted(rejected.items())),
        "visits_crossing_half_hours": int(crossing),
    }

    # units: the network's units, their centroids, residents and attribute
    placed = pass1.filter(pl.col("__reason").is_null())
    present = pl.concat([placed["origin"], placed["destination"]]).unique().sort().alias("unit")
    if centroids is None:
        centroids = cell_centroids(present)
    units = pl.DataFrame({"unit": present}).join(centroids, on="unit", how="left")
    comp = _composition(lake, params, homes, home, weights)
    units = _with_attribute(units, comp, attributes, params.attribute)
    return LinkageData(rows=good, units=units, summary=summary)


def _composition(lake, params, homes, home, weights) -> pl.DataFrame | None:
    """Residents by group per unit: the register (population/ for areas, population_cells/
    aggregated to the parents for cells), else the weighted resident devices' groups."""
    if params.units == "areas" and lake.exists("population"):
        pop = _scan(lake, "population").collect()
        if "unit" in pop.columns:
            return pop.select(pl.col("unit").cast(pl.String), "group", "count")
    if params.units == "cells" and lake.exists("population_cells"):
        pop = _scan(lake, "population_cells").collect()
        if (
            pop.height
            and pop.select(plh3.get_resolution(pl.col("cell").first())).item() >= params.res
        ):
            return pop.select(
                plh3.int_to_str(plh3.cell_to_parent("cell", params.res)).alias("unit"),
                "group",
                "count",
            )
    if lake.exists("devices"):
        dev = _scan(lake, "devices").collect()
        if "group" in dev.columns:
            return (
                dev.filter(pl.col("group").is_not_null())
                .join(home, on="device", how="inner")
                .filter(pl.col("origin").is_not_null())
                .select(pl.col("origin").alias("unit"), "group", pl.col("weight").alias("count"))
            )
    return None


def _with_attribute(units, comp, attributes, attribute) -> pl.DataFrame:
    if comp is not None:
        res = comp.group_by("unit").agg(pl.col("count").sum().alias("residents"))
        units = units.join(res, on="unit", how="left")
    else:
        units = units.with_columns(pl.lit(None, pl.Float64).alias("residents"))
    units = units.with_columns(pl.col("residents").fill_null(0.0))
    if attributes is not None:
        att = attribute_from_table(attributes, attribute)
    elif comp is None:
        raise InputError(
            "no residents' composition to derive the attribute from",
            hint="the lake needs population/ (or devices/ with groups), or pass --attributes FILE",
        )
    else:
        att = attribute_of(comp, attribute).select("unit", "attribute")
    return units.join(att, on="unit", how="left")


# --------------------------------------------------------------------------- flows


def from_flows(
    flows: pl.DataFrame | pl.LazyFrame,
    units: pl.DataFrame,
    params: LinkageParams | None = None,
) -> LinkageData:
    """Aggregated flows (origin area × destination area or cell, count): a visitation
    network whose amount is the count (people or trips) — no devices, so no co-presence,
    and the `--min-devices` rule applies to the edge's count.

    `units`: unit, lat, lon, residents, attribute of the origins and destinations.
    """
    params = params or LinkageParams()
    df = flows.lazy().collect()
    if "destination" not in df.columns and "destination_cell" in df.columns:
        df = df.with_columns(plh3.int_to_str("destination_cell").alias("destination"))
    if "origin" not in df.columns and "origin_cell" in df.columns:
        df = df.with_columns(plh3.int_to_str("origin_cell").alias("origin"))
    for c in ("origin", "destination", "count"):
        if c not in df.columns:
            raise InputError(f"the flows table needs an {c} column")
    if params.units == "cells":

        def conv(c):
            return plh3.int_to_str(plh3.cell_to_parent(plh3.str_to_int(c), params.res)).alias(c)

        df = df.with_columns(conv("origin"), conv("destination"))
    rows_in = df.height
    ok = pl.col("count").is_finite() & (pl.col("count") > 0)
    ok = ok & pl.col("origin").is_not_null() & pl.col("destination").is_not_null()
    bad = df.filter(~ok).height
    df = df.filter(ok)
    if df.height == 0:
        raise InputError("the flows table has no usable rows")
    rows = df.select(
        pl.int_range(pl.len(), dtype=pl.UInt64).alias("device"),
        pl.col("origin").cast(pl.String),
        pl.col("destination").cast(pl.String),
        pl.lit(0, pl.UInt64).alias("cell"),
        pl.lit(0, pl.Int64).alias("bin"),
        pl.col("count").cast(pl.Float64).alias("x"),
    )
    present = pl.concat([rows["origin"], rows["destination"]]).unique().sort().alias("unit")
    u = pl.DataFrame({"unit": present}).join(units, on="unit", how="left")
    summary = {
        "source": "flows",
        "units": params.units,
        "rows_in": rows_in,
        "rejected_by_reason": {"bad_count": bad} if bad else {},
    }
    return LinkageData(rows=rows.lazy(), units=u, summary=summary, kind="flows")


def flow_units(lake, present: pl.Series, params: LinkageParams, attributes=None) -> pl.DataFrame:
    """Units of a flows network: centroids (areas/ or H3 centres), residents and the
    attribute (population/ by area, or the user's `attributes` table)."""
    if params.units == "areas":
        if not lake.exists("areas"):
            raise InputError("flows between areas need the lake's areas/ for the centroids")
        cen = area_centroids(_scan(lake, "areas").collect())
    else:
        cen = cell_centroids(present)
    units = pl.DataFrame({"unit": present}).join(cen, on="unit", how="left")
    comp = None
    if params.units == "areas" and lake.exists("population"):
        pop = _scan(lake, "population").collect()
        if "unit" in pop.columns:
            comp = pop.select(pl.col("unit").cast(pl.String), "group", "count")
    return _with_attribute(units, comp, attributes, params.attribute)


def quartiles(values: np.ndarray) -> np.ndarray:
    """Quartile 1…4 of each value among the given values (ties broken by position)."""
    n = values.size
    order = np.argsort(values, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return 1 + (4 * rank) // max(n, 1)
