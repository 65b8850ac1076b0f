"""Make `tests.report.lakes` importable however pytest is started (trackintel installs a
`tests` namespace package too), and share one small lake per module."""

import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.report.lakes import build_lake  # noqa: E402


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return build_lake(tmp_path_factory.mktemp("report") / "lake")
