"""Benchmarks: one script per figure (`bench/bench_*.py`), each writing a table to
`bench/results/`. Run all with `make bench` or one with `python -m bench residential`."""
