"""Run every benchmark: ``python -m bench.run [--quick] [--only NAME ...]``.

Why a list of module names instead of discovery: a benchmark is added on
purpose (it must be worth CI's minutes), and ``--quick`` is the contract each
module has to honour so ``make bench`` and the smoke test stay fast. A module
joins by exposing ``main(argv: list[str]) -> int`` and being listed below.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

MODULES: list[str] = [
    "bench.imaging",
    "bench.replay",
    "bench.pipeline",
    "bench.scale",
]


def main(argv: list[str] | None = None) -> int:
    """Run the listed modules in order; exit non-zero if any of them failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Run the benchmark modules.")
    parser.add_argument("--quick", action="store_true", help="tiny smoke versions (CI)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this module (e.g. imaging)")
    args = parser.parse_args(argv)

    selected = [m for m in MODULES if not args.only or m.rsplit(".", 1)[-1] in args.only or m in args.only]
    if not selected:
        print(f"no benchmark matches {args.only}; known: {', '.join(MODULES)}", file=sys.stderr)
        return 2
    failures: list[str] = []
    for name in selected:
        print(f"===== {name}{' (quick)' if args.quick else ''}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(name)
            code = module.main(["--quick"] if args.quick else [])
        except Exception:
            traceback.print_exc()
            code = 1
        print(f"===== {name}: exit {code} in {time.perf_counter() - started:.1f}s", flush=True)
        if code:
            failures.append(name)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
