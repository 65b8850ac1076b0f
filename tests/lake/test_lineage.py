"""Lineage: stale inputs are found from the manifests' recorded hashes (segtool.lineage)."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool import lineage
from segtool.errors import StaleInputError
from segtool.lake import Lake, Manifest


def build(lake: Lake, name: str, inputs: tuple[str, ...] = (), version: int = 0, **kw) -> Manifest:
    """Commit dataset `name` read from `inputs` (no data: lineage only reads manifests)."""
    m = Manifest(command=f"make-{name}", parameters={"version": version, **kw})
    for up in inputs:
        m.add_dataset_input(lake, up)
    with lake.writing(name, m) as tmp:
        pl.DataFrame({"x": [version]}).write_parquet(tmp / "part-0.parquet")
    return m


@pytest.fixture
def chain(tmp_path):
    lake = Lake(tmp_path / "lake")
    build(lake, "a")
    build(lake, "b", ("a",))
    build(lake, "c", ("b",))
    return lake


def test_current_chain_is_not_stale(chain):
    assert lineage.stale_datasets(chain) == {}
    assert lineage.check_inputs(chain, ["c", "b"]) == []
    assert lineage.rebuild_reasons(chain, "c") == []


def test_rebuilt_upstream_makes_every_downstream_stale(chain):
    build(chain, "a", version=1)
    stale = lineage.stale_datasets(chain)
    assert sorted(stale) == ["b", "c"]
    (b,) = stale["b"]
    assert (b.dataset, b.upstream, b.cause) == ("b", "a", "changed")
    assert b.recorded != b.current and b.current == lineage.manifest_digest(chain, "a")
    assert b.message == f"b/ was built from an earlier a/; run `segtool make-b --lake {chain.root}`"
    causes = [(s.dataset, s.upstream, s.cause) for s in stale["c"]]
    assert causes == [("b", "a", "changed"), ("c", "b", "stale")]
    assert lineage.stale_inputs(chain, "c", transitive=False) == []


def test_identical_rebuild_keeps_everything_current(chain):
    build(chain, "a")  # same inputs and parameters: same manifest bytes, same hash
    assert lineage.stale_datasets(chain) == {}


def test_removed_upstream_is_missing(chain):
    import shutil

    shutil.rmtree(chain.path("a"))
    (s,) = lineage.stale_inputs(chain, "b")
    assert (s.cause, s.current) == ("missing", None)
    assert "no longer in the lake" in s.message


def test_stage_refuses_a_stale_input_naming_the_rebuild(chain):
    build(chain, "a", version=1)
    with pytest.raises(StaleInputError) as e:
        build(chain, "d", ("c",))
    assert str(e.value).startswith(
        f"b/ was built from an earlier a/; run `segtool make-b --lake {chain.root}`"
    )
    assert "--allow-stale" in str(e.value)
    assert not chain.exists("d")


def test_allow_stale_warns_and_records(chain, capsys):
    build(chain, "a", version=1)
    lake = Lake(chain.root, allow_stale=True)
    m = build(lake, "d", ("c",))
    assert "--allow-stale: b/ was built from an earlier a/" in " ".join(
        capsys.readouterr().err.split()
    )
    recorded = lake.manifest("d")["stale_inputs"]
    assert [(r["dataset"], r["upstream"], r["cause"]) for r in recorded] == [
        ("b", "a", "changed"),
        ("c", "b", "stale"),
    ]
    assert m.to_dict()["stale_inputs"] == recorded
    assert "stale_inputs" not in lake.manifest("c")  # absent when nothing was stale
    # d's own input c is unchanged, but d is stale through it, and never "up to date"
    assert [s.dataset for s in lineage.stale_inputs(lake, "d")] == ["b", "c", "d"]
    assert any("--allow-stale" in r for r in lineage.rebuild_reasons(lake, "d"))


def test_rebuild_reasons_compare_command_and_parameters(chain):
    assert lineage.rebuild_reasons(chain, "b", command="make-b", parameters={"version": 0}) == []
    assert lineage.rebuild_reasons(chain, "b", parameters={"version": 2}) == [
        "b/ was built with other parameters"
    ]
    assert lineage.rebuild_reasons(chain, "b", command="other")[0].startswith("b/ was made by")
    assert lineage.rebuild_reasons(chain, "zz") == ["zz/ is not in the lake"]


# -- property: lineage agrees with a model of versions ------------------------------------

NAMES = ["n0", "n1", "n2", "n3", "n4"]


@st.composite
def histories(draw):
    """A DAG over NAMES (edges from lower to higher index) and a sequence of rebuilds."""
    ups = {n: tuple(u for u in NAMES[:i] if draw(st.booleans())) for i, n in enumerate(NAMES)}
    steps = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=12))
    return ups, steps


@settings(max_examples=40, deadline=None)
@given(histories())
def test_stale_matches_a_version_model(tmp_path_factory, history):
    ups, steps = history
    lake = Lake(tmp_path_factory.mktemp("lake"), allow_stale=True)
    version = {n: 0 for n in NAMES}
    built_from: dict[str, dict[str, int]] = {}
    for n in NAMES:
        build(lake, n, ups[n], version=0)
        built_from[n] = {u: version[u] for u in ups[n]}
    for i, n in enumerate(steps, 1):
        version[n] = i
        build(lake, n, ups[n], version=i)  # a rebuild reads the upstreams as they are now
        built_from[n] = {u: version[u] for u in ups[n]}

    def model_stale(n: str) -> bool:
        return any(version[u] != v or model_stale(u) for u, v in built_from[n].items())

    found = lineage.stale_datasets(lake)
    assert sorted(found) == sorted(n for n in NAMES if model_stale(n))


def test_lake_info_marks_stale_datasets(chain, cli):
    import json

    build(chain, "a", version=1)
    r = cli("lake", "info", "--lake", chain.root, "--format", "json")
    assert r.code == 0, r.err
    stale = {d["dataset"]: d["stale"] for d in json.loads(r.out)}
    assert stale["a"] is None
    assert stale["b"].startswith("b/ was built from an earlier a/; run `segtool make-b")
    assert stale["c"].startswith("c/ was built from b/, which is itself stale")
    table = cli("lake", "info", "--lake", chain.root)
    assert table.code == 0 and "stale" in table.out
