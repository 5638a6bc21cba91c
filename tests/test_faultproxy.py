"""The fault proxy itself: transparent when asked to be, and every fault kind
reaches the Azure SDK the way a real storage failure would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import BlobServiceClient

from tests.faultproxy import FaultProxy, _Message, fast_sdk_retry


@pytest.fixture
def upstream(azurite_connection_string: str) -> str:
    endpoint = next(p for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint="))
    return endpoint.split("=", 1)[1]


@pytest.fixture
def proxied(upstream: str, azurite_connection_string: str) -> Iterator[tuple[FaultProxy, BlobServiceClient]]:
    with FaultProxy(upstream, seed=7) as proxy:
        service = BlobServiceClient.from_connection_string(
            proxy.connection_string(azurite_connection_string), **fast_sdk_retry()
        )
        yield proxy, service


def test_transparent_over_keep_alive(proxied, container_factory) -> None:
    proxy, service = proxied
    container = container_factory()
    for i in range(20):
        service.get_blob_client(container, f"b{i}.bin").upload_blob(bytes([i]) * (1000 + i * 997))
    listed = [b.name for b in service.get_container_client(container).list_blobs(results_per_page=7)]
    assert len(listed) == 20
    assert service.get_blob_client(container, "b3.bin").download_blob().readall() == bytes([3]) * (1000 + 3 * 997)
    assert service.get_blob_client(container, "b3.bin").exists()  # HEAD: response without a body
    stats = proxy.snapshot()
    assert stats.faults_total == 0 and stats.requests == stats.forwarded >= 25
    assert stats.connections <= 3, "the SDK's keep-alive connection must survive the proxy"


@pytest.mark.parametrize("kind", ["503", "500"])
def test_error_answers_look_like_azure(proxied, container_factory, kind: str) -> None:
    proxy, service = proxied
    container = container_factory()
    proxy.fail_rate, proxy.kinds = 1.0, (kind,)
    with pytest.raises(HttpResponseError) as raised:
        service.get_blob_client(container, "x.bin").upload_blob(b"data")
    assert raised.value.status_code == int(kind)
    assert raised.value.error_code == ("ServerBusy" if kind == "503" else "InternalError")
    stats = proxy.snapshot()
    assert (stats.requests, stats.retries, stats.forwarded) == (4, 3, 0), stats.describe()
    proxy.fail_rate = 0.0
    assert not service.get_blob_client(container, "x.bin").exists(), "a refused request never reached storage"


def test_resets_are_connection_errors_and_reset_after_still_writes(proxied, container_factory) -> None:
    proxy, service = proxied
    container = container_factory()
    proxy.fail_rate, proxy.kinds = 1.0, ("reset",)
    with pytest.raises(AzureError):
        service.get_blob_client(container, "a.bin").upload_blob(b"a")
    proxy.kinds = ("reset_after",)
    with pytest.raises(AzureError):
        service.get_blob_client(container, "b.bin").upload_blob(b"b")
    proxy.fail_rate = 0.0
    assert not service.get_blob_client(container, "a.bin").exists()
    assert service.get_blob_client(container, "b.bin").download_blob().readall() == b"b"
    assert proxy.snapshot().faults["reset"] == 4 and proxy.snapshot().faults["reset_after"] == 4


def test_outage_and_down_window(proxied, container_factory) -> None:
    proxy, service = proxied
    container = container_factory()
    blob = service.get_blob_client(container, "o.bin")
    with proxy.outage(), pytest.raises(HttpResponseError):
        blob.upload_blob(b"o")
    blob.upload_blob(b"o")
    proxy.down(30)
    assert proxy.is_down
    with pytest.raises(HttpResponseError):
        blob.download_blob()
    proxy.down(0)
    assert blob.download_blob().readall() == b"o"


def test_decisions_are_reproducible_whatever_the_interleaving() -> None:
    def decisions(order: list[int]) -> dict[tuple[str, int], str | None]:
        proxy = FaultProxy("http://127.0.0.1:1/acct", seed=42, fail_rate=0.3, kinds=("503", "reset", "500"))
        seen: dict[str, int] = {}
        out = {}
        for i in order:
            path = f"/acct/c/img{i % 10}.jpg"
            n = seen[path] = seen.get(path, -1) + 1
            out[(path, n)] = proxy._decide(
                _Message(
                    head=b"", body=b"", method="PUT", path=path, headers={"x-ms-client-request-id": str(uuid.uuid4())}
                )
            )
        return out

    forward = decisions(list(range(50)))
    backward = decisions(list(reversed(range(50))))
    assert forward == backward
    failed = sum(1 for d in forward.values() if d)
    assert 5 <= failed <= 25 and {d for d in forward.values() if d} == {"503", "reset", "500"}


def test_refuses_non_loopback_upstreams() -> None:
    with pytest.raises(ValueError):
        FaultProxy("http://10.0.0.1:10000/devstoreaccount1")
