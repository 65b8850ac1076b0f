"""Shared fixtures. `cli` runs the command line in-process and returns (code, stdout, stderr)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `segtool ARGS...` in-process: ``cli("indices", "residential", path)``."""
    from segtool.cli import main

    monkeypatch.setenv("CI", "true")

    def run(*args) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
