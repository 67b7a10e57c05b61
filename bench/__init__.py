"""Benchmarks of the performance targets in the issues, run as ``python -m bench NAME``.

Each benchmark builds its own scratch database (see :mod:`bench.common`), measures side by side
in one run, prints a table and exits non-zero when a target is missed."""
