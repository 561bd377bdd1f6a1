"""Every route of the management plane, for app.py."""

from __future__ import annotations

from starlette.routing import Route

from batchyard.service.management import accounts, cloud_metadata, subscription
from batchyard.service.management.routing import routes as management_routes

routes: list[Route] = management_routes([*accounts.OPERATIONS, *subscription.OPERATIONS])
routes += cloud_metadata.routes  # unauthenticated, outside ARM's paths
