"""Fixtures of the lake tests: the secret in the environment, no lake or wait from it."""

from __future__ import annotations

import pytest

from tests.lake.helpers import SECRET


@pytest.fixture(autouse=True)
def salt(monkeypatch):
    monkeypatch.setenv("SEGTOOL_SALT", SECRET)
    monkeypatch.delenv("SEGTOOL_LAKE", raising=False)
    monkeypatch.delenv("SEGTOOL_WAIT", raising=False)
    return SECRET
