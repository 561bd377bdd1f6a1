"""Job-scoped authentication tokens: what a task with `authenticationTokenSettings` gets instead of a key.

A token names one job, that job's instance (its internal sequence number: a job deleted and created
again with the same id is another instance) and an expiry, and is signed with the service's secret.
The bearer may call the job's own operations (`/jobs/{jobId}` and below: read the job, add and list its
tasks, ...) while that instance exists, nothing else: never another job, a pool or the account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import orjson

from batchyard.service import errors

TOKEN_LIFETIME = 7 * 24 * 3600.0  # a task may run for days; the token dies with the job or this limit


def issue_job_token(secret: bytes, job_id: str, instance: int, lifetime: float = TOKEN_LIFETIME) -> str:
    claims = {"job": job_id, "seq": instance, "exp": time.time() + lifetime}
    encoded = base64.urlsafe_b64encode(orjson.dumps(claims)).decode()
    return f"{encoded}.{_sign(secret, encoded)}"


def verify_job_token(secret: bytes, token: str, raw_path: str, instance_of: Callable[[str], int | None]) -> str:
    """The job the token grants, if it is genuine, unexpired, its job still the instance it was given for
    (`instance_of(job_id)`: the current one, None when there is none) and the path is that job's; else 403."""
    claims, _, signature = token.partition(".")
    if not signature or not hmac.compare_digest(_sign(secret, claims), signature):
        raise errors.auth_failed("The authentication token is not valid.")
    try:
        data = orjson.loads(base64.urlsafe_b64decode(claims.encode()))
        job_id, instance, expiry = str(data["job"]), int(data["seq"]), float(data["exp"])
    except (ValueError, KeyError, TypeError):
        raise errors.auth_failed("The authentication token is not valid.") from None
    if expiry < time.time():
        raise errors.auth_failed("The authentication token has expired.")
    if instance_of(job_id) != instance:
        raise errors.auth_failed("The job the authentication token was issued for no longer exists.")
    parts = raw_path.split("/")
    if len(parts) < 3 or parts[1] != "jobs" or parts[2].lower() != job_id.lower():
        raise errors.BatchError(
            403,
            "AuthorizationFailure",
            f"This request is not authorized to perform this operation: the token grants access to job {job_id} only.",
        )
    return job_id


def _sign(secret: bytes, claims: str) -> str:
    return hmac.new(secret, b"job-token:" + claims.encode(), hashlib.sha256).hexdigest()
