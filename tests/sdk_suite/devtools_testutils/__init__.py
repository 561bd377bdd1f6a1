"""A stand-in for the Azure SDK repository's `devtools_testutils`, enough to run azure-batch's own live
tests (tests/test_batch.py of its source distribution) unmodified against batchyard.

Live mode only: there is no test proxy and nothing is recorded, so the recording decorators call the test
as they do live, sanitizers and matchers (recording settings) do nothing, and the preparers that create
Azure resources create batchyard ones instead (preparers.py, management.py)."""

from __future__ import annotations

from .helpers import is_live, is_live_and_not_recording, trim_kwargs_from_test_function
from .preparers import (
    AzureMgmtPreparer,
    AzureTestError,
    CachedResourceGroupPreparer,
    EnvironmentVariableLoader,
    FakeResource,
    ResourceGroupPreparer,
    StorageAccountPreparer,
)
from .proxy_testcase import recorded_by_proxy, test_proxy
from .testcase import AzureMgmtRecordedTestCase, AzureRecordedTestCase


def set_custom_default_matcher(**kwargs: object) -> None:
    """A recording matcher: no recordings here."""


def remove_batch_sanitizers(ids: list[str]) -> None:
    """Recording sanitizers: no recordings here."""


def add_general_regex_sanitizer(**kwargs: object) -> None:
    """Recording sanitizers: no recordings here."""


__all__ = [
    "AzureMgmtPreparer",
    "AzureMgmtRecordedTestCase",
    "AzureRecordedTestCase",
    "AzureTestError",
    "CachedResourceGroupPreparer",
    "EnvironmentVariableLoader",
    "FakeResource",
    "ResourceGroupPreparer",
    "StorageAccountPreparer",
    "add_general_regex_sanitizer",
    "is_live",
    "is_live_and_not_recording",
    "recorded_by_proxy",
    "remove_batch_sanitizers",
    "set_custom_default_matcher",
    "test_proxy",
    "trim_kwargs_from_test_function",
]
