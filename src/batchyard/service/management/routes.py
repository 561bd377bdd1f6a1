"""Every route of the management plane, for app.py."""

from __future__ import annotations

from starlette.routing import Route

from batchyard.service.management import (
    accounts,
    applications,
    certificates,
    cloud_metadata,
    diagnostic_settings,
    pools,
    subscription,
)
from batchyard.service.management.routing import routes as management_routes

routes: list[Route] = management_routes(
    [
        *accounts.OPERATIONS,
        *applications.OPERATIONS,
        *certificates.OPERATIONS,
        *diagnostic_settings.OPERATIONS,
        *pools.OPERATIONS,
        *subscription.OPERATIONS,
    ]
)
routes += cloud_metadata.routes  # unauthenticated, outside ARM's paths
