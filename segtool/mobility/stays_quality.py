"""How well detected stays recover true stays: recall, time covered, precision, location error.

Definitions (the ones of issue 11; both frames have `device`, `start`, `end` — Datetime,
same unit and zone — and `lat`, `lon` in degrees):

- overlap(a, b) = max(0, min(end_a, end_b) − max(start_a, start_b)) for stays of the
  same device.
- **recall**: share of true stays for which one detected stay covers more than half of
  it (overlap > ½ · duration of the true stay).
- **time covered**: Σ over true stays of the time covered by the detected stays of the
  device, / Σ true stay time (detected stays of one device do not overlap each other).
- **precision**: share of detected stays lying more than half inside one true stay
  (overlap > ½ · duration of the detected stay).
- **location error**: for each recalled true stay, the distance (haversine, m) between its
  place and the centre of the detected stay covering most of it; the median is reported.
- **observable**: with `pings`, the share of true stays that hold at least two pings
  spanning `min_duration_s` or more — the ceiling of any detector's recall.

True stays of zero duration are left out. Stays of one device are compared by a join on
the device (a device has tens of stays a week, so the pairs are few), not a loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class StayQuality:
    """Scores of a detection against the truth (see the module docstring)."""

    true_stays: int
    detected_stays: int
    recall: float
    time_covered: float
    precision: float
    median_error_m: float
    observable: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _us(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds().cast(pl.Float64)


def _haversine(lat1: str, lon1: str, lat2: str, lon2: str) -> pl.Expr:
    p1, p2 = pl.col(lat1).radians(), pl.col(lat2).radians()
    dlat = p2 - p1
    dlon = (pl.col(lon2) - pl.col(lon1)).radians()
    a = (dlat / 2).sin() ** 2 + p1.cos() * p2.cos() * (dlon / 2).sin() ** 2
    return 2 * _EARTH_RADIUS_M * a.sqrt().arcsin()


def _pairs(truth: pl.DataFrame, detected: pl.DataFrame) -> pl.DataFrame:
    t = truth.select(
        "device",
        pl.col("start").alias("t_start"),
        pl.col("end").alias("t_end"),
        pl.col("lat").alias("t_lat"),
        pl.col("lon").alias("t_lon"),
        "_t",
    )
    d = detected.select(
        "device",
        pl.col("start").alias("d_start"),
        pl.col("end").alias("d_end"),
        pl.col("lat").alias("d_lat"),
        pl.col("lon").alias("d_lon"),
        "_d",
    )
    return (
        t.join(d, on="device", how="inner")
        .with_columns(
            _us(
                pl.min_horizontal("t_end", "d_end") - pl.max_horizontal("t_start", "d_start")
            ).alias("overlap")
        )
        .filter(pl.col("overlap") > 0)
    )


def observable_share(
    truth: pl.DataFrame, pings: pl.DataFrame, min_duration_s: float = 900.0
) -> float:
    """Share of true stays with at least two pings of the device inside them spanning at
    least `min_duration_s` (pings: `device`, `ts` in the truth's time unit and zone)."""
    t = truth.with_row_index("_t").select("_t", "device", "start", "end").sort("start")
    p = pings.select("device", pl.col("ts").cast(t.schema["start"])).sort("ts")
    inside = p.join_asof(
        t, left_on="ts", right_on="start", by="device", strategy="backward", check_sortedness=False
    ).filter(pl.col("_t").is_not_null() & (pl.col("ts") <= pl.col("end")))
    span = inside.group_by("_t").agg(_us(pl.col("ts").max() - pl.col("ts").min()).alias("span"))
    ok = span.filter(pl.col("span") >= min_duration_s * 1e6).height
    return ok / t.height if t.height else float("nan")


def score_stays(
    detected: pl.DataFrame,
    truth: pl.DataFrame,
    pings: pl.DataFrame | None = None,
    min_duration_s: float = 900.0,
) -> StayQuality:
    """Recall, time covered, precision and median location error of `detected` against
    `truth` (see the module docstring); `observable` too when `pings` is given."""
    truth = truth.filter(pl.col("end") > pl.col("start"))
    observable = None if pings is None else observable_share(truth, pings, min_duration_s)
    truth = truth.with_row_index("_t")
    detected = detected.with_row_index("_d")
    pairs = _pairs(truth, detected)
    t_dur = _us(pl.col("t_end") - pl.col("t_start"))
    d_dur = _us(pl.col("d_end") - pl.col("d_start"))
    best = (
        pairs.sort("_t", "overlap", "_d", descending=[False, True, False])
        .group_by("_t", maintain_order=True)
        .first()
        .filter(pl.col("overlap") > 0.5 * t_dur)
    )
    n_true, n_det = truth.height, detected.height
    total = float(truth.select(_us(pl.col("end") - pl.col("start")).sum()).item() or 0.0)
    covered = float(pairs["overlap"].sum())
    correct = pairs.filter(pl.col("overlap") > 0.5 * d_dur)["_d"].n_unique()
    errors = best.select(_haversine("t_lat", "t_lon", "d_lat", "d_lon").alias("e"))["e"]
    return StayQuality(
        true_stays=n_true,
        detected_stays=n_det,
        recall=best.height / n_true if n_true else float("nan"),
        time_covered=covered / total if total else float("nan"),
        precision=correct / n_det if n_det else float("nan"),
        median_error_m=float(errors.median()) if errors.len() else float("nan"),
        observable=observable,
    )
