"""Readers: the canonical long frame, the lake's visits/ + devices/, and aggregated flows,
each turned into a `Panel` (see `panel.py`).

Canonical long frame (the public input): one row per visit (or per visit × group for
soft membership) with columns

    device, place, group, dwell_s[, weight, start, slot, daytype, home, ses]

Soft membership is the device's dwell split across groups by its shares; a device's
shares are recovered as its dwell shares by group (exact when every row of the device is
split the same way, as it is for hard groups and for soft splits). `weight` is the
device's representativeness weight (1 when absent).

"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from segtool.errors import InputError
from segtool.exact import seconds_sum
from segtool.indices.experienced.panel import (
    Panel,
    build_panel,
    drop_units,
    population_frame,
    schema_of,
)
from segtool.indices.experienced.params import ExperiencedParams
from segtool.mobility.visits import cut_at_half_hours, daytype_expr, slot_of

# --------------------------------------------------------------------------- reading


def read_table(path: str | Path) -> pl.LazyFrame:
    """A CSV or Parquet file as a LazyFrame (CSV dates are parsed where unambiguous)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq", ".geoparquet"):
            return pl.scan_parquet(p)
        if suffix in (".csv", ".txt", ".tsv", ".gz"):
            sep = "\t" if suffix == ".tsv" else ","
            return pl.scan_csv(p, separator=sep, try_parse_dates=True, infer_schema_length=10000)
    except (pl.exceptions.ComputeError, OSError) as e:  # pragma: no cover - corrupt files
        raise InputError(f"cannot read {p}: {e}") from e
    raise InputError(f"{p}: expected a .csv or .parquet file")


# --------------------------------------------------------------------------- time


def _start_expr(dtype: pl.DataType, tz: str) -> pl.Expr:
    """`start` as UTC microseconds since the epoch (Int64); naive times are local (`tz`)."""
    c = pl.col("start")
    if dtype == pl.String:
        c = c.str.to_datetime(strict=False, time_unit="us")
        dtype = pl.Datetime("us")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            c = c.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        return c.dt.convert_time_zone("UTC").dt.epoch("us")
    if dtype == pl.Date:
        return c.cast(pl.Datetime("us")).dt.replace_time_zone(tz).dt.epoch("us")
    if dtype.is_numeric():  # epoch seconds
        return (c.cast(pl.Float64) * 1e6).round().cast(pl.Int64)
    raise InputError(f"column start has type {dtype}: expected a time")


def _local(tz: str) -> pl.Expr:
    return (
        pl.from_epoch(pl.col("start_us"), time_unit="us")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(tz)
    )


def _device_constant(long: pl.LazyFrame, col: str) -> pl.DataFrame:
    """One value per device of a column that must not vary within a device."""
    d = (
        long.filter(pl.col(col).is_not_null())
        .group_by("device")
        .agg(pl.col(col).first(), pl.col(col).n_unique().alias("__nu"))
        .collect(engine="streaming")
    )
    bad = d.filter(pl.col("__nu") > 1).height
    if bad:
        raise InputError(f"{bad} device(s) have more than one {col!r} value: {col} is per device")
    return d.drop("__nu")


# --------------------------------------------------------------------------- entry points


def panel_from_long(
    long: pl.DataFrame | pl.LazyFrame,
    params: ExperiencedParams | None = None,
    *,
    population: pl.DataFrame | None = None,
    ses: pl.DataFrame | None = None,
    source: str = "table",
) -> Panel:
    """Prepare the canonical long frame (see the module docstring).

    Rows with an empty device, place or group, a dwell that is missing, non-finite or
    ≤ 0, or a negative weight are set aside and counted by reason in `panel.summary`.
    """
    params = params or ExperiencedParams()
    lf = long.lazy()
    schema = schema_of(lf)
    if "dwell_s" not in schema and "dwell" in schema:
        lf = lf.rename({"dwell": "dwell_s"})
        schema = schema_of(lf)
    missing = [c for c in ("device", "place", "group", "dwell_s") if c not in schema]
    if missing:
        raise InputError(
            f"the visits table lacks column(s) {', '.join(missing)}",
            hint="expected device, place, group, dwell_s (optional weight, start, slot, daytype, home, ses)",
        )
    if not schema["dwell_s"].is_numeric():
        raise InputError(f"column dwell_s has type {schema['dwell_s']}: expected a number")
    if "weight" in schema and not schema["weight"].is_numeric():
        raise InputError(f"column weight has type {schema['weight']}: expected a number")
    exprs = [pl.col("dwell_s").cast(pl.Float64), pl.col("group").cast(pl.String)]
    exprs.append(
        pl.col("weight").cast(pl.Float64) if "weight" in schema else pl.lit(1.0).alias("weight")
    )
    if "start" in schema:
        exprs.append(_start_expr(schema["start"], params.tz).alias("start_us"))
    lf = lf.with_columns(exprs)

    reason = (
        pl.when(pl.col("device").is_null())
        .then(pl.lit("empty_id"))
        .when(pl.col("place").is_null())
        .then(pl.lit("missing_place"))
        .when(pl.col("group").is_null() | (pl.col("group") == ""))
        .then(pl.lit("missing_group"))
        .when(
            pl.col("dwell_s").is_null() | ~pl.col("dwell_s").is_finite() | (pl.col("dwell_s") <= 0)
        )
        .then(pl.lit("bad_dwell"))
        .when(pl.col("weight").is_null() | ~pl.col("weight").is_finite() | (pl.col("weight") < 0))
        .then(pl.lit("bad_weight"))
    )
    if "start" in schema:
        reason = reason.when(pl.col("start").is_not_null() & pl.col("start_us").is_null()).then(
            pl.lit("unparseable_time")
        )
    lf = lf.with_columns(reason.otherwise(pl.lit(None, pl.String)).alias("__reason"))
    counts = lf.group_by("__reason").len().collect(engine="streaming")
    rows_in = int(counts["len"].sum())
    rejected = {
        r: int(n) for r, n in zip(counts["__reason"], counts["len"], strict=True) if r is not None
    }
    summary = {
        "source": source,
        "rows_in": rows_in,
        "rejected_by_reason": dict(sorted(rejected.items())),
    }
    good = lf.filter(pl.col("__reason").is_null()).drop("__reason")
    if rows_in - sum(rejected.values()) == 0:
        raise InputError("the visits table has no usable rows", hint=_reasons_hint(rejected))

    # devices: shares from dwell by group, weight, optional home / ses
    by_group = (
        good.group_by("device", "group").agg(seconds_sum("dwell_s")).collect(engine="streaming")
    )
    groups = sorted(by_group["group"].unique().to_list())
    wide = (
        by_group.pivot(on="group", index="device", values="dwell_s")
        .select("device", *[pl.col(g).fill_null(0.0) for g in groups])
        .with_columns(pl.col(g) / pl.sum_horizontal(*groups) for g in groups)
    )
    devices = wide.join(_device_constant(good, "weight"), on="device", how="left")
    for col in ("home", "ses"):
        if col in schema:
            devices = devices.join(_device_constant(good, col), on="device", how="left")
    if ses is not None:
        devices = _attach_ses(devices, ses)
    hard = bool(by_group.group_by("device").len()["len"].max() == 1)
    visits = good.select(
        "device",
        "place",
        "dwell_s",
        *(["start_us"] if "start" in schema else []),
        *([c for c in ("slot", "daytype") if c in schema]),
    )
    if not hard:
        # a soft visit is split into one row per group with dwell × share: put it back
        # together so it covers its whole time span [start, start + dwell)
        keys = [c for c in visits.collect_schema().names() if c != "dwell_s"]
        visits = visits.group_by(keys).agg(seconds_sum("dwell_s"))
    visits = _ensure_strata(visits, schema, params)
    homes = None
    if "home" in devices.columns:
        homes = devices.select(
            "device",
            pl.col("home").alias("home_place"),
            pl.col("home").cast(pl.String).alias("home_key"),
        )
        devices = devices.drop("home")
    return build_panel(
        visits, devices, groups, hard, params, summary, homes=homes, population=population
    )


def _attach_ses(devices: pl.DataFrame, ses: pl.DataFrame) -> pl.DataFrame:
    if "device" not in ses.columns or "ses" not in ses.columns:
        raise InputError("the SES table needs columns device and ses")
    if not ses.schema["ses"].is_numeric():
        raise InputError(f"column ses has type {ses.schema['ses']}: expected a number")
    s = ses.select("device", pl.col("ses").cast(pl.Float64))
    if s["device"].is_duplicated().any():
        raise InputError("the SES table has more than one row for some devices")
    try:
        s = s.with_columns(pl.col("device").cast(devices.schema["device"]))
    except pl.exceptions.InvalidOperationError as e:
        raise InputError(f"the SES table's device ids do not match the visits' ids: {e}") from e
    if "ses" in devices.columns:
        devices = devices.drop("ses")
    return devices.join(s, on="device", how="left")


def _reasons_hint(rejected: dict) -> str:
    return "rows set aside: " + ", ".join(f"{k} {v}" for k, v in sorted(rejected.items()))


def split_at_half_hours(visits: pl.LazyFrame) -> pl.LazyFrame:
    """Each visit (start_us, dwell_s) cut at half hours as `segtool visits` cuts stays
    (`cut_at_half_hours`), each piece with its own start and the dwell inside its half
    hour — so a stay counts in every slot it covers (as Liao et al. 2025 count it), not
    only in the slot it starts in. Pieces sum to the visit's dwell (to the µs); a
    zero-length visit stays one row."""
    start = pl.from_epoch(pl.col("start_us"), time_unit="us")
    length = pl.duration(microseconds=(pl.col("dwell_s") * 1e6).round().cast(pl.Int64))
    s, e = pl.col("__s"), pl.col("__e")
    return (
        cut_at_half_hours(
            visits.with_columns(start.alias("__s"), (start + length).alias("__e")), "__s", "__e"
        )
        .with_columns(
            pl.when(e > s)
            .then((e - s).dt.total_microseconds().cast(pl.Float64) / 1e6)
            .otherwise(pl.col("dwell_s"))
            .alias("dwell_s"),
            s.dt.epoch("us").alias("start_us"),
        )
        .drop("__s", "__e", "slot_start")
    )


def _ensure_strata(visits: pl.LazyFrame, schema: dict, params: ExperiencedParams) -> pl.LazyFrame:
    need = set(params.by)
    if "hour" in need:
        need = (need - {"hour"}) | {"slot"}
    missing = [c for c in sorted(need) if c not in schema]
    if not missing:
        return visits
    if "start" not in schema:
        raise InputError(
            f"--by {' '.join(params.by)} needs column(s) {', '.join(missing)} or a start time"
        )
    exprs = []
    if "slot" in missing:
        visits = split_at_half_hours(visits)
        exprs.append(slot_of(_local(params.tz)).alias("slot"))
    if "daytype" in missing:  # Swedish public holidays, as `segtool visits` labels them
        exprs.append(daytype_expr(_local(params.tz).dt.date()).alias("daytype"))
    return visits.with_columns(exprs)


def panel_from_lake(
    lake,
    params: ExperiencedParams | None = None,
    *,
    ses: pl.DataFrame | None = None,
    ses_column: str = "ses",
    population: pl.DataFrame | None = None,
) -> Panel:
    """Prepare the lake's `visits/` with `devices/` (and `homes/`, `population/` when present)."""
    from segtool.schema import validate

    params = params or ExperiencedParams()
    vis = lake.scan("visits")
    validate("visits", schema_of(vis))
    dev_lf = lake.scan("devices")
    dschema = schema_of(dev_lf)
    validate("devices", dschema)
    devices = dev_lf.collect()
    if devices["device"].is_duplicated().any():
        raise InputError("dataset 'devices' has more than one row for some devices")
    summary: dict = {"source": "lake", "rejected_by_reason": {}}
    if ses_column in devices.columns and ses_column != "ses":
        devices = devices.rename({ses_column: "ses"})
    extra = {"device", "weight", "ses", "date"}
    if "group" in devices.columns:
        nullg = devices.filter(pl.col("group").is_null() | (pl.col("group") == "")).height
        if nullg:
            summary["devices_without_group"] = nullg
        devices = devices.filter(pl.col("group").is_not_null() & (pl.col("group") != ""))
        groups = sorted(devices["group"].unique().to_list())
        wide = devices.select(
            "device",
            "weight",
            *(["ses"] if "ses" in devices.columns else []),
            *[(pl.col("group") == g).cast(pl.Float64).alias(g) for g in groups],
        )
        hard = True
    else:
        groups = sorted(c for c, t in dschema.items() if c not in extra and t.is_float())
        if len(groups) < 2:
            raise InputError(
                "dataset 'devices' has neither a group column nor two or more share columns"
            )
        wide = devices.select(
            "device", "weight", *(["ses"] if "ses" in devices.columns else []), *groups
        )
        hard = False
    if ses is not None:
        wide = _attach_ses(wide, ses)
    homes = None
    if lake.exists("homes"):
        h = lake.scan("homes").collect()
        validate("homes", h.schema)
        homes = h.select(
            "device",
            pl.col("home_cell").alias("home_place"),
            (pl.col("area") if "area" in h.columns else pl.lit(None, pl.String)).alias("area"),
        )
    if population is None and lake.exists("population"):
        population = lake.scan("population").collect()
        validate("population", population.schema)
    if homes is not None:
        use_area = population is not None and "unit" in population.columns
        homes = homes.select(
            "device",
            "home_place",
            (pl.col("area") if use_area else pl.col("home_place").cast(pl.String)).alias(
                "home_key"
            ),
        )
    visits = vis.select(
        "device",
        pl.col("cell").alias("place"),
        "dwell_s",
        pl.col("start").dt.epoch("us").alias("start_us"),
        "slot",
        "daytype",
    )
    n_vis = visits.select(pl.len()).collect().item()
    bad = visits.filter(
        pl.col("dwell_s").is_null() | ~pl.col("dwell_s").is_finite() | (pl.col("dwell_s") <= 0)
    )
    n_bad = bad.select(pl.len()).collect().item()
    if n_bad:
        summary["rejected_by_reason"]["bad_dwell"] = n_bad
    summary["rows_in"] = n_vis
    visits = visits.filter(pl.col("dwell_s").is_finite() & (pl.col("dwell_s") > 0))
    return build_panel(
        visits, wide, groups, hard, params, summary, homes=homes, population=population
    )


# --------------------------------------------------------------------------- flows


def panel_from_flows(
    flows: pl.DataFrame | pl.LazyFrame,
    params: ExperiencedParams | None = None,
    *,
    population: pl.DataFrame | None = None,
) -> Panel:
    """Aggregated flows → a place-only panel (no devices: individual and co-presence
    indices do not apply).

    Accepted shapes (destination column `destination` or `place`, amount `count`,
    optional `slot`/`daytype`):

    1. `group` column: the count of that group's visitors;
    2. one numeric column per group: the origin's group shares (or counts) — the row's
       count is split across groups by them;
    3. `origin` column and a population table: the count is split by the origin unit's
       population composition (origin matched to the population's unit or cell).

    Each row becomes one pseudo-visitor of weight 1 whose dwell is the count; the
    `--min-devices` threshold applies to the place's total count.
    """
    params = params or ExperiencedParams()
    lf = flows.lazy()
    schema = schema_of(lf)
    if "destination" in schema:
        lf = lf.rename({"destination": "place"})
    elif "place" not in schema:
        raise InputError("the flows table needs a destination (or place) column")
    if "count" not in schema or not schema["count"].is_numeric():
        raise InputError("the flows table needs a numeric count column")
    df = lf.collect()
    rows_in = df.height
    reserved = {
        "place",
        "destination",
        "origin",
        "count",
        "slot",
        "daytype",
        "hour",
        "group",
        "start",
    }
    if "group" in df.columns:
        groups = sorted(df["group"].drop_nulls().cast(pl.String).unique().to_list())
        df = df.with_columns(
            *[(pl.col("group").cast(pl.String) == g).cast(pl.Float64).alias(g) for g in groups]
        )
        shape = "group"
    else:
        groups = sorted(c for c, t in df.schema.items() if c not in reserved and t.is_numeric())
        shape = "shares"
        if len(groups) < 2:
            if "origin" not in df.columns or population is None:
                raise InputError(
                    "flows need a group column, one column per group, or an origin column "
                    "with a population table (--population or the lake's population/)"
                )
            pop = population_frame(
                population, sorted(population["group"].cast(pl.String).unique().to_list())
            )
            groups = sorted(pop["group"].unique().to_list())
            comp = pop.pivot(on="group", index="key", values="count").fill_null(0.0)
            df = df.with_columns(pl.col("origin").cast(pl.String).alias("key")).join(
                comp, on="key", how="left"
            )
            unknown = df.filter(pl.col(groups[0]).is_null()).height
            if unknown:
                raise InputError(
                    f"{unknown} flow row(s) come from an origin that the population lacks"
                )
            shape = "origin"
    ok = (pl.col("count") > 0) & pl.col("count").is_finite() & pl.col("place").is_not_null()
    ok = ok & (pl.sum_horizontal(*groups) > 0)
    bad = df.filter(~ok).height
    df = df.filter(ok).with_row_index("device")
    if df.height == 0:
        raise InputError("the flows table has no usable rows")
    summary = {
        "source": "flows",
        "flows_shape": shape,
        "rows_in": rows_in,
        "rejected_by_reason": {"bad_count": bad} if bad else {},
    }
    devices = df.select("device", pl.lit(1.0).alias("weight"), *groups)
    visits = df.select(
        "device",
        "place",
        pl.col("count").cast(pl.Float64).alias("dwell_s"),
        *[c for c in ("slot", "daytype") if c in df.columns],
    ).lazy()
    if params.by and any(
        b not in df.columns and not (b == "hour" and "slot" in df.columns) for b in params.by
    ):
        raise InputError(
            f"--by {' '.join(params.by)} needs slot/daytype columns in the flows table"
        )
    p2 = ExperiencedParams(**{**params.__dict__, "min_devices": 1})
    panel = build_panel(
        visits, devices, groups, shape == "group", p2, summary, population=population
    )
    # suppression on the total count (people), not on rows
    panel.units = panel.units.with_columns(pl.col("dwell_s").alias("count"))
    small = panel.units["dwell_s"].to_numpy() < params.min_devices
    panel.kind = "flows"
    if small.any():
        panel = drop_units(panel, ~small)
    panel.summary["min_devices"] = params.min_devices
    return panel
