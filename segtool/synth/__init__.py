"""The synthetic city: realistic inputs with planted segregation and a known answer.

>>> from segtool.synth import SynthParams, generate_city
>>> report = generate_city(SynthParams(devices=300, days=14, seed=1), "city")  # doctest: +SKIP
"""

from segtool.synth.generate import generate_city
from segtool.synth.params import GROUPS, TIME_ZONE, SynthParams, SynthReport

__all__ = ["GROUPS", "TIME_ZONE", "SynthParams", "SynthReport", "generate_city"]
