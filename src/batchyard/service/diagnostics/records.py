"""A Service Log record as Azure Monitor archives it, and where it goes in the storage account.

One record is one JSON line: `{"Tenant", "time", "resourceId", "category": "ServiceLog", "operationName":
"PoolCreateEvent", "operationVersion", "properties": <the event's body>}` (the example record in Azure
Batch's "Batch diagnostic logs" page). Records of one hour go to one append-only blob:

    insights-logs-servicelogs/resourceId=/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.BATCH/
    BATCHACCOUNTS/<ACCOUNT>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson

from batchyard.service.clock import iso

CONTAINER = "insights-logs-servicelogs"
CATEGORY = "ServiceLog"
OPERATION_VERSION = "2017-06-01"  # what Batch's archived records carry


@dataclass(frozen=True)
class AccountResource:
    """The Batch account as an Azure resource: the records' resourceId and the blobs' folder."""

    account_name: str
    subscription_id: str
    resource_group: str

    @cached_property  # every record carries it
    def resource_id(self) -> str:
        """Upper case, as Azure Monitor writes it in records and blob paths."""
        return (
            f"/SUBSCRIPTIONS/{self.subscription_id}/RESOURCEGROUPS/{self.resource_group}"
            f"/PROVIDERS/MICROSOFT.BATCH/BATCHACCOUNTS/{self.account_name}"
        ).upper()

    @cached_property
    def tenant(self) -> str:
        """A stable id in the shape of Azure's (32 hex digits), from the account and its resource."""
        return uuid.uuid5(uuid.NAMESPACE_URL, self.resource_id).hex

    def record(self, operation: str, properties: dict[str, Any], when: datetime) -> bytes:
        """One record, as its JSON line (without the newline)."""
        return orjson.dumps(
            {
                "Tenant": self.tenant,
                "time": record_time(when),
                "resourceId": self.resource_id + "/",
                "category": CATEGORY,
                "operationName": operation,
                "operationVersion": OPERATION_VERSION,
                "properties": properties,
            }
        )

    def blob_name(self, hour: datetime) -> str:
        """The hour's blob (in CONTAINER) of records whose time falls in it."""
        utc = hour.astimezone(UTC)
        return (
            f"resourceId={self.resource_id}/y={utc.year:04d}/m={utc.month:02d}/d={utc.day:02d}"
            f"/h={utc.hour:02d}/m=00/PT1H.json"
        )


def record_time(when: datetime) -> str:
    """Azure Monitor's record time: UTC with seven fractional digits (the wire form has six)."""
    return iso(when)[:-1] + "0Z"
