"""`segtool ingest flows`: operator OD counts with H3 cells or area ids."""

from __future__ import annotations

import json

import h3
import polars as pl

CELL_A = h3.latlng_to_cell(59.33, 18.06, 9)
CELL_B = h3.latlng_to_cell(59.34, 18.07, 9)


def test_flows_cells_areas_groups_and_reasons(cli, write, lake_dir, helpers):
    lines = [
        "home_deso,dest_cell,hour,income_q,n",
        f"0180C1090,{CELL_A},2024-03-04T08:00:00,Q1,12.5",  # 2
        f"0180C1090,{CELL_A},2024-03-04T08:00:00,Q1,12.5",  # 3 exact duplicate
        f"0180C1090,{CELL_A},2024-03-04T08:00:00,Q1,2",  # 4 same key, other count: kept
        f"0180C1090,{CELL_B},2024-03-04T09:00:00,Q2,3",  # 5
        "0180C1091,not-a-cell,2024-03-04T08:00:00,Q2,3",  # 6 invalid cell
        f",{CELL_B},2024-03-04T08:00:00,Q2,3",  # 7 empty origin
        f"0180C1091,{CELL_B},2024-03-04T08:00:00,Q2,-3",  # 8 negative
        f"0180C1091,{CELL_B},2024-03-04T08:00:00,Q2,many",  # 9 unparseable count
        f"0180C1091,{CELL_B},soon,Q2,1",  # 10 unparseable time
    ]
    f = write("od.csv", "\n".join(lines) + "\n")
    r = cli("ingest", "flows", f, "--lake", lake_dir, "--origin", "home_deso", "--count", "n")
    assert r.code == 0, r.err
    flows = helpers.read(lake_dir, "flows")
    assert flows.schema == pl.Schema(
        {
            "origin": pl.String,
            "destination_cell": pl.UInt64,
            "start": pl.Datetime("us", "UTC"),
            "income_q": pl.String,
            "count": pl.Float64,
        }
    )
    assert sorted(flows["count"].to_list()) == [2.0, 3.0, 12.5]
    assert set(flows["destination_cell"].to_list()) == {
        h3.str_to_int(CELL_A),
        h3.str_to_int(CELL_B),
    }
    rej = helpers.read(lake_dir, "_rejects/flows").sort("line")
    assert rej.select("line", "reason").rows() == [
        (3, "duplicate_flow"),
        (6, "invalid_cell"),
        (7, "empty_area"),
        (8, "negative_count"),
        (9, "unparseable_count"),
        (10, "unparseable_time"),
    ]
    m = json.loads((lake_dir / "flows" / "_manifest.json").read_text())
    assert (m["rows_in"], m["rows_written"], m["rows_rejected"]) == (9, 3, 6)


def test_flows_slots_daytype_and_explicit_groups(cli, write, lake_dir, helpers):
    lines = [
        "origin,destination,slot,daytype,age,sex,count",
        "A1,B1,16,weekday,30-39,f,4",
        "A1,B2,47,weekend,30-39,m,1",
        "A2,B1,48,weekday,40-49,f,2",  # slot out of range
    ]
    f = write("od.csv", "\n".join(lines) + "\n")
    r = cli("ingest", "flows", f, "--lake", lake_dir, "--group", "age")
    assert r.code == 0, r.err
    flows = helpers.read(lake_dir, "flows").sort("destination")
    assert flows.columns == ["origin", "destination", "slot", "daytype", "age", "count"]
    assert flows.schema["slot"] == pl.UInt8
    assert flows["slot"].to_list() == [16, 47]
    rej = helpers.read(lake_dir, "_rejects/flows")
    assert rej["reason"].to_list() == ["unparseable_slot"]
    assert rej["fields"].to_list() == ["A2,B1,48,weekday,40-49,f,2"]  # every input field
