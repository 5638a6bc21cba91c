"""Connection resolution, as Functions does it for its own bindings.

Only construction is checked: Azure itself cannot be reached from here, so a
managed identity is never actually exercised (a token request would fail).
"""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential

from storage.clients import (
    StorageConfigurationError,
    blob_service_client,
    blob_url,
    create_client,
    interactive_client,
    reset_clients,
)

DEV = "UseDevelopmentStorage=true"


def test_a_connection_string_setting_wins():
    client = create_client("IMAGES", {"IMAGES": DEV, "IMAGES__accountName": "ignored"})
    assert client.url.startswith("http://127.0.0.1:10000/devstoreaccount1")


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({"IMAGES__accountName": "photos"}, "https://photos.blob.core.windows.net/"),
        ({"IMAGES__blobServiceUri": "https://photos.blob.core.windows.net"}, "https://photos.blob.core.windows.net/"),
        ({"IMAGES__serviceUri": "https://alt.blob.core.windows.net"}, "https://alt.blob.core.windows.net/"),
    ],
)
def test_identity_based_settings_use_default_azure_credential(settings, url):
    client_id = "00000000-0000-0000-0000-000000000001"
    client = create_client("IMAGES", {**settings, "IMAGES__clientId": client_id})
    assert client.url == url
    assert isinstance(client.credential, DefaultAzureCredential)


def test_missing_settings_name_the_connection():
    with pytest.raises(StorageConfigurationError, match="IMAGES__blobServiceUri"):
        create_client("IMAGES", {})


def test_one_factory_builds_the_asyncio_client_from_the_same_settings():
    from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
    from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

    settings = {"IMAGES__accountName": "photos", "STORAGE_RETRY_TOTAL": "5"}
    client = create_client("IMAGES", settings, aio=True)
    assert isinstance(client, AsyncBlobServiceClient)
    assert client.url == "https://photos.blob.core.windows.net/"
    assert isinstance(client.credential, AsyncDefaultAzureCredential)
    assert client._config.retry_policy.total_retries == 5
    local = create_client("IMAGES", {"IMAGES": DEV}, aio=True)
    assert local.url.startswith("http://127.0.0.1:10000/devstoreaccount1")
    with pytest.raises(StorageConfigurationError, match="IMAGES__accountName"):
        create_client("IMAGES", {}, aio=True)


def test_retry_settings_size_the_sdk_retry():
    settings = {"IMAGES": DEV, "STORAGE_RETRY_TOTAL": "2", "STORAGE_RETRY_INITIAL_BACKOFF": "4"}
    retry = create_client("IMAGES", settings)._config.retry_policy
    assert (retry.total_retries, retry.initial_backoff, retry.increment_base) == (2, 4, 2)


def test_interactive_clients_retry_once_and_cached_ones_are_shared(monkeypatch):
    monkeypatch.setenv("IMAGES_T", DEV)
    monkeypatch.setenv("STORAGE_RETRY_TOTAL", "3")
    assert interactive_client("IMAGES_T")._config.retry_policy.total_retries == 1
    try:
        assert blob_service_client("IMAGES_T") is blob_service_client("IMAGES_T")
        assert blob_service_client("IMAGES_T")._config.retry_policy.total_retries == 3
    finally:
        reset_clients()


def test_blob_urls_are_quoted():
    client = create_client("IMAGES", {"IMAGES__accountName": "photos"})
    assert blob_url(client, "out/web/a b#1.html") == "https://photos.blob.core.windows.net/out/web/a%20b%231.html"
