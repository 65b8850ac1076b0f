"""The prepared form every experienced index works on: a *panel* of integer-coded arrays,
built once with polars (`build_panel`) from visits and devices (see `inputs.py` for the
readers of the long frame, the lake and flows).

The panel holds

- devices: weight w_i, group shares m_ig (rows sum to 1), optional SES and home;
- units (place × stratum) that at least `min_devices` distinct devices visited — the
  rest are set aside before anything is computed, and counted (privacy);
- dwell per (device, unit), d_iα (unweighted seconds), sorted by device;
- co-presence rows per (device, cell, time bin) with the seconds of overlap, sorted by
  (cell, bin) (and by group within, for hard groups); bins holding a single device are
  dropped (nobody else is present, so they enter no co-presence index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError
from segtool.exact import seconds_sum
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


def schema_of(lf: pl.LazyFrame) -> dict[str, pl.DataType]:
    try:
        return dict(lf.collect_schema())
    except (pl.exceptions.ComputeError, OSError) as e:
        raise InputError(f"cannot read the table: {e}") from e


# --------------------------------------------------------------------------- the build


def population_frame(population: pl.DataFrame | None, groups: list[str]) -> pl.DataFrame | None:
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


def build_panel(
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
    vschema = schema_of(visits)
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
    pop = population_frame(population, groups)
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
        # stable sort: equal keys keep their input order, so their amounts are added in
        # the same order on every run (float sums depend on the order)
        srt = (
            rows.select(key.alias("k"), "amount")
            .sort("k", maintain_order=True)
            .collect(engine="streaming")
        )
        keys, amount, _ = _merge_sorted(srt["k"].to_numpy(), srt["amount"].to_numpy())
        del srt
        return _sorted_segments(keys // (n_dev * n_g), remap[keys % n_dev], amount)
    else:  # keys too wide for one Int64: group on three columns
        agg = (
            rows.group_by("pcode", "bin", "dev")
            .agg(seconds_sum("amount"))
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


def drop_units(panel: Panel, keep: np.ndarray) -> Panel:
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
