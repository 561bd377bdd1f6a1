"""A job's `executionInfo.schedulingError` (BatchJobSchedulingError), and why an auto pool cannot be made.

"If auto Pool creation fails, the Batch service moves the Job to a completed state, and the Pool creation
error is set in the Job's scheduling error property" (BatchPoolInfo.autoPoolSpecification). The codes are
the documented job scheduling error codes (JobSchedulingErrorCodes): the account's quota reached, an
invalid autoscale formula and certificate references that cannot be satisfied.
"""

from __future__ import annotations

from typing import Any

from batchyard.service import errors
from batchyard.service.engine.pools import PoolOps

MAX_DETAILS = 10  # the nodes, tasks or values named in an error's details


def scheduling_error(code: str, message: str, details: list[tuple[str, str]]) -> dict[str, Any]:
    """A BatchJobSchedulingError (wire shape); every cause here is the user's to fix."""
    return {
        "category": "usererror",
        "code": code,
        "message": message,
        "details": [{"name": name, "value": value} for name, value in details[:MAX_DETAILS]],
    }


def auto_pool_error(pool_ops: PoolOps, account: str | None, auto: dict[str, Any]) -> dict[str, Any] | None:
    """The BatchJobSchedulingError that keeps this auto pool specification of `account` from becoming a pool,
    or None."""
    pool = auto.get("pool") or {}
    try:
        pool_ops.check_pool_quota(account)
    except errors.BatchError as refused:
        return _from(refused, "AutoPoolCreationFailedWithQuotaReached", "The Batch service could not create an "
                     "auto pool to run the job on, because the account has reached its quota of pools.")  # fmt: skip
    try:
        if pool.get("enableAutoScale"):
            pool_ops.formulas.check(pool["autoScaleFormula"])
    except errors.BatchError as refused:
        return _from(refused, "InvalidAutoScaleFormulaInAutoPool", "The auto pool specification for the job "
                     "has an invalid automatic scaling formula.")  # fmt: skip
    try:
        pool_ops.certificate_ops.check_certificate_references(pool.get("certificateReferences"), account)
    except errors.BatchError as refused:
        return _from(refused, "InvalidCertificatesInAutoPool", "The auto pool specification for the job has "
                     "an invalid certificate reference.")  # fmt: skip
    return None


def _from(refused: errors.BatchError, code: str, message: str) -> dict[str, Any]:
    # The refusal's own values (the formula's error, the certificate's thumbprint) are the details.
    return scheduling_error(code, message, [(key, value) for key, value in refused.values.items()])
