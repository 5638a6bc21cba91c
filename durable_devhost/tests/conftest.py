"""The dev host's test tiers, in one place (markers registered in pyproject.toml).

- unit: the engine, replay, settings and index in-process (in-memory SQLite, no server).
- integration: a dev host serving HTTP (in-process or ``python -m durable_devhost``),
  worker processes, the Durable SDK's client over HTTP.
- slow: the child-process host tests (start-up, SIGKILL); ``make test-fast`` leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SLOW_FILES = frozenset({"test_server_subprocess.py"})
INTEGRATION_FILES = SLOW_FILES | {
    "test_client_sdk.py",
    "test_engine_durability.py",
    "test_samples.py",
    "test_server_http.py",
    "test_server_management.py",
    "test_strict.py",
    "test_timer_triggers.py",
}
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent != HERE:
            continue  # tests/conftest.py marks the app's tests
        name = item.path.name
        item.add_marker(pytest.mark.integration if name in INTEGRATION_FILES else pytest.mark.unit)
        if name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
