"""A small synthetic city for the linkage tests, written as a lake from frames (no pipeline
run): a grid of square areas whose income level (0…3) is scattered at random over the
grid, residents mostly of their area's quartile, and devices choosing where to go with

    P(B | home A) ∝ exp(−d_AB / 1.5 km) · exp(−γ |level_A − level_B|)

so γ > 0 plants mobility homophily (similar areas linked more than distance explains) and
γ = 0 plants none. Each device also spends time at home."""

from __future__ import annotations

from datetime import UTC, datetime

import h3
import numpy as np
import polars as pl
import shapely

from segtool.lake import Lake, Manifest

T0 = datetime(2024, 3, 4, 6, 0, tzinfo=UTC)
GROUPS = ["Q1", "Q2", "Q3", "Q4"]
LAT0, LON0, DLAT, DLON = 59.30, 18.00, 0.012, 0.024  # ~1.3 km squares


def put(lake: Lake, name: str, frame: pl.DataFrame) -> None:
    m = Manifest(
        command=f"test {name}", rows_in=frame.height, rows_written=frame.height, rows_rejected=0
    )
    with lake.writing(name, m) as tmp:
        frame.write_parquet(tmp / "part-0.parquet")


def city(
    root,
    side: int = 5,
    per_area: int = 16,
    visits_per_device: int = 24,
    gamma: float = 1.5,
    seed: int = 0,
    shuffle_population: bool = False,
):
    """Write the lake under `root`; return (lake, truth dict)."""
    rng = np.random.default_rng(seed)
    n_areas = side * side
    ij = np.array([(i, j) for i in range(side) for j in range(side)])
    lat_c = LAT0 + (ij[:, 0] + 0.5) * DLAT
    lon_c = LON0 + (ij[:, 1] + 0.5) * DLON
    names = [f"A{k:02d}" for k in range(n_areas)]
    level = rng.permutation(np.arange(n_areas) % 4)
    # distance between centres (km), flat approximation is fine for the world itself
    dy = (lat_c[:, None] - lat_c[None, :]) * 111.2
    dx = (lon_c[:, None] - lon_c[None, :]) * 111.2 * np.cos(np.radians(59.3))
    d = np.hypot(dx, dy)
    p = np.exp(-d / 1.5) * np.exp(-gamma * np.abs(level[:, None] - level[None, :]))
    np.fill_diagonal(p, 0)
    p /= p.sum(axis=1, keepdims=True)

    n_dev = n_areas * per_area
    home = np.repeat(np.arange(n_areas), per_area)
    ids = rng.permutation(np.arange(1, n_dev + 1, dtype=np.uint64) * np.uint64(2654435761))
    # destinations: cumulative choice per device, vectorised
    u = rng.random((n_dev, visits_per_device))
    cum = np.cumsum(p[home], axis=1)
    dest = (u[:, :, None] > cum[:, None, :]).sum(axis=2).clip(max=n_areas - 1)
    at_home = rng.random((n_dev, visits_per_device)) < 0.3
    dest = np.where(at_home, home[:, None], dest)
    # a cell near the destination's centre (a few cells per area, so people meet)
    off_lat = rng.integers(-1, 2, dest.shape) * DLAT / 5
    off_lon = rng.integers(-1, 2, dest.shape) * DLON / 5
    lat = lat_c[dest] + off_lat
    lon = lon_c[dest] + off_lon
    cells = np.array(
        [
            h3.str_to_int(h3.latlng_to_cell(a, b, 9))
            for a, b in zip(lat.ravel(), lon.ravel(), strict=True)
        ],
        dtype=np.uint64,
    )
    bins = rng.integers(0, 8, dest.size)
    dwell = rng.integers(600, 1800, dest.size).astype(float)
    start = pl.Series([T0], dtype=pl.Datetime("us", "UTC")).dt.offset_by("0m")[0]
    visits = pl.DataFrame(
        {
            "device": np.repeat(ids, visits_per_device),
            "cell": cells,
            "start": [start] * dest.size,
            "dwell_s": dwell,
            "slot": (12 + bins).astype(np.uint8),
            "daytype": ["weekday"] * dest.size,
        }
    ).with_columns(
        (pl.col("start") + pl.duration(minutes=pl.Series(bins * 30))).alias("start"),
        pl.col("device").cast(pl.UInt64),
        pl.col("cell").cast(pl.UInt64),
    )
    home_cells = np.array(
        [h3.str_to_int(h3.latlng_to_cell(lat_c[a], lon_c[a], 9)) for a in home], dtype=np.uint64
    )
    homes = pl.DataFrame(
        {
            "device": ids,
            "home_cell": home_cells,
            "nights": np.full(n_dev, 5, dtype=np.uint16),
            "home_share": np.full(n_dev, 0.8, dtype=np.float32),
            "area": [names[a] for a in home],
        }
    ).with_columns(pl.col("device").cast(pl.UInt64), pl.col("home_cell").cast(pl.UInt64))
    devices = pl.DataFrame(
        {"device": ids, "group": [GROUPS[level[a]] for a in home], "weight": np.ones(n_dev)}
    ).with_columns(pl.col("device").cast(pl.UInt64))
    squares = shapely.box(
        LON0 + ij[:, 1] * DLON,
        LAT0 + ij[:, 0] * DLAT,
        LON0 + (ij[:, 1] + 1) * DLON,
        LAT0 + (ij[:, 0] + 1) * DLAT,
    )
    areas = pl.DataFrame({"area": names, "geometry": shapely.to_wkb(squares)}).with_columns(
        pl.col("geometry").cast(pl.Binary)
    )
    comp = np.full((n_areas, 4), 10.0)
    comp[np.arange(n_areas), level] = 300.0
    pop_level = rng.permutation(n_areas) if shuffle_population else np.arange(n_areas)
    population = pl.DataFrame(
        {
            "unit": [names[a] for a in range(n_areas) for _ in GROUPS],
            "group": GROUPS * n_areas,
            "count": comp[pop_level].ravel(),
        }
    )
    lake = Lake(root)
    for name, frame in (
        ("visits", visits),
        ("homes", homes),
        ("devices", devices),
        ("areas", areas),
        ("population", population),
    ):
        put(lake, name, frame)
    return lake, {"level": level, "names": names, "ids": ids}
