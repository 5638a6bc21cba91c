"""Connection resolution, as Functions does it for its own bindings.

Only construction is checked: Azure itself cannot be reached from here, so a
managed identity is never actually exercised (a token request would fail).
"""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential

from storage.clients import StorageConfigurationError, create_blob_service_client

DEV = "UseDevelopmentStorage=true"


def test_a_connection_string_setting_wins():
    client = create_blob_service_client("IMAGES", {"IMAGES": DEV, "IMAGES__accountName": "ignored"})
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
    client = create_blob_service_client("IMAGES", {**settings, "IMAGES__clientId": client_id})
    assert client.url == url
    assert isinstance(client.credential, DefaultAzureCredential)


def test_missing_settings_name_the_connection():
    with pytest.raises(StorageConfigurationError, match="IMAGES__blobServiceUri"):
        create_blob_service_client("IMAGES", {})
