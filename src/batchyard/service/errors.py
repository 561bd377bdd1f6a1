"""Batch errors: the documented `BatchError` wire shape and the codes the service uses.

Every client mistake is raised as a `BatchError` and rendered as
`{"odata.metadata": ..., "code": ..., "message": {"lang": "en-US", "value": ...}, "values": [...]}`.
"""

from __future__ import annotations

from typing import Any


class BatchError(Exception):
    """An error that is answered to the client with the Batch error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        values: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.values = values or {}
        self.headers = headers or {}

    def body(self, base_url: str = "") -> dict[str, Any]:
        doc: dict[str, Any] = {
            "odata.metadata": f"{base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
            "code": self.code,
            "message": {"lang": "en-US", "value": self.message},
        }
        if self.values:
            doc["values"] = [{"key": k, "value": v} for k, v in self.values.items()]
        return doc


# --- Request shape -------------------------------------------------------------------------------


def missing_property(name: str) -> BatchError:
    return BatchError(
        400,
        "MissingRequiredProperty",
        "A required property was not specified in the request body.",
        {"PropertyName": name},
    )


def invalid_property(name: str, value: Any, reason: str | None = None) -> BatchError:
    values = {"PropertyName": name, "PropertyValue": "" if value is None else str(value)}
    if reason:
        values["Reason"] = reason
    return BatchError(
        400,
        "InvalidPropertyValue",
        "The value provided for one of the properties in the request body is invalid.",
        values,
    )


def invalid_body(reason: str) -> BatchError:
    return BatchError(
        400, "InvalidRequestBody", "The specified Request Body is not syntactically valid.", {"Reason": reason}
    )


def invalid_query(name: str, value: str, reason: str | None = None) -> BatchError:
    values = {"QueryParameterName": name, "QueryParameterValue": value}
    if reason:
        values["Reason"] = reason
    return BatchError(
        400,
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
        values,
    )


def missing_query(name: str) -> BatchError:
    return BatchError(
        400,
        "MissingRequiredQueryParameter",
        "A query parameter that's mandatory for this request is not specified.",
        {"QueryParameterName": name},
    )


def invalid_header(name: str, value: str, reason: str | None = None) -> BatchError:
    values = {"HeaderName": name, "HeaderValue": value}
    if reason:
        values["Reason"] = reason
    return BatchError(
        400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.", values
    )


# --- Resources -----------------------------------------------------------------------------------


def not_found(code: str, message: str) -> BatchError:
    return BatchError(404, code, message)


def conflict(code: str, message: str) -> BatchError:
    return BatchError(409, code, message)


def condition_not_met() -> BatchError:
    return BatchError(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")


def not_modified() -> BatchError:
    return BatchError(304, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")


def operation_invalid(message: str) -> BatchError:
    return BatchError(409, "OperationInvalidForCurrentState", message)


def request_too_large() -> BatchError:
    return BatchError(
        413, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum permissible limit."
    )


def md5_mismatch(sent: str, computed: str) -> BatchError:
    return BatchError(
        400,
        "Md5Mismatch",
        "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
        {"UserSpecifiedMd5": sent, "ServerCalculatedMd5": computed},
    )


def auth_failed(detail: str) -> BatchError:
    return BatchError(
        403,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed "
        "correctly including the signature.",
        {"AuthenticationErrorDetail": detail},
    )
