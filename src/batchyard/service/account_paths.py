"""Which account a data-plane request is for: the path prefix `/accounts/{name}` of an account's endpoint.

An account made through the management plane has the `accountEndpoint` `host:port/accounts/{name}`
(engine/account_keys.account_path); clients put `https://` in front and append the API's paths, so its
requests arrive as `/accounts/{name}/pools/...`. The prefix becomes the ASGI `root_path` (Starlette routes
on what follows it, and the links the service writes keep it) and the account is put in the scope; the
raw path, which the Shared Key signature covers, stays as sent. A request without the prefix, or naming
the service's own account, is for the service's own account.

Only the data plane's paths are served below an account's prefix, with the service's own routes about the
account's pools and jobs (`/_batchyard/pools/...`: join tokens, autoscale debugging, preemption;
`/_batchyard/jobs/...`: task history). The rest of the service's routes (principals, the event stream, the
test clock), the management plane, the identity provider and the agents' endpoints are the service's, and
answer 404 there: an account's key must not reach them.
"""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from batchyard.service.engine.account_keys import SERVICE_ACCOUNT

ACCOUNT_SCOPE = "batchyard.account"
# An Azure Batch account name: 3 to 24 lower-case letters and digits.
ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_PREFIX = re.compile(r"/accounts/([^/]+)(?=/|$)")
# The first segments of the data plane's paths (service/api/): what an account's endpoint serves.
DATA_PLANE_ROOTS = frozenset(
    {
        "pools",
        "jobs",
        "jobschedules",
        "certificates",
        "applications",
        "supportedimages",
        "poolusagemetrics",
        "nodecounts",
        "management",  # the Shared Key applications API of batchyard's own (api/applications.py)
        "_batchyard/pools",  # the service's own routes about the account's pools and jobs (api/admin.py)
        "_batchyard/jobs",
    }
)


class AccountPaths:
    """ASGI middleware: the account of a request from its path (module doc)."""

    def __init__(self, app: ASGIApp, service_account: str) -> None:
        self.app = app
        self.service_account = service_account.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PREFIX.match(scope["path"]) if scope["type"] in ("http", "websocket") else None
        if match is not None and _served_below_accounts(scope["path"][match.end() :]):
            name = match.group(1).lower()
            scope = dict(scope)
            scope["root_path"] = scope.get("root_path", "") + match.group(0)
            scope[ACCOUNT_SCOPE] = None if name == self.service_account else name
        await self.app(scope, receive, send)


def _served_below_accounts(path: str) -> bool:
    """Whether an account's endpoint serves this path (what follows its prefix): its first segment, or its
    first two, is one of DATA_PLANE_ROOTS."""
    segments = path.lstrip("/").split("/", 2)
    return segments[0] in DATA_PLANE_ROOTS or "/".join(segments[:2]) in DATA_PLANE_ROOTS


def account_of_request(connection: HTTPConnection) -> str | None:
    """The account a request is for (None: the service's own)."""
    account: str | None = connection.scope.get(ACCOUNT_SCOPE, SERVICE_ACCOUNT)
    return account
