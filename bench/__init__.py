"""Benchmarks for the image-batch app, run with ``python -m bench.run [--quick]``.

Each benchmark is a module with ``main(argv) -> int`` so the runner (and a
developer who wants just one of them) can call it the same way; shared
plumbing such as statistics, machine facts and result files lives in
:mod:`bench.common`. Results go to ``bench/results/`` (git-ignored) and the
write-up to ``docs/benchmarks.md``.
"""
