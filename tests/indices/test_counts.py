"""Reading counts tables: formats, column detection, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.errors import InputError, UsageError
from segtool.indices.counts import read_counts


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


LONG = "tract,group,n\na,A,100\na,B,0\nb,A,60\nb,B,40\nc,A,40\nc,B,60\nd,A,0\nd,B,100\n"


def test_long_csv_detects_columns(tmp_path):
    c = read_counts(write(tmp_path, LONG))
    assert (c.columns.unit, c.columns.group, c.columns.count) == ("tract", "group", "n")
    assert set(c.columns.detected) == {"unit", "group", "count"}
    assert "unit='tract' (detected)" in c.columns.describe()
    assert c.frame.columns == ["unit", "group", "n"]
    assert c.frame.schema["n"] == pl.Float64
    assert c.rows_in == 8 and c.units == 4 and c.groups == ["A", "B"]
    assert c.notes == []


def test_ids_keep_leading_zeros_and_frame_is_sorted(tmp_path):
    c = read_counts(write(tmp_path, "area,cat,count\n0114,y,1\n0012,x,2\n0114,x,3\n0012,y,4\n"))
    assert c.frame["unit"].to_list() == ["0012", "0012", "0114", "0114"]
    assert c.frame["group"].to_list() == ["x", "y", "x", "y"]


def test_explicit_columns_and_fallback_detection(tmp_path):
    p = write(tmp_path, "where,who,how_many,extra\na,x,1,q\na,y,2,q\nb,x,3,q\nb,y,4,q\n")
    with pytest.raises(InputError, match="cannot tell which column is the unit"):
        read_counts(p)
    c = read_counts(p, unit="where", group="who")
    assert c.columns.count == "how_many" and "count" in c.columns.detected
    # Only three columns and a numeric one: unit and group follow by position.
    c = read_counts(write(tmp_path, "where,who,k\na,x,1\nb,y,2\n", "p.csv"))
    assert (c.columns.unit, c.columns.group, c.columns.count) == ("where", "who", "k")


def test_wide_csv_and_total_column_left_out(tmp_path):
    p = write(tmp_path, "tract,total,A,B\na,100,100,0\nb,100,60,40\nc,100,40,60\nd,100,0,100\n")
    c = read_counts(p, wide=True)
    assert c.columns.groups == ("total", "A", "B")
    assert c.excluded_columns == ("total",)
    assert any("'total'" in n for n in c.notes)
    assert c.groups == ["A", "B"] and c.rows_in == 8  # 4 rows × 2 group columns
    long = read_counts(write(tmp_path, LONG, "l.csv"))
    assert c.frame.equals(long.frame)


def test_wide_group_list_and_errors(tmp_path):
    p = write(tmp_path, "id,name,A,B\n1,x,1,2\n2,y,3,4\n")
    with pytest.raises(InputError, match="'name' is text"):
        read_counts(p, wide=True)
    c = read_counts(p, wide=True, group="A,B")
    assert c.groups == ["A", "B"] and c.columns.unit == "id"
    with pytest.raises(UsageError, match="--count does not apply"):
        read_counts(p, wide=True, count="A")
    with pytest.raises(InputError, match="'C' is not in the table"):
        read_counts(p, wide=True, group="A,C")


def test_parquet_and_folder_of_parquet(tmp_path):
    frame = pl.DataFrame(
        {"cell": [1, 1, 2, 2], "group": ["q1", "q2", "q1", "q2"], "count": [1.0, 2.0, 3.0, 0.0]},
        schema={"cell": pl.UInt64, "group": pl.String, "count": pl.Float64},
    )
    frame.write_parquet(tmp_path / "p.parquet")
    c = read_counts(tmp_path / "p.parquet")
    assert c.frame.schema["unit"] == pl.UInt64 and c.columns.unit == "cell"
    (tmp_path / "lake" / "population").mkdir(parents=True)
    frame.write_parquet(tmp_path / "lake" / "population" / "part-0.parquet")
    assert read_counts(tmp_path / "lake" / "population").frame.equals(c.frame)


def test_tsv(tmp_path):
    c = read_counts(write(tmp_path, LONG.replace(",", "\t"), "t.tsv"))
    assert c.units == 4


def test_duplicates_summed_with_note(tmp_path):
    c = read_counts(write(tmp_path, LONG + "a,A,5\nb,B,1\n"))
    assert c.duplicate_rows == 2
    assert "summed 2 duplicate (unit, group) rows" in c.notes[0] and "line 10" in c.notes[0]
    keys = zip(c.frame["unit"], c.frame["group"], strict=True)
    got = dict(zip(keys, c.frame["n"], strict=True))
    assert got[("a", "A")] == 105 and got[("b", "B")] == 41
    assert c.rows_in == 10 and c.rows_dropped == 0


def test_zero_total_units_and_empty_groups_dropped_with_note(tmp_path):
    text = LONG + "e,A,0\ne,B,0\na,C,0\n"
    c = read_counts(write(tmp_path, text))
    assert c.zero_units == 1 and c.zero_unit_rows == 2
    assert c.zero_groups == ("C",) and c.zero_group_rows == 1
    assert any("dropped 1 unit " in n for n in c.notes)
    assert any("dropped 1 group with no members: C (1 row)" in n for n in c.notes)
    assert c.units == 4 and c.rows_in == 11
    assert c.summary()["rows_used"] + c.rows_dropped == c.rows_in


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tract,group,n\n", "no data rows"),
        ("tract,group,n\na,A,1\na,B,2\n", "only one unit"),
        ("tract,group,n\na,A,1\nb,A,2\n", "only one group"),
        (
            "tract,group,n\na,A,1\nb,B,-2\n",
            r"negative \(first on line 3: unit 'b', group 'B', -2\)",
        ),
        (
            "tract,group,n\na,A,1\nb,B,many\nc,A,x\n",
            "2 counts in 'n' are not numbers.*line 3: 'many'",
        ),
        ("tract,group,n\na,A,1\nb,B,\n", "1 rows have no count.*line 3"),
        ("tract,group,n\na,A,1\n,B,2\n", "no value in column 'tract'.*line 3"),
        ("tract,group,n\na,A,1\nb,B,inf\n", "NaN or infinite"),
        ("tract,group,n\na,A,0\nb,B,0\n", "every count is zero"),
        ("x,y\n1,2\n", "cannot tell which column holds the counts"),
    ],
)
def test_bad_input_names_the_problem(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_counts(write(tmp_path, text))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_counts(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="empty"):
        read_counts(write(tmp_path, ""))
    with pytest.raises(InputError, match="cannot tell the format"):
        read_counts(write(tmp_path, LONG, "t.xlsx"))
    with pytest.raises(InputError, match="--unit column 'zz' is not in the table"):
        read_counts(write(tmp_path, LONG), unit="zz")
    with pytest.raises(InputError, match="holds no Parquet"):
        (tmp_path / "empty").mkdir()
        read_counts(tmp_path / "empty")


def test_within_column_and_nesting(tmp_path):
    text = "tract,district,group,n\na,X,A,1\na,X,B,2\nb,Y,A,3\nb,Y,B,4\n"
    c = read_counts(write(tmp_path, text), within="district")
    assert c.frame.columns == ["unit", "group", "n", "stratum"]
    bad = text + "a,Y,A,1\n"
    with pytest.raises(InputError, match="unit 'a' lies in more than one stratum"):
        read_counts(write(tmp_path, bad, "b.csv"), within="district")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcde"), st.sampled_from("XYZ"), st.integers(0, 9)),
        min_size=1,
        max_size=30,
    )
)
def test_counts_reconcile(rows):
    """Every input row is used or reported: sums per (unit, group) are preserved."""
    import tempfile

    text = "unit,group,n\n" + "".join(f"{u},{g},{n}\n" for u, g, n in rows)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.csv"
        p.write_text(text)
        try:
            c = read_counts(p)
        except InputError as e:
            units = {u for u, _, n in rows if n > 0}
            groups = {g for _, g, n in rows if n > 0}
            assert len(units) < 2 or len(groups) < 2, str(e)
            return
    assert c.rows_in == len(rows)
    assert c.frame["n"].sum() == sum(n for _, _, n in rows)
    distinct = len({(u, g) for u, g, _ in rows})
    assert c.duplicate_rows == len(rows) - distinct
    assert c.frame.height + c.rows_dropped + c.duplicate_rows >= distinct


def test_wide_with_within_and_integer_groups_from_parquet(tmp_path):
    frame = pl.DataFrame(
        {"tract": ["a", "b", "c"], "district": ["N", "N", "S"], "1": [5, 0, 2], "2": [1, 4, 2]}
    )
    frame.write_parquet(tmp_path / "w.parquet")
    c = read_counts(tmp_path / "w.parquet", wide=True, within="district")
    assert c.columns.groups == ("1", "2")
    assert c.frame.columns == ["unit", "group", "n", "stratum"]
    assert c.frame.filter(pl.col("unit") == "c")["stratum"].to_list() == ["S", "S"]
    long = pl.DataFrame({"unit": ["a", "a", "b", "b"], "group": [1, 2, 1, 2], "n": [1, 2, 3, 4]})
    long.write_parquet(tmp_path / "l.parquet")
    c = read_counts(tmp_path / "l.parquet")
    assert c.groups == ["1", "2"] and c.frame.schema["group"] == pl.Enum(["1", "2"])
