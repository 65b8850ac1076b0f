"""Residential indices: segtool against PySAL `segregation`, same tables, same run.

Random tables of 10k, 100k and 1M units × 5 groups, written here (into a temporary
folder, removed afterwards; never committed) as a long Parquet file (unit, group, n) and
the same counts as a wide one (unit, g0..g4). Each side runs in its own subprocess, which
reads its table (not timed), then computes its set of indices several times; reported
are the median and the minimum wall time, the median CPU time (all threads of the
process) and the subprocess's peak RSS (getrusage) and RSS after reading.

- segtool, from the long frame (`read_counts(...).frame`, validated): building the
  units × groups table (`composition`) and computing, every time.
  - the full multigroup set (all 16 indices: per-group isolation, interaction,
    correlation ratio and Atkinson, and the 5×5 exposure matrix included) plus
    two-group D (g0 against the rest): the issue's "under 1 s after reading" goal;
  - PySAL's set (below) plus two-group D: the like-for-like comparison.
- segtool from the wide frame (a polars frame read from the wide file; `from_wide`),
  PySAL's own starting point: PySAL's set plus two-group D.
- PySAL from a wide pandas frame: MultiDissim, MultiGini, MultiDiversity,
  MultiInfoTheory, MultiDivergence, MultiNormExposure, MultiRelativeDiversity,
  MultiSquaredCoefVar, SimpsonsConcentration, SimpsonsInteraction; Isolation,
  Interaction, CorrelationR and Atkinson per group; Dissim for g0. PySAL has no
  Hutchens index and no exposure matrix. MultiGini builds dense n×n matrices: where
  that cannot fit in memory it is left out of both sides' set, and the table says how
  much it would need.
- The whole command, `segtool indices residential FILE --format json` (imports, read,
  validate, compute, print), on the long and on the wide file (`--wide`).

The segtool runs of the different sets are interleaved (set A, set B, set A, …) so that
a change in the machine's load hits them alike.

Run: `python -m bench residential` (or `python bench/bench_residential.py [--sizes 10000]`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "residential.md"
SIZES = (10_000, 100_000, 1_000_000)
K = 5
GROUPS = [f"g{k}" for k in range(K)]
REPEATS = {10_000: 9, 100_000: 9, 1_000_000: 7}
PYSAL_REPEATS = {10_000: 3, 100_000: 3, 1_000_000: 3}
TIMEOUT_S = 900
# MultiGini holds np.outer(t, t), manhattan_distances(...) and their product at once.
GINI_BYTES_PER_PAIR = 3 * 8


def make_tables(n: int, long_path: Path, wide_path: Path, seed: int = 0) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.full(K, 0.8), size=n)
    sizes = rng.integers(20, 2000, size=n)
    counts = rng.poisson(mix * sizes[:, None]).astype(float)
    counts[counts.sum(axis=1) == 0, 0] = 1.0
    units = np.char.add("u", np.char.zfill(np.arange(n).astype(str), 7))
    pl.DataFrame(
        {"unit": np.repeat(units, K), "group": np.tile(GROUPS, n), "n": counts.ravel()}
    ).write_parquet(long_path)
    pl.DataFrame({"unit": units} | {g: counts[:, k] for k, g in enumerate(GROUPS)}).write_parquet(
        wide_path
    )


def _rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------
# Workers (run in subprocesses)


def _sets(skip_gini: bool):
    from segtool.indices.residential import INDICES, ResidentialParams

    # PySAL's set: no Hutchens, no exposure matrix (and no Gini where PySAL cannot run it)
    like = tuple(
        i for i in INDICES if i not in ("hutchens", "exposure") and not (skip_gini and i == "gini")
    )
    two = ResidentialParams(indices=("dissimilarity",), focal="g0")
    return ResidentialParams(), ResidentialParams(indices=like), two


def worker_segtool_long(path: str, repeats: int, skip_gini: bool) -> dict:
    from segtool.indices.counts import read_counts
    from segtool.indices.residential import composition, compute

    t0 = time.perf_counter()
    frame = read_counts(path).frame
    out: dict = {"read_s": time.perf_counter() - t0, "rss_after_read_mb": _rss_now_mb()}
    full, like, two = _sets(skip_gini)
    runs: dict[str, dict[str, list[float]]] = {}

    def once(params) -> tuple[float, float, float, float]:
        t, c = time.perf_counter(), time.process_time()
        comp = composition(frame)  # long frame → units × groups table
        table_wall, table_cpu = time.perf_counter() - t, time.process_time() - c
        compute(comp, params)
        compute(comp, two)
        return time.perf_counter() - t, time.process_time() - c, table_wall, table_cpu

    for _ in range(repeats):
        for label, params in (("full", full), ("like", like)):
            r = runs.setdefault(label, {"wall": [], "cpu": [], "table_wall": [], "table_cpu": []})
            for key, value in zip(
                ("wall", "cpu", "table_wall", "table_cpu"), once(params), strict=True
            ):
                r[key].append(value)
    out |= runs
    out["peak_mb"] = _peak_mb()
    return out


def worker_segtool_wide(path: str, repeats: int, skip_gini: bool) -> dict:
    import polars as pl

    from segtool.indices.residential import compute, from_wide

    wide = pl.read_parquet(path)
    out: dict = {"rss_after_read_mb": _rss_now_mb()}
    _, like, two = _sets(skip_gini)
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        comp = from_wide(wide, GROUPS)
        compute(comp, like)
        compute(comp, two)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    out["like"] = {"wall": walls, "cpu": cpus}
    out["peak_mb"] = _peak_mb()
    return out


def worker_pysal(path: str, repeats: int, skip_gini: bool) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import pandas as pd
    import segregation.multigroup as mg
    import segregation.singlegroup as sg

    wide = pd.read_parquet(path)
    wide["total"] = wide[GROUPS].sum(axis=1)
    after_read = _rss_now_mb()
    multi = [
        "MultiDissim",
        "MultiGini",
        "MultiDiversity",
        "MultiInfoTheory",
        "MultiDivergence",
        "MultiNormExposure",
        "MultiRelativeDiversity",
        "MultiSquaredCoefVar",
        "SimpsonsConcentration",
        "SimpsonsInteraction",
    ]
    if skip_gini:
        multi.remove("MultiGini")
    single = ["Isolation", "Interaction", "CorrelationR", "Atkinson"]
    walls, cpus, per_index = [], [], {}
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        for name in multi:
            s = time.perf_counter()
            getattr(mg, name)(wide, groups=GROUPS)
            per_index.setdefault(name, []).append(time.perf_counter() - s)
        for name in single:
            s = time.perf_counter()
            for g in GROUPS:
                getattr(sg, name)(wide, group_pop_var=g, total_pop_var="total")
            per_index.setdefault(name + " ×5", []).append(time.perf_counter() - s)
        s = time.perf_counter()
        sg.Dissim(wide, group_pop_var="g0", total_pop_var="total")
        per_index.setdefault("Dissim", []).append(time.perf_counter() - s)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {
        "like": {"wall": walls, "cpu": cpus},
        "per_index": {k: statistics.median(v) for k, v in per_index.items()},
        "rss_after_read_mb": after_read,
        "peak_mb": _peak_mb(),
        "skipped": ["MultiGini"] if skip_gini else [],
    }


def worker_cli(path: str, wide: bool) -> dict:
    """The whole command in this process (imports included), output to /dev/null."""
    import contextlib

    t, c = time.perf_counter(), time.process_time()
    os.environ["CI"] = "true"
    from segtool.cli import main as cli_main

    args = ["indices", "residential", path, "--format", "json"] + (["--wide"] if wide else [])
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        code = cli_main(args)
    if code != 0:
        raise SystemExit(f"segtool exited with {code}")
    return {
        "wall": time.perf_counter() - t,
        "cpu": time.process_time() - c,
        "peak_mb": _peak_mb(),
    }


# --------------------------------------------------------------------------------------
# Driver


def run_worker(args: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {TIMEOUT_S} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        return {"error": f"failed (exit {proc.returncode}): {tail[0][:160]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def ratio(a: float, b: float) -> str:
    return f"{a / b:,.0f}×" if a / b >= 10 else f"{a / b:,.1f}×"


def table_row(
    label: str,
    what: str,
    r: dict,
    peak: float | None = None,
    after: float | None = None,
    vs: tuple[str, str] = ("", ""),
) -> str:
    return (
        f"| {label} | {what} | {fmt_s(med(r['wall']))} | {fmt_s(min(r['wall']))} "
        f"| {fmt_s(med(r['cpu']))} | {'' if peak is None else f'{peak:.0f}'} "
        f"| {'' if after is None else f'{after:.0f}'} | {vs[0]} | {vs[1]} |"
    )


def main(sizes: tuple[int, ...]) -> int:
    rows: list[str] = []
    details: list[str] = []
    verdicts: list[str] = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="segtool-bench-") as tmp:
        for n in sizes:
            long_path = Path(tmp) / f"long_{n}.parquet"
            wide_path = Path(tmp) / f"wide_{n}.parquet"
            make_tables(n, long_path, wide_path)
            print(f"-- {n:,} units × {K} groups", flush=True)
            gini_gb = GINI_BYTES_PER_PAIR * n * n / 1e9
            skip = GINI_BYTES_PER_PAIR * n * n > 0.5 * available_bytes()
            rep, prep = str(REPEATS.get(n, 5)), str(PYSAL_REPEATS.get(n, 3))
            seg = run_worker(["segtool-long", str(long_path), rep, str(int(skip))])
            wid = run_worker(["segtool-wide", str(wide_path), rep, str(int(skip))])
            pys = run_worker(["pysal", str(wide_path), prep, str(int(skip))])
            cli = run_worker(["cli", str(long_path), "0"])
            cli_wide = run_worker(["cli", str(wide_path), "1"])
            print(json.dumps({"segtool": seg, "wide": wid, "pysal": pys})[:3000], flush=True)
            label = f"{n:,} × {K}"
            set_note = (
                f"**without Gini** (PySAL's MultiGini would need ≈ {gini_gb:,.0f} GB: dense n×n)"
                if skip
                else "with Gini"
            )
            p_wall = med(pys["like"]["wall"]) if "error" not in pys else None
            p_cpu = med(pys["like"]["cpu"]) if "error" not in pys else None

            def vs(r: dict, p_wall=p_wall, p_cpu=p_cpu) -> tuple[str, str]:
                if not p_wall:
                    return "", ""
                return ratio(p_wall, med(r["wall"])), ratio(p_cpu, med(r["cpu"]))

            if "error" in seg:
                rows.append(f"| {label} | segtool (long frame) | {seg['error']} | | | | | | |")
            else:
                rows.append(
                    table_row(
                        label,
                        "segtool: all 16 indices (34 values) + two-group D, from the long frame",
                        seg["full"],
                        seg["peak_mb"],
                        seg["rss_after_read_mb"],
                    )
                )
                rows.append(
                    table_row(
                        label,
                        f"segtool: **PySAL's set** {set_note} + two-group D, from the long frame",
                        seg["like"],
                        vs=vs(seg["like"]),
                    )
                )
            if "error" in wid:
                rows.append(f"| {label} | segtool (wide frame) | {wid['error']} | | | | | | |")
            else:
                rows.append(
                    table_row(
                        label,
                        "segtool: the same set from the wide frame (`from_wide`, PySAL's "
                        "starting point)",
                        wid["like"],
                        wid["peak_mb"],
                        wid["rss_after_read_mb"],
                        vs=vs(wid["like"]),
                    )
                )
            if "error" in pys:
                rows.append(f"| {label} | PySAL | {pys['error']} | | | | | | |")
            else:
                rows.append(
                    table_row(
                        label,
                        "PySAL: the same set, from its wide pandas frame",
                        pys["like"],
                        pys["peak_mb"],
                        pys["rss_after_read_mb"],
                        vs=("1", "1"),
                    )
                )
                slow = sorted(pys["per_index"].items(), key=lambda kv: -kv[1])[:4]
                details.append(
                    f"- {label}: PySAL's slowest: "
                    + ", ".join(f"{k} {fmt_s(v)} s" for k, v in slow)
                )
            for what, r in (("FILE", cli), ("FILE --wide", cli_wide)):
                if "error" not in r:
                    rows.append(
                        f"| {label} | `segtool indices residential {what} --format json` "
                        f"(imports, read, validate, compute, print) | {fmt_s(r['wall'])} | "
                        f"| {fmt_s(r['cpu'])} | {r['peak_mb']:.0f} | | | |"
                    )
            if "error" not in seg:
                details.append(
                    f"- {label}: segtool read + validate {fmt_s(seg['read_s'])} s; long frame → "
                    f"units × groups table {fmt_s(med(seg['like']['table_wall']))} s wall, "
                    f"{fmt_s(med(seg['like']['table_cpu']))} s CPU (median, inside the times "
                    f"above); full-set runs (wall) "
                    f"{', '.join(fmt_s(t) for t in seg['full']['wall'])} s"
                )
                if n == 1_000_000:
                    full_w, full_c = med(seg["full"]["wall"]), med(seg["full"]["cpu"])
                    verdicts.append(
                        f"- full set + two-group D on 1M × 5 after reading: {fmt_s(full_w)} s "
                        f"wall (median; best {fmt_s(min(seg['full']['wall']))} s), "
                        f"{fmt_s(full_c)} s CPU — goal < 1 s: "
                        + ("**met**" if full_w < 1 else "**not met** on this run")
                    )
                if p_wall and "error" not in wid:
                    lw, ww = med(seg["like"]["wall"]), med(wid["like"]["wall"])
                    verdicts.append(
                        f"- {label}: PySAL / segtool (same set, wall) = {ratio(p_wall, lw)} "
                        f"from the long frame, {ratio(p_wall, ww)} from the wide frame "
                        f"(CPU: {ratio(p_cpu, med(seg['like']['cpu']))}, "
                        f"{ratio(p_cpu, med(wid['like']['cpu']))}) — goal ≥ 10×: "
                        + ("**met**" if p_wall / lw >= 10 and p_wall / ww >= 10 else "**not met**")
                    )
    load_end = os.getloadavg()
    import numpy
    import polars

    from segtool import __version__

    try:
        from importlib.metadata import version

        pysal_version = version("segregation")
    except Exception:  # pragma: no cover
        pysal_version = "?"
    text = f"""# Residential indices: segtool vs PySAL `segregation`

Generated by `bench/bench_residential.py` (`python -m bench residential`). Random tables
(Dirichlet(0.8) compositions, 20–2000 people per unit, Poisson counts) of n units × 5
groups, each side in its own subprocess on the same counts (segtool's long Parquet file,
and the same table wide for `--wide` and PySAL). Times are for computing the set from data
already in memory, {", ".join(f"{v}" for v in REPEATS.values())} runs (segtool, by size)
and {", ".join(f"{v}" for v in PYSAL_REPEATS.values())} (PySAL): segtool from the
validated long frame `(unit, group, n)` — building the units × groups table included
every time — or from a wide polars frame; PySAL from a wide pandas frame. CPU s is the
process's CPU time over all its threads (segtool sorts Gini's groups on two threads);
it is less sensitive than wall time to other jobs on the machine. Peak RSS: the
subprocess's maximum resident set (reading included); "after read": its RSS once the
table is loaded. Ratios: PySAL's median over segtool's median, same set of indices.

| table | what | median wall s | min wall s | median CPU s | peak RSS MB | RSS after read MB | PySAL / this (wall) | PySAL / this (CPU) |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

{chr(10).join(details)}

Goals (issue 2):
{chr(10).join(verdicts)}

PySAL's set is PySAL's classes listed in the script (no Hutchens index, no exposure
matrix); where PySAL's MultiGini cannot run (dense n×n matrices at 100k and 1M units)
both sides leave Gini out, which leaves out the index where segtool's lead is largest
(10k units: see PySAL's MultiGini time above against segtool's whole set).

Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},
segtool {__version__}, polars {polars.__version__}, numpy {numpy.__version__},
segregation {pysal_version}. Load average (1 min) at start / end: {load_start[0]:.1f} /
{load_end[0]:.1f} (other jobs shared the machine; timings under load are pessimistic).
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        side, path, arg = sys.argv[2], sys.argv[3], int(sys.argv[4])
        skip_gini = len(sys.argv) > 5 and bool(int(sys.argv[5]))
        if side == "segtool-long":
            out = worker_segtool_long(path, arg, skip_gini)
        elif side == "segtool-wide":
            out = worker_segtool_wide(path, arg, skip_gini)
        elif side == "cli":
            out = worker_cli(path, bool(arg))
        else:
            out = worker_pysal(path, arg, skip_gini)
        print(json.dumps(out))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    ns = parser.parse_args()
    sys.exit(main(tuple(ns.sizes)))
