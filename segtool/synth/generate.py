"""`generate_city`: the whole synthetic city, written atomically into one folder.

Random streams (numpy `default_rng` seeded with [seed, stream, …]): 1 city geography,
2 population and place flavours, 3 devices (homes, work places), [4, c] daily life of
device chunk c, [5, c] its pings, [6, c] its planted bad rows. Chunks hold a fixed number
of devices derived from the parameters alone, so the same parameters give the same bytes
on any machine.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import polars_h3 as plh3
import pyarrow.parquet as pq

from segtool import console
from segtool.errors import InputError
from segtool.lake import Manifest, sha256_file, write_text_atomic
from segtool.synth import noise, population
from segtool.synth.city import CRS, MUNICIPALITY, build_city
from segtool.synth.clock import make_clock
from segtool.synth.mobility import KINDS, Chunk, Places, choose_work, place_flavours, simulate
from segtool.synth.params import GROUPS, TIME_ZONE, SynthParams, SynthReport
from segtool.synth.writer import PLANTED, PingFile, format_pings, write_gpkg

CHUNK_PINGS = 500_000  # target pings per device chunk (bounds memory)
H3_RES = 9
MANIFEST = "_manifest.json"


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _to_wgs84(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from segtool.geo.crs import to_wgs84

    return to_wgs84(x, y, CRS)


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise InputError(
            f"--out {str(out)!r} exists and was not made by `segtool synth`",
            hint="choose a new or empty folder; an earlier synth output is replaced",
        )


def generate_city(params: SynthParams, out: str | os.PathLike) -> SynthReport:
    """Generate the synthetic city described by `params` into folder `out`.

    The folder is built beside `out` and renamed into place when complete, replacing an
    earlier synth output there (a folder not made by synth is refused).
    """
    out = Path(out)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-synth-{out.name}-{uuid.uuid4().hex}"
    old = out.parent / f".old-synth-{out.name}-{uuid.uuid4().hex}"
    try:
        tmp.mkdir()
        report = _generate(params, tmp, out)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return report


def _generate(p: SynthParams, out: Path, final: Path) -> SynthReport:
    clock = make_clock(p.start_date, p.days)
    city = build_city(p.n_areas, _rng(p.seed, 1))
    areas = city.areas
    rng_pop = _rng(p.seed, 2)
    income = population.income_field(areas, city.radius, rng_pop)
    rank = population.weighted_rank(income, areas.residents)
    counts = population.population_counts(rank, areas.residents, p.segregation)
    pois = city.pois
    flavour = place_flavours(pois, counts, rng_pop)
    places = Places(pois.x, pois.y, pois.attractiveness, pois.jobs, flavour, city.radius)

    rng_dev = _rng(p.seed, 3)
    area, group, employed = population.sample_devices(p.devices, counts, rng_dev)
    ids = population.device_ids(p.devices, rng_dev)
    home_x, home_y = city.homes.sample(area, rng_dev)
    work = np.where(employed, choose_work(home_x, home_y, group, places, p.homophily, rng_dev), -1)

    _write_geography(out, city, counts)
    poi_lat, poi_lon = _to_wgs84(pois.x, pois.y)
    home_lat, home_lon = _to_wgs84(home_x, home_y)
    place_x = np.concatenate([pois.x, home_x])
    place_y = np.concatenate([pois.y, home_y])
    place_lat = np.concatenate([poi_lat, home_lat])
    place_lon = np.concatenate([poi_lon, home_lon])
    home_ids = np.char.add("H", np.char.zfill(np.arange(p.devices).astype(str), 7)).astype(object)
    place_id = pl.Series("place_id", np.concatenate([pois.poi_id, home_ids]), dtype=pl.String)
    place_cat = pl.Series(
        "category",
        np.concatenate([pois.category, np.full(p.devices, "home", object)]),
        dtype=pl.String,
    )
    id_series = pl.Series("device_id", ids, dtype=pl.String)
    id_bytes = ids.astype("S36").view(np.uint8).reshape(len(ids), 36)

    (out / "truth").mkdir()
    per_device = max(1.0, noise.expected_pings(p.days, p.ping_interval_min, p.gap_share))
    per_device += p.bursts_per_day * p.days * 17.5
    chunk_devices = int(max(1, min(p.devices, CHUNK_PINGS // per_device)))
    bounds = np.linspace(0, p.devices, p.files + 1).round().astype(np.int64)
    suffix = ".csv.gz" if p.gzip else ".csv"
    names = (
        ["pings" + suffix]
        if p.files == 1
        else [f"pings-{i + 1:03d}{suffix}" for i in range(p.files)]
    )
    planted_parts: list[pl.DataFrame] = []
    clean = np.zeros(p.devices, dtype=np.int64)
    n_stays = 0
    ping_rows = 0
    stays_writer = None
    chunks = [
        (f, s, min(s + chunk_devices, bounds[f + 1]))
        for f in range(p.files)
        for s in range(bounds[f], bounds[f + 1], chunk_devices)
    ]
    with console.progress() as bar:
        task = bar.add_task("simulating devices", total=p.devices)
        files: list[PingFile] = []
        try:
            for c, (f, lo, hi) in enumerate(chunks):
                if len(files) <= f:
                    files.append(PingFile(out / names[f], p.gzip))
                sl = slice(lo, hi)
                chunk = Chunk(lo, group[sl], employed[sl], home_x[sl], home_y[sl], work[sl])
                stays = simulate(chunk, places, clock, p.homophily, _rng(p.seed, 4, c))
                table = _stays_table(
                    stays, lo, id_series, place_id, place_cat, place_lat, place_lon
                )
                if stays_writer is None:
                    stays_writer = pq.ParquetWriter(
                        out / "truth" / "stays.parquet", table.schema, compression="zstd"
                    )
                stays_writer.write_table(table)
                n_stays += table.num_rows

                rng_p = _rng(p.seed, 5, c)
                dev, t = noise.ping_times(
                    hi - lo,
                    clock.t0,
                    clock.t1,
                    p.ping_interval_min,
                    p.gap_share,
                    rng_p,
                    gap_mean_s=p.gap_mean_min * 60.0,
                    bursts_per_day=p.bursts_per_day,
                )
                x, y = noise.locate(dev, t, stays, place_x, place_y, clock.t0)
                x, y, acc, low = noise.add_error(
                    x,
                    y,
                    p.accuracy_m,
                    p.outlier_share,
                    p.low_accuracy_share,
                    rng_p,
                    noise_m=p.noise_m,
                )
                lat, lon = _to_wgs84(x, y)
                text, n_lines, planted, rejected = format_pings(
                    id_bytes[lo:hi],
                    dev,
                    clock.iso_local(t),
                    lat,
                    lon,
                    acc,
                    low,
                    p.malformed_share,
                    p.duplicate_share,
                    _rng(p.seed, 6, c),
                    files[f].lines + 1,
                )
                files[f].write(text, n_lines)
                ping_rows += n_lines
                planted_parts.append(planted.with_columns(pl.lit(names[f]).alias("file")))
                clean[lo:hi] += np.bincount(dev[~rejected], minlength=hi - lo)
                bar.advance(task, hi - lo)
        finally:
            for fh in files:
                fh.close()
            if stays_writer is not None:
                stays_writer.close()

    planted_all = (
        pl.concat(planted_parts).select("file", "line", "reason")
        if planted_parts
        else pl.DataFrame(schema={"file": pl.String, "line": pl.UInt64, "reason": pl.String})
    )
    planted_all.write_csv(out / "truth" / "planted_rejects.csv")
    n_clean = int(clean.sum())
    by_reason = dict(planted_all.group_by("reason").len().sort("reason").iter_rows())
    by_reason = {r: int(by_reason.get(r, 0)) for r in PLANTED}

    _write_truth_tables(
        out,
        p,
        city,
        counts,
        income,
        rank,
        ids,
        area,
        group,
        employed,
        work,
        home_lat,
        home_lon,
        home_ids,
        pois,
        poi_lat,
        poi_lon,
        flavour,
        clean,
    )

    d = population.dissimilarity(counts)
    m = population.mutual_information(counts)
    report = SynthReport(
        out=final,
        params=p,
        areas=len(areas.deso),
        residents=int(areas.residents.sum()),
        devices=p.devices,
        pois=len(pois.x),
        landuse_polygons=len(city.landuse_geometry),
        stays=n_stays,
        ping_rows=ping_rows,
        clean_pings=n_clean,
        planted_rejects=by_reason,
        dissimilarity=d,
        mutual_information=m,
        first_day=str(clock.start),
        last_day=str(clock.start + dt.timedelta(days=p.days - 1)),
    )
    write_text_atomic(out / "README.md", readme(report))
    report.files = {
        str(f.relative_to(out)): f.stat().st_size for f in sorted(out.rglob("*")) if f.is_file()
    }
    report.out = final
    manifest = Manifest(
        command="segtool synth",
        parameters=p,
        seed=p.seed,
        rows_written=ping_rows,
        extra={
            "outputs": {
                str(f.relative_to(out)): {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
                for f in sorted(out.rglob("*"))
                if f.is_file()
            },
            "summary": {
                "areas": report.areas,
                "residents": report.residents,
                "devices": report.devices,
                "pois": report.pois,
                "stays": report.stays,
                "ping_rows": report.ping_rows,
                "clean_pings": report.clean_pings,
                "planted_rejects": by_reason,
                "dissimilarity": round(d, 12),
                "mutual_information": round(m, 12),
                "time_zone": TIME_ZONE,
            },
        },
    )
    write_text_atomic(out / MANIFEST, manifest.to_json())
    report.files[MANIFEST] = (out / MANIFEST).stat().st_size
    return report


def _stays_table(stays: pl.DataFrame, first: int, ids, place_id, place_cat, place_lat, place_lon):
    place = stays["place"].to_numpy()
    kinds = pl.Series(KINDS, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "device_id": ids.gather(stays["dev"].to_numpy() + first),
            "start": np.rint(stays["start"].to_numpy()).astype(np.int64),
            "end": np.rint(stays["end"].to_numpy()).astype(np.int64),
            "lat": place_lat[place],
            "lon": place_lon[place],
            "place_id": place_id.gather(place),
            "place_kind": kinds.gather(stays["kind"].to_numpy()),
            "category": place_cat.gather(place),
        }
    ).with_columns(
        pl.from_epoch("start", time_unit="s").dt.replace_time_zone("UTC").dt.cast_time_unit("us"),
        pl.from_epoch("end", time_unit="s").dt.replace_time_zone("UTC").dt.cast_time_unit("us"),
    )
    return frame.to_arrow()


def _write_geography(out: Path, city, counts: np.ndarray) -> None:
    a = city.areas
    write_gpkg(
        out / "areas.gpkg",
        "areas",
        a.geometry,
        {
            "deso": a.deso.astype(object),
            "kommun": np.full(len(a.deso), MUNICIPALITY, dtype=object),
            "district": a.district.astype(object),
        },
        "MultiPolygon",
    )
    pop = pl.DataFrame(
        {
            "deso": np.repeat(a.deso, len(GROUPS)).astype(str),
            "group": np.tile(np.array(GROUPS), len(a.deso)),
            "count": counts.ravel().astype(np.int64),
        }
    )
    pop.write_csv(out / "population.csv")
    lu_order = np.lexsort((np.arange(len(city.landuse_category)),))
    write_gpkg(
        out / "landuse.gpkg",
        "landuse",
        city.landuse_geometry[lu_order],
        {"category": city.landuse_category[lu_order].astype(object)},
        "MultiPolygon",
    )
    import shapely

    write_gpkg(
        out / "pois.gpkg",
        "pois",
        shapely.points(city.pois.x, city.pois.y),
        {"poi_id": city.pois.poi_id.astype(object), "category": city.pois.category.astype(object)},
        "Point",
    )


def _write_truth_tables(
    out,
    p,
    city,
    counts,
    income,
    rank,
    ids,
    area,
    group,
    employed,
    work,
    home_lat,
    home_lon,
    home_ids,
    pois,
    poi_lat,
    poi_lon,
    flavour,
    clean,
) -> None:
    a = city.areas
    groups = np.array(GROUPS)
    area_q = population.area_group(counts)
    has_work = work >= 0
    w = np.maximum(work, 0)
    devices = pl.DataFrame(
        {
            "device_id": pl.Series(ids, dtype=pl.String),
            "group": groups[group],
            "employed": employed,
            "home_deso": a.deso[area].astype(str),
            "area_group": groups[area_q[area]],
            "home_place_id": home_ids.astype(str),
            "home_lat": home_lat,
            "home_lon": home_lon,
            "work_place_id": pl.Series(pois.poi_id[w].astype(str)).set(pl.Series(~has_work), None),
            "work_lat": pl.Series(np.where(has_work, poi_lat[w], np.nan)).fill_nan(None),
            "work_lon": pl.Series(np.where(has_work, poi_lon[w], np.nan)).fill_nan(None),
            "pings": clean,
        }
    ).with_columns(
        plh3.latlng_to_cell("home_lat", "home_lon", H3_RES).alias("home_cell"),
        plh3.latlng_to_cell("work_lat", "work_lon", H3_RES).alias("work_cell"),
    )
    devices.write_parquet(out / "truth" / "devices.parquet")
    places = pl.DataFrame(
        {
            "place_id": pois.poi_id.astype(str),
            "category": pois.category.astype(str),
            "lat": poi_lat,
            "lon": poi_lon,
            "x": pois.x,
            "y": pois.y,
            "deso": a.deso[pois.area].astype(str),
            "attractiveness": pois.attractiveness,
            "jobs": pois.jobs.astype(np.int64),
            **{f"flavour_{g}": flavour[:, i] for i, g in enumerate(GROUPS)},
        }
    )
    places.write_parquet(out / "truth" / "places.parquet")
    shares = counts / counts.sum(1, keepdims=True)
    areas = pl.DataFrame(
        {
            "deso": a.deso.astype(str),
            "district": a.district.astype(str),
            "residents": a.residents,
            "income_score": income,
            "income_rank": rank,
            "area_group": groups[area_q],
            **{f"share_{g}": shares[:, i] for i, g in enumerate(GROUPS)},
        }
    )
    areas.write_parquet(out / "truth" / "areas.parquet")


def command_line(p: SynthParams, out: str) -> str:
    """The `segtool synth` command that regenerates these files."""
    defaults = SynthParams()
    opts = [
        f"--out {out}",
        f"--devices {p.devices}",
        f"--days {p.days}",
        f"--seed {p.seed}",
        f"--segregation {p.segregation:g}",
        f"--homophily {p.homophily:g}",
    ]
    flags = {
        "start": "--start",
        "areas": "--areas",
        "ping_interval_min": "--ping-interval",
        "gap_share": "--gap-share",
        "accuracy_m": "--accuracy",
        "outlier_share": "--outlier-share",
        "gap_mean_min": "--gap-mean",
        "bursts_per_day": "--bursts",
        "noise_m": "--noise",
        "low_accuracy_share": "--low-accuracy-share",
        "duplicate_share": "--duplicate-share",
        "malformed_share": "--malformed-share",
        "files": "--files",
    }
    for field, flag in flags.items():
        value = getattr(p, field)
        if value != getattr(defaults, field):
            opts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    if p.gzip:
        opts.append("--gzip")
    return "segtool synth " + " ".join(opts)


def readme(r: SynthReport) -> str:
    p = r.params
    lines = "\n".join(
        f"| {what} | {value} |"
        for what, value in r.summary_rows()
        if what not in ("folder", "files")
    )
    planted = "\n".join(f"| `{k}` | {v:,} |" for k, v in r.planted_rejects.items())
    pings = "pings.csv.gz" if p.gzip else "pings.csv"
    return f"""# A synthetic city made by `segtool synth`

Everything here is invented: a city of register areas around central Stockholm with a
planted income segregation, and a panel of {p.devices:,} phones living in it for {p.days}
days. Made with (DIR being this folder, e.g. `data/sample` for segtool's bundled sample)

```
{command_line(p, "DIR")}
```

Same command, same seed, same bytes (with the same package versions, see `_manifest.json`);
the command replaces an earlier synth output in DIR.
How the city and its people are modelled: `docs/synth.md` in the segtool repository.

## What it holds

| what | value |
|---|---|
{lines}

## Files (the kinds users bring)

- `areas.gpkg` — layer `areas`: register areas (DeSO-like, 700–2,700 residents), MultiPolygon
  in EPSG:3006 (SWEREF 99 TM); fields `deso` (area id, e.g. `0180C1001`), `kommun`, `district`.
- `population.csv` — residents by income quartile per area, long format: `deso,group,count`
  with `group` one of Q1 (lowest income) … Q4.
- `landuse.gpkg` — layer `landuse`: polygons tiling the city, field `category`
  (residential, commercial, industrial, park, education, transport, water), EPSG:3006.
- `pois.gpkg` — layer `pois`: points with `poi_id` and `category` (shop, office, school, …), EPSG:3006.
- `{pings if p.files == 1 else "pings-NNN" + (".csv.gz" if p.gzip else ".csv")}` — vendor pings:
  `device_id,timestamp,latitude,longitude,accuracy`; string device ids, ISO 8601 local times
  with offset ({TIME_ZONE}: +01:00 in winter, +02:00 in summer), WGS84 degrees (6 decimals),
  accuracy in metres. Sorted by device, then time. GPS error, irregular sampling, gaps, outliers and
  planted bad rows:

| planted reason | rows |
|---|---|
{planted}

## Ground truth (`truth/`)

- `devices.parquet` — per device: `device_id`, `group` (its income quartile), `employed`,
  `home_deso`, `area_group` (quartile of the home area's median resident), `home_place_id`,
  `home_lat`, `home_lon`, `home_cell` (H3 res 9, UInt64), `work_place_id`, `work_lat`,
  `work_lon`, `work_cell`, `pings` (rows of the device that ingest should accept).
- `stays.parquet` — true stays: `device_id`, `start`, `end` (UTC), `lat`, `lon`, `place_id`,
  `place_kind` (home, work, other), `category`. The first and last stay of each device are
  cut at the period's edges.
- `places.parquet` — POIs with coordinates, `attractiveness`, `jobs` and the group flavour
  `flavour_Q1` … `flavour_Q4` that homophily acts on.
- `areas.parquet` — per area: `income_score`, `income_rank`, `area_group`, group shares.
- `planted_rejects.csv` — `file,line,reason` of every planted bad row; `line` counts the
  header as line 1, as ingest's rejects do.

`_manifest.json` holds the parameters, package versions and every file's sha256.
"""
