"""ARM's `api-version` check: every management request names one, and the resource provider must serve it."""

from __future__ import annotations

import re

from batchyard.service.management.cloud_error import CloudError

# Microsoft.Batch versions whose account, key, location and operation calls are the 2024-07-01 contract's
# (azure-mgmt-batch 17.3 speaks 2024-02-01 (azure-cli 2.91's `az batch account`), 18 speaks 2024-07-01,
# 19 speaks 2025-06-01; the account's fields served are the same in all three).
BATCH_API_VERSIONS = ("2024-02-01", "2024-07-01", "2025-06-01")
# Microsoft.Insights diagnostic settings: the version azure-mgmt-monitor and `az monitor diagnostic-settings`
# send, and the older one whose settings have no category groups (the same body otherwise).
INSIGHTS_API_VERSIONS = ("2017-05-01-preview", "2021-05-01-preview")
_DATE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


def check_batch_version(version: str | None) -> None:
    _check_listed(version, BATCH_API_VERSIONS)


def check_insights_version(version: str | None) -> None:
    _check_listed(version, INSIGHTS_API_VERSIONS)


def _check_listed(version: str | None, supported: tuple[str, ...]) -> None:
    if not version:
        raise missing()
    if version not in supported:
        raise CloudError(
            400,
            "InvalidResourceTypeApiVersion",
            f"The api-version '{version}' is invalid. The supported versions are '{', '.join(supported)}'.",
        )


def check_resources_version(version: str | None) -> None:
    """Microsoft.Resources (resource groups): any version of the date form; their shape has not changed."""
    if not version:
        raise missing()
    if not _DATE_VERSION.match(version):
        raise CloudError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. It must be a date (YYYY-MM-DD).",
        )


def missing() -> CloudError:
    return CloudError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )
