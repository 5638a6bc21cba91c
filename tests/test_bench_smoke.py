"""Smoke test of the benchmark runner.

It only proves that ``python -m bench.run --quick`` still runs end to end and
prints its verdict lines; it deliberately asserts nothing about timings,
which on a shared 2-core CI machine would make the suite flaky. The real
numbers come from the full run documented in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(480)
def test_quick_benchmarks_run_and_print_ratios(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_RESULTS_DIR": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=470,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # The baseline ratio is always there (Pillow is a hard dependency) ...
    assert re.search(r"^RATIO naive/ours per-image median \[jpeg->jpeg, 1 proc\]: [\d.]+x", output, re.M), output
    assert re.search(r"^RATIO naive/ours per-image median \[jpeg->jpeg, 2 proc\]: [\d.]+x", output, re.M), output
    # The pure-Pillow recipe (the fallback backend) is always measured too.
    assert re.search(r"^RATIO naive/ours-pillow per-image median \[jpeg->jpeg, 1 proc\]: [\d.]+x", output, re.M)
    # ... and libvips ratios whenever pyvips is importable; otherwise a SKIP line says why.
    if re.search(r"^SKIP pyvips:", output, re.M) is None:
        assert re.search(r"^RATIO pyvips/ours per-image median \[jpeg->jpeg, 1 proc\]: [\d.]+x", output, re.M), output
    assert (tmp_path / "imaging-quick.json").is_file()
    # Replay cost, pipeline overhead and the scale run print their own verdicts.
    assert re.search(r"^ratio flat/sharded orchestrator CPU at 100 images: [\d.]+x", output, re.M), output
    assert re.search(r"^RATIO sharded orchestrator/activity CPU per image \[100 images\]: [\d.]+", output, re.M)
    assert re.search(r"^ratio dev host / baseline throughput: [\d.]+", output, re.M), output
    assert re.search(r"^manifest_images: 200$", output, re.M), output
