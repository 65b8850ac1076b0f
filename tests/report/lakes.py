"""A small lake with every dataset the report reads, built from frames (no pipeline run):
pings (for the lake table), population by area, devices with groups and weights, homes,
visits to H3 cells (two cells visited by fewer than 5 devices), land use with a category
name that needs escaping, and POIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import h3
import numpy as np
import polars as pl

from segtool.lake import Lake, Manifest

T0 = datetime(2024, 3, 4, 6, 0, tzinfo=UTC)
CELLS = [h3.str_to_int(c) for c in sorted(h3.grid_disk(h3.latlng_to_cell(59.33, 18.06, 9), 2))]
NASTY = "<script>alert('x')</script> & co"
USES = ["residential", "park", NASTY]
GROUPS = ["Q1", "Q2", "Q3", "Q4"]


def build_lake(root, n=120, seed=0, with_visits=True, with_landuse=True, with_cells=False):
    rng = np.random.default_rng(seed)
    ids = rng.integers(2**40, 2**63, n, dtype=np.uint64)
    group_idx = rng.integers(0, 4, n)
    groups = np.array(GROUPS)[group_idx]
    home = np.array(CELLS[:8], dtype=np.uint64)[(group_idx * 2 + rng.integers(0, 2, n)) % 8]
    lake = Lake(root)

    def put(name, frame):
        with lake.writing(name, Manifest(command=f"test {name}", rows_in=frame.height,
                                         rows_written=frame.height, rows_rejected=0)) as tmp:  # fmt: skip
            frame.write_parquet(tmp / "part-0.parquet")

    lats = 59.33 + rng.normal(0, 0.01, 50)
    lons = 18.06 + rng.normal(0, 0.01, 50)
    put(
        "pings",
        pl.DataFrame(
            {
                "device": np.repeat(ids[:5], 10),
                "ts": [T0 + timedelta(minutes=i) for i in range(50)],
                "lat": lats,
                "lon": lons,
            }
        ).with_columns(
            pl.col("device").cast(pl.UInt64), pl.col("ts").cast(pl.Datetime("us", "UTC"))
        ),
    )
    areas = [f"A{i}" for i in range(6)]
    put(
        "population",
        pl.DataFrame(
            {
                "unit": [a for a in areas for _ in GROUPS],
                "group": GROUPS * len(areas),
                "count": rng.integers(20, 400, len(areas) * 4).astype(float),
            }
        ),
    )
    if with_cells:  # register counts apportioned to res-8 hexagons, richer to the east
        import h3

        disk = sorted(h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(59.33, 18.06, 8), 5))
        east = np.array([h3.cell_to_latlng(h3.int_to_str(c))[1] for c in disk]) > 18.06
        base = rng.integers(5, 60, (len(disk), len(GROUPS))).astype(float)
        base[east, -1] += 80
        put(
            "population_cells",
            pl.DataFrame(
                {
                    "cell": pl.Series(np.repeat(disk, len(GROUPS)), dtype=pl.UInt64),
                    "group": GROUPS * len(disk),
                    "count": base.ravel(),
                }
            ),
        )
    put(
        "devices",
        pl.DataFrame(
            {"device": ids, "group": groups, "weight": rng.uniform(0.5, 2, n)}
        ).with_columns(pl.col("device").cast(pl.UInt64)),
    )
    put(
        "homes",
        pl.DataFrame(
            {
                "device": ids,
                "home_cell": home,
                "nights": np.full(n, 5, dtype=np.uint16),
                "home_share": np.full(n, 0.8, dtype=np.float32),
            }
        ).with_columns(pl.col("device").cast(pl.UInt64), pl.col("home_cell").cast(pl.UInt64)),
    )
    if with_visits:
        rows = []
        for i in range(n):
            for j in range(6):
                if i < 3:
                    cell = CELLS[12 + i % 2]  # rarely visited: suppressed
                elif j < 3:
                    cell = int(home[i])
                else:
                    cell = CELLS[int(rng.integers(0, 12))]
                start = T0 + timedelta(minutes=30 * j)
                rows.append(
                    (int(ids[i]), cell, start, float(rng.integers(600, 1800)), j, "weekday")
                )
        put(
            "visits",
            pl.DataFrame(
                rows, schema=["device", "cell", "start", "dwell_s", "slot", "daytype"], orient="row"
            ).with_columns(
                pl.col("device").cast(pl.UInt64),
                pl.col("cell").cast(pl.UInt64),
                pl.col("start").cast(pl.Datetime("us", "UTC")),
                pl.col("slot").cast(pl.UInt8),
            ),
        )
    if with_landuse:
        land = []
        for k, c in enumerate(CELLS[:16]):
            shares = rng.dirichlet(np.ones(3) * 0.7)
            land += [(c, u, float(s)) for u, s in zip(USES, shares, strict=True) if s > 0.01]
            del k
        put(
            "landuse",
            pl.DataFrame(land, schema=["cell", "category", "share"], orient="row").with_columns(
                pl.col("cell").cast(pl.UInt64)
            ),
        )
        put(
            "pois",
            pl.DataFrame(
                {
                    "cell": CELLS[:6],
                    "category": ["cafe", "school", "cafe", "gym", "cafe", "shop"],
                    "n": [2, 1, 3, 1, 1, 2],
                }
            ).with_columns(pl.col("cell").cast(pl.UInt64), pl.col("n").cast(pl.UInt32)),
        )
    return root, ids, np.column_stack([lats, lons])
