"""Benchmarks from ../shared/BENCHMARKS.md: `python -m bench S1` (or `all`)."""
