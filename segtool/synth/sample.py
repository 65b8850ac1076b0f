"""The bundled sample (`data/sample/`): its parameters, and where to find it."""

from __future__ import annotations

from pathlib import Path

from segtool.synth.params import SynthParams

# 400 phones for two weeks around Easter 2024 (the switch to summer time included),
# a ping every ~6 minutes with 35 % of the time unobserved: about 0.9M ping rows,
# ~12 MB in all, and quick enough for the whole demo pipeline.
SAMPLE_PARAMS = SynthParams(
    devices=400,
    days=14,
    seed=2024,
    segregation=0.5,
    homophily=1.0,
    ping_interval_min=6.0,
    gap_share=0.35,
    gzip=True,
)
SAMPLE_COMMAND = (
    "segtool synth --out data/sample --devices 400 --days 14 --seed 2024 "
    "--segregation 0.5 --homophily 1 --ping-interval 6 --gap-share 0.35 --gzip"
)


def bundled_sample() -> Path | None:
    """`data/sample` of a source checkout (or editable install), if it is there."""
    root = Path(__file__).resolve().parents[2]
    sample = root / "data" / "sample"
    return sample if (sample / "_manifest.json").exists() else None
