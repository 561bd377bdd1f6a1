"""Every route of the management plane, for app.py."""

from __future__ import annotations

from starlette.routing import Route

from batchyard.service.management import accounts, diagnostic_settings, subscription
from batchyard.service.management.routing import routes as management_routes

routes: list[Route] = management_routes(
    [*accounts.OPERATIONS, *diagnostic_settings.OPERATIONS, *subscription.OPERATIONS]
)
