"""Compute node request bodies -> normalized documents (contract wire shape, camelCase)."""

from __future__ import annotations

from typing import Any

from .schema import validate


def _optional(definition: str, body: Any) -> dict[str, Any]:
    # These operations take an optional body: no body is the same as an empty one.
    return {} if body is None else validate(definition, body)


def parse_node_reboot(body: Any = None) -> dict[str, Any]:
    """POST .../nodes/{id}/reboot (optional BatchNodeRebootOptions); nodeRebootOption defaults to requeue."""
    options = _optional("BatchNodeRebootOptions", body)
    options.setdefault("nodeRebootOption", "requeue")
    return options


def parse_node_reimage(body: Any = None) -> dict[str, Any]:
    """POST .../nodes/{id}/reimage (optional BatchNodeReimageOptions); nodeReimageOption default requeue."""
    options = _optional("BatchNodeReimageOptions", body)
    options.setdefault("nodeReimageOption", "requeue")
    return options


def parse_node_disable_scheduling(body: Any = None) -> dict[str, Any]:
    """POST .../nodes/{id}/disablescheduling (optional); nodeDisableSchedulingOption defaults to requeue."""
    options = _optional("BatchNodeDisableSchedulingOptions", body)
    options.setdefault("nodeDisableSchedulingOption", "requeue")
    return options


def parse_node_deallocate(body: Any = None) -> dict[str, Any]:
    """POST .../nodes/{id}/deallocate (optional BatchNodeDeallocateOptions); defaults to requeue."""
    options = _optional("BatchNodeDeallocateOptions", body)
    options.setdefault("nodeDeallocateOption", "requeue")
    return options


def parse_node_user_create(body: Any) -> dict[str, Any]:
    """POST .../nodes/{id}/users (BatchNodeUserCreateOptions); isAdmin defaults to false.

    expiryTime is left absent when not given: its default (now + 1 day) is the caller's clock.
    """
    user = validate("BatchNodeUserCreateOptions", body)
    user.setdefault("isAdmin", False)
    return user


def parse_node_user_replace(body: Any) -> dict[str, Any]:
    """PUT .../nodes/{id}/users/{name} (BatchNodeUserUpdateOptions): omitted password/key are removed."""
    return validate("BatchNodeUserUpdateOptions", body)


def parse_upload_batch_service_logs(body: Any) -> dict[str, Any]:
    """POST .../nodes/{id}/uploadbatchservicelogs (UploadBatchServiceLogsOptions)."""
    return validate("UploadBatchServiceLogsOptions", body)
