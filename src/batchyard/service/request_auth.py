"""Who may make a Batch request: the three ways Azure Batch authenticates one, as the account allows them.

- Shared Key (`Authorization: SharedKey account:signature`, service/auth.py);
- an Azure AD access token (`Bearer <JWT>`, identity/bearer.py), over HTTPS only;
- a job's task authentication token (`Bearer <token>`, service/tokens.py).

The account is the one the request's path is for (service/account_paths.py). Its keys and
`allowedAuthenticationModes` (`SharedKey`, `AAD`, `TaskAuthenticationToken`) are read for each request from
its current state (management/account_state.py: as made, or as the command line gave them, as the management
plane last changed them), so a regenerated key, or a deleted account's, is refused at once. A mode left out is refused
with 403 AuthenticationFailed. The service's own routes (`/_batchyard/...`) take the account key whatever
the modes: it is the service's administration credential, not a way into the account's data.

A request the dashboard's proxy forwards (service/dashboard/routes.py) carries DASHBOARD_SESSION in its
ASGI scope: its session was opened with the account key, so it has the key's authority. Only the
service sets scope keys; no header or URL of a client can.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.requests import Request

from batchyard.service import errors
from batchyard.service.account_paths import account_of_request
from batchyard.service.auth import verify_request
from batchyard.service.config import AAD, SHARED_KEY, TASK_TOKEN
from batchyard.service.errors import BatchError
from batchyard.service.identity.bearer import ADMIN_PREFIX, authorize_bearer, is_access_token
from batchyard.service.management.account_directory import AccountDirectory
from batchyard.service.tokens import verify_job_token

DASHBOARD_SESSION = "batchyard.dashboard_session"


def authenticate(request: Request, raw_path: str) -> None:
    """Return if the request is authentic and allowed; raise the BatchError to answer if not."""
    if request.scope.get(DASHBOARD_SESSION) is True:
        return
    state = request.app.state
    accounts: AccountDirectory = state.accounts
    current = accounts.get(account_of_request(request))
    if current is None or current.deleting:
        raise BatchError(404, "AccountNotFound", "The account this request's URL names does not exist on this service.")
    account = current.shared_key
    modes: Collection[str] = current.modes
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization[7:].strip()
        if is_access_token(token):
            _check_allowed(AAD, modes)
            authorize_bearer(state.identity, token, request.url.scheme, request.method, raw_path, account.name)
        else:
            _check_allowed(TASK_TOKEN, modes)
            service = state.service.for_account(account_of_request(request))
            verify_job_token(service.node_secret, token, raw_path, _job_instance(service))
        return
    if not raw_path.startswith(ADMIN_PREFIX):
        _check_allowed(SHARED_KEY, modes)
    verify_request(
        account,
        request.method,
        raw_path,
        request.scope.get("query_string", b"").decode("latin-1"),
        {k.lower(): v for k, v in request.headers.items()},
    )


def _check_allowed(mode: str, modes: Collection[str]) -> None:
    if mode not in modes:
        raise errors.auth_failed(
            f"This account does not allow {mode} authentication (allowedAuthenticationModes: {', '.join(modes)})."
        )


def _job_instance(service: Any) -> Callable[[str], int | None]:
    """The current instance (sequence number) of a job id, None when no such job exists."""

    def instance_of(job_id: str) -> int | None:
        try:
            return int(service.job(job_id).seq)
        except BatchError:
            return None

    return instance_of
