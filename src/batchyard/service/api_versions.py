"""The `api-version` query values the service accepts.

Every Batch data-plane version sent by default by the official Python SDKs azure-batch 12.0.0 .. 15.1.0
(read from each release's `api_version` default), plus the version of the REST contract we implement:

    2022-01-01.15.0   azure-batch 12.0.0
    2022-10-01.16.0   azure-batch 13.0.0
    2023-05-01.17.0   azure-batch 14.0.0
    2023-11-01.18.0   azure-batch 14.1.0
    2024-02-01.19.0   azure-batch 14.2.0, 15.0.0b1
    2024-07-01.20.0   azure-batch 15.0.0b2, 15.0.0b3, 15.1.0b1
    2025-06-01        azure-batch 15.1.0b2, 15.1.0b3, 15.1.0
    2025-06-01.21.0   the REST contract (BatchService-2025-06-01.21.0.json, info.version)

Errors: a missing value is 400 MissingRequiredQueryParameter; a malformed or unknown one is
400 InvalidQueryParameterValue with QueryParameterName/QueryParameterValue/Reason values. Sources:
the "Batch Status and Error Codes" REST reference (learn.microsoft.com/rest/api/batchservice/
batch-status-and-error-codes) lists both codes and shows the values entries; "Batch Service REST API
Versioning" (learn.microsoft.com/rest/api/batchservice/batch-service-rest-api-versioning) says an error is
returned when the version is missing or incorrect; a real response to an unsupported version is quoted in
github.com/Azure/azure-sdk-for-python/issues/19224 (code InvalidQueryParameterValue, "Value for one of the
query parameters specified in the request URI is invalid."), and one to a missing version in
github.com/Azure/azure-sdk-for-js/issues/22398 (code MissingRequiredQueryParameter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from batchyard.service.errors import invalid_query, missing_query

API_VERSION_PARAMETER = "api-version"

SUPPORTED_API_VERSIONS: tuple[str, ...] = (
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
    "2025-06-01.21.0",
)
LATEST_API_VERSION = "2025-06-01.21.0"

_SUPPORTED = frozenset(SUPPORTED_API_VERSIONS)
# Group.Major.Minor with Group "YYYY-MM-DD" (the versioning page), or a bare date as azure-batch 15.1 sends.
_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}(?:\.\d+\.\d+)?")


def check_api_version(query: Mapping[str, str]) -> str:
    """Return the request's `api-version`, or raise `BatchError` 400 if it is missing, malformed or unknown.

    An empty value counts as missing (the SDK signers drop blank query values too).
    """
    value = query.get(API_VERSION_PARAMETER)
    if not value:
        raise missing_query(API_VERSION_PARAMETER)
    if value in _SUPPORTED:
        return value
    if _FORMAT.fullmatch(value) is None:
        reason = "The api-version must have the form YYYY-MM-DD or YYYY-MM-DD.Major.Minor."
    else:
        reason = f"The api-version is not supported; supported versions are {', '.join(SUPPORTED_API_VERSIONS)}."
    raise invalid_query(API_VERSION_PARAMETER, value, reason)


__all__ = ["API_VERSION_PARAMETER", "LATEST_API_VERSION", "SUPPORTED_API_VERSIONS", "check_api_version"]
