"""Resource Manager's cloud metadata (`GET /metadata/endpoints`): where a cloud's sign-in, management and
Batch endpoints are, read by tools that register a cloud from its Resource Manager URL alone
(`az cloud register --endpoint-resource-manager URL`, Terraform's `metadata_host`).

The service is the cloud: it signs in (identity/), manages (this package) and runs Batch at its HTTPS URL;
the token audiences are Azure's, which the service's tokens carry (identity/tokens.py). Unauthenticated, as
on Azure: the answer is what a client needs before it can get a token.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.config import Settings
from batchyard.service.identity.tokens import BATCH_RESOURCE
from batchyard.service.management.api_version import check_resources_version
from batchyard.service.management.cloud_error import CloudError

CLOUD_NAME = "batchyard"
# Resource Manager's audiences, the first the one azure-cli asks tokens for (as Azure's metadata lists them)
MANAGEMENT_AUDIENCES = ("https://management.core.windows.net/", "https://management.azure.com/")
# From this api-version on the answer is the one cloud; before it, a list of clouds.
SINGLE_CLOUD_VERSION = "2022-09-01"


def cloud(https_url: str) -> dict[str, Any]:
    """This service as a cloud, in Resource Manager's metadata shape."""
    return {
        "name": CLOUD_NAME,
        "resourceManager": https_url + "/",
        "authentication": {
            "loginEndpoint": https_url,
            "audiences": list(MANAGEMENT_AUDIENCES),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "batch": BATCH_RESOURCE + "/",
        "suffixes": {},
    }


async def endpoints(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    version = request.query_params.get("api-version")
    try:
        check_resources_version(version)
        if settings.https_url is None:
            raise CloudError(404, "NotFound", "This service was started without HTTPS (--no-https): it is no cloud.")
    except CloudError as error:
        return error.response()
    described = cloud(settings.https_url)
    single = version is not None and version >= SINGLE_CLOUD_VERSION
    return Response(orjson.dumps(described if single else [described]), media_type="application/json; charset=utf-8")


routes = [Route("/metadata/endpoints", endpoints, methods=["GET"])]
