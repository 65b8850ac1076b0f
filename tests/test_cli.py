"""The command line's contract: help, version, exit codes."""

import subprocess
import sys

import segtool


def test_version(cli):
    r = cli("--version")
    assert r.code == 0
    assert r.out.strip() == f"segtool {segtool.__version__}"


def test_help_lists_command_groups(cli):
    r = cli("--help")
    assert r.code == 0
    for name in (
        "indices",
        "ingest",
        "lake",
        "stays",
        "homes",
        "groups",
        "visits",
        "synth",
        "demo",
    ):
        assert name in r.out


def test_unknown_option_is_usage_error_exit_1(cli):
    r = cli("--no-such-option")
    assert r.code == 1
    assert "No such option" in r.err
    assert "Traceback" not in r.err


def test_unknown_command_exit_1(cli):
    r = cli("frobnicate")
    assert r.code == 1
    assert "Traceback" not in r.err


def test_internal_error_exit_2(capsys, monkeypatch):
    import segtool.cli as cli_mod

    def boom(**kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli_mod, "app", boom)
    assert cli_mod.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "internal error" in err and "kaboom" in err
    assert "Traceback" not in err


def test_user_error_exit_1_without_traceback(cli):
    r = cli("indices", "residential")
    assert r.code == 1
    assert "Traceback" not in r.err


def test_console_script_runs_as_module():
    r = subprocess.run(
        [sys.executable, "-m", "segtool", "--version"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0
    assert segtool.__version__ in r.stdout
