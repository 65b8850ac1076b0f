"""CSV lines formatted by numpy, millions at a time, without a Python loop over rows.

A block of lines is a byte matrix (one row per line, one column per byte position) and a
mask of the bytes that are used: numbers are written digit by digit with integer
arithmetic into fixed columns, leading zeros are masked out, and the used bytes of all
rows, read row by row, are the CSV text.
"""

from __future__ import annotations

import numpy as np
import polars as pl

Block = tuple[np.ndarray, np.ndarray]  # (uint8 bytes (n, w), bool used (n, w))
ZERO = ord("0")


def fixed(values: np.ndarray, decimals: int, int_digits: int) -> Block:
    """Numbers with exactly `decimals` decimals (rounded half to even), as "-12.345600"."""
    v = np.asarray(values, dtype=np.float64)
    scale = 10**decimals
    a = np.rint(np.abs(v) * scale).astype(np.int64)
    if len(a) and a.max() >= 10**int_digits * scale:
        raise ValueError(f"a value needs more than {int_digits} integer digits")
    whole, frac = np.divmod(a, scale)
    n = len(v)
    width = 1 + int_digits + (1 + decimals if decimals else 0)
    out = np.zeros((n, width), dtype=np.uint8)
    used = np.ones((n, width), dtype=bool)
    out[:, 0] = ord("-")
    used[:, 0] = (v < 0) & (a > 0)
    for k in range(int_digits):
        p = 10 ** (int_digits - 1 - k)
        out[:, 1 + k] = ZERO + (whole // p) % 10
        used[:, 1 + k] = (whole >= p) | (k == int_digits - 1)
    if decimals:
        out[:, 1 + int_digits] = ord(".")
        for k in range(decimals):
            out[:, 2 + int_digits + k] = ZERO + (frac // 10 ** (decimals - 1 - k)) % 10
    return out, used


def text(matrix: np.ndarray) -> Block:
    """Fixed-width text (every byte used)."""
    return matrix, np.ones(matrix.shape, dtype=bool)


def strings(series: pl.Series) -> Block:
    """A polars String Series as a padded block (vectorised: one join, one gather)."""
    n = series.len()
    if n == 0:
        return np.zeros((0, 1), np.uint8), np.zeros((0, 1), bool)
    lens = series.str.len_bytes().fill_null(0).to_numpy().astype(np.int64)
    flat = np.frombuffer(series.fill_null("").str.join("").item().encode(), dtype=np.uint8)
    width = max(int(lens.max()), 1)
    starts = np.cumsum(lens) - lens
    col = np.arange(width)
    used = col[None, :] < lens[:, None]
    idx = np.minimum(starts[:, None] + col[None, :], max(len(flat) - 1, 0))
    out = flat[idx] if len(flat) else np.zeros((n, width), np.uint8)
    return np.where(used, out, 0).astype(np.uint8), used


def join(fields: list[Block], sep: bytes = b",", end: bytes = b"\n") -> Block:
    """Fields side by side, separated by `sep`, each line ended by `end`."""
    n = fields[0][0].shape[0]
    s = np.frombuffer(sep, dtype=np.uint8)
    e = np.frombuffer(end, dtype=np.uint8)
    parts, masks = [], []
    for i, (m, u) in enumerate(fields):
        if i:
            parts.append(np.broadcast_to(s, (n, len(s))))
            masks.append(np.ones((n, len(s)), bool))
        parts.append(m)
        masks.append(u)
    parts.append(np.broadcast_to(e, (n, len(e))))
    masks.append(np.ones((n, len(e)), bool))
    return np.hstack(parts), np.hstack(masks)


def to_bytes(block: Block) -> bytes:
    out, used = block
    return out[used].tobytes()


def decode(block: Block) -> pl.Series:
    """The block's lines as a polars String Series (for small blocks)."""
    out, used = block
    w = out.shape[1]
    padded = np.where(used, out, 0).astype(np.uint8)
    # used bytes are left-aligned within each field block only when built by `strings`;
    # here we compact each row: move unused bytes to the end, stable
    order = np.argsort(~used, axis=1, kind="stable")
    compact = np.take_along_axis(padded, order, axis=1)
    s = np.ascontiguousarray(compact).view(f"S{w}").ravel()
    return pl.Series(np.char.decode(s, "ascii"), dtype=pl.String)
