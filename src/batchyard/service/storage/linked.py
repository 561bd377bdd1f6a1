"""The linked storage account: its endpoint and key, clients for the service, SAS URLs for nodes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

# Azurite's well-known development account (public, like batchyard's devbatchaccount1).
DEV_STORAGE_ACCOUNT = "devstoreaccount1"
DEV_STORAGE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# How long a SAS the service hands a node stays valid: long enough for a slow download to start.
NODE_SAS_LIFETIME = timedelta(hours=24)


class StorageConfigError(ValueError):
    pass


@dataclass(frozen=True)
class LinkedStorage:
    account_name: str
    account_key: str
    blob_endpoint: str  # without a trailing slash: https://acct.blob.core.windows.net or http://127.0.0.1:N/acct

    @classmethod
    def from_connection_string(cls, text: str) -> LinkedStorage:
        parts: dict[str, str] = {}
        for item in text.strip().strip(";").split(";"):
            if not item.strip():
                continue
            name, sep, value = item.partition("=")
            if not sep:
                raise StorageConfigError(f"not a storage connection string item: {name!r}")
            parts[name.strip().lower()] = value.strip()
        if parts.get("usedevelopmentstorage", "").lower() == "true":
            return cls(DEV_STORAGE_ACCOUNT, DEV_STORAGE_KEY, f"http://127.0.0.1:10000/{DEV_STORAGE_ACCOUNT}")
        account, key = parts.get("accountname"), parts.get("accountkey")
        if not account or not key:
            raise StorageConfigError("the connection string needs AccountName and AccountKey")
        endpoint = parts.get("blobendpoint")
        if not endpoint:
            protocol = parts.get("defaultendpointsprotocol", "https")
            suffix = parts.get("endpointsuffix", "core.windows.net")
            endpoint = f"{protocol}://{account}.blob.{suffix}"
        return cls(account, key, endpoint.rstrip("/"))

    @classmethod
    def from_url_and_key(cls, url: str, key: str, name: str | None = None) -> LinkedStorage:
        """An account URL (https://acct.blob.core.windows.net, or an emulator's http://host:port/acct)."""
        url = url.rstrip("/")
        if name is None:
            host = url.split("://", 1)[-1].split("/", 1)
            name = host[1] if len(host) > 1 and host[1] else host[0].split(".", 1)[0]
        if not name or not key:
            raise StorageConfigError("a storage account URL needs an account key")
        return cls(name, key, url)

    @property
    def connection_string(self) -> str:
        return f"AccountName={self.account_name};AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"

    def client(self) -> BlobServiceClient:
        return BlobServiceClient(self.blob_endpoint, credential=self.account_key_credential())

    def account_key_credential(self) -> dict[str, str]:
        return {"account_name": self.account_name, "account_key": self.account_key}

    def container_url(self, container: str) -> str:
        return f"{self.blob_endpoint}/{container}"

    def blob_url(self, container: str, blob: str) -> str:
        return f"{self.blob_endpoint}/{container}/{quote(blob)}"

    def container_sas_url(self, container: str, permission: str = "rl", lifetime: timedelta = NODE_SAS_LIFETIME) -> str:
        token = generate_container_sas(
            self.account_name,
            container,
            account_key=self.account_key,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=datetime.now(UTC) + lifetime,
        )
        return f"{self.container_url(container)}?{token}"

    def blob_sas_url(
        self, container: str, blob: str, permission: str = "r", lifetime: timedelta = NODE_SAS_LIFETIME
    ) -> str:
        token = generate_blob_sas(
            self.account_name,
            container,
            blob,
            account_key=self.account_key,
            permission=BlobSasPermissions.from_string(permission),
            expiry=datetime.now(UTC) + lifetime,
        )
        return f"{self.blob_url(container, blob)}?{token}"
