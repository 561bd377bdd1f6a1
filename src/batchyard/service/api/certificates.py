"""Certificate routes: add, list, get, delete, cancel deletion (the contract's /certificates operations)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import list_filter, odata_element, page, service_of, skip_token, url_for
from batchyard.service.http import (
    accepted,
    created,
    endpoint,
    json_response,
    list_response,
    parse_max_results,
    parse_select,
    present,
    read_json,
)
from batchyard.service.models.schema import validate

_ONE = "/certificates(thumbprintAlgorithm={thumbprintAlgorithm},thumbprint={thumbprint})"


def _url(request: Request, doc: dict[str, Any]) -> str:
    return url_for(
        request, f"/certificates(thumbprintAlgorithm={doc['thumbprintAlgorithm']},thumbprint={doc['thumbprint']})"
    )


# Properties of the add request only (`x-ms-mutability: ["create"]` in the contract): never in an answer.
_WRITE_ONLY = ("data", "password", "certificateFormat")


def _wire(request: Request, doc: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    body = present(doc, _url(request, doc), select)
    for name in _WRITE_ONLY:
        body.pop(name, None)
    return body


def _addressed(request: Request) -> tuple[str, str]:
    """(thumbprint algorithm, thumbprint) of the certificate the route names."""
    return request.path_params["thumbprintAlgorithm"], request.path_params["thumbprint"]


@endpoint
async def add_certificate(request: Request) -> Response:
    spec = validate("BatchCertificate", await read_json(request))
    doc = service_of(request).add_certificate(spec)
    return created(_url(request, doc), {})


@endpoint
async def list_certificates(request: Request) -> Response:
    keep = list_filter(request, "certificates")
    select = parse_select(request)
    docs = sorted(service_of(request).certificates(), key=lambda doc: doc["thumbprint"].lower())
    indexed = [(i, doc) for i, doc in enumerate(docs, start=1) if keep(doc)]
    chosen, token = page(indexed, lambda pair: pair[0], skip_token(request), parse_max_results(request))
    return list_response(request, "certificates", (_wire(request, doc, select) for _, doc in chosen), token)


@endpoint
async def get_certificate(request: Request) -> Response:
    doc = service_of(request).certificate(*_addressed(request))
    return json_response(odata_element(request, "certificates") | _wire(request, doc, parse_select(request)))


@endpoint
async def delete_certificate(request: Request) -> Response:
    service_of(request).delete_certificate(*_addressed(request))
    return accepted(202)


@endpoint
async def cancel_deletion(request: Request) -> Response:
    doc = service_of(request).cancel_certificate_deletion(*_addressed(request))
    return accepted(204, url=_url(request, doc))


routes = [
    Route("/certificates", add_certificate, methods=["POST"]),
    Route("/certificates", list_certificates, methods=["GET"]),
    Route(_ONE, get_certificate, methods=["GET"]),
    Route(_ONE, delete_certificate, methods=["DELETE"]),
    Route(f"{_ONE}/canceldelete", cancel_deletion, methods=["POST"]),
]
