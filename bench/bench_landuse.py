"""Benchmark: segregation × land use (`segtool.indices.landuse`) and the report's map.

1. `analyse` (land-use and POI profiles, join, mean S by dominant category, 11 Spearman
   correlations, regression) with a bootstrap over places, for 10k and 50k hexagons
   (a city of ~1,000 km² at H3 resolution 9 has ~10k), 7 land-use categories;
2. beside it, in the same run, the straightforward implementation a peer would write:
   a Python loop over replicates, each drawing places and calling scipy.stats.spearmanr
   for every variable, numpy.linalg.lstsq for the regression and numpy.bincount for the
   means — the ratio of CPU time per replicate;
3. the report's place segregation map (matplotlib) for 5k hexagons (SVG) and 50k (PNG).

Each measurement is a subprocess under /usr/bin/time -v (wall, CPU, peak RSS); the data
are generated inside it (numpy), never committed.

    python -m bench landuse                 # writes bench/results/landuse.md
    python bench/bench_landuse.py --quick   # small sizes, not written
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "landuse.md"

DATA = textwrap.dedent(
    """
    import numpy as np, polars as pl, h3
    def data(n, seed=0):
        rng = np.random.default_rng(seed)
        cats = ["residential", "park", "commercial", "industrial", "education", "transport", "water"]
        centre = h3.latlng_to_cell(59.33, 18.06, 9)
        k = 1
        while 3 * k * (k + 1) + 1 < n:
            k += 1
        cells = np.array(sorted(h3.str_to_int(c) for c in h3.grid_disk(centre, k))[:n], dtype=np.uint64)
        shares = rng.dirichlet(np.full(len(cats), 0.3), n)
        land = pl.DataFrame({"cell": np.repeat(cells, len(cats)), "category": cats * n,
                             "share": shares.ravel()}).filter(pl.col("share") > 1e-3)
        has = rng.random(n) < 0.4
        pois = pl.DataFrame({"cell": np.repeat(cells[has], 3),
                             "category": rng.choice(["cafe", "shop", "school", "gym", "bar"], 3 * int(has.sum())),
                             "n": rng.integers(0, 4, 3 * int(has.sum())).astype(np.uint32)})
        mix = -(np.where(shares > 0, shares * np.log(np.where(shares > 0, shares, 1)), 0)).sum(1) / np.log(7)
        s = np.clip(0.8 - 0.3 * mix - 0.2 * shares[:, 2] + rng.normal(0, 0.15, n), 0, 1)
        places = pl.DataFrame({"place": cells, "devices": rng.integers(5, 200, n).astype(np.uint32),
                               "weighted_dwell": rng.lognormal(10, 1, n), "segregation": s})
        return places, land, pois
    """
)

SEGTOOL = DATA + textwrap.dedent(
    """
    import sys
    from segtool.indices.landuse import LanduseParams, analyse
    n, reps = int(sys.argv[1]), int(sys.argv[2])
    places, land, pois = data(n)
    res = analyse(places, land, pois, LanduseParams(bootstrap=reps, seed=1))
    print(res.indices.height, res.summary["places"])
    """
)

PEER = DATA + textwrap.dedent(
    """
    import sys
    from scipy.stats import spearmanr
    from segtool.indices.landuse import hexagon_table, regression_design, categories_of
    n, reps = int(sys.argv[1]), int(sys.argv[2])
    places, land, pois = data(n)
    table, _ = hexagon_table(places, land, pois)      # same profiles as segtool
    X = regression_design(table)[0]
    s, w = table["segregation"].to_numpy(), table["weighted_dwell"].to_numpy()
    cats = categories_of(table)
    codes = table["dominant"].cast(pl.Enum(cats)).to_physical().to_numpy()
    xs = [table["mix_entropy"].to_numpy(), table["poi_diversity"].to_numpy(),
          table["pois"].to_numpy()] + [table["share_" + c].to_numpy() for c in cats]
    rng = np.random.default_rng(1)
    out = []
    for r in range(reps):                      # the usual loop over replicates
        i = rng.integers(0, n, n)
        means = np.bincount(codes[i], weights=w[i] * s[i], minlength=len(cats)) / np.bincount(
            codes[i], weights=w[i], minlength=len(cats))
        rho = [spearmanr(x[i], s[i]).statistic for x in xs]
        beta = np.linalg.lstsq(X[i], s[i], rcond=None)[0]
        out.append((means, rho, beta))
    print(len(out))
    """
)

MAP = textwrap.dedent(
    """
    import sys, numpy as np, polars as pl, h3
    from segtool.report import figures as F
    n, fmt = int(sys.argv[1]), sys.argv[2]
    k = 1
    while 3 * k * (k + 1) + 1 < n:
        k += 1
    cells = sorted(h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(59.33, 18.06, 9), k))[:n]
    places = pl.DataFrame({"place": pl.Series(cells, dtype=pl.UInt64),
                           "segregation": np.random.default_rng(0).uniform(0, 1, n)})
    data = F.to_bytes(F.segregation_map(places, None, 5), fmt)
    print(len(data))
    """
)


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run `cmd` under /usr/bin/time -v: wall seconds, CPU seconds, peak RSS (GB), stdout."""
    r = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, check=False
    )
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd[:3])}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = wall.groups()
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", r.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", r.stderr).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return {
        "s": int(h or 0) * 3600 + int(m) * 60 + float(s),
        "cpu": user + system,
        "gb": rss / 1024**2,
        "out": r.stdout.strip(),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, results not written")
    args = ap.parse_args()
    py = sys.executable
    sizes = [(2_000, 200, 50)] if args.quick else [(10_000, 1000, 200), (50_000, 1000, 100)]
    env = dict(os.environ, POLARS_MAX_THREADS="2")
    rows = []
    for n, reps, peer_reps in sizes:
        base = timed([py, "-c", SEGTOOL, str(n), "0"], env)
        seg = timed([py, "-c", SEGTOOL, str(n), str(reps)], env)
        peer0 = timed([py, "-c", PEER, str(n), "0"], env)
        peer = timed([py, "-c", PEER, str(n), str(peer_reps)], env)
        seg_rep = (seg["cpu"] - base["cpu"]) / reps
        peer_rep = (peer["cpu"] - peer0["cpu"]) / peer_reps
        rows.append(
            f"| {n:,} | segtool, estimate only | – | {base['s']:.1f} | {base['cpu']:.1f} | "
            f"{base['gb']:.2f} | |"
        )
        rows.append(
            f"| {n:,} | segtool, bootstrap | {reps:,} | {seg['s']:.1f} | {seg['cpu']:.1f} | "
            f"{seg['gb']:.2f} | {seg_rep * 1e3:.1f} |"
        )
        rows.append(
            f"| {n:,} | loop over replicates (scipy.spearmanr, lstsq) | {peer_reps:,} | "
            f"{peer['s']:.1f} | {peer['cpu']:.1f} | {peer['gb']:.2f} | {peer_rep * 1e3:.1f} |"
        )
        rows.append(
            f"| {n:,} | **ratio per replicate (loop / segtool)** | | | | | "
            f"**{peer_rep / seg_rep:.1f}×** |"
        )
    maps = []
    for n, fmt in [(2_000, "svg")] if args.quick else [(5_000, "svg"), (50_000, "png")]:
        r = timed([py, "-c", MAP, str(n), fmt], env)
        maps.append(
            f"| {n:,} | {fmt} | {r['s']:.1f} | {r['cpu']:.1f} | {r['gb']:.2f} | "
            f"{int(r['out']) / 1e3:,.0f} |"
        )
    text = "\n".join(
        [
            "# Segregation × land use, and the report's map",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; `python -m bench landuse`. Wall and CPU seconds of "
            "a whole subprocess (imports and data generation included; 'estimate only' "
            "is the baseline subtracted for the per-replicate cost), peak RSS. On a shared "
            "machine wall time varies with the other load: compare CPU seconds.",
            "",
            "## `analyse`: profiles, join, means, 11 Spearman ρ, regression, bootstrap over places",
            "",
            "| hexagons | what | replicates | wall s | CPU s | peak RSS GB | CPU ms / replicate |",
            "|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "## Report: place segregation map (matplotlib, Agg)",
            "",
            "| hexagons | format | wall s | CPU s | peak RSS GB | kB |",
            "|---:|---|---:|---:|---:|---:|",
            *maps,
            "",
        ]
    )
    print(text)
    if not args.quick:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
