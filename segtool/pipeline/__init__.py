"""Reproducible pipelines: which command makes what from what (`stages`), whether a
command's output is already current (`current`), and the whole chain in order (`run`)."""
