"""The co-presence network: how long residents of A are together with residents of B, in
the same H3 cell and half-hour bin — as the experienced co-presence exposure defines it
(leave-self-out, `segtool.indices.experienced.encounters`), with home units in place of
groups.

For a segment b (cell × bin) let x_i = w_i · (seconds device i spends in b), P_bB the sum
of x over residents of B present in b and P_b = Σ_B P_bB. The others present with i hold
O_bB(i) = P_bB − x_i [home(i) = B] out of O_b(i) = P_b − x_i, and

    C_AB = Σ_{i: home(i) = A} Σ_b x_i O_bB(i) / O_b(i)
         = Σ_b U_bA P_bB − [A = B] Σ_{i ∈ A} x_i u_i,   u_i = x_i / O_b(i),  U_bA = Σ_{i ∈ A, b} u_i,

so C = Uᵀ P − diag(...) is one sparse product (segments × units), never a device pair.
Row sums of C are the residents' co-present time (segments where someone else is
present). The devices behind C_AB are the distinct residents of A that share a segment
with at least one other resident of B: with X the device × segment incidence and N_bB the
number of B's devices in b, Z = X N counts, for device i, B's devices met (i itself
removed for B = home(i)).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from segtool.indices.linkage.inputs import LinkageData


def copresence(data: LinkageData, units: list[str]) -> pl.DataFrame:
    """origin, destination, amount (weighted co-present seconds), devices."""
    enum = pl.Enum(units)
    rows = (
        data.rows.select(
            "device",
            pl.col("origin").cast(enum).to_physical().cast(pl.Int64).alias("u"),
            "cell",
            "bin",
            "x",
        )
        .collect(engine="streaming")
        # one fixed order (segment, device, amount): the sums below give the same bits
        .sort("cell", "bin", "device", "x")
    )
    n_units = len(units)
    if rows.height == 0:
        return _empty()
    cell, b = rows["cell"].to_numpy(), rows["bin"].to_numpy()
    device = rows["device"].to_numpy()
    new_seg = np.ones(rows.height, dtype=bool)
    new_seg[1:] = (cell[1:] != cell[:-1]) | (b[1:] != b[:-1])
    new_piece = new_seg.copy()
    new_piece[1:] |= device[1:] != device[:-1]
    piece = np.cumsum(new_piece) - 1  # one piece per device and segment
    first = np.flatnonzero(new_piece)
    x = rows["x"].to_numpy()
    if first.size < rows.height:  # a device with two visits in one segment: add them up
        x = np.bincount(piece, weights=x)
    seg = (np.cumsum(new_seg) - 1)[first]
    u = rows["u"].to_numpy()[first]
    dev = pl.Series(device[first]).rank("dense").cast(pl.Int64).to_numpy() - 1
    del rows, cell, b, device
    n_seg = int(seg[-1]) + 1
    n_dev = int(dev.max()) + 1

    P = sp.csr_matrix((x, (seg, u)), shape=(n_seg, n_units))  # duplicates are summed
    p_b = np.bincount(seg, weights=x, minlength=n_seg)
    others = p_b[seg] - x
    has = others > x * 1e-12  # someone else is present
    ui = np.where(has, x / np.where(has, others, 1.0), 0.0)
    U = sp.csr_matrix((ui, (seg, u)), shape=(n_seg, n_units))
    C = (U.T @ P).tocoo()
    self_term = np.bincount(u, weights=x * ui, minlength=n_units)
    amount = C.data - np.where(C.row == C.col, self_term[C.row], 0.0)

    # devices behind each edge
    X = sp.csr_matrix((np.ones_like(x), (dev, seg)), shape=(n_dev, n_seg))
    N = sp.csr_matrix((np.ones_like(x), (seg, u)), shape=(n_seg, n_units))
    Z = (X @ N).tocoo()
    dev_unit = np.zeros(n_dev, dtype=np.int64)
    dev_unit[dev] = u
    n_segs_dev = np.bincount(dev, minlength=n_dev)
    met = Z.data - np.where(dev_unit[Z.row] == Z.col, n_segs_dev[Z.row], 0)
    keep = met > 0
    pairs = pl.DataFrame({"o": dev_unit[Z.row[keep]], "d": Z.col[keep]})
    devices = pairs.group_by("o", "d").len()

    edges = pl.DataFrame(
        {"o": C.row.astype(np.int64), "d": C.col.astype(np.int64), "amount": amount}
    )
    edges = edges.filter(pl.col("amount") > 0).join(
        devices.with_columns(pl.col("o").cast(pl.Int64), pl.col("d").cast(pl.Int64)),
        on=["o", "d"],
        how="left",
    )
    names = pl.Series(units, dtype=pl.String)
    return edges.select(
        names.gather(edges["o"]).alias("origin"),
        names.gather(edges["d"]).alias("destination"),
        pl.col("amount"),
        pl.col("len").fill_null(0).cast(pl.Int64).alias("devices"),
    ).sort("origin", "destination")


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "origin": pl.String,
            "destination": pl.String,
            "amount": pl.Float64,
            "devices": pl.Int64,
        }
    )
