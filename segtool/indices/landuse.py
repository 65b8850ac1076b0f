"""Segregation and land use (SPEC §5): which kinds of places bring groups together.

Per hexagon (H3 cell) the land use `(cell, category, share)` and the POIs
`(cell, category, n)` of the lake are summarised, joined to the place segregation S_α of
the experienced indices (Moro et al. 2021; places visited by fewer than k devices are
set aside before anything is computed), and S is related to them.

Per hexagon (`landuse_profile`, `poi_profile`, `hexagon_table`):

- coverage = Σ_c s_c, the share of the hexagon's area with a land-use category;
- composition p_c = s_c / coverage, the shares of the *mapped* part (equal to s_c when the
  categories cover the hexagon, as interior cells do);
- dominant category = argmax_c p_c (ties: the first name in alphabetical order);
- mix entropy = −Σ_c p_c ln p_c / ln C, C the number of categories in the land-use table
  (0 = one use, 1 = all C uses in equal parts; 0 when C = 1);
- POI count = Σ n, POI richness = categories with n > 0, POI diversity = −Σ_k q_k ln q_k
  / ln K, q_k the POI shares by category, K the number of POI categories in the POI table
  (0 for a hexagon with fewer than two POI categories, also with none).

Results (`landuse_segregation`, one tidy frame; the `index` column):

- `mean_place_segregation`: Σ_α W_α S_α / Σ_α W_α over the places whose dominant
  category is `group` (null group: every place analysed), W_α the weighted dwell at α —
  the same weights as the experienced `place_segregation` mean; `weight` = the
  category's share of the dwell, so the overall mean = Σ weight · value.
- `spearman`: Spearman's rank correlation (scipy.stats.spearmanr, with its p-value) of S_α
  with `component` mix_entropy, poi_diversity, pois, or share (p_c, `group` = category),
  over places (unweighted).
- `regression_coefficient`: least squares (scipy.linalg.lstsq) of S_α on an intercept,
  the shares p_c of every category but the reference (`other_group`; shares sum to 1, so
  one category is the baseline: a coefficient is the change in S when a hexagon's whole
  area moves from the reference category to `group`) and mix entropy; places unweighted.
  `regression_r2` is its R².
- `places`, `suppressed_places`, `places_without_landuse`, `places_low_coverage`: counts.

Inference: a bootstrap over places (each replicate draws n places with replacement; the
hexagons' S values are held fixed — for the uncertainty of S itself see the device
bootstrap of `segtool indices experienced`). Every statistic is recomputed for each
replicate from the multiplicities, vectorised: category means as one matrix product,
Spearman's ρ as a weighted Pearson correlation of mid-ranks (exactly the ρ of the
expanded sample), the regression as batched normal equations. `se`, percentile
`ci_low`/`ci_high`; deterministic for a seed.

References: Moro, Calacci, Dong, Pentland (2021) Nat Commun 12:4633; Frank et al. (2004)
Am J Prev Med 27(2) (land-use mix entropy); Spearman (1904); Efron & Tibshirani (1993).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from segtool.errors import InputError, UsageError
from segtool.indices.inference import summarize_replicates
from segtool.indices.weighted_stats import (
    Normal,
    Ranker,
    ols,
    place_multiplicities,
    rank_moments,
    spearman_from_ranks,
    weighted_means_by,
)

INDICES = (
    "mean_place_segregation",
    "spearman",
    "regression_coefficient",
    "regression_r2",
)
COUNTS = ("places", "suppressed_places", "places_without_landuse", "places_low_coverage")
SPEARMAN_COMPONENTS = ("mix_entropy", "poi_diversity", "pois", "share")

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "index": pl.String(),
    "group": pl.String(),
    "other_group": pl.String(),
    "component": pl.String(),
    "value": pl.Float64(),
    "weight": pl.Float64(),
    "places": pl.Int64(),
    "se": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "p_value": pl.Float64(),
}


@dataclass(frozen=True)
class LanduseParams:
    """Every choice behind a land-use analysis (serialised into the manifest).

    - `min_devices`: places visited by fewer distinct devices are set aside (privacy)
      before S is computed, as in the experienced indices.
    - `reference`: reference shares of S (`uniform` 1/K or `population`).
    - `min_coverage`: hexagons whose mapped land-use share is below this are left out
      (their composition would rest on a small part of their area) and counted.
    - `reference_category`: the regression's baseline category; default the category
      with the largest total share over the places analysed.
    - `bootstrap`, `seed`, `level`: replicates over places, their seed, the CI level.
    """

    min_devices: int = 5
    reference: str = "uniform"
    min_coverage: float = 0.5
    reference_category: str | None = None
    bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.min_devices < 1:
            raise UsageError("--min-devices must be at least 1")
        if self.reference not in ("uniform", "population"):
            raise UsageError("--reference must be uniform or population")
        if not 0.0 <= self.min_coverage <= 1.0:
            raise UsageError("--min-coverage must lie between 0 and 1")
        if self.bootstrap < 0:
            raise UsageError("--bootstrap takes a number of replicates (0 = off)")
        if not 0.5 < self.level < 1:
            raise UsageError("--level must lie between 0.5 and 1")


@dataclass
class LanduseResult:
    """indices: the tidy result; hexagons: one row per place analysed (hexagon-level
    aggregates only, no device ids); summary: counts and notes."""

    indices: pl.DataFrame
    hexagons: pl.DataFrame
    summary: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- per hexagon


def _frame(data: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return data.collect() if isinstance(data, pl.LazyFrame) else data


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"the {what} table has no column {', '.join(repr(c) for c in missing)}",
            hint=f"its columns are: {', '.join(frame.columns)}",
        )


def _normalised_entropy(p: pl.Expr, n_categories: int) -> pl.Expr:
    """−Σ p ln p / ln C inside a group_by (p > 0 terms only)."""
    if n_categories < 2:
        return pl.lit(0.0)
    # abs: a single category gives −0.0, shown as "-0.0" otherwise (every term is ≥ 0)
    return (-(p * p.log()).filter(p > 0).sum() / np.log(n_categories)).abs()


def share_column(category: str) -> str:
    return f"share_{category}"


def landuse_profile(
    landuse: pl.DataFrame | pl.LazyFrame, categories: list[str] | None = None
) -> pl.DataFrame:
    """Per cell: `coverage`, `dominant`, `mix_entropy` and one `share_<category>` column
    (p_c, the share of the mapped area) per category, sorted by cell.

    `categories` fixes the category list (and so C); default every category in the table.
    Duplicate (cell, category) rows are summed."""
    frame = _frame(landuse)
    _require(frame, ("cell", "category", "share"), "land-use")
    frame = frame.select(
        pl.col("cell").cast(pl.UInt64),
        pl.col("category").cast(pl.String),
        pl.col("share").cast(pl.Float64),
    )
    bad = frame.filter(
        pl.col("cell").is_null()
        | pl.col("category").is_null()
        | pl.col("share").is_null()
        | ~pl.col("share").is_finite()
        | (pl.col("share") < 0)
    ).height
    if bad:
        raise InputError(
            f"{bad} land-use rows have no cell or category, or a share that is not ≥ 0"
        )
    cats = sorted(frame["category"].unique().to_list()) if categories is None else list(categories)
    if not cats:
        raise InputError("the land-use table is empty")
    frame = frame.filter(pl.col("category").is_in(cats) & (pl.col("share") > 0))
    # Sorted before any sum over a cell, so sums (and ranks of near-equal values) come
    # out bit for bit the same on every run.
    per = frame.group_by("cell", "category").agg(pl.col("share").sum()).sort("cell", "category")
    per = per.with_columns(
        pl.col("share").sum().over("cell").alias("coverage"),
    ).with_columns((pl.col("share") / pl.col("coverage")).alias("p"))
    # Dominant: largest share, ties to the first name (sort by share desc, category asc).
    summary = (
        per.sort(["cell", "p", "category"], descending=[False, True, False])
        .group_by("cell", maintain_order=True)
        .agg(
            pl.col("coverage").first(),
            pl.col("category").first().alias("dominant"),
            _normalised_entropy(pl.col("p"), len(cats)).alias("mix_entropy"),
        )
    )
    wide = per.pivot(on="category", index="cell", values="p", on_columns=cats)
    wide = wide.rename({c: share_column(c) for c in cats}).with_columns(
        pl.col(share_column(c)).fill_null(0.0) for c in cats
    )
    out = summary.join(wide, on="cell", how="left").sort("cell")
    return out.select("cell", "coverage", "dominant", "mix_entropy", *map(share_column, cats))


def poi_profile(pois: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Per cell: `pois` (Σ n), `poi_categories` (categories with n > 0) and
    `poi_diversity` (−Σ q ln q / ln K, K = POI categories in the table), sorted by cell."""
    frame = _frame(pois)
    _require(frame, ("cell", "category", "n"), "POI")
    frame = frame.select(
        pl.col("cell").cast(pl.UInt64),
        pl.col("category").cast(pl.String),
        pl.col("n").cast(pl.Float64),
    )
    bad = frame.filter(
        pl.col("cell").is_null() | pl.col("category").is_null() | pl.col("n").is_null()
        | (pl.col("n") < 0)
    ).height  # fmt: skip
    if bad:
        raise InputError(f"{bad} POI rows have no cell or category, or a count that is not ≥ 0")
    k = frame.filter(pl.col("n") > 0)["category"].n_unique()
    per = (
        frame.group_by("cell", "category")
        .agg(pl.col("n").sum())
        .filter(pl.col("n") > 0)
        .sort("cell", "category")
    )
    per = per.with_columns((pl.col("n") / pl.col("n").sum().over("cell")).alias("q"))
    return (
        per.group_by("cell", maintain_order=True)
        .agg(
            pl.col("n").sum().alias("pois"),
            pl.len().cast(pl.Int64).alias("poi_categories"),
            _normalised_entropy(pl.col("q"), k).alias("poi_diversity"),
        )
        .sort("cell")
    )


def hexagon_table(
    places: pl.DataFrame,
    landuse: pl.DataFrame | pl.LazyFrame,
    pois: pl.DataFrame | pl.LazyFrame | None = None,
    *,
    min_coverage: float = 0.5,
) -> tuple[pl.DataFrame, dict]:
    """Published places (`place` = H3 cell, `segregation`, `weighted_dwell` [, `devices`])
    joined to their land-use and POI profiles. Returns the table of places analysed,
    sorted by place, and counts of places without land use and with low coverage."""
    _require(places, ("place", "segregation", "weighted_dwell"), "places")
    if not places.schema["place"].is_integer():
        raise InputError("places must be H3 cells (UInt64) to meet land use")
    keep = [c for c in ("place", "devices", "weighted_dwell", "segregation") if c in places.columns]
    p = places.select(keep).with_columns(pl.col("place").cast(pl.UInt64))
    p = p.filter(pl.col("segregation").is_not_null() & pl.col("segregation").is_not_nan())
    lu = landuse_profile(landuse)
    _check_resolution(p["place"], lu["cell"])
    joined = p.join(lu, left_on="place", right_on="cell", how="left")
    without = joined.filter(pl.col("coverage").is_null()).height
    low = joined.filter(pl.col("coverage") < min_coverage).height
    table = joined.filter(pl.col("coverage") >= min_coverage)
    if pois is not None:
        table = table.join(poi_profile(pois), left_on="place", right_on="cell", how="left")
    else:
        table = table.with_columns(
            pl.lit(None, pl.Float64).alias("pois"),
            pl.lit(None, pl.Int64).alias("poi_categories"),
            pl.lit(None, pl.Float64).alias("poi_diversity"),
        )
    table = table.with_columns(
        pl.col("pois").fill_null(0.0),
        pl.col("poi_categories").fill_null(0),
        pl.col("poi_diversity").fill_null(0.0),
    ).sort("place")
    return table, {"places_without_landuse": without, "places_low_coverage": low}


def _check_resolution(places: pl.Series, cells: pl.Series) -> None:
    import polars_h3 as plh3

    if places.len() == 0 or cells.len() == 0:
        return
    res = (
        pl.DataFrame({"c": pl.concat([places.head(1), cells.head(1)])})
        .select(plh3.get_resolution("c").alias("r"))["r"]
        .to_list()
    )
    if res[0] != res[1]:
        raise InputError(
            f"places are H3 cells of resolution {res[0]} but land use is at resolution {res[1]}",
            hint="ingest land use (segtool ingest landuse --res) at the visits' resolution",
        )


# --------------------------------------------------------------------------- statistics


def categories_of(table: pl.DataFrame) -> list[str]:
    return [c.removeprefix("share_") for c in table.columns if c.startswith("share_")]


def regression_design(
    table: pl.DataFrame, reference_category: str | None = None
) -> tuple[np.ndarray, list[tuple[str, str | None]], str, list[str]]:
    """The design matrix: intercept, share of each category but the reference, mix
    entropy. Returns X, the (component, group) of each column, the reference category
    and the categories left out because they never occur among the places."""
    cats = categories_of(table)
    totals = {c: float(table[share_column(c)].sum()) for c in cats}
    present = [c for c in cats if totals[c] > 0]
    absent = [c for c in cats if totals[c] <= 0]
    if reference_category is None:
        ref = sorted(present, key=lambda c: (-totals[c], c))[0] if present else None
    else:
        if reference_category not in cats:
            raise UsageError(
                f"--reference-category {reference_category!r} is not a land-use category",
                hint=f"categories: {', '.join(cats)}",
            )
        if reference_category in absent:
            raise UsageError(
                f"--reference-category {reference_category!r} occurs in none of the places analysed"
            )
        ref = reference_category
    cols = [np.ones(table.height)]
    names: list[tuple[str, str | None]] = [("intercept", None)]
    for c in present:
        if c != ref:
            cols.append(table[share_column(c)].to_numpy())
            names.append(("share", c))
    cols.append(table["mix_entropy"].to_numpy())
    names.append(("mix_entropy", None))
    return np.column_stack(cols), names, ref, absent


@dataclass
class _Stats:
    """The statistics of one evaluation (estimate: R = 1), keyed like the result rows."""

    keys: list[tuple]
    values: list[np.ndarray]


@dataclass
class _Prepared:
    """Everything about the places that does not change between replicates."""

    s: np.ndarray
    w: np.ndarray
    codes: np.ndarray
    cats: list[str]
    spearman: list[tuple[str, str | None, Ranker]]
    s_ranker: Ranker
    normal: Normal | None
    names: list[tuple[str, str | None]]
    ref: str | None


def _prepare(table: pl.DataFrame, design, spearman_vars) -> _Prepared:
    s = table["segregation"].to_numpy()
    cats = categories_of(table)
    codes = table["dominant"].cast(pl.Enum(cats)).to_physical().to_numpy().astype(np.int64)
    return _Prepared(
        s=s,
        w=table["weighted_dwell"].to_numpy(),
        codes=codes,
        cats=cats,
        spearman=[(comp, group, Ranker(x)) for comp, group, x in spearman_vars],
        s_ranker=Ranker(s),
        normal=None if design is None else Normal(design[0], s),
        names=[] if design is None else design[1],
        ref=None if design is None else design[2],
    )


def _evaluate(prep: _Prepared, mult: np.ndarray) -> _Stats:
    """Every statistic for the multiplicities `mult` (R, n); the estimate is R = 1 of ones."""
    by_cat, overall = weighted_means_by(prep.s, prep.w, prep.codes, len(prep.cats), mult)
    keys: list[tuple] = [("mean_place_segregation", None, None, None)]
    values: list[np.ndarray] = [overall]
    for j, c in enumerate(prep.cats):
        keys.append(("mean_place_segregation", c, None, None))
        values.append(by_cat[:, j])
    ry = prep.s_ranker.ranks(mult)
    ssy = rank_moments(ry, mult)[1]
    for component, group, ranker in prep.spearman:
        keys.append(("spearman", group, None, component))
        values.append(spearman_from_ranks(ranker.ranks(mult), ry, ssy, mult))
    if prep.normal is not None:
        beta, r2 = prep.normal.solve(mult)
        for j, (component, group) in enumerate(prep.names):
            other = prep.ref if component == "share" else None
            keys.append(("regression_coefficient", group, other, component))
            values.append(beta[:, j])
        keys.append(("regression_r2", None, None, None))
        values.append(r2)
    return _Stats(keys, values)


def _spearman_vars(table: pl.DataFrame, has_pois: bool):
    out = [("mix_entropy", None, table["mix_entropy"].to_numpy())]
    if has_pois:
        out += [
            ("poi_diversity", None, table["poi_diversity"].to_numpy()),
            ("pois", None, table["pois"].to_numpy()),
        ]
    out += [("share", c, table[share_column(c)].to_numpy()) for c in categories_of(table)]
    return out


def landuse_segregation(
    table: pl.DataFrame,
    params: LanduseParams | None = None,
    *,
    has_pois: bool = True,
    on_replicates=None,
) -> tuple[pl.DataFrame, list[str]]:
    """The tidy result of a `hexagon_table`: mean S by dominant category, Spearman
    correlations, the regression (see the module docstring), with bootstrap CIs when
    `params.bootstrap` > 0. Returns (frame, notes)."""
    from scipy.stats import spearmanr

    params = params or LanduseParams()
    notes: list[str] = []
    n = table.height
    if n < 3:
        raise InputError(
            f"only {n} places with land use to analyse: at least 3 are needed",
            hint="check that visits and land use cover the same area (and --min-coverage)",
        )
    cats = categories_of(table)
    spearman_vars = _spearman_vars(table, has_pois)
    design = regression_design(table, params.reference_category)
    X = design[0]
    if design[3]:
        notes.append(
            f"categories in none of the places analysed (left out of the regression): "
            f"{', '.join(design[3])}"
        )
    if n <= X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1]:
        notes.append(
            f"regression skipped: {n} places cannot identify {X.shape[1]} coefficients "
            "(too few places or collinear shares)"
        )
        design = None

    prep = _prepare(table, design, spearman_vars)
    est = _evaluate(prep, np.ones((1, n)))
    value = {k: float(v[0]) for k, v in zip(est.keys, est.values, strict=True)}
    # Point estimates from the reference implementations (identical to the batched ones).
    s = table["segregation"].to_numpy()
    p_values: dict[tuple, float] = {}
    for component, group, x in spearman_vars:
        key = ("spearman", group, None, component)
        if np.ptp(x) == 0 or np.ptp(s) == 0:
            value[key] = float("nan")
            continue
        res = spearmanr(x, s)
        value[key], p_values[key] = float(res.statistic), float(res.pvalue)
    if design is not None:
        beta, r2 = ols(design[0], s)
        for j, (component, group) in enumerate(design[1]):
            other = design[2] if component == "share" else None
            value[("regression_coefficient", group, other, component)] = float(beta[j])
        value[("regression_r2", None, None, None)] = r2

    reps: dict[tuple, list[np.ndarray]] = {k: [] for k in est.keys}
    if params.bootstrap:
        for mult in place_multiplicities(n, params.bootstrap, params.seed):
            block = _evaluate(prep, mult)
            for k, v in zip(block.keys, block.values, strict=True):
                reps[k].append(v)
            if on_replicates is not None:
                on_replicates(mult.shape[0])

    w = table["weighted_dwell"].to_numpy()
    dom = table["dominant"]
    counts = dom.value_counts().to_dict(as_series=False)
    per_cat_n = dict(zip(counts["dominant"], counts["count"], strict=True))
    per_cat_w = {c: float(w[(dom == c).to_numpy()].sum()) for c in cats}
    rows = []
    for key in est.keys:
        index, group, other, component = key
        row = {
            "index": index,
            "group": group,
            "other_group": other,
            "component": component,
            "value": value[key],
            "weight": None,
            "places": n,
            "se": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": p_values.get(key),
        }
        if index == "mean_place_segregation":
            row["places"] = n if group is None else per_cat_n.get(group, 0)
            row["weight"] = 1.0 if group is None else per_cat_w[group] / w.sum()
            if group is not None and row["places"] == 0:
                continue  # a category that dominates no place has no mean
        if params.bootstrap and np.isfinite(value[key]):
            b = summarize_replicates(value[key], np.concatenate(reps[key]), params.level)
            row.update(se=b.se, ci_low=b.ci_low, ci_high=b.ci_high)
        rows.append(row)
    frame = pl.DataFrame(rows, schema=RESULT_SCHEMA)
    return frame.with_columns(
        pl.col(c).fill_nan(None) for c in ("value", "se", "ci_low", "ci_high")
    ), notes


def count_rows(counts: dict) -> pl.DataFrame:
    """The privacy and coverage counts as result rows (index = count name)."""
    return pl.DataFrame(
        {"index": list(COUNTS), "value": [float(counts.get(c, 0)) for c in COUNTS]},
        schema={"index": pl.String, "value": pl.Float64},
    )


# --------------------------------------------------------------------------- entry points


def analyse(
    places: pl.DataFrame,
    landuse: pl.DataFrame | pl.LazyFrame,
    pois: pl.DataFrame | pl.LazyFrame | None,
    params: LanduseParams | None = None,
    *,
    suppressed_places: int = 0,
    on_replicates=None,
) -> LanduseResult:
    """Published places (with S) + land use + POIs → LanduseResult (pure; no I/O)."""
    params = params or LanduseParams()
    if "devices" in places.columns:
        small = places.filter(pl.col("devices") < params.min_devices).height
        places = places.filter(pl.col("devices") >= params.min_devices)
        suppressed_places += small
    table, counts = hexagon_table(places, landuse, pois, min_coverage=params.min_coverage)
    frame, notes = landuse_segregation(
        table, params, has_pois=pois is not None, on_replicates=on_replicates
    )
    counts = {"places": table.height, "suppressed_places": suppressed_places, **counts}
    indices = pl.concat([frame, count_rows(counts)], how="diagonal_relaxed")
    ref = frame.filter(pl.col("index") == "regression_coefficient")["other_group"].drop_nulls()
    summary = {
        **counts,
        "categories": categories_of(table),
        "reference_category": ref[0] if ref.len() else None,
        "notes": notes,
    }
    return LanduseResult(indices=indices, hexagons=table, summary=summary)


def place_segregation_from_lake(lake, params: LanduseParams) -> tuple[pl.DataFrame, dict]:
    """S_α of the lake's published places (experienced API, place segregation only)."""
    from segtool.indices.experienced import ExperiencedParams, experienced, panel_from_lake

    ep = ExperiencedParams(
        indices=("place_segregation",), min_devices=params.min_devices, reference=params.reference
    )
    result = experienced(panel_from_lake(lake, ep), ep)
    return result.places, result.summary


def landuse_from_lake(lake, params: LanduseParams | None = None, *, on_replicates=None):
    """Land use and segregation for a lake: visits/ + devices/ (S_α), landuse/, pois/."""
    params = params or LanduseParams()
    places, summary = place_segregation_from_lake(lake, params)
    pois = lake.scan("pois") if lake.exists("pois") else None
    result = analyse(
        places,
        lake.scan("landuse"),
        pois,
        params,
        suppressed_places=int(summary.get("units_suppressed", 0)),
        on_replicates=on_replicates,
    )
    result.summary["experienced"] = {
        k: summary.get(k) for k in ("devices", "visits", "units", "units_suppressed", "min_devices")
    }
    return result
