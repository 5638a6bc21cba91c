"""What ``func publish`` ships: the runtime code and nothing of the tooling around it.

``.funcignore`` decides the package (gitignore-style patterns); these tests apply it to the
repository's top level, and check that no deployed module imports a package that is left out
(which would deploy fine and then fail on its first invocation).
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNTIME_PACKAGES = {"activities", "http_api", "imagebatch", "orchestrators", "storage"}
RUNTIME_FILES = {"function_app.py", "host.json", "requirements.txt"}
# Harmless to ship, not needed at run time.
TOLERATED = {"pyproject.toml"}
# Created by installing, testing or running the demo in a checkout; none of it may ship.
LOCAL_ARTIFACTS = {
    ".venv",
    "node_modules",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "__pycache__",
    ".devhost",
    ".azurite",
    "demo-output",
    "build",
}


def _patterns() -> list[str]:
    lines = (REPO / ".funcignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _published(name: str) -> bool:
    return not any(fnmatch.fnmatch(name, pattern) for pattern in _patterns())


def _top_level_names() -> set[str]:
    """What a checkout holds at its top level, plus what working in it creates (not tracked)."""
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        names = {line.split("/", 1)[0] for line in tracked.splitlines() if line}
    except (OSError, subprocess.CalledProcessError):
        names = {p.name for p in REPO.iterdir()}
    return names | LOCAL_ARTIFACTS


def test_the_package_is_the_runtime_code_only() -> None:
    kept = {name for name in _top_level_names() if _published(name)}
    assert kept >= RUNTIME_PACKAGES | RUNTIME_FILES, "a runtime file is left out of the package"
    assert kept - RUNTIME_PACKAGES - RUNTIME_FILES <= TOLERATED, f"shipped but not needed: {sorted(kept)}"


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_deployed_module_imports_what_is_not_deployed() -> None:
    left_out = {p.name for p in REPO.iterdir() if p.is_dir() and not _published(p.name)}
    sources = [REPO / "function_app.py"] + [p for pkg in RUNTIME_PACKAGES for p in (REPO / pkg).rglob("*.py")]
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_roots(path) & left_out)
        for path in sources
        if _imported_roots(path) & left_out
    }
    assert offenders == {}
