"""The prepared form every experienced index works on: a *panel* of integer-coded arrays,
built once with polars from the canonical long frame or from the lake.

Canonical long frame (the public input): one row per visit (or per visit × group for
soft membership) with columns

    device, place, group, dwell_s[, weight, start, slot, daytype, home, ses]

Soft membership is the device's dwell split across groups by its shares; a device's
shares are recovered as its dwell shares by group (exact when every row of the device is
split the same way, as it is for hard groups and for soft splits). `weight` is the
device's representativeness weight (1 when absent).

The panel holds

- devices: weight w_i, group shares m_ig (rows sum to 1), optional SES and home;
- units (place × stratum) that at least `min_devices` distinct devices visited — the
  rest are set aside before anything is computed, and counted (privacy);
- dwell per (device, unit), d_iα (unweighted seconds);
- co-presence rows per (device, cell, time bin) with the seconds of overlap, sorted by
  (cell, bin); bins holding a single device are dropped (nobody else is present, so they
  enter no co-presence index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError
from segtool.indices.experienced.params import ExperiencedParams

UTC_US = pl.Datetime("us", "UTC")
_NO_START = np.iinfo(np.int64).min
DAYTYPES = ("weekday", "weekend", "holiday")


@dataclass
class Presence:
    """Rows (device, segment, amount) sorted by segment; a segment is one (cell, time bin)
    (or one home cell) holding at least two devices."""

    dev: np.ndarray  # int32
    seg: np.ndarray  # int32, sorted
    amount: np.ndarray  # float64 (seconds of overlap, or 1 for homes)
    starts: np.ndarray  # int64 first row of each segment
    n_seg: int
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return int(self.dev.size)


@dataclass
class Panel:
    groups: tuple[str, ...]
    hard: bool
    device: pl.Series  # ids of the devices (index order); never published
    weight: np.ndarray  # (n,)
    member: np.ndarray  # (n, K)
    units: pl.DataFrame  # unit, place, stratum, devices, visits, dwell_s
    unit_stratum: np.ndarray  # (units,) int code into stratum_labels
    stratum_labels: list[str]
    du_dev: np.ndarray  # int32 rows (device, unit), sorted by device
    du_unit: np.ndarray
    du_dwell: np.ndarray
    presence: Presence | None = None
    home_presence: Presence | None = None
    home_key: pl.Series | None = None  # per device, String key into population
    ses: np.ndarray | None = None  # (n,) float, NaN where unknown
    population: pl.DataFrame | None = None  # key (String), group, count
    kind: str = "visits"  # or "flows"
    summary: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.weight.size)

    @property
    def k(self) -> int:
        return len(self.groups)

    @property
    def n_units(self) -> int:
        return self.units.height

    @property
    def code(self) -> np.ndarray | None:
        """Group codes when membership is hard (one group per device)."""
        return self.member.argmax(axis=1).astype(np.int32) if self.hard else None


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


def _columns(lf: pl.LazyFrame) -> dict[str, pl.DataType]:
    try:
        return dict(lf.collect_schema())
    except (pl.exceptions.ComputeError, OSError) as e:
        raise InputError(f"cannot read the table: {e}") from e


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


def _slot_expr(tz: str) -> pl.Expr:
    t = _local(tz)
    return (t.dt.hour().cast(pl.UInt8) * 2 + (t.dt.minute() >= 30).cast(pl.UInt8)).alias("slot")


def _daytype_expr(tz: str, years: list[int]) -> pl.Expr:
    """weekday / weekend / holiday (Swedish public holidays via `holidays`)."""
    import holidays

    days = sorted(holidays.country_holidays("SE", years=years).keys()) if years else []
    d = _local(tz).dt.date()
    return (
        pl.when(d.is_in(pl.lit(pl.Series(days, dtype=pl.Date)).implode()))
        .then(pl.lit("holiday"))
        .when(_local(tz).dt.weekday() >= 6)
        .then(pl.lit("weekend"))
        .otherwise(pl.lit("weekday"))
        .alias("daytype")
    )


def stratum_label(by: tuple[str, ...], row: dict) -> str | None:
    if not by:
        return None
    parts = []
    for b in by:
        v = row[b]
        if b == "slot":
            parts.append(f"{int(v) // 2:02d}:{30 * (int(v) % 2):02d}")
        elif b == "hour":
            parts.append(f"{int(v):02d}:00")
        else:
            parts.append(str(v))
    return " ".join(parts)


# --------------------------------------------------------------------------- devices


def _member_cols(k: int) -> list[str]:
    return [f"__m{j}" for j in range(k)]


def _normalise_devices(devices: pl.DataFrame, groups: list[str], summary: dict) -> pl.DataFrame:
    """devices (device, weight, one column per group holding shares or dwell) → shares
    that sum to 1 in internal columns __m0..; devices without any membership are set aside."""
    cols = _member_cols(len(groups))
    d = devices.rename(dict(zip(groups, cols, strict=True))).with_columns(
        pl.col(c).cast(pl.Float64).fill_null(0.0).fill_nan(0.0) for c in cols
    )
    neg = d.filter(pl.any_horizontal(pl.col(c) < 0 for c in cols)).height
    if neg:
        raise InputError(f"{neg} device(s) have negative group shares")
    total = pl.sum_horizontal(*cols)
    without = d.filter(total <= 0).height
    if without:
        summary["devices_without_group"] = summary.get("devices_without_group", 0) + without
    d = d.filter(total > 0)
    off = d.filter((pl.sum_horizontal(*cols) - 1).abs() > 1e-6).height
    if off:
        summary["devices_shares_normalised"] = off
    return d.with_columns((pl.col(c) / pl.sum_horizontal(*cols)).alias(c) for c in cols)


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
    schema = _columns(lf)
    if "dwell_s" not in schema and "dwell" in schema:
        lf = lf.rename({"dwell": "dwell_s"})
        schema = _columns(lf)
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
        good.group_by("device", "group").agg(pl.col("dwell_s").sum()).collect(engine="streaming")
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
        visits = visits.group_by(keys).agg(pl.col("dwell_s").sum())
    visits = _ensure_strata(visits, schema, params)
    homes = None
    if "home" in devices.columns:
        homes = devices.select(
            "device",
            pl.col("home").alias("home_place"),
            pl.col("home").cast(pl.String).alias("home_key"),
        )
        devices = devices.drop("home")
    return _build(
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
        exprs.append(_slot_expr(params.tz))
    if "daytype" in missing:
        years = (
            visits.select(pl.from_epoch(pl.col("start_us"), time_unit="us").dt.year().unique())
            .collect()
            .to_series()
            .drop_nulls()
            .to_list()
        )
        years = sorted({y for y0 in years for y in (y0 - 1, y0, y0 + 1)})
        exprs.append(_daytype_expr(params.tz, years))
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
    validate("visits", _columns(vis))
    dev_lf = lake.scan("devices")
    dschema = _columns(dev_lf)
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
    return _build(visits, wide, groups, hard, params, summary, homes=homes, population=population)


# --------------------------------------------------------------------------- the build


def _population_frame(population: pl.DataFrame | None, groups: list[str]) -> pl.DataFrame | None:
    if population is None:
        return None
    cols = population.columns
    key = "unit" if "unit" in cols else "cell" if "cell" in cols else None
    if key is None or "group" not in cols or "count" not in cols:
        raise InputError("the population table needs columns (unit or cell), group and count")
    pop = population.select(
        pl.col(key).cast(pl.String).alias("key"),
        pl.col("group").cast(pl.String),
        pl.col("count").cast(pl.Float64),
    )
    if (pop["count"] < 0).any():
        raise InputError("the population table has negative counts")
    unknown = sorted(set(pop["group"].unique().to_list()) - set(groups))
    if unknown:
        raise InputError(
            f"the population has group(s) {', '.join(map(str, unknown))} that no device has",
            hint="population and devices must use the same group labels",
        )
    return pop.group_by("key", "group").agg(pl.col("count").sum()).sort("key", "group")


def _build(
    visits: pl.LazyFrame,
    devices: pl.DataFrame,
    groups: list[str],
    hard: bool,
    params: ExperiencedParams,
    summary: dict,
    *,
    homes: pl.DataFrame | None = None,
    population: pl.DataFrame | None = None,
) -> Panel:
    """visits (device, place, dwell_s[, start_us, slot, daytype]) + devices (device, weight,
    one share/dwell column per group[, ses]) → Panel.

    One streaming pass turns the visits into integer codes (device, place, stratum); the
    aggregations then run on single Int64 keys, which polars groups and sorts fast."""
    if len(groups) < 2:
        raise InputError(f"experienced indices need at least two groups; found {len(groups)}")
    k = len(groups)
    devices = _normalise_devices(devices, groups, summary).sort("device")
    if (devices["weight"].is_null() | (devices["weight"] < 0)).any():
        raise InputError("some devices have a missing or negative weight")
    devices = devices.with_row_index("__dev")
    vschema = _columns(visits)
    by = params.by
    if "hour" in by:
        visits = visits.with_columns((pl.col("slot") // 2).alias("hour"))
    strata = list(by)

    # dictionaries: places (sorted) and each stratum's values (sorted)
    places = visits.select(pl.col("place").unique().sort()).collect(engine="streaming")["place"]
    dicts = {
        s: visits.select(pl.col(s).unique().sort()).collect(engine="streaming")[s].drop_nulls()
        for s in strata
    }
    if any(visits.select(pl.col(s).is_null().any()).collect().item() for s in strata):
        raise InputError(f"some visits lack {' or '.join(strata)}")
    radix = [len(dicts[s]) for s in strata]
    n_s = int(np.prod(radix)) if strata else 1
    code = pl.lit(0, pl.Int64)
    for s, r in zip(strata, radix, strict=True):
        d = pl.DataFrame({s: dicts[s], f"__c_{s}": np.arange(r, dtype=np.int64)})
        visits = visits.join(d.lazy(), on=s, how="left")
        code = code * r + pl.col(f"__c_{s}")
    pl_places = pl.DataFrame({"place": places, "__p": np.arange(places.len(), dtype=np.int64)})
    has_start = "start_us" in vschema
    dev_keys = devices.select(
        "device",
        "__dev",
        pl.Series(
            "__code", devices.select(_member_cols(k)).to_numpy().argmax(axis=1).astype(np.int64)
        ),
    )
    base = (
        visits.join(dev_keys.lazy(), on="device", how="inner")
        .join(pl_places.lazy(), on="place", how="left")
        .select(
            pl.col("__dev").cast(pl.Int64).alias("dev"),
            (pl.col("__p") * n_s + code).alias("ukey"),
            pl.col("__p").alias("pcode"),
            pl.col("__code").alias("code"),
            "dwell_s",
            *([pl.col("start_us").fill_null(_NO_START)] if has_start else []),
        )
        .collect(engine="streaming")
    )
    n_matched = base.height
    rows_in = summary.get("rows_in", n_matched)
    lost = rows_in - sum(summary.get("rejected_by_reason", {}).values()) - n_matched
    if lost:
        summary.setdefault("rejected_by_reason", {})["device_without_group"] = lost
    n_ukeys = places.len() * n_s
    # dwell per (device, unit) on one Int64 key, sorted (device-major)
    srt = base.select((pl.col("dev") * n_ukeys + pl.col("ukey")).alias("k"), "dwell_s").sort("k")
    dk, du_dwell_all, du_n = _merge_sorted(srt["k"].to_numpy(), srt["dwell_s"].to_numpy())
    del srt
    du_ukey = dk % n_ukeys
    u_dev = np.bincount(du_ukey, minlength=n_ukeys)
    u_vis = np.bincount(du_ukey, weights=du_n, minlength=n_ukeys)
    u_dwell = np.bincount(du_ukey, weights=du_dwell_all, minlength=n_ukeys)
    present = u_dev > 0
    keep = u_dev >= params.min_devices
    sup = present & ~keep
    summary.update(
        units_total=int(present.sum()),
        units_suppressed=int(sup.sum()),
        visits_suppressed=int(u_vis[sup].sum()),
        dwell_suppressed_s=float(u_dwell[sup].sum()),
        min_devices=params.min_devices,
    )
    if not keep.any():
        raise InputError(
            f"no place was visited by at least {params.min_devices} distinct devices",
            hint="lower --min-devices (published outputs then hold smaller places)",
        )
    kept_ukeys = np.flatnonzero(keep)
    unit_of = np.full(n_ukeys, -1, dtype=np.int64)
    unit_of[kept_ukeys] = np.arange(kept_ukeys.size)
    # units table
    pcode_u, scode_u = kept_ukeys // n_s, kept_ukeys % n_s
    units = pl.DataFrame({"unit": np.arange(kept_ukeys.size, dtype=np.uint32)}).with_columns(
        places.gather(pcode_u).alias("place")
    )
    rest = scode_u.copy()
    cols = {}
    for s, r in reversed(list(zip(strata, radix, strict=True))):
        cols[s] = dicts[s].gather(rest % r)
        rest //= r
    units = units.with_columns(*(cols[s].alias(s) for s in strata))
    labels = []
    unit_stratum = np.zeros(kept_ukeys.size, dtype=np.int32)
    if strata:
        present_s = np.unique(scode_u)
        lookup = np.full(n_s, -1, dtype=np.int64)
        lookup[present_s] = np.arange(present_s.size)
        first = {int(s): i for i, s in enumerate(scode_u)}
        labels = [
            stratum_label(tuple(strata), units.row(first[int(s)], named=True)) for s in present_s
        ]
        unit_stratum = lookup[scode_u].astype(np.int32)
        units = units.with_columns(
            pl.Series("stratum", np.array(labels, dtype=object)[unit_stratum], dtype=pl.String)
        )
    else:
        units = units.with_columns(pl.lit(None, pl.String).alias("stratum"))
    units = units.with_columns(
        pl.Series("devices", u_dev[kept_ukeys], dtype=pl.UInt32),
        pl.Series("visits", u_vis[kept_ukeys].astype(np.int64), dtype=pl.UInt32),
        pl.Series("dwell_s", u_dwell[kept_ukeys], dtype=pl.Float64),
    )
    # (device, unit) rows of kept units; compact the device index to devices left
    rows = keep[du_ukey]
    du_dev_old = dk[rows] // n_ukeys
    active = np.flatnonzero(np.bincount(du_dev_old, minlength=devices.height) > 0)
    remap = np.full(devices.height, -1, dtype=np.int64)
    remap[active] = np.arange(active.size)
    summary["devices_total"] = devices.height
    summary["devices"] = int(active.size)
    summary["devices_without_kept_visits"] = int(devices.height - active.size)
    summary["visits"] = n_matched - summary["visits_suppressed"]
    summary["units"] = int(kept_ukeys.size)
    dev_tab = devices[active.tolist()] if active.size < devices.height else devices
    member = dev_tab.select(_member_cols(k)).to_numpy().astype(np.float64)
    weight = dev_tab["weight"].to_numpy().astype(np.float64)
    ses = dev_tab["ses"].cast(pl.Float64).to_numpy() if "ses" in dev_tab.columns else None
    if ses is not None and np.all(np.isnan(ses)):
        ses = None

    presence = None
    if has_start:
        # hard groups: order each segment's rows by group too (see encounters.hard_index)
        presence = _presence(base, kept_ukeys, remap, params.bin_s, k if hard else 1)
        summary["bin_s"] = params.bin_s
        summary["copresence_rows"] = presence.rows
    del base
    home_presence = None
    home_key = None
    if homes is not None:
        h = dev_tab.select("device").join(homes, on="device", how="left")
        home_key = h["home_key"]
        hp = h.with_row_index("__dev").filter(pl.col("home_place").is_not_null())
        summary["devices_with_home"] = hp.height
        if hp.height:
            home_presence = _segments(
                hp.select(
                    pl.col("__dev").cast(pl.Int64),
                    pl.col("home_place").rank("dense").cast(pl.Int64).alias("__seg"),
                    pl.lit(1.0).alias("amount"),
                )
            )
    pop = _population_frame(population, groups)
    return Panel(
        groups=tuple(groups),
        hard=hard,
        device=dev_tab["device"],
        weight=weight,
        member=member,
        units=units.select("unit", "place", "stratum", *strata, "devices", "visits", "dwell_s"),
        unit_stratum=unit_stratum,
        stratum_labels=labels,
        du_dev=remap[du_dev_old].astype(np.int32),
        du_unit=unit_of[du_ukey[rows]].astype(np.int32),
        du_dwell=du_dwell_all[rows].astype(np.float64),
        presence=presence,
        home_presence=home_presence,
        home_key=home_key,
        ses=ses,
        population=pop,
        summary=summary,
    )


def _presence(
    base: pl.DataFrame,
    kept_ukeys: np.ndarray,
    remap: np.ndarray,
    bin_s: int,
    n_g: int = 1,
) -> Presence:
    """Co-presence rows: each visit's seconds of overlap with each time bin of width
    `bin_s`, summed per (device, cell, bin); segments = (cell, bin) with ≥ 2 devices.

    base: (dev, ukey, pcode, code, dwell_s, start_us) with `dev` the uncompacted device
    index; with n_g > 1 (hard groups) each segment's rows are ordered by group `code`."""
    b_us = bin_s * 1_000_000
    v = (
        base.lazy()
        .filter(pl.col("start_us") != _NO_START)
        .join(pl.DataFrame({"ukey": kept_ukeys}).lazy(), on="ukey", how="semi")
        .select(
            "dev",
            "pcode",
            "code",
            "start_us",
            "dwell_s",
            (pl.col("start_us") // b_us).alias("b0"),
            (
                (pl.col("start_us") + (pl.col("dwell_s") * 1e6).round().cast(pl.Int64) - 1) // b_us
            ).alias("b1"),
        )
    )
    lim = v.select(
        pl.col("b0").min().alias("lo"),
        pl.col("b1").max().alias("hi"),
        pl.col("pcode").max().alias("p"),
        pl.len().alias("n"),
    ).collect()
    if lim["n"][0] == 0:
        return _empty_presence()
    bmin, n_bins = int(lim["lo"][0]), int(lim["hi"][0] - lim["lo"][0] + 1)
    n_p, n_dev = int(lim["p"][0]) + 1, int(remap.size)
    one = v.filter(pl.col("b0") >= pl.col("b1")).select(
        "dev", "pcode", "code", pl.col("b0").alias("bin"), pl.col("dwell_s").alias("amount")
    )
    s = pl.col("start_us").cast(pl.Float64) / 1e6
    many = (
        v.filter(pl.col("b0") < pl.col("b1"))
        .with_columns(pl.int_ranges("b0", pl.col("b1") + 1).alias("bin"))
        .explode("bin")
        .select(
            "dev",
            "pcode",
            "code",
            "bin",
            (
                pl.min_horizontal(
                    s + pl.col("dwell_s"), (pl.col("bin") + 1).cast(pl.Float64) * bin_s
                )
                - pl.max_horizontal(s, pl.col("bin").cast(pl.Float64) * bin_s)
            ).alias("amount"),
        )
    )
    rows = pl.concat([one, many])
    if float(n_p) * n_bins * n_g * n_dev < 2**62:
        g = pl.col("code") if n_g > 1 else pl.lit(0, pl.Int64)
        key = ((pl.col("pcode") * n_bins + (pl.col("bin") - bmin)) * n_g + g) * n_dev + pl.col(
            "dev"
        )
        srt = rows.select(key.alias("k"), "amount").sort("k").collect(engine="streaming")
        keys, amount, _ = _merge_sorted(srt["k"].to_numpy(), srt["amount"].to_numpy())
        del srt
        return _sorted_segments(keys // (n_dev * n_g), remap[keys % n_dev], amount)
    else:  # keys too wide for one Int64: group on three columns
        agg = (
            rows.group_by("pcode", "bin", "dev")
            .agg(pl.col("amount").sum())
            .sort("pcode", "bin", "dev")
            .collect(engine="streaming")
        )
        p_, b_ = agg["pcode"].to_numpy(), agg["bin"].to_numpy()
        seg_key = np.r_[0, np.cumsum((p_[1:] != p_[:-1]) | (b_[1:] != b_[:-1]))]
        d = agg["dev"].to_numpy()
    return _sorted_segments(seg_key, remap[d], agg["amount"].to_numpy())


def _merge_sorted(
    keys: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted keys with repeats → unique keys, summed values, counts."""
    if keys.size == 0:
        return keys, values, np.zeros(0)
    starts = np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))
    if starts.size == keys.size:  # no repeats
        return keys, values, np.ones(keys.size)
    counts = np.diff(np.append(starts, keys.size)).astype(np.float64)
    return keys[starts], np.add.reduceat(values, starts), counts


def _empty_presence() -> Presence:
    return Presence(
        np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int64), 0
    )


def _sorted_segments(seg_key: np.ndarray, dev: np.ndarray, amount: np.ndarray) -> Presence:
    """Rows already sorted by segment key → Presence without single-device segments."""
    n = seg_key.size
    if n == 0:
        return _empty_presence()
    starts = np.concatenate(([0], np.flatnonzero(seg_key[1:] != seg_key[:-1]) + 1))
    counts = np.diff(np.append(starts, n))
    big = counts >= 2
    if not big.any():
        return _empty_presence()
    keep = np.repeat(big, counts)
    kept = counts[big]
    new_starts = np.concatenate(([0], np.cumsum(kept)[:-1])).astype(np.int64)
    seg = np.repeat(np.arange(kept.size, dtype=np.int32), kept)
    return Presence(
        dev[keep].astype(np.int32), seg, amount[keep].astype(np.float64), new_starts, int(kept.size)
    )


def _segments(rows: pl.DataFrame) -> Presence:
    """(__dev, __seg, amount) in any order → Presence (single-device segments dropped)."""
    rows = rows.sort("__seg", "__dev")
    return _sorted_segments(
        rows["__seg"].to_numpy(), rows["__dev"].to_numpy(), rows["amount"].to_numpy()
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
    schema = _columns(lf)
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
            pop = _population_frame(
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
    panel = _build(visits, devices, groups, shape == "group", p2, summary, population=population)
    # suppression on the total count (people), not on rows
    panel.units = panel.units.with_columns(pl.col("dwell_s").alias("count"))
    small = panel.units["dwell_s"].to_numpy() < params.min_devices
    panel.kind = "flows"
    if small.any():
        panel = _drop_units(panel, ~small)
    panel.summary["min_devices"] = params.min_devices
    return panel


def _drop_units(panel: Panel, keep: np.ndarray) -> Panel:
    """Remove units (and their rows) from a flows panel."""
    sup = panel.units.filter(~pl.Series(keep))
    panel.summary["units_suppressed"] = panel.summary.get("units_suppressed", 0) + sup.height
    panel.summary["visits_suppressed"] = panel.summary.get("visits_suppressed", 0) + int(
        sup["visits"].sum()
    )
    panel.summary["dwell_suppressed_s"] = panel.summary.get("dwell_suppressed_s", 0.0) + float(
        sup["dwell_s"].sum()
    )
    new = np.full(keep.size, -1, dtype=np.int64)
    new[keep] = np.arange(int(keep.sum()))
    rows = keep[panel.du_unit]
    panel.du_dev, panel.du_dwell = panel.du_dev[rows], panel.du_dwell[rows]
    panel.du_unit = new[panel.du_unit[rows]].astype(np.int32)
    panel.units = panel.units.filter(pl.Series(keep)).with_columns(
        pl.Series("unit", np.arange(int(keep.sum())), dtype=pl.UInt32)
    )
    panel.unit_stratum = panel.unit_stratum[keep]
    panel.summary["units"] = panel.units.height
    if panel.units.height == 0:
        raise InputError(
            f"no place received a total count of at least {panel.summary.get('min_devices')}",
            hint="lower --min-devices",
        )
    return panel


def check_groups(panel: Panel, params: ExperiencedParams) -> None:
    for name, g in (("--ice-high", params.ice_high), ("--ice-low", params.ice_low)):
        if g is not None and g not in panel.groups:
            raise UsageError(
                f"{name} {g!r} is not a group; the groups are {', '.join(panel.groups)}"
            )
