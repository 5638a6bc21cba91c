"""Cold-start cost of request validation: the app's validator against libraries.

A Functions worker imports ``function_app.py`` on every cold start, so what the
request validator imports is paid before the first request is answered. This
measures, for each candidate, in a **fresh interpreter** each time:

* wall time and CPU time (user + system of the child) of
  ``python -c '<import, build one validator, validate one body>'`` (median over
  ``--repeats`` runs, interleaved so load drifts hit every candidate alike),
  minus the median of a bare ``python -c pass`` measured in the same run; on a
  loaded machine trust CPU time for cost and wall time for latency;
* the time ``-X importtime`` says was spent importing (its self column summed,
  median over the same runs, minus the bare interpreter's);
* the installed size of the candidate's distribution and its runtime
  dependencies (``importlib.metadata`` file sizes, ``__pycache__`` excluded).

Ratios are against the current validator (``imagebatch.batch_request``) in the
same run. The candidates must be importable by ``--python`` (default: this
interpreter); the repository is put on ``PYTHONPATH``. Install the libraries
into a scratch environment, not the app's::

    python -m venv /tmp/valbench && /tmp/valbench/bin/pip install pydantic msgspec jsonschema fastjsonschema
    python -m bench.validation_import --python /tmp/valbench/bin/python
    # the validator of main beside this checkout's, in the same run:
    mkdir /tmp/main-src && git archive main imagebatch | tar -x -C /tmp/main-src
    python -m bench.validation_import --python /tmp/valbench/bin/python --compare-with /tmp/main-src

Standard library only, so it runs under any interpreter. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# A small start-batch schema: what each library would have to build at import.
_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "output"],
    "properties": {
        "source": {
            "type": "object",
            "additionalProperties": False,
            "required": ["container"],
            "properties": {
                "container": {"type": "string", "pattern": "^[a-z0-9-]{3,63}$"},
                "prefix": {"type": "string"},
            },
        },
        "output": {"type": "object", "properties": {"container": {"type": "string"}}},
        "renditions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "items": {
                "type": "object",
                "required": ["name", "width"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"},
                    "width": {"type": "integer", "minimum": 16, "maximum": 8192},
                },
            },
        },
        "quality": {"type": "integer", "minimum": 1, "maximum": 100},
    },
}
_BODY = b'{"source": {"container": "photos", "prefix": ""}, "output": {"container": "out"}, "quality": 80}'

BASELINE = "current (imagebatch.batch_request)"
# name -> (top module, distribution for the size, code run in the fresh interpreter)
CANDIDATES: dict[str, tuple[str, str | None, str]] = {
    # What the validator's own stdlib imports cost (function_app imports most of it anyway).
    "stdlib floor (json, re, dataclasses, hashlib, datetime)": (
        "json",
        None,
        "import json, re, dataclasses, hashlib, datetime, typing",
    ),
    BASELINE: (
        "imagebatch.batch_request",
        None,
        f"from imagebatch.batch_request import parse_batch_request; parse_batch_request({_BODY!r})",
    ),
    "msgspec": (
        "msgspec",
        "msgspec",
        "import msgspec\n"
        "class S(msgspec.Struct, forbid_unknown_fields=True):\n container: str\n prefix: str = ''\n"
        "class B(msgspec.Struct, forbid_unknown_fields=True):\n source: S\n output: S\n quality: int = 82\n"
        f"msgspec.json.decode({_BODY!r}, type=B)",
    ),
    "pydantic v2": (
        "pydantic",
        "pydantic",
        "import json, pydantic\n"
        "class S(pydantic.BaseModel, extra='forbid', strict=True):\n container: str\n prefix: str = ''\n"
        "class B(pydantic.BaseModel, extra='forbid', strict=True):\n source: S\n output: S\n quality: int = 82\n"
        f"B.model_validate(json.loads({_BODY!r}))",
    ),
    "jsonschema (Draft 2020-12)": (
        "jsonschema",
        "jsonschema",
        f"import json, jsonschema\nv = jsonschema.Draft202012Validator({_SCHEMA!r})\n"
        f"list(v.iter_errors(json.loads({_BODY!r})))",
    ),
    "fastjsonschema (compiled)": (
        "fastjsonschema",
        "fastjsonschema",
        f"import json, fastjsonschema\nfastjsonschema.compile({_SCHEMA!r})(json.loads({_BODY!r}))",
    ),
}
BARE = "pass"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(python: str, code: str, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its stderr)."""
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run([python, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return elapsed, _children_cpu() - cpu, proc.stderr


def _import_us(stderr: str) -> int:
    """Total microseconds spent importing (sum of ``-X importtime``'s self column)."""
    return sum(int(m.group(1)) for m in re.finditer(r"^import time:\s+(\d+) \|", stderr, re.M))


_SIZE_SCRIPT = r"""
import json, re, sys
from importlib import metadata
def closure(name, seen):
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return
    seen[key] = sum(
        f.size or 0 for f in (dist.files or ()) if "__pycache__" not in str(f) and not str(f).endswith(".pyc")
    )
    for req in dist.requires or ():
        if "extra ==" in req:
            continue
        closure(re.split(r"[ ;<>=!~\[(]", req.strip(), maxsplit=1)[0], seen)
out = {}
for name in sys.argv[1:]:
    seen = {}
    closure(name, seen)
    out[name] = seen
print(json.dumps(out))
"""


def installed_sizes(python: str, dists: list[str]) -> dict[str, dict[str, int]]:
    proc = subprocess.run([python, "-c", _SIZE_SCRIPT, *dists], capture_output=True, text=True, check=True)
    sizes: dict[str, dict[str, int]] = json.loads(proc.stdout)
    return sizes


def _validator_size(root: Path) -> int:
    package = root / "imagebatch" / "batch_request"
    files = list(package.glob("*.py")) if package.is_dir() else [root / "imagebatch" / "batch_request.py"]
    return sum(f.stat().st_size for f in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter that has the candidates installed")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="3 repeats (smoke)")
    parser.add_argument(
        "--compare-with",
        metavar="DIR",
        help="also measure the imagebatch.batch_request of another checkout (e.g. git archive main imagebatch)",
    )
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else max(args.repeats, 1)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "0"}
    env.pop("PYTHONPROFILEIMPORTTIME", None)

    candidates = dict(CANDIDATES)
    if args.compare_with:
        root = str(Path(args.compare_with).resolve())
        code = CANDIDATES[BASELINE][2]
        candidates[f"other checkout ({Path(root).name})"] = (
            "imagebatch.batch_request",
            None,
            f"import sys; sys.path.insert(0, {root!r})\n{code}",
        )
    available: dict[str, tuple[str, str | None, str]] = {}
    for name, candidate in candidates.items():
        try:
            _run(args.python, candidate[2], env)  # also warms the bytecode cache
            available[name] = candidate
        except RuntimeError as exc:
            print(f"SKIP {name}: {str(exc).strip().splitlines()[-1]}")
    _run(args.python, BARE, env)

    walls: dict[str, list[float]] = {name: [] for name in [BARE, *available]}
    cpus: dict[str, list[float]] = {name: [] for name in [BARE, *available]}
    imports: dict[str, list[int]] = {name: [] for name in [BARE, *available]}
    order = [BARE, *available]
    for repeat in range(repeats):
        shift = repeat % len(order)
        for name in order[shift:] + order[:shift]:
            code = BARE if name == BARE else available[name][2]
            elapsed, cpu, stderr = _run(args.python, code, env)
            walls[name].append(elapsed)
            cpus[name].append(cpu)
            imports[name].append(_import_us(stderr))

    sizes = installed_sizes(args.python, [d for _, d, _ in available.values() if d])
    bare = statistics.median(walls[BARE])
    bare_cpu = statistics.median(cpus[BARE])
    bare_imports = statistics.median(imports[BARE])
    base_name = BASELINE
    print(f"python: {args.python}; repeats: {repeats}; load: {os.getloadavg()[0]:.2f}")
    print(f"bare interpreter (python -c pass): median {bare * 1000:.1f} ms")
    print("| candidate | wall median ms (p90) | wall minus bare ms | CPU minus bare ms", end=" ")
    print("| import ms (-X importtime, minus bare) | installed KiB (with deps) |")
    print("|---|---|---|---|---|---|")
    extra: dict[str, float] = {}
    extra_cpu: dict[str, float] = {}
    for name, (module, dist, _) in available.items():
        wall = statistics.median(walls[name])
        p90 = sorted(walls[name])[max(0, round(0.9 * len(walls[name])) - 1)]
        extra[name] = wall - bare
        importtime = (statistics.median(imports[name]) - bare_imports) / 1000
        extra_cpu[name] = statistics.median(cpus[name]) - bare_cpu
        cpu = extra_cpu[name] * 1000
        if module == "json":
            size = "0 (stdlib)"
        elif dist:
            deps = sizes.get(dist, {})
            size = f"{sum(deps.values()) / 1024:.0f} ({', '.join(sorted(deps))})"
        else:
            checkout = Path(args.compare_with) if name.startswith("other") else REPO_ROOT
            size = f"{_validator_size(checkout) / 1024:.0f} (source files)"
        cells = [f"{wall * 1e3:.1f} ({p90 * 1e3:.1f})", f"{extra[name] * 1e3:.1f}", f"{cpu:.1f}", f"{importtime:.1f}"]
        print(f"| {name} | {' | '.join(cells)} | {size} |")
    if base_name in extra:
        base_wall, base_cpu = max(extra[base_name], 1e-4), max(extra_cpu[base_name], 1e-4)
        for name in extra:
            if name != base_name and not name.startswith("stdlib"):
                print(
                    f"RATIO {name}/current cold-start cost: wall {extra[name] / base_wall:.1f}x,"
                    f" CPU {extra_cpu[name] / base_cpu:.1f}x"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
