"""requirements.txt is the lock of what ``func publish`` installs; requirements.in holds the ranges.

Offline checks (no index is asked): every range in requirements.in is pinned in the lock at a
version inside the range, every lock line is an exact ``==`` pin, and this venv runs exactly the
locked versions, so the tests exercise what is deployed. Regenerate with ``bash scripts/lock.sh``.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent


def _requirements(path: Path) -> list[Requirement]:
    """The requirement lines of a pip requirements file (comments and blank lines left out)."""
    requirements = []
    for raw in path.read_text().splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            assert not line.startswith("-"), f"{path.name}: unexpected option line {raw!r}"
            requirements.append(Requirement(line))
    return requirements


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for requirement in _requirements(REPO / "requirements.txt"):
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {requirement}"
        assert not requirement.marker and not requirement.extras and not requirement.url, f"not plain: {requirement}"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"pinned twice: {name}"
        pins[name] = Version(specifiers[0].version)
    return pins


def test_every_lock_line_is_an_exact_pin() -> None:
    assert len(_lock()) >= 10  # the runtime packages and their transitive dependencies


def test_every_range_is_pinned_inside_it() -> None:
    pins = _lock()
    for requirement in _requirements(REPO / "requirements.in"):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in the lock: bash scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"lock pins {name}=={pins[name]} outside {requirement.specifier}: bash scripts/lock.sh"
        )


def test_the_lock_says_how_to_regenerate_it() -> None:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    header = "\n".join(line for line in lines[: next(i for i, x in enumerate(lines) if not x.startswith("#"))])
    assert "bash scripts/lock.sh" in header and "Python 3.11" in header


def test_the_venv_runs_the_locked_versions() -> None:
    mismatched = {}
    for name, pinned in _lock().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            mismatched[name] = f"locked {pinned}, installed {installed}"
    assert mismatched == {}, "run `make install` (or pip install -r requirements.txt)"
