"""Thin Typer commands: parse options, call the Python API, present the result.

One module per command group; `segtool/cli.py` wires them together."""
