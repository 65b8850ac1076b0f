"""The engine's sort and de-duplication agree with a plain full sort."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.ingest.partitions import FILE, sort_and_dedupe
from segtool.ingest.pings import PINGS
from segtool.ingest.reader import LINE
from segtool.ingest.stays import STAYS


def _pings(n: int, seed: int, in_time_order: bool, with_old: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = rng.integers(0, 40, n)
    if in_time_order:
        ts = np.sort(ts)
    old = with_old & (np.arange(n) < n // 3)  # rows already in the dataset come first
    frame = pl.DataFrame(
        {
            "device": rng.integers(0, 6, n).astype(np.uint64) * (1 << 61),
            "ts": pl.Series(ts * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "lat": rng.integers(0, 3, n) / 2,
            "lon": rng.integers(0, 2, n) / 2,
            "accuracy_m": pl.Series(rng.random(n), dtype=pl.Float32),
            FILE: np.where(old, -1, rng.integers(0, 2, n)).astype(np.int32),
            LINE: np.where(old, 0, np.arange(n)).astype(np.uint64),
        }
    )
    if with_old:  # old rows were de-duplicated already
        frame = pl.concat(
            [
                frame.filter(pl.col(FILE) == -1).unique(
                    list(PINGS.dedupe_on), keep="first", maintain_order=True
                ),
                frame.filter(pl.col(FILE) >= 0).sort(FILE, LINE),
            ]
        )
    else:
        frame = frame.sort(FILE, LINE)
    return frame


def reference(frame: pl.DataFrame, spec) -> tuple[pl.DataFrame, pl.DataFrame]:
    ordered = frame.sort([*spec.sort_by, FILE, LINE], maintain_order=True)
    equal = pl.all_horizontal(pl.col(c) == pl.col(c).shift(1) for c in spec.dedupe_on)
    dup = ordered.select(equal.fill_null(False)).to_series()
    return (
        ordered.filter(~dup).select(*spec.schema, FILE),
        ordered.filter(dup).select(FILE, LINE),
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(0, 10**6), st.booleans(), st.booleans())
def test_sort_and_dedupe_is_a_full_sort_and_keeps_the_first(n, seed, in_time_order, with_old):
    frame = _pings(n, seed, in_time_order, with_old)
    kept, dups = sort_and_dedupe(frame, PINGS)
    want_kept, want_dups = reference(frame, PINGS)
    assert kept.equals(want_kept)
    assert dups.sort(FILE, LINE).equals(want_dups.sort(FILE, LINE))
    assert kept.height + dups.height == frame.height


def test_nulls_and_text_keys_take_the_general_path():
    frame = _pings(200, 1, True, False).with_columns(
        pl.when(pl.col(LINE) % 7 == 0).then(None).otherwise(pl.col("lat")).alias("lat")
    )
    for spec_frame in (frame, frame.with_columns(pl.col("lat").cast(pl.String))):
        kept, dups = sort_and_dedupe(spec_frame, PINGS)
        want_kept, want_dups = reference(spec_frame, PINGS)
        assert kept.equals(want_kept) and dups.sort(FILE, LINE).equals(want_dups.sort(FILE, LINE))


def test_stays_sort_on_every_key():
    rng = np.random.default_rng(3)
    n = 300
    start = np.sort(rng.integers(0, 20, n)) * 1_000_000
    frame = pl.DataFrame(
        {
            "device": rng.integers(0, 4, n).astype(np.uint64),
            "start": pl.Series(start).cast(pl.Datetime("us", "UTC")),
            "end": pl.Series(start + rng.integers(0, 3, n) * 1_000_000).cast(
                pl.Datetime("us", "UTC")
            ),
            "lat": rng.integers(0, 2, n) / 2,
            "lon": rng.integers(0, 2, n) / 2,
            "n_pings": pl.Series(rng.integers(1, 3, n), dtype=pl.UInt32),
            FILE: np.zeros(n, np.int32),
            LINE: np.arange(n, dtype=np.uint64),
        }
    )
    kept, dups = sort_and_dedupe(frame, STAYS)
    want_kept, want_dups = reference(frame, STAYS)
    assert kept.equals(want_kept) and dups.equals(want_dups)
