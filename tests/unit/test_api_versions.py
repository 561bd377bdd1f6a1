"""The accepted api-version values and the errors for missing, malformed and unknown ones."""

from __future__ import annotations

import pytest
from azure.batch._configuration import BatchClientConfiguration
from azure.core.credentials import AzureNamedKeyCredential

from batchyard.service.api_versions import (
    LATEST_API_VERSION,
    SUPPORTED_API_VERSIONS,
    check_api_version,
)
from batchyard.service.errors import BatchError


@pytest.mark.parametrize("version", SUPPORTED_API_VERSIONS)
def test_supported_versions_are_accepted(version: str) -> None:
    assert check_api_version({"api-version": version, "timeout": "30"}) == version


def test_the_versions_the_sdks_send_are_supported() -> None:
    for version in (
        "2022-01-01.15.0",  # azure-batch 12.0.0
        "2022-10-01.16.0",  # 13.0.0
        "2023-05-01.17.0",  # 14.0.0
        "2023-11-01.18.0",  # 14.1.0
        "2024-02-01.19.0",  # 14.2.0, 15.0.0b1
        "2024-07-01.20.0",  # 15.0.0b2 .. 15.1.0b1
        "2025-06-01",  # 15.1.0b2 .. 15.1.0
        "2025-06-01.21.0",  # the REST contract
    ):
        assert version in SUPPORTED_API_VERSIONS
    assert LATEST_API_VERSION in SUPPORTED_API_VERSIONS


def test_installed_sdk_default_is_supported() -> None:
    config = BatchClientConfiguration("https://a.b", AzureNamedKeyCredential("a", "a2V5"))
    assert check_api_version({"api-version": config.api_version}) == config.api_version


@pytest.mark.parametrize("query", [{}, {"api-version": ""}, {"Api-Version": "2025-06-01"}])
def test_missing_version(query: dict[str, str]) -> None:
    with pytest.raises(BatchError) as info:
        check_api_version(query)
    err = info.value
    assert (err.status, err.code) == (400, "MissingRequiredQueryParameter")
    assert err.values == {"QueryParameterName": "api-version"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2021-06-01.14.0", "not supported"),  # real but older than azure-batch 12.0.0
        ("2030-01-01.99.0", "not supported"),
        ("2025-06-01.21", "form"),
        ("latest", "form"),
        ("2025-06-01 ", "form"),
    ],
)
def test_unknown_or_malformed_version(value: str, reason: str) -> None:
    with pytest.raises(BatchError) as info:
        check_api_version({"api-version": value})
    err = info.value
    assert (err.status, err.code) == (400, "InvalidQueryParameterValue")
    assert err.message == "Value for one of the query parameters specified in the request URI is invalid."
    assert err.values["QueryParameterName"] == "api-version"
    assert err.values["QueryParameterValue"] == value
    assert reason in err.values["Reason"]
    body = err.body()
    assert [v["key"] for v in body["values"]] == ["QueryParameterName", "QueryParameterValue", "Reason"]
