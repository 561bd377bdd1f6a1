"""Certificates through ARM (Certificate_*): the data plane's account certificates, in ARM's shape.

ARM names a certificate `ALGORITHM-THUMBPRINT` (`sha1-0123…`); its format is `Pfx` or `Cer` and its state
a provisioning state (`Succeeded`, `Deleting`, `Failed` when a delete found it in use). A certificate added
here is the one the data plane lists and pools reference, and the reverse. Delete is a long-running
operation (202 + Location) that fails with the data plane's `deleteCertificateError` when the certificate is
still in use.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from batchyard.service.engine.facade import BatchService
from batchyard.service.errors import BatchError
from batchyard.service.management import resources
from batchyard.service.management.accounts import account_service, batch_account
from batchyard.service.management.cloud_error import CloudError, invalid_body
from batchyard.service.management.routing import (
    ACCOUNT,
    DELETE_STATUS_SUFFIX,
    Call,
    Operation,
    deleting,
    json_response,
    operation,
)
from batchyard.service.models.schema import validate

CERTIFICATE_TYPE = "Microsoft.Batch/batchAccounts/certificates"
CERTIFICATES = ACCOUNT + "/certificates"
CERTIFICATE = CERTIFICATES + r"/(?P<certificate>[^/]+)"
_PROVISIONING_STATES = {"active": "Succeeded", "deleting": "Deleting", "deletefailed": "Failed"}
_FORMATS = {"pfx": "Pfx", "cer": "Cer"}


def _named(call: Call) -> tuple[str, str]:
    """(algorithm, thumbprint) of the certificate the path names (`sha1-THUMBPRINT`)."""
    name = call.params["certificate"]
    algorithm, _, thumbprint = name.partition("-")
    if not thumbprint:
        raise CloudError(
            400, "InvalidCertificateName", f"A certificate's name is ALGORITHM-THUMBPRINT (sha1-...), not '{name}'."
        )
    return algorithm, thumbprint


def _service(call: Call, action: str) -> tuple[str, BatchService]:
    account = batch_account(call, f"certificates/{action}")
    return account.name, account_service(call, account)


def _certificate(account: str, doc: dict[str, Any]) -> dict[str, Any]:
    name = f"{doc['thumbprintAlgorithm']}-{doc['thumbprint']}"
    properties: dict[str, Any] = {
        "thumbprintAlgorithm": doc["thumbprintAlgorithm"],
        "thumbprint": doc["thumbprint"],
        "format": _FORMATS.get(doc.get("certificateFormat", "pfx"), "Pfx"),
        "provisioningState": _PROVISIONING_STATES.get(doc["state"], doc["state"]),
        "provisioningStateTransitionTime": doc["stateTransitionTime"],
        "publicData": doc["publicData"],
    }
    if doc.get("previousState"):
        properties["previousProvisioningState"] = _PROVISIONING_STATES.get(doc["previousState"], doc["previousState"])
        properties["previousProvisioningStateTransitionTime"] = doc["previousStateTransitionTime"]
    if doc.get("deleteCertificateError"):
        error = doc["deleteCertificateError"]
        properties["deleteCertificateError"] = {
            "code": error["code"],
            "message": error["message"],
            "details": [{"code": v["name"], "message": v["value"]} for v in error.get("values", [])],
        }
    return {
        "id": f"{resources.account_id(account)}/certificates/{name}",
        "name": name,
        "type": CERTIFICATE_TYPE,
        "properties": properties,
    }


async def list_certificates(call: Call) -> Response:
    account, service = _service(call, "read")
    docs = sorted(service.certificates(), key=lambda doc: doc["thumbprint"].lower())
    return json_response({"value": [_certificate(account, doc) for doc in docs]})


async def get_certificate(call: Call) -> Response:
    account, service = _service(call, "read")
    return json_response(_certificate(account, service.certificate(*_named(call))))


async def create_certificate(call: Call) -> Response:
    account, service = _service(call, "write")
    algorithm, thumbprint = _named(call)
    properties = (await call.body()).get("properties") or {}
    if not isinstance(properties, dict):
        raise invalid_body("'properties' must be an object.")
    for name, value in (("thumbprintAlgorithm", algorithm), ("thumbprint", thumbprint)):
        given = properties.get(name)
        if given is not None and str(given).lower() != value.lower():
            raise invalid_body(f"'properties.{name}' ({given}) differs from the certificate's name ('{value}').")
    unknown = sorted(set(properties) - {"thumbprintAlgorithm", "thumbprint", "format", "data", "password"})
    if unknown:
        raise invalid_body(f"A certificate has no property '{unknown[0]}' that this service can set.")
    spec: dict[str, Any] = {"thumbprintAlgorithm": algorithm, "thumbprint": thumbprint, "data": properties.get("data")}
    if properties.get("format") is not None:
        spec["certificateFormat"] = str(properties["format"]).lower()
    if properties.get("password") is not None:
        spec["password"] = properties["password"]
    doc = service.add_certificate(validate("BatchCertificate", spec))
    return json_response(_certificate(account, doc))


async def delete_certificate(call: Call) -> Response:
    _, service = _service(call, "delete")
    service.delete_certificate(*_named(call))
    return deleting(call)


async def delete_status(call: Call) -> Response:
    """The Location of a delete: 202 while deleting, 200 once gone, the delete's error if it failed."""
    _, service = _service(call, "read")
    try:
        doc = service.certificate(*_named(call))
    except BatchError as missing:
        if missing.status == 404:
            return Response(status_code=200)
        raise
    if doc["state"] == "deleting":
        return deleting(call)
    error = doc.get("deleteCertificateError") or {
        "code": "CertificateStateActive",
        "message": "Deletion was cancelled.",
    }
    raise CloudError(409, error["code"], error["message"])


async def cancel_deletion(call: Call) -> Response:
    account, service = _service(call, "cancelDelete/action")
    return json_response(_certificate(account, service.cancel_certificate_deletion(*_named(call))))


OPERATIONS: list[Operation] = [
    operation("GET", CERTIFICATES, list_certificates),
    operation("GET", CERTIFICATE, get_certificate),
    operation("PUT", CERTIFICATE, create_certificate),
    operation("DELETE", CERTIFICATE, delete_certificate),
    operation("GET", CERTIFICATE + DELETE_STATUS_SUFFIX, delete_status),
    operation("POST", CERTIFICATE + "/canceldelete", cancel_deletion),
]
