"""Writing the synthetic city's files, byte for byte reproducibly.

- GeoPackages (pyogrio/GDAL) with a fixed `OGR_CURRENT_DATE`, so the `last_change`
  timestamps GDAL stores do not depend on the wall clock;
- the vendor ping CSV, streamed chunk by chunk, optionally gzipped (no name, mtime 0);
  rows are formatted by polars (no Python loop over pings), and a small share of rows is
  planted bad on purpose, each with exactly one defect that ingest rejects with a stable
  reason code (`segtool/ingest/rejects.py`), listed in `truth/planted_rejects.csv`;
- Parquet truth tables (stays streamed by row group).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from segtool.ingest.rejects import REASONS
from segtool.synth.city import CRS

PINGS_HEADER = "device_id,timestamp,latitude,longitude,accuracy"
FIXED_GDAL_DATE = "2024-01-01T00:00:00.000Z"

# Malformed kinds planted at random rows (besides duplicates and low accuracy).
MALFORMED = (
    "empty_id",
    "unparseable_time",
    "unparseable_coordinates",
    "coordinates_out_of_range",
    "unparseable_accuracy",
    "malformed_row",
)
PLANTED = (*MALFORMED, "duplicate_ping", "low_accuracy")
assert set(PLANTED) <= set(REASONS), "planted reasons must be ingest's reason codes"


@contextmanager
def _fixed_gdal_date() -> Iterator[None]:
    import pyogrio

    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GDAL_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})


def write_gpkg(
    path: Path, layer: str, geometry: np.ndarray, fields: dict[str, np.ndarray], geometry_type: str
) -> None:
    """A one-layer GeoPackage in EPSG:3006 (reproducible bytes)."""
    import shapely
    from pyogrio.raw import write

    if geometry_type == "MultiPolygon":
        geometry = np.array(geometry, dtype=object)
        single = np.flatnonzero(shapely.get_type_id(geometry) == 3)
        geometry[single] = shapely.multipolygons(geometry[single], indices=np.arange(len(single)))
    with _fixed_gdal_date():
        write(
            str(path),
            geometry=shapely.to_wkb(geometry),
            field_data=list(fields.values()),
            fields=list(fields),
            geometry_type=geometry_type,
            crs=CRS,
            driver="GPKG",
            layer=layer,
        )


class PingFile:
    """One vendor ping file, written chunk by chunk; knows how many lines it holds.

    Compression and disk writes run on a background thread (zlib releases the GIL), in
    submission order, while the next chunk is simulated.
    """

    def __init__(self, path: Path, compress: bool):
        from concurrent.futures import ThreadPoolExecutor

        self.path = path
        self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._out = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=3)
            if compress
            else self._raw
        )
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending = None
        self._submit((PINGS_HEADER + "\n").encode())
        self.lines = 1  # the header is line 1

    def _submit(self, data: bytes) -> None:
        if self._pending is not None:
            self._pending.result()  # at most one chunk in flight: bounded memory
        self._pending = self._pool.submit(self._out.write, data)

    def write(self, lines: pl.Series) -> None:
        if lines.len() == 0:
            return
        buf = io.BytesIO()
        lines.to_frame("line").write_csv(buf, include_header=False, quote_style="never")
        self._submit(buf.getvalue())
        self.lines += lines.len()

    def close(self) -> None:
        try:
            if self._pending is not None:
                self._pending.result()
        finally:
            self._pool.shutdown()
            if self._out is not self._raw:
                self._out.close()
            self._raw.close()


def format_pings(
    ids: pl.Series,
    dev: np.ndarray,
    timestamps: pl.Series,
    lat: np.ndarray,
    lon: np.ndarray,
    accuracy: np.ndarray,
    low_accuracy: np.ndarray,
    malformed_share: float,
    duplicate_share: float,
    rng: np.random.Generator,
    first_line: int,
) -> tuple[pl.Series, pl.DataFrame]:
    """The CSV lines of a chunk's pings with bad rows planted, and (line, reason) of each.

    `timestamps` are the ISO 8601 local times of the pings. Each planted row has exactly
    one defect; `first_line` is the file line number the chunk's first row will get.
    Planted kinds (variants chosen at random):

    - empty_id: the id is empty;
    - unparseable_time: `n/a`, month 13 (`2024-13-…`), or `yesterday`;
    - unparseable_coordinates: latitude empty, longitude `n/a`, or latitude `59..33`;
    - coordinates_out_of_range: latitude + 90, longitude + 180, or latitude −(lat + 40);
    - unparseable_accuracy: `n/a`, `high`, or the number with an `m` (`12.5m`);
    - malformed_row: an extra sixth field (`,gps`) or the accuracy field missing (4 fields);
    - duplicate_ping: an exact copy of a row, 1–20 rows after it;
    - low_accuracy: accuracy over 100 m (network fixes, see `noise.py`).
    """
    n = len(dev)
    ok = np.flatnonzero(~low_accuracy)
    n_bad = rng.binomial(len(ok), malformed_share)
    pick = rng.permutation(len(ok))
    bad_rows = np.sort(ok[pick[:n_bad]])
    n_dup = rng.binomial(len(ok) - n_bad, duplicate_share)
    dup_src = np.sort(ok[pick[n_bad : n_bad + n_dup]])
    kind = rng.integers(0, len(MALFORMED), n_bad)
    variant = rng.integers(0, 3, n_bad)

    frame = pl.DataFrame(
        {
            "id": ids.gather(dev),
            "ts": timestamps,
            "lat": pl.Series(lat).round(6).cast(pl.String),
            "lon": pl.Series(lon).round(6).cast(pl.String),
            "acc": pl.Series(accuracy).round(1).cast(pl.String),
        }
    )
    # the planted rows, corrupted on a small frame and scattered back
    bad = frame[bad_rows].with_columns(
        kind=pl.Series(np.array(MALFORMED)[kind]),
        v=pl.Series(variant),
        lat_n=pl.Series(lat[bad_rows]),
        lon_n=pl.Series(lon[bad_rows]),
    )
    kd, v = pl.col("kind"), pl.col("v")
    bad = bad.select(
        pl.when(kd == "empty_id").then(pl.lit("")).otherwise("id").alias("id"),
        pl.when(kd == "unparseable_time")
        .then(
            pl.when(v == 0)
            .then(pl.lit("n/a"))
            .when(v == 1)
            .then(pl.col("ts").str.slice(0, 5) + pl.lit("13") + pl.col("ts").str.slice(7))
            .otherwise(pl.lit("yesterday"))
        )
        .otherwise("ts")
        .alias("ts"),
        pl.when((kd == "unparseable_coordinates") & (v == 0))
        .then(pl.lit(""))
        .when((kd == "unparseable_coordinates") & (v == 2))
        .then(pl.col("lat").str.replace(".", "..", literal=True))
        .when((kd == "coordinates_out_of_range") & (v == 0))
        .then((pl.col("lat_n") + 90).round(6).cast(pl.String))
        .when((kd == "coordinates_out_of_range") & (v == 2))
        .then((-(pl.col("lat_n") + 40)).round(6).cast(pl.String))
        .otherwise("lat")
        .alias("lat"),
        pl.when((kd == "unparseable_coordinates") & (v == 1))
        .then(pl.lit("n/a"))
        .when((kd == "coordinates_out_of_range") & (v == 1))
        .then((pl.col("lon_n") + 180).round(6).cast(pl.String))
        .otherwise("lon")
        .alias("lon"),
        pl.when(kd == "unparseable_accuracy")
        .then(
            pl.when(v == 0)
            .then(pl.lit("n/a"))
            .when(v == 1)
            .then(pl.lit("high"))
            .otherwise(pl.col("acc") + "m")
        )
        .otherwise("acc")
        .alias("acc"),
        pl.when((kd == "malformed_row") & (v == 2))
        .then(pl.concat_str("id", "ts", "lat", "lon", separator=","))
        .when(kd == "malformed_row")
        .then(pl.concat_str("id", "ts", "lat", "lon", "acc", pl.lit("gps"), separator=","))
        .alias("line"),
    )
    if n_bad:
        for col in ("id", "ts", "lat", "lon", "acc"):
            frame = frame.with_columns(frame[col].scatter(bad_rows, bad[col]))
    lines = frame.select(
        pl.concat_str("id", "ts", "lat", "lon", "acc", separator=",").alias("line")
    ).to_series()
    malformed = np.flatnonzero(kind == MALFORMED.index("malformed_row"))
    if malformed.size:
        lines = lines.scatter(bad_rows[malformed], bad["line"].gather(malformed))

    # duplicates: an exact copy of a row, 1–20 rows after it
    after = np.minimum(dup_src + rng.integers(1, 21, n_dup), n - 1)
    sort_key = np.concatenate([2 * np.arange(n, dtype=np.int64), 2 * after + 1])
    source = np.concatenate([np.arange(n), dup_src])
    order = np.argsort(sort_key, kind="stable")
    lines = lines.gather(source[order])
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    line_no = first_line + position

    reasons = np.array((*MALFORMED, "duplicate_ping", "low_accuracy"), dtype=object)
    low_rows = np.flatnonzero(low_accuracy)
    planted_rows = np.concatenate([bad_rows, n + np.arange(n_dup), low_rows])
    planted_reason = np.concatenate(
        [kind, np.full(n_dup, len(MALFORMED)), np.full(len(low_rows), len(MALFORMED) + 1)]
    ).astype(np.int64)
    planted = pl.DataFrame(
        {
            "line": line_no[planted_rows].astype(np.uint64),
            "reason": reasons[planted_reason].astype(str),
        },
        schema={"line": pl.UInt64, "reason": pl.String},
    ).sort("line")
    return lines, planted
