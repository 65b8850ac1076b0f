"""Make `tests.mobility.*` (simulator, recovery checker, reference, builders) importable
however pytest is started (trackintel installs a `tests` namespace package too)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
