"""A small synthetic city shared by the synth tests (generated once per test worker)."""

from __future__ import annotations

import pytest

from segtool.synth import SynthParams, generate_city

# 7 days from Monday 2024-03-25: the switch to summer time (Sunday 03-31) and Good Friday
# are inside. Planted shares are raised so every reason occurs many times.
SMALL = SynthParams(
    devices=80,
    days=7,
    seed=11,
    segregation=0.5,
    homophily=1.0,
    ping_interval_min=5.0,
    gap_share=0.2,
    low_accuracy_share=0.01,
    duplicate_share=0.01,
    malformed_share=0.02,
    files=2,
)


@pytest.fixture(scope="session")
def small_city(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "city"
    report = generate_city(SMALL, out)
    return out, report
