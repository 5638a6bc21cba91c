"""Shared fixtures: a real Azurite, a blob service client, unique containers."""

from __future__ import annotations

import contextlib
import gc
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from storage.clients import reset_clients
from tests.azurite import connection_string, running_azurite

# The test tiers, in one place (``pytest -m unit``, ``-m integration``, ``-m slow``, ``-m "not slow"``):
# - unit: plain in-process code (no Azurite, no dev host serving the app); milliseconds each.
# - integration: the app against a real Azurite and/or on a dev host. A test that asks for an
#   Azurite fixture is integration wherever it lives; the files below run the app on a dev host.
# - slow: the files below whose tests take seconds to minutes each (10,000-image batches, SIGKILLs,
#   storage outages, the API fuzz, headless Chromium, benchmarks, memory limits); all integration.
#   ``make test-fast`` runs everything else.
# durable_devhost/tests/conftest.py does the same for the dev host's own tests.
SLOW_FILES = frozenset(
    {
        "test_api_fuzz.py",
        "test_bench_smoke.py",
        "test_host_crashes.py",
        "test_memory_budget.py",
        "test_memory_host.py",
        "test_payload_sizes.py",
        "test_proof_browser.py",
        "test_report_browser.py",
        "test_storage_faults.py",
        "test_true_manifest.py",
    }
)
INTEGRATION_FILES = SLOW_FILES | {
    "test_cli.py",
    "test_controls.py",
    "test_e2e_http.py",
    "test_fan_out_patterns.py",
    "test_hostile_batch.py",
    "test_lifecycle.py",
    "test_orchestrator.py",
    "test_review.py",
    "test_security.py",
}
AZURITE_FIXTURES = frozenset({"azurite_connection_string", "blob_service", "container_factory"})
HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # ``-m "not slow"`` (make test-fast) would deselect every test of a slow file anyway: do not
    # import those files (the API fuzz alone loads schemathesis and the OpenAPI document, ~2 s of
    # CPU per process). Any other -m expression collects everything and lets pytest decide.
    not_slow = config.getoption("markexpr", "").strip() == "not slow"
    return True if not_slow and collection_path.parent == HERE and collection_path.name in SLOW_FILES else None


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist (``-n``) the controller starts one Azurite for all its workers (they
    # inherit AZURITE_BLOB_ENDPOINT), instead of one each; every test makes its own containers.
    workers = getattr(config.option, "numprocesses", None)
    if workers and "PYTEST_XDIST_WORKER" not in os.environ and not os.environ.get("AZURITE_BLOB_ENDPOINT"):
        stack = contextlib.ExitStack()
        os.environ["AZURITE_BLOB_ENDPOINT"] = stack.enter_context(running_azurite())
        stack.callback(os.environ.pop, "AZURITE_BLOB_ENDPOINT", None)
        config.add_cleanup(stack.close)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent != HERE:
            continue  # not this directory's test (durable_devhost/tests marks its own)
        name = item.path.name
        integration = name in INTEGRATION_FILES or not AZURITE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.integration if integration else pytest.mark.unit)
        if name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


_previous_strict = False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test that turns warnings into errors (``filterwarnings("error")``), collect the
    garbage earlier tests left: an unclosed socket or session another test forgot warns when the
    collector finds it, and must not fail whichever test happens to run then (under xdist or a
    shuffled order, any). Once per run of such tests, not before each."""
    global _previous_strict
    strict = any(arg.startswith("error") for mark in item.iter_markers("filterwarnings") for arg in mark.args)
    if strict and not _previous_strict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    _previous_strict = strict


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    with running_azurite() as endpoint:
        conn = connection_string(endpoint)
        previous = os.environ.get("AzureWebJobsStorage")
        os.environ["AzureWebJobsStorage"] = conn
        reset_clients()
        yield conn
        if previous is None:
            os.environ.pop("AzureWebJobsStorage", None)
        else:
            os.environ["AzureWebJobsStorage"] = previous
        reset_clients()


# The tests' own client (seeding sources, checking outputs) waits at most this long for
# Azurite to answer before it retries, rather than the SDK's 60 s: a stalled emulator
# (tests/azurite.py) should cost a retry, not a test's whole timeout.
VERIFY_READ_TIMEOUT_S = 20


@pytest.fixture(scope="session")
def blob_service(azurite_connection_string: str) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        azurite_connection_string, connection_timeout=5, read_timeout=VERIFY_READ_TIMEOUT_S
    )


@pytest.fixture
def container_factory(blob_service: BlobServiceClient):
    """Create uniquely named containers and delete them after the test (a store that
    keeps everything makes every later call slower; tests/azurite.py has the figures)."""
    made: list[str] = []

    def make(create: bool = True) -> str:
        name = f"t-{uuid.uuid4().hex[:20]}"
        if create:
            blob_service.create_container(name)
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(Exception):
            blob_service.delete_container(name)


@pytest.fixture(params=["pillow", "libvips"])
def image_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once per image backend by switching ``render_image``'s default.

    Both must give the same sizes, orientation, colour handling, privacy and
    error kinds; libvips is a dev dependency, so it is always available here.
    """
    from imagebatch import imaging

    monkeypatch.setattr(imaging, "DEFAULT_BACKEND", request.param)
    return request.param
