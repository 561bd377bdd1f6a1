"""Reading Service Log records back: from the log storage account's blobs, and from the live stream."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from batchyard.service.storage.linked import LinkedStorage

CONTAINER = "insights-logs-servicelogs"
ENVELOPE = {"Tenant", "time", "resourceId", "category", "operationName", "operationVersion", "properties"}


@dataclass
class LogTarget:
    """One service's diagnostic log folder: a resource group of its own, so services sharing one Azurite
    (and one account name) never read each other's records."""

    storage: LinkedStorage
    subscription: str = field(default_factory=lambda: str(uuid.uuid4()))
    resource_group: str = field(default_factory=lambda: f"rg-{uuid.uuid4().hex[:8]}")

    def serve_args(self) -> list[str]:
        return [
            "--storage-connection-string",
            self.storage.connection_string,
            "--diagnostic-logs",
            "linked",
            "--diagnostic-subscription",
            self.subscription,
            "--diagnostic-resource-group",
            self.resource_group,
        ]

    @property
    def resource_id(self) -> str:
        return (
            f"/SUBSCRIPTIONS/{self.subscription}/RESOURCEGROUPS/{self.resource_group}"
            "/PROVIDERS/MICROSOFT.BATCH/BATCHACCOUNTS/DEVBATCHACCOUNT1"
        ).upper()

    def blobs(self) -> dict[str, bytes]:
        """Every blob of this service's folder: name -> content."""
        from azure.core.exceptions import ResourceNotFoundError

        container = self.storage.client().get_container_client(CONTAINER)
        try:
            names = [blob.name for blob in container.list_blobs(name_starts_with=f"resourceId={self.resource_id}/")]
        except ResourceNotFoundError:
            return {}
        return {name: container.get_blob_client(name).download_blob().readall() for name in names}

    def lines(self) -> list[tuple[str, bytes]]:
        """(blob name, line) of every record, in blob then line order."""
        return [(name, line) for name, data in sorted(self.blobs().items()) for line in data.splitlines()]

    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for _, line in self.lines()]

    def hour_path(self) -> re.Pattern[str]:
        return re.compile(
            "^resourceId=" + re.escape(self.resource_id) + r"/y=(\d{4})/m=(\d{2})/d=(\d{2})/h=(\d{2})/m=00/PT1H\.json$"
        )


def of(records: list[dict[str, Any]], operation: str, **match: Any) -> list[dict[str, Any]]:
    """The bodies of the records of one operation whose body has these values."""
    return [
        record["properties"]
        for record in records
        if record["operationName"] == operation
        and all(record["properties"].get(key) == value for key, value in match.items())
    ]


@dataclass
class Event:
    id: int
    name: str
    record: dict[str, Any]


@contextmanager
def event_stream(url: str, last_event_id: int | None = None, **params: str) -> Iterator[Iterator[Event]]:
    """GET /_batchyard/events, signed like the SDK signs, as an iterator of its server-sent events."""
    from batchyard.service.auth import format_ocp_date, sign_request
    from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    full = str(httpx.URL(f"{url}/_batchyard/events", params={"api-version": "2025-06-01", **params}))
    headers = {"ocp-date": format_ocp_date()}
    if last_event_id is not None:
        headers["last-event-id"] = str(last_event_id)
    headers["Authorization"] = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, "GET", full, headers)
    with httpx.stream("GET", full, headers=headers, timeout=httpx.Timeout(30, read=60)) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        yield _events(answer.iter_lines())


def _events(lines: Iterator[str]) -> Iterator[Event]:
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield Event(int(fields["id"]), fields["event"], orjson.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
