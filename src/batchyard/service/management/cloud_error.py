"""ARM's error shape (`CloudError`): `{"error": {"code", "message"}}`, as azure-mgmt-core reads it."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from batchyard.service.errors import BatchError

# A delete of the service's own account (the command line's; README, Management plane).
SERVICE_ACCOUNT_CODE = "ServiceAccountCannotBeDeleted"


class CloudError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message}}
        return Response(orjson.dumps(body), self.status, self.headers, media_type="application/json; charset=utf-8")


def invalid_body(message: str) -> CloudError:
    return CloudError(400, "InvalidRequestBody", message)


def cloud_error_of(error: BatchError) -> CloudError:
    """A Batch error as ARM answers it: same status and code, the details in the message."""
    details = "; ".join(f"{key}: {value}" for key, value in error.values.items())
    message = f"{error.message} ({details})" if details else error.message
    return CloudError(error.status, error.code, message, error.headers)
