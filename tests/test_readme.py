"""The README stays true: it opens with the two commands, and its Python example runs."""

import re
from pathlib import Path

import numpy as np
import polars as pl

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_demo_and_test():
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands[:2] == ["make demo", "make test"]


def test_python_api_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    rng = np.random.default_rng(0)
    n = 2_000
    pl.DataFrame(
        {
            "device": rng.integers(0, 100, n),
            "place": rng.integers(0, 10, n).astype(str),
            "dwell_s": rng.uniform(60, 3600, n),
        }
    ).with_columns(group=(pl.col("device") % 3).cast(pl.String)).write_parquet(
        tmp_path / "visits.parquet"
    )
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
