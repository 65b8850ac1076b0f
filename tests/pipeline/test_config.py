"""The config file: precedence (CLI > env > config > defaults), validation naming the key
and its file:line, pyproject.toml's [tool.segtool], relative paths, `segtool config show`."""

from __future__ import annotations

import json

import pytest
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool import config
from segtool.cli import app
from segtool.pipeline.run import command_context

ROOT = typer.main.get_command(app)


def _params(path: tuple[str, ...], args: list[str] = (), explicit=None) -> dict:
    """The parameters `segtool <path> <args>` would run with (no command is run)."""
    from typer import _click as click

    root_ctx = click.Context(ROOT, info_name="segtool", auto_envvar_prefix=config.ENV_PREFIX)
    config.apply(root_ctx, explicit)
    with root_ctx:
        return command_context(root_ctx, path, list(args)).params


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("SEGTOOL_LAKE", "SEGTOOL_CONFIG", "SEGTOOL_VISITS_RES", "SEGTOOL_STAYS_RADIUS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_precedence_cli_over_env_over_config_over_default(here, monkeypatch):
    assert _params(("visits",))["res"] == 9  # the command's default
    (here / "segtool.toml").write_text("[visits]\nres = 10\n")
    assert _params(("visits",))["res"] == 10
    monkeypatch.setenv("SEGTOOL_VISITS_RES", "12")
    assert _params(("visits",))["res"] == 12
    assert _params(("visits",), ["--res", "11"])["res"] == 11


def test_top_level_and_group_keys_apply_below_and_tables_win(here):
    (here / "segtool.toml").write_text(
        'lake = "L"\nseed = 3\n[indices]\nseed = 4\n[indices.experienced]\nseed = 5\n'
        '[stays]\nradius_m = 45\n"min-duration" = "20m"\n'
    )
    assert _params(("stays",))["lake"].name == "L"
    assert _params(("stays",))["radius"] == 45.0  # the alias of --radius
    assert _params(("stays",))["min_duration"] == "20m"
    assert _params(("report",))["seed"] == 3
    assert _params(("indices", "landuse"))["seed"] == 4
    assert _params(("indices", "experienced"))["seed"] == 5


def test_pyproject_tool_segtool_and_its_lines(here):
    (here / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.segtool]\nlake = "P"\n\n[tool.segtool.visits]\nres = 99\n'
    )
    with pytest.raises(config.ConfigError, match=r"visits\.res = 99 in pyproject\.toml:8"):
        _params(("visits",))
    (here / "pyproject.toml").write_text('[tool.segtool]\nlake = "P"\n')
    assert _params(("homes",))["lake"].name == "P"
    (here / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")  # not ours
    assert config.find_config() is None


def test_relative_paths_are_relative_to_the_config_file(here):
    sub = here / "conf"
    (sub / "data").mkdir(parents=True)
    (sub / "data" / "a.csv").write_text("x\n")
    (sub / "city.toml").write_text('lake = "lake"\n[ingest.pings]\nfiles = ["data/a.csv"]\n')
    p = _params(("ingest", "pings"), explicit=sub / "city.toml")
    assert str(p["lake"]) == str(sub / "lake")
    assert p["files"] == [str(sub / "data" / "a.csv")]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[visits]\n\nres = 13\n",
            r"visits\.res = 13 in segtool\.toml:3: .*less than or equal to 12",
        ),
        (
            "[visits]\nres = 4\n",
            r"visits\.res = 4 in segtool\.toml:2: .*greater than or equal to 5",
        ),
        ('[visits]\nres = "nine"\n', r"visits\.res = 'nine' in segtool\.toml:2"),
        ("[visits]\nres = 9.5\n", r"visits\.res = 9\.5 in segtool\.toml:2"),
        ("[stays]\nradius = true\n", r"stays\.radius = True in segtool\.toml:2: expected a"),
        (
            '[stays]\naccuracy = "yes"\n',
            r"stays\.accuracy = 'yes' in segtool\.toml:2: expected true or false",
        ),
        ("# c\n[stays]\nradiu = 3\n", r"unknown key 'stays\.radiu' in segtool\.toml:3"),
        ("[staz]\nradius = 3\n", r"unknown table \[staz\] in segtool\.toml:1"),
        (
            "[indices.experiencd]\nnull = 3\n",
            r"unknown table \[indices\.experiencd\] in segtool\.toml:1",
        ),
        ('lak = "x"\n', r"unknown key 'lak' in segtool\.toml:1"),
        (
            "[visits]\nres = [9, 10]\n",
            r"visits\.res = \[9, 10\] in segtool\.toml:2: expected one value",
        ),
        (
            '[ingest.pings]\nsalt = "s3cret-s3cret-s3cret"\n',
            r"'ingest\.pings\.salt' in segtool\.toml:2: a secret",
        ),
        ("[visits\nres = 9\n", r"segtool\.toml: not valid TOML.*line 1"),
        (
            '[ingest.pings]\nfiles = ["a.csv", "gone.csv"]\n',
            r"ingest\.pings\.files in segtool\.toml:2 names a missing file: gone\.csv",
        ),
        (
            '[groups]\nattributes = "gone.csv"\n',
            r"groups\.attributes = 'gone\.csv' in segtool\.toml:2: .*does not exist",
        ),
    ],
)
def test_bad_config_names_key_and_line(here, text, message):
    (here / "segtool.toml").write_text(text)
    (here / "a.csv").write_text("x\n")
    with pytest.raises(config.ConfigError, match=message):
        _params(("visits",))


def test_bad_config_is_exit_1_and_writes_nothing(here, cli):
    (here / "segtool.toml").write_text('lake = "L"\n[visits]\nres = 13\n')
    r = cli("visits")
    said = " ".join(r.err.split())
    assert r.code == 1 and "segtool.toml:3" in said and "Traceback" not in said
    assert not (here / "L").exists()
    r = cli("--config", here / "missing.toml", "stays")
    assert r.code == 1 and "missing.toml" in r.err.replace("\n", "")


@settings(max_examples=40, deadline=None)
@given(res=st.integers(min_value=-5, max_value=20))
def test_config_accepts_exactly_what_the_command_line_accepts(res):
    """The file's values go through the option's own checks: same verdict as --res."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "segtool.toml")
        with open(path, "w") as f:
            f.write(f"[visits]\nres = {res}\n")
        try:
            config.load_settings(ROOT, path)
            from_file = True
        except config.ConfigError:
            from_file = False
    from typer import _click as click

    root_ctx = click.Context(ROOT, info_name="segtool")
    try:
        command_context(root_ctx, ("visits",), ["--res", str(res)])
        from_cli = True
    except click.exceptions.BadParameter:
        from_cli = False
    assert from_file == from_cli == (5 <= res <= 12)


def test_key_lines_by_hand():
    text = (
        "# top\n"  # 1
        'lake = "l"\n'  # 2
        "[stays]\n"  # 3
        "radius_m = 30   # m\n"  # 4
        '"min-duration" = "15m"\n'  # 5
        "[indices.experienced]\n"  # 6
        "\n"  # 7
        "bootstrap = 200\n"  # 8
        "visits.res = 9\n"  # 9 (a dotted key)
    )
    lines = config.key_lines(text)
    assert lines[("lake",)] == 2
    assert lines[("stays",)] == 3
    assert lines[("stays", "radius_m")] == 4
    assert lines[("stays", "min-duration")] == 5
    assert lines[("indices", "experienced", "bootstrap")] == 8
    assert lines[("indices", "experienced", "visits", "res")] == 9


def test_config_show_says_where_each_value_came_from(here, cli, monkeypatch):
    (here / "segtool.toml").write_text('lake = "L"\n[visits]\nres = 10\nmin_days = 3\n')
    monkeypatch.setenv("SEGTOOL_VISITS_RES", "11")
    r = cli("config", "show", "visits", "--format", "json")
    assert r.code == 0, r.err
    rows = {x["setting"]: x for x in json.loads(r.out)}
    assert rows["res"]["value"] == "11" and rows["res"]["source"] == "env SEGTOOL_VISITS_RES"
    assert rows["min_days"]["value"] == "3" and rows["min_days"]["source"] == "segtool.toml:4"
    assert rows["lake"]["source"] == "segtool.toml:1"
    assert rows["min_places"]["value"] == "2" and rows["min_places"]["source"] == "default"
    r = cli("config", "show", "--changed", "--format", "json")
    assert {x["source"] for x in json.loads(r.out)} <= {
        "segtool.toml:1",
        "segtool.toml:4",
        "env SEGTOOL_VISITS_RES",
    }
    assert cli("config", "show", "nosuch").code == 1


@pytest.mark.parametrize(
    "argv",
    [("run",), ("config", "show"), ("lake", "verify"), ("stays",), ("indices", "experienced")],
)
def test_help_has_examples_and_stages_have_force(cli, argv):
    r = cli(*argv, "--help")
    assert r.code == 0 and "Examples" in r.out
    if argv in (("stays",), ("indices", "experienced"), ("run",)):
        assert "--force" in r.out
