"""The visitation network and the edge table shared by both networks.

Visitation (Heine et al. 2021): V_AB = Σ_{i: home(i) = A} Σ_{visits of i to B} w_i d_iv,
the weighted dwell time residents of A spend in B (A = B: time in the home area). The
devices behind an edge are the distinct devices of A with a visit to B.

Edge table, for either network with amounts W_AB (all edges, before suppression):

    expected_AB = W_A· W_·B / W_··     (independence of origin and destination)
    ratio_AB    = W_AB / expected_AB
    distance_km = great-circle distance between the units' centroids (haversine, R = 6371.0088 km)

Edges behind fewer than `min_devices` distinct devices are suppressed (left out of the
published table) and counted; the margins above use every edge.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from segtool.exact import seconds_sum
from segtool.indices.linkage.inputs import LinkageData

EARTH_KM = 6371.0088


def visitation(data: LinkageData) -> pl.DataFrame:
    """origin, destination, amount (Σ w·dwell in seconds, or the flow count), devices."""
    if data.kind == "flows":
        agg = [
            seconds_sum("x").alias("amount"),
            pl.col("x").sum().round().cast(pl.Int64).alias("devices"),
        ]
    else:
        agg = [seconds_sum("x").alias("amount"), pl.col("device").n_unique().alias("devices")]
    return (
        data.rows.group_by("origin", "destination")
        .agg(*agg)
        .collect(engine="streaming")
        .with_columns(
            pl.col("origin", "destination").cast(pl.String), pl.col("devices").cast(pl.Int64)
        )
        .sort("origin", "destination")
    )


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance (km) between arrays of points in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def edge_table(
    raw: pl.DataFrame, units: pl.DataFrame, network: str, scale: float = 1.0
) -> pl.DataFrame:
    """Decorate raw edges (origin, destination, amount, devices) with expected, ratio,
    distance and the home flag; `scale` divides amounts (3600: seconds → hours)."""
    total = raw["amount"].sum()
    out_s = raw.group_by("origin").agg(pl.col("amount").sum().alias("__o"))
    in_s = raw.group_by("destination").agg(pl.col("amount").sum().alias("__d"))
    geo = units.select("unit", "lat", "lon")
    e = (
        raw.join(out_s, on="origin", how="left")
        .join(in_s, on="destination", how="left")
        .join(geo.rename({"unit": "origin", "lat": "__la", "lon": "__lo"}), on="origin", how="left")
        .join(
            geo.rename({"unit": "destination", "lat": "__lb", "lon": "__lob"}),
            on="destination",
            how="left",
        )
    )
    dist = haversine_km(
        e["__la"].to_numpy(), e["__lo"].to_numpy(), e["__lb"].to_numpy(), e["__lob"].to_numpy()
    )
    return (
        e.with_columns(
            pl.lit(network).alias("network"),
            (pl.col("amount") / scale).alias("observed"),
            (pl.col("__o") * pl.col("__d") / total / scale).alias("expected"),
            pl.Series("distance_km", dist),
            (pl.col("origin") == pl.col("destination")).alias("home"),
        )
        .with_columns((pl.col("observed") / pl.col("expected")).alias("ratio"))
        .select(
            "network",
            "origin",
            "destination",
            "observed",
            "expected",
            "ratio",
            "distance_km",
            "devices",
            "home",
        )
        .sort("origin", "destination")
    )


def suppress(edges: pl.DataFrame, min_devices: int) -> tuple[pl.DataFrame, dict]:
    """The edges with at least `min_devices` devices, and what was suppressed."""
    small = pl.col("devices") < min_devices
    gone = edges.filter(small)
    info = {
        "edges": edges.height,
        "edges_published": edges.height - gone.height,
        "edges_suppressed": gone.height,
        "amount_suppressed": float(gone["observed"].sum()),
        "amount_total": float(edges["observed"].sum()),
    }
    return edges.filter(~small), info
