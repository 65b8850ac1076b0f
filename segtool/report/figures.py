"""The report's figures, drawn with matplotlib's object API (a `Figure` on the Agg canvas:
no pyplot, no global backend switch, nothing drawn on screen) and saved as SVG or PNG
bytes that are the same on every run (fixed SVG hash salt, no date in the metadata, text
drawn as paths so no font is needed to view them).

Every function takes small aggregated frames (hexagons, groups, categories) — never
device ids or raw coordinates — and returns a Figure.
"""

from __future__ import annotations

import io
import math

import numpy as np
import polars as pl

# Deterministic output: the SVG ids come from this salt instead of a random one, text is
# drawn as paths, and no creation date is written.
RC = {
    "svg.hashsalt": "segtool",
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
SVG_METADATA = {"Date": None, "Creator": "segtool (matplotlib)"}
PNG_METADATA = {"Software": "segtool (matplotlib)"}
SEQUENTIAL = "viridis"  # perceptually uniform, readable in grey and by colour-blind readers
BARS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")
FEW_PLACES = 10  # categories dominating fewer hexagons are drawn as open circles


def short(text, limit: int = 28) -> str:
    """Data text (group or category names) for a figure: `$` escaped so matplotlib never
    reads it as mathematics, long names shortened (tables show them in full)."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_bytes(fig, fmt: str = "svg", dpi: int = 110) -> bytes:
    """The figure as SVG or PNG bytes, identical on every run for the same figure."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(
            buf,
            format=fmt,
            dpi=dpi,
            metadata=SVG_METADATA if fmt == "svg" else PNG_METADATA,
        )
    return buf.getvalue()


def _styled(fn):
    """Build the figure under the report's rc settings (fonts, spines)."""

    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_styled
def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], title: str, label: str):
    """A K×K matrix (row g, column h) with each value written in its square."""
    k = len(rows)
    size = 1.2 + 0.55 * k
    fig = new_figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(cols)), labels=[short(c, 12) for c in cols])
    ax.set_yticks(range(k), labels=[short(r, 12) for r in rows])
    ax.set_xlabel("exposure to group (h)")
    ax.set_ylabel("members of group (g)")
    ax.set_title(title)
    for i in range(k):
        for j in range(len(cols)):
            v = matrix[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center",
                        color="white" if v > 0.55 else "black", fontsize=8)  # fmt: skip
    ax.spines[:].set_visible(False)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    return fig


def hexagon_rings(cells: pl.Series) -> list[np.ndarray]:
    """Each H3 cell's boundary as an (m, 2) array of (lon, lat), vectorised in polars-h3."""
    import polars_h3 as plh3

    if cells.len() == 0:
        return []
    b = (
        pl.DataFrame({"cell": cells.cast(pl.UInt64)})
        .with_row_index("i")
        .with_columns(plh3.cell_to_boundary("cell").alias("b"))
        .explode("b")
        .select("i", pl.col("b").list.get(1).alias("lon"), pl.col("b").list.get(0).alias("lat"))
    )
    xy = b.select("lon", "lat").to_numpy()
    starts = np.flatnonzero(np.r_[True, np.diff(b["i"].to_numpy()) != 0])
    return np.split(xy, starts[1:])


M_PER_DEG_LAT = 111_320.0  # metres per degree of latitude (and of longitude at the equator)


@_styled
def segregation_map(
    places: pl.DataFrame,
    background: pl.Series | None,
    k: int,
    outlines: list[np.ndarray] | None = None,
):
    """Hexagons coloured by place segregation S on a lon/lat plot (no tiles, nothing
    fetched): the study area's other hexagons (land use, no published visits) in light
    grey, the register areas' outlines (`outlines`: (lon, lat) rings) drawn under the
    hexagons and again faintly over them, and a scale bar."""
    from matplotlib.collections import LineCollection, PolyCollection

    fig = new_figure(7.2, 6.0)
    ax = fig.add_subplot()
    if outlines:
        ax.add_collection(LineCollection(outlines, colors="#9a9a9a", linewidths=0.7, zorder=0))
    if background is not None and background.len():
        ax.add_collection(
            PolyCollection(
                hexagon_rings(background), facecolor="#e6e6e6", edgecolor="white", linewidth=0.3
            )  # fmt: skip
        )
    rings = hexagon_rings(places["place"])
    coll = PolyCollection(rings, array=places["segregation"].to_numpy(), cmap=SEQUENTIAL,
                          edgecolor="white", linewidth=0.3)  # fmt: skip
    coll.set_clim(0.0, 1.0)
    ax.add_collection(coll)
    if outlines:  # the area borders stay readable over the hexagons
        ax.add_collection(LineCollection(outlines, colors="#404040", linewidths=0.5, alpha=0.45))
    every = rings + (hexagon_rings(background) if background is not None else [])
    if every:
        xy = np.concatenate(every)
        pad_x = 0.03 * (np.ptp(xy[:, 0]) or 0.01)
        pad_y = 0.03 * (np.ptp(xy[:, 1]) or 0.01)
        ax.set_xlim(xy[:, 0].min() - pad_x, xy[:, 0].max() + pad_x)
        ax.set_ylim(xy[:, 1].min() - pad_y, xy[:, 1].max() + pad_y)
        # Equal distances in both directions at this latitude.
        ax.set_aspect(1.0 / math.cos(math.radians(float(xy[:, 1].mean()))))
        scale_bar(ax, float(xy[:, 1].mean()))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(
        f"Place segregation S by hexagon ({places.height:,} places with ≥ {k} devices; "
        "grey: fewer or none)" + ("\nlines: register areas" if outlines else "")
    )
    ax.ticklabel_format(useOffset=False)
    fig.colorbar(coll, ax=ax, shrink=0.7, label="S (0 = all groups equally present, 1 = one group)")
    return fig


def scale_bar(ax, lat: float) -> float:
    """A bar of a round length (1, 2, 5 × 10^n m) in the lower left of a lon/lat map with
    equal-distance aspect; returns its length in metres. At latitude φ one degree of
    longitude is 111.32 km · cos φ."""
    from segtool.geo.outlines import nice_length

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    m_per_deg = M_PER_DEG_LAT * math.cos(math.radians(lat))
    length = nice_length((x1 - x0) * m_per_deg)
    dx = length / m_per_deg
    x, y = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    ax.plot([x, x + dx], [y, y], color="black", linewidth=3, solid_capstyle="butt", zorder=5)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x + dx / 2, y + 0.015 * (y1 - y0), label, ha="center", va="bottom", fontsize=8,
            zorder=5, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1})  # fmt: skip
    return length


@_styled
def histograms_by_group(hist: pl.DataFrame, groups: list[str], k: int):
    """Share of each home group's devices per bin of S_i (bins with fewer than k devices
    are hidden): one small panel per group, shared axes."""
    n = len(groups)
    cols = min(n, 4)
    rows_ = math.ceil(n / cols)
    fig = new_figure(1.9 * cols + 0.6, 1.9 * rows_ + 0.5)
    axes = fig.subplots(rows_, cols, sharex=True, sharey=True, squeeze=False)
    top = float(hist["share"].max() or 0.0) * 1.1 or 1.0
    for idx, g in enumerate(groups):
        ax = axes[idx // cols][idx % cols]
        h = hist.filter(pl.col("group") == g)
        left = h["bin_low"].to_numpy()
        width = (h["bin_high"] - h["bin_low"]).to_numpy()
        ax.bar(left, h["share"].to_numpy(), width=width, align="edge",
               color=BARS[idx % len(BARS)], edgecolor="white", linewidth=0.5)  # fmt: skip
        mean = h["group_mean"].drop_nulls()
        if mean.len():
            ax.axvline(float(mean[0]), color="black", linewidth=1, linestyle="--")
        ax.set_title(f"home group {short(g, 16)}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, top)
    for idx in range(n, rows_ * cols):
        axes[idx // cols][idx % cols].set_visible(False)
    fig.supxlabel("individual segregation S_i of the places visited (dashed: group mean)")
    fig.supylabel("share of the group's devices")
    return fig


@_styled
def isolation_bars(frame: pl.DataFrame):
    """Per group: residential isolation (register population, devices' homes) and
    experienced isolation as grouped bars. `frame`: group, series, value."""
    groups = frame["group"].unique(maintain_order=True).to_list()
    series = frame["series"].unique(maintain_order=True).to_list()
    fig = new_figure(1.3 + 1.1 * len(groups), 3.4)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for j, s in enumerate(series):
        sub = frame.filter(pl.col("series") == s)
        vals = [float(sub.filter(pl.col("group") == g)["value"].first() or np.nan) for g in groups]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, vals, width, label=s,
               color=BARS[j % len(BARS)])  # fmt: skip
    ax.set_xticks(x, labels=[short(g, 12) for g in groups])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of one's own group")
    ax.set_title("Isolation: at home and where time is spent")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12),
              ncol=len(series))  # fmt: skip
    return fig


@_styled
def segregation_profile(frame: pl.DataFrame, labels: dict[str, str]):
    """Index value against egohood radius, one line per index. `frame`: k, radius_m,
    index, value (segtool.indices.spatial.segregation_profile)."""
    fig = new_figure(5.6, 3.2)
    ax = fig.add_subplot()
    for j, (index, label) in enumerate(labels.items()):
        sub = frame.filter(pl.col("index") == index).sort("k")
        if sub.height:
            ax.plot(sub["radius_m"], sub["value"], marker="o", label=label,
                    color=BARS[j % len(BARS)])  # fmt: skip
    ax.set_ylim(0, 1)
    ax.set_xlabel("egohood radius (m): 0 = the hexagon itself")
    ax.set_ylabel("index value")
    ax.set_title("Segregation by scale")
    ax.legend(frameon=False, fontsize=8)
    return fig


@_styled
def category_means(frame: pl.DataFrame, overall: float | None):
    """Mean S by dominant land-use category with CIs: dots and whiskers, sorted, with the
    number of places; `frame`: group, value, ci_low, ci_high, places."""
    f = frame.sort("value")  # the most mixed kind of place on top
    n = f.height
    fig = new_figure(6.4, 1.1 + 0.42 * n)
    ax = fig.add_subplot()
    y = np.arange(n)
    v = f["value"].to_numpy()
    if "ci_low" in f.columns and f["ci_low"].null_count() < n:
        lo = v - f["ci_low"].fill_null(np.nan).to_numpy()
        hi = f["ci_high"].fill_null(np.nan).to_numpy() - v
        ax.errorbar(v, y, xerr=np.vstack([lo, hi]), fmt="none", ecolor="#555555",
                    elinewidth=1.2, capsize=3)  # fmt: skip
    few = f["places"].to_numpy() < FEW_PLACES  # open circles: read with care
    ax.scatter(v[~few], y[~few], color=BARS[0], zorder=3)
    ax.scatter(v[few], y[few], facecolor="white", edgecolor=BARS[0], linewidth=1.5, zorder=3)
    if overall is not None:
        ax.axvline(overall, color="black", linestyle="--", linewidth=1)
        ax.text(overall, -0.75, " all places", fontsize=8, va="center")
    ax.set_yticks(
        y, labels=[f"{short(c)} ({p:,})" for c, p in zip(f["group"], f["places"], strict=True)]
    )
    ax.set_ylim(n - 0.5, -1.0)  # first row on top, room for the label above it
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean place segregation S (dwell-weighted), 95% bootstrap CI")
    fig.suptitle("Which kinds of places bring groups together (lower = more mixed)")
    return fig
