"""Helpers of the lake tests: ping files, and `segtool` subprocesses that run this checkout
(sys.executable -m segtool with the test's PYTHONPATH)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

SECRET = "lake-test-secret-0123456789abcdef"
HEADER = "device_id,timestamp,latitude,longitude,accuracy"
ROOT = Path(__file__).resolve().parents[2]


def ping_lines(devices: range, per_device: int = 12, lat: float = 59.33, day: int = 4) -> list[str]:
    """Pings every 5 minutes at one place: each device makes one stay per file."""
    t0 = datetime(2024, 3, day, 9, 0, tzinfo=UTC)
    out = []
    for d in devices:
        for i in range(per_device):
            ts = (t0 + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.append(f"dev-{d},{ts},{lat + d * 1e-3:.5f},18.06000,5")
    return out


def write_pings(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def segtool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CI"] = "true"
    return env


def spawn(*args, **kw) -> subprocess.Popen:
    """Start `segtool ARGS...` as a subprocess of this checkout."""
    return subprocess.Popen(
        [sys.executable, "-m", "segtool", *map(str, args)],
        env=segtool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
