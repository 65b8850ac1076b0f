"""Stay quality on noisy phone traces: recall, time covered, precision, location error and
pings/s for segtool (defaults, the rules of issue 11 off, tuned) and trackintel, on three
noise levels (5, 15, 30 m per axis) and two gap regimes, all in one run.

Traces: `segtool.synth.traces` (1,000 devices × 7 days, ~1M pings, ~41k true stays with a
median of 2 h, bursts, 0.2 % outliers; fixed seed), with the accuracy column dropped (the
detector then sees positions only, as trackintel does). Scores: `segtool.mobility.
stays_quality.score_stays`. Also the breakdown of the true stays the previous detector
(the new rules off) misses on the 15 m / app-gaps case, for docs/mobility.md.

    python -m bench stays_quality
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from segtool.mobility.stays import PING_BOUNDED, StayParams, detect_stays  # noqa: E402
from segtool.mobility.stays_quality import _pairs, _us, score_stays  # noqa: E402
from segtool.synth.traces import TraceParams, make_traces  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "stays_quality.md"
SEED = 11
NOISE = (5.0, 15.0, 30.0)
REGIMES = {
    "app gaps (33 min every ~78 min)": dict(gap_share=0.3, gap_mean_min=33.0),
    "long outages (2 h, 30 % of the time)": dict(gap_share=0.3, gap_mean_min=120.0),
}
REPS = 5
PREVIOUS = StayParams(noise_band=1.0, centre_slack=False, fill_gap_s=0.0)
AT_PINGS = StayParams(**PING_BOUNDED)
# detectors whose misses are broken down, by their row name
DIAGNOSED = {
    "segtool, rules of issue 11 off (previous)": "previous",
    "segtool defaults": "defaults",
}


def tuned(noise_m: float) -> StayParams:
    """What a user who knows the noise would set: r = max(30 m, 3σ), 3 outliers."""
    return StayParams(radius_m=max(30.0, 3 * noise_m), max_outliers=3)


def ours(pings: pl.DataFrame, params: StayParams) -> tuple[pl.DataFrame, float]:
    detect_stays(pings.head(1000), params)  # the compiled kernel is loaded
    times, out = [], None
    for _ in range(REPS):
        t = time.perf_counter()
        out, _ = detect_stays(pings, params)
        times.append(time.perf_counter() - t)
    return out, pings.height / statistics.median(times)


def trackintel(pings: pl.DataFrame, kw: dict) -> tuple[pl.DataFrame, float]:
    import geopandas as gpd
    import trackintel as ti

    frame = pings.sort("device", "ts")
    pfs = ti.Positionfixes(
        gpd.GeoDataFrame(
            {
                "user_id": frame["device"].reinterpret(signed=True).to_numpy(),
                "tracked_at": frame["ts"].to_pandas(),
            },
            geometry=gpd.points_from_xy(frame["lon"].to_numpy(), frame["lat"].to_numpy()),
            crs="EPSG:4326",
        )
    )
    t = time.perf_counter()
    if kw:
        kw = {**kw, "include_last": True}
    _, sp = pfs.generate_staypoints(method="sliding", print_progress=False, **kw)
    rate = frame.height / (time.perf_counter() - t)
    out = pl.DataFrame(
        {
            "device": pl.Series(sp["user_id"].to_numpy()).reinterpret(signed=False),
            "start": pl.from_pandas(sp["started_at"]).dt.convert_time_zone("UTC"),
            "end": pl.from_pandas(sp["finished_at"]).dt.convert_time_zone("UTC"),
            "lat": sp.geometry.y.to_numpy(),
            "lon": sp.geometry.x.to_numpy(),
        }
    ).with_columns(pl.col("start", "end").dt.cast_time_unit("us"))
    return out, rate


def breakdown(detected: pl.DataFrame, truth: pl.DataFrame, pings: pl.DataFrame) -> dict:
    """Why true stays are missed (each missed stay in the first category that applies)."""
    t = truth.with_row_index("_t")
    pairs = _pairs(t, detected.with_row_index("_d"))
    agg = pairs.group_by("_t").agg(pl.len().alias("n_det"), pl.col("overlap").max().alias("best"))
    p = pings.select("device", "ts").sort("ts")
    inside = p.join_asof(
        t.select("_t", "device", "start", "end").sort("start"),
        left_on="ts",
        right_on="start",
        by="device",
        strategy="backward",
        check_sortedness=False,
    ).filter(pl.col("_t").is_not_null() & (pl.col("ts") <= pl.col("end")))
    per = (
        inside.sort("_t", "ts")
        .group_by("_t")
        .agg(
            _us(pl.col("ts").max() - pl.col("ts").min()).alias("span"),
            _us(pl.col("ts").diff()).max().fill_null(0).alias("max_gap"),
        )
    )
    dur = _us(pl.col("end") - pl.col("start"))
    x = (
        t.join(per, on="_t", how="left")
        .join(agg, on="_t", how="left")
        .with_columns(pl.col("span", "max_gap", "n_det", "best").fill_null(0), dur=dur)
        .filter(pl.col("best") <= 0.5 * pl.col("dur"))
    )
    cat = (
        pl.when(pl.col("span") < 900e6)
        .then(pl.lit("1 too few pings: none two spanning 15 min"))
        .when(pl.col("span") <= 0.5 * pl.col("dur"))
        .then(pl.lit("2 pings span at most half of it (bounds at the first/last ping)"))
        .when(pl.col("max_gap") > 3 * 3600e6)
        .then(pl.lit("3 split by a gap over --max-gap (3 h)"))
        .when(pl.col("n_det") == 0)
        .then(pl.lit("4 never formed: noisy pings cut it into pieces under 15 min"))
        .otherwise(pl.lit("5 cut short or split by noisy pings (pieces not joined)"))
    )
    counts = x.group_by(cat.alias("why")).len().sort("why")
    return {"true": t.height, "missed": x.height, **dict(counts.iter_rows())}


def main() -> None:
    load_before = os.getloadavg()[0]
    rows, diag = [], {}
    for regime, gaps in REGIMES.items():
        for noise in NOISE:
            tp = replace(TraceParams(seed=SEED, noise_m=noise), **gaps)
            tr = make_traces(tp)
            pings = tr.pings.drop("accuracy_m")
            ti_same = dict(dist_threshold=30, time_threshold=15, gap_threshold=180)
            runs = [
                ("segtool defaults", ours, (pings, StayParams())),
                (
                    "segtool --noise-band 1 --fill-gap 0 (bounds at the pings)",
                    ours,
                    (pings, AT_PINGS),
                ),
                ("segtool, rules of issue 11 off (previous)", ours, (pings, PREVIOUS)),
                (
                    f"segtool tuned (--radius {max(30, 3 * noise):g} --max-outliers 3)",
                    ours,
                    (pings, tuned(noise)),
                ),
                ("trackintel sliding 30 m / 15 min / 3 h", trackintel, (pings, ti_same)),
                (
                    "trackintel sliding, its defaults (100 m / 5 min / 15 min)",
                    trackintel,
                    (pings, {}),
                ),
            ]
            for name, run, args in runs:
                det, rate = run(*args)
                q = score_stays(det, tr.stays, tr.pings)
                rows.append(
                    {"regime": regime, "noise": noise, "who": name, "rate": rate, **q.as_dict()}
                )
                print(rows[-1], flush=True)
                who = DIAGNOSED.get(name)
                if noise == 15.0 and regime.startswith("app") and who:
                    diag[who] = breakdown(det, tr.stays, tr.pings)
                    print(diag[who], flush=True)
    write_results(rows, diag, (load_before, os.getloadavg()[0]), tr)


def _rate(per_s: float) -> str:
    return f"{per_s / 1e6:.2f}M" if per_s >= 1e6 else f"{per_s / 1e3:.1f}k"


READING = """
## Reading

- The defaults (noise band 2, centre slack, gap filling over 15 min, a run of two pings or
  more counting by its filled bounds) are the row to compare with the issue's goal on the
  15 m / app-gaps case: recall ≥ 0.80, time covered ≥ 0.80, precision ≥ 0.95, error
  ≤ 15 m, ≥ 3M pings/s. Recall can pass the `observable` column (two pings spanning
  15 min) because a stay seen by two pings between reporting gaps counts by its filled
  bounds. `--noise-band 1 --fill-gap 0` keeps the bounds at the pings (the bundled
  sample's 5-minute bound test is run that way).
- trackintel ends a staypoint at the first ping *after* it, so a staypoint covers the whole
  reporting gap that follows: at 5 m noise that gives it a higher recall than ours at
  precision ~0.81 (detected staypoints spilling over into trips and the next stay). With
  15 m noise and more its first-point distance rule breaks the stays up (recall 0.44 at
  15 m, as in the issue). Its defaults (100 m / 5 min / 15 min gap) drop every window that
  spans a reporting gap.
- A 30 m radius cannot hold 30 m noise: set r to about 3σ of the data's noise (the tuned
  rows); with an `accuracy_m` column the radius widens by each ping's accuracy (capped at r)
  on its own.
"""


def write_results(rows, diag, load, tr) -> None:
    r0 = rows[0]
    lines = [
        "# Stay quality on noisy phone traces",
        "",
        f"Machine: 2 cores shared with other jobs (load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end), Python {platform.python_version()}, polars "
        f"{version('polars')}, numba {version('numba')}, trackintel {version('trackintel')}. "
        "`python -m bench stays_quality`.",
        "",
        f"Traces (`segtool.synth.traces`, seed {SEED}): 1,000 devices × 7 days, "
        f"{tr.pings.height:,} pings and {r0['true_stays']:,} true stays (median 2 h) in the "
        "last case; a ping every ~8.5 min while reporting (gamma intervals), one burst a day, "
        "0.2 % outliers, GPS noise σ per axis as given; accuracy column dropped. Recall: "
        "share of true stays more than half covered by one detected stay; time: share of "
        "true stay time covered; precision: share of detected stays more than half inside "
        "one true stay; error: median distance between a recalled stay's place and the "
        "detected centre; observable: share of true stays with two pings spanning ≥ 15 "
        "min (a ceiling for detectors whose stays span their pings). pings/s: "
        f"`detect_stays` in process, median of {REPS} calls (segtool), one call "
        "(trackintel, GeoDataFrame building not counted); timings vary by ±30 % on this "
        "shared machine, compare rows of the same run.",
        "",
        "| gaps | noise σ | detector | recall | time covered | precision | error (m) | "
        "observable | pings/s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['regime']} | {r['noise']:g} m | {r['who']} | {r['recall']:.3f} | "
            f"{r['time_covered']:.3f} | {r['precision']:.3f} | {r['median_error_m']:.1f} | "
            f"{r['observable']:.3f} | {_rate(r['rate'])} |"
        )
    titles = {"previous": "the previous rules", "defaults": "the defaults"}
    for who, d in diag.items():
        lines += [
            "",
            f"## Where the missed stays go ({titles[who]}, 15 m, app gaps)",
            "",
            f"{d['missed']:,} of {d['true']:,} true stays missed; each in the first "
            "category that applies:",
            "",
            "| why | stays | share of true stays |",
            "|---|---:|---:|",
        ]
        for k, v in d.items():
            if k not in ("true", "missed"):
                lines.append(f"| {k[2:]} | {v:,} | {v / d['true']:.3f} |")
    RESULTS.write_text("\n".join(lines) + "\n" + READING)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
