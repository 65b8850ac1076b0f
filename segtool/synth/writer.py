"""Writing the synthetic city's files, byte for byte reproducibly.

- GeoPackages (pyogrio/GDAL) with a fixed `OGR_CURRENT_DATE`, so the `last_change`
  timestamps GDAL stores do not depend on the wall clock;
- the vendor ping CSV, streamed chunk by chunk, optionally gzipped (no name, mtime 0);
  rows are formatted by numpy (`fastcsv.py`, no Python loop over pings), and a small share of rows is
  planted bad on purpose, each with exactly one defect that ingest rejects with a stable
  reason code (`segtool/ingest/rejects.py`), listed in `truth/planted_rejects.csv`;
- Parquet truth tables (stays streamed by row group).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from segtool.ingest.rejects import REASONS
from segtool.synth import fastcsv
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

    def write(self, text: bytes, lines: int) -> None:
        if lines == 0:
            return
        self._submit(text)
        self.lines += lines

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
    ids: np.ndarray,
    dev: np.ndarray,
    timestamps: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    accuracy: np.ndarray,
    low_accuracy: np.ndarray,
    malformed_share: float,
    duplicate_share: float,
    rng: np.random.Generator,
    first_line: int,
) -> tuple[bytes, int, pl.DataFrame, np.ndarray]:
    """The CSV text of a chunk's pings with bad rows planted, its number of lines,
    (line, reason) of each planted row, and which pings ingest will reject (corrupted or
    low accuracy; duplicates are extra lines, their originals stay clean).

    `ids` is the chunk's device ids as a (devices, w) byte matrix, `timestamps` the pings'
    ISO 8601 local times as a (pings, 25) byte matrix (`Clock.iso_local`). Each planted row
    has exactly one defect; `first_line` is the file line number of the chunk's first row.
    Planted kinds (variants chosen at random):

    - empty_id: the id is empty;
    - unparseable_time: `n/a`, month 13 (`2024-13-…`), or `yesterday`;
    - unparseable_coordinates: latitude empty, longitude `n/a`, or latitude `59..33…`;
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

    # final row order: duplicates go 1–20 rows after their original
    after = np.minimum(dup_src + rng.integers(1, 21, n_dup), n - 1)
    sort_key = np.concatenate([2 * np.arange(n, dtype=np.int64), 2 * after + 1])
    source = np.concatenate([np.arange(n), dup_src])
    order = np.argsort(sort_key, kind="stable")
    rows = source[order]  # the ping behind each output line
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))

    fields = [
        fastcsv.text(ids[dev[rows]]),
        fastcsv.text(timestamps[rows]),
        fastcsv.fixed(lat[rows], 6, 3),
        fastcsv.fixed(lon[rows], 6, 3),
        fastcsv.fixed(accuracy[rows], 1, 4),
    ]
    out, used = fastcsv.join(fields)

    if n_bad:
        at = position[bad_rows]  # output lines of the rows to corrupt (originals, not copies)
        clean = [fastcsv.decode((m[at], u[at])) for m, u in fields]
        lines = _corrupt(clean, kind, variant, lat[bad_rows], lon[bad_rows])
        bm, bu = fastcsv.join([fastcsv.strings(lines)], end=b"\n")
        if bm.shape[1] > out.shape[1]:
            extra = bm.shape[1] - out.shape[1]
            out = np.hstack([out, np.zeros((len(out), extra), np.uint8)])
            used = np.hstack([used, np.zeros((len(used), extra), bool)])
        out[at] = 0
        used[at] = False
        out[at, : bm.shape[1]] = bm
        used[at, : bm.shape[1]] = bu
    text = fastcsv.to_bytes((out, used))

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
    rejected = low_accuracy.copy()
    rejected[bad_rows] = True
    return text, len(rows), planted, rejected


def _corrupt(clean: list[pl.Series], kind, variant, lat, lon) -> pl.Series:
    """The planted rows' lines (without newline): each clean row with one defect."""
    bad = pl.DataFrame(
        {
            "id": clean[0],
            "ts": clean[1],
            "lat": clean[2],
            "lon": clean[3],
            "acc": clean[4],
            "kind": np.array(MALFORMED)[kind],
            "v": variant,
            # out-of-range numbers, formatted like the clean ones
            "lat_up": fastcsv.decode(fastcsv.fixed(lat + 90, 6, 3)),
            "lon_up": fastcsv.decode(fastcsv.fixed(lon + 180, 6, 3)),
            "lat_down": fastcsv.decode(fastcsv.fixed(-(lat + 40), 6, 3)),
        }
    )
    kd, v = pl.col("kind"), pl.col("v")

    bad = bad.with_columns(
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
        .then(pl.col("lat_up"))
        .when((kd == "coordinates_out_of_range") & (v == 2))
        .then(pl.col("lat_down"))
        .otherwise("lat")
        .alias("lat"),
        pl.when((kd == "unparseable_coordinates") & (v == 1))
        .then(pl.lit("n/a"))
        .when((kd == "coordinates_out_of_range") & (v == 1))
        .then(pl.col("lon_up"))
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
    )
    return bad.select(
        pl.when((kd == "malformed_row") & (v == 2))
        .then(pl.concat_str("id", "ts", "lat", "lon", separator=","))
        .when(kd == "malformed_row")
        .then(pl.concat_str("id", "ts", "lat", "lon", "acc", pl.lit("gps"), separator=","))
        .otherwise(pl.concat_str("id", "ts", "lat", "lon", "acc", separator=","))
    ).to_series()
