"""`segtool lake info`: generic description of every dataset in a lake."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import h3
import polars as pl

from segtool.geo.geoparquet import write_geoparquet


def test_lake_info_describes_every_dataset(cli, write, lake_dir, tmp_path):
    pings = write(
        "p.csv",
        "device_id,timestamp,latitude,longitude,accuracy\n"
        "a,2024-03-04T10:00:00Z,59.30,18.00,5\n"
        "b,2024-03-05T10:00:00Z,59.40,18.20,5\n"
        "b,2024-03-06T10:00:00Z,59.35,17.90,500\n",
    )
    stays = write(
        "s.csv", "id,start,end,lat,lon\na,2024-03-04T08:00:00Z,2024-03-04T09:00:00Z,59.3,18.0\n"
    )
    cell = h3.latlng_to_cell(59.33, 18.06, 9)
    flows = write("f.csv", f"origin,destination,count\nA,{cell},3\n")
    for kind, f in (("pings", pings), ("stays", stays), ("flows", flows)):
        assert cli("ingest", kind, f, "--lake", lake_dir).code == 0
    # a dataset written by another command: GeoParquet areas with a bbox in its metadata
    (lake_dir / "areas").mkdir()
    import shapely

    square = shapely.to_wkb(shapely.box(17.9, 59.2, 18.3, 59.5))
    write_geoparquet(
        pl.DataFrame({"area": ["A"], "geometry": [square]}), lake_dir / "areas" / "part-0.parquet"
    )
    (lake_dir / "areas" / "_manifest.json").write_text(json.dumps({"command": "test"}))

    r = cli("lake", "info", "--lake", lake_dir, "--format", "json")
    assert r.code == 0, r.err
    info = {d["dataset"]: d for d in json.loads(r.out)}
    assert sorted(info) == [
        "_rejects/flows",
        "_rejects/pings",
        "_rejects/stays",
        "areas",
        "flows",
        "pings",
        "stays",
    ]
    p = info["pings"]
    assert (p["rows"], p["devices"], p["rows_in"], p["rows_rejected"]) == (2, 2, 3, 1)
    assert p["start"].startswith("2024-03-04 10:00:00") and p["end"].startswith(
        "2024-03-05 10:00:00"
    )
    assert (p["min_lon"], p["min_lat"], p["max_lon"], p["max_lat"]) == (18.0, 59.3, 18.2, 59.4)
    assert p["manifest"]["command"] == "segtool ingest pings"
    assert p["manifest"]["inputs"][0]["sha256"]
    lat, lon = h3.cell_to_latlng(cell)
    assert info["flows"]["min_lat"] == info["flows"]["max_lat"]
    assert (
        abs(info["flows"]["min_lat"] - lat) < 1e-12 and abs(info["flows"]["min_lon"] - lon) < 1e-12
    )
    assert info["areas"]["min_lon"] == 17.9 and info["areas"]["max_lat"] == 59.5
    assert info["_rejects/pings"]["rows"] == 1 and info["_rejects/pings"]["kind"] == "rejects"
    assert info["stays"]["devices"] == 1
    assert datetime.fromisoformat(info["stays"]["end"]) == datetime(2024, 3, 4, 9, tzinfo=UTC)
    # the table and csv forms carry the same facts without the nested manifest
    r = cli("lake", "info", "--lake", lake_dir)
    assert r.code == 0 and "pings" in r.out and "59.3" in r.out
    r = cli("lake", "info", "--lake", lake_dir, "--format", "csv")
    csv = pl.read_csv(r.out.encode())
    assert "manifest" not in csv.columns and csv.height == 7


def test_lake_info_on_an_empty_lake(cli, tmp_path):
    r = cli("lake", "info", "--lake", tmp_path / "nothing", "--format", "json")
    assert r.code == 0
    assert json.loads(r.out) == []
