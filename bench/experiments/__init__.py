"""Exploratory benchmarks kept for the record: not run by ``bench.run`` or CI.

Each answers a question once asked about the recipe (``docs/benchmarks.md`` reports what was
found); rerun one by hand when that question comes back.
"""
