"""Benchmark: `segtool synth` throughput (ping rows per minute) and peak RSS.

Runs the command in subprocesses under /usr/bin/time -v at ~1M and ~10M pings (default
sampling: a ping every ~4 min, 25 % gaps, 14 days → ~3,780 pings per device), with and
without gzip, plus the bundled sample. As a floor, the same run also times plain polars
writing the same number of ready-made rows with the same columns to CSV (no simulation,
no formatting of planted rows): the ratio says what the simulation costs on top of I/O.
Writes `bench/results/synth.md`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEGTOOL = [sys.executable, "-m", "segtool"]
PER_DEVICE = 14 * 1440 / 4.0 * 0.75

FLOOR = """
import sys, numpy as np, polars as pl
n = int(sys.argv[1]); out = sys.argv[2]
rng = np.random.default_rng(0)
ids = pl.Series([f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(2646)])
frame = pl.DataFrame({
    "device_id": ids.gather(rng.integers(0, len(ids), n)),
    "timestamp": pl.from_epoch(pl.Series(1711321200 + np.sort(rng.integers(0, 14 * 86400, n))), "s")
        .dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Stockholm"),
    "latitude": 59.33 + rng.normal(0, 0.05, n),
    "longitude": 18.06 + rng.normal(0, 0.1, n),
    "accuracy": rng.lognormal(2.5, 0.45, n).round(1),
})
frame.write_csv(out, float_precision=6)
"""


def timed(cmd: list[str]) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS GB, stderr) of a command under /usr/bin/time -v."""
    began = time.perf_counter()
    r = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=False, cwd=ROOT
    )
    wall = time.perf_counter() - began
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", r.stderr))
    return wall, cpu, rss_kb / 1e6, r.stderr


def ping_rows(stderr: str) -> int:
    return int(re.search(r"generated ([\d,]+) ping rows", stderr).group(1).replace(",", ""))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    rows = []
    try:
        cases = [
            (
                "sample (400 devices × 14 days, gzip)",
                [
                    "--devices",
                    "400",
                    "--days",
                    "14",
                    "--seed",
                    "2024",
                    "--segregation",
                    "0.5",
                    "--ping-interval",
                    "6",
                    "--gap-share",
                    "0.35",
                    "--gzip",
                ],
            ),
            (
                "~1M pings",
                ["--devices", str(round(1e6 / PER_DEVICE)), "--days", "14", "--seed", "1"],
            ),
            (
                "~10M pings",
                ["--devices", str(round(1e7 / PER_DEVICE)), "--days", "14", "--seed", "1"],
            ),
            (
                "~10M pings, gzip",
                [
                    "--devices",
                    str(round(1e7 / PER_DEVICE)),
                    "--days",
                    "14",
                    "--seed",
                    "1",
                    "--gzip",
                ],
            ),
        ]
        floor_10m = None
        load_before = os.getloadavg()[0]
        for name, args in cases:
            out = tmp / "city"
            wall, cpu, rss, err = timed([*SEGTOOL, "synth", "--out", str(out), *args])
            n = ping_rows(err)
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
            rows.append((name, n, wall, cpu, n / wall * 60, rss, size / 1e6))
            print(rows[-1], flush=True)
            shutil.rmtree(out)
            if name == "~10M pings":
                script = tmp / "floor.py"
                script.write_text(FLOOR)
                fwall, fcpu, frss, _ = timed(
                    [sys.executable, str(script), str(n), str(tmp / "floor.csv")]
                )
                floor_10m = (n, fwall, fcpu, frss, (tmp / "floor.csv").stat().st_size / 1e6)
                (tmp / "floor.csv").unlink()
        lines = [
            "# `segtool synth` throughput",
            "",
            f"Machine: {os.cpu_count()} cores, load average {load_before:.1f} before and "
            f"{os.getloadavg()[0]:.1f} after the run (other work shares the machine: wall",
            "times are inflated by contention; CPU seconds much less so). `python -m bench synth`:",
            "the whole command, including imports, city, population, simulation, pings, truth and",
            "manifest; CPU seconds (user + system) and peak RSS from /usr/bin/time -v. Default",
            "sampling unless stated: a ping every ~4 min, 25 % gaps, 14 days.",
            "",
            "| case | ping rows | wall s | CPU s | ping rows per minute (wall) | peak RSS (GB) | output (MB) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, n, wall, cpu, per_min, rss, mb in rows:
            lines.append(
                f"| {name} | {n:,} | {wall:.1f} | {cpu:.1f} | {per_min / 1e6:.1f}M | {rss:.2f} | {mb:.0f} |"
            )
        if floor_10m:
            n, fwall, fcpu, frss, mb = floor_10m
            synth = next(r for r in rows if r[0] == "~10M pings")
            lines += [
                f"| floor: polars `write_csv` of {n:,} ready-made rows | {n:,} | {fwall:.1f} | {fcpu:.1f} | "
                f"{n / fwall * 60 / 1e6:.1f}M | {frss:.2f} | {mb:.0f} |",
                "",
                f"Synth at ~10M pings takes {synth[2] / fwall:.1f}× the wall time ({synth[3] / fcpu:.1f}× the CPU",
                "time) of merely writing a CSV of the same size with polars (the floor builds random rows",
                "without any simulation).",
            ]
        lines += [
            "",
            "Goal: at least 10M ping rows per minute, streamed in device chunks (bounded memory:",
            "peak RSS does not grow with the number of pings). A run has a fixed start-up of a few",
            "seconds (imports, city geometry, GeoPackages), so small runs show a lower rate.",
        ]
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "synth.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
