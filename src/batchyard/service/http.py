"""HTTP plumbing shared by every API route: the endpoint wrapper, bodies, conditions, wire output."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchyard.service import errors
from batchyard.service.api_versions import check_api_version
from batchyard.service.auth import HEADERS_TO_SIGN
from batchyard.service.clock import parse_iso, rfc1123
from batchyard.service.errors import BatchError
from batchyard.service.redaction import without_secrets
from batchyard.service.request_auth import authenticate

log = logging.getLogger("batchyard.http")

JSON_TYPE = "application/json;odata=minimalmetadata"
MAX_BODY = 4 * 1024 * 1024  # bigger than any documented request (add-collection is capped lower)

# Headers that the Shared Key signature covers or that a handler reads: each may come once, so that what a
# handler acts on is exactly what was signed. (HTTP lets a client repeat any header; the API takes one of each.)
SINGLE_VALUED_HEADERS = frozenset(
    {
        *HEADERS_TO_SIGN,
        "authorization",
        "client-request-id",
        "return-client-request-id",
        "ocp-date",
    }
)

Handler = Callable[[Request], Awaitable[Response]]


def endpoint(handler: Handler) -> Handler:
    """Version check, authentication (service/request_auth.py), Batch errors, and the standard response headers."""

    @functools.wraps(handler)  # its name is the operation's (metrics)
    async def wrapped(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            refuse_repeated_names(request)
            check_api_version(request.query_params)
            authenticate(request, request.scope.get("raw_path", b"").decode("latin-1") or request.url.path)
            if "content-md5" in request.headers:
                await check_content_md5(request)
            response = await handler(request)
        except BatchError as error:
            response = error_response(error, base_url(request))
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            response = error_response(
                BatchError(
                    500, "InternalServerError", "The server encountered an internal error. Please retry the request."
                ),
                base_url(request),
            )
        response.headers["request-id"] = request_id
        client_id = request.headers.get("client-request-id")
        if client_id and request.headers.get("return-client-request-id", "").lower() == "true":
            response.headers["client-request-id"] = client_id
        return response

    return wrapped


def base_url(request: Request) -> str:
    """The service's URL as this request reached it: the HTTPS one for a request over HTTPS, so that links
    (`odata.nextLink`) keep a client on HTTPS, where bearer tokens may go."""
    settings = request.app.state.settings
    account_path: str = request.scope.get("root_path", "")  # an account's endpoint (service/account_paths.py)
    if request.url.scheme == "https" and settings.https_url:
        return str(settings.https_url) + account_path
    return str(settings.base_url) + account_path


def route_path(request: Request) -> str:
    """The request's path after an account endpoint's path (the ASGI root_path, service/account_paths.py)."""
    return request.url.path.removeprefix(request.scope.get("root_path", ""))


def error_response(error: BatchError, base: str) -> Response:
    if error.status == 304:
        return Response(status_code=304, headers=error.headers)
    return Response(
        orjson.dumps(error.body(base)), status_code=error.status, media_type=JSON_TYPE, headers=error.headers
    )


def refuse_repeated_names(request: Request) -> None:
    """400 for a query parameter, or a signed or handler-read header, given more than once.

    The signature covers one value of each; were a second one allowed, a handler could act on a value that
    nobody signed (`&recursive=true` appended to a signed `recursive=false`, an unsigned `If-Match: *`).
    """
    seen: set[str] = set()
    for name, value in parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if name in seen:
            raise errors.invalid_query(name, value, "The query parameter is given more than once.")
        seen.add(name)
    seen.clear()
    for raw_name, raw_value in request.headers.raw:
        name = raw_name.decode("latin-1").lower()
        if name in SINGLE_VALUED_HEADERS or name.startswith("ocp-"):
            if name in seen:
                raise errors.invalid_header(name, raw_value.decode("latin-1"), "The header is given more than once.")
            seen.add(name)


async def check_content_md5(request: Request) -> None:
    """A sent Content-MD5 must be the MD5 of the body as received (400 Md5Mismatch otherwise)."""
    sent = request.headers["content-md5"]
    try:
        expected = base64.b64decode(sent, validate=True)
    except ValueError:
        raise errors.invalid_header("Content-MD5", sent, "The value is not a base64-encoded MD5 digest.") from None
    if len(expected) != 16:
        raise errors.invalid_header("Content-MD5", sent, "The value is not a base64-encoded MD5 digest.")
    actual = hashlib.md5(await read_body(request), usedforsecurity=False).digest()
    if not hmac.compare_digest(actual, expected):
        raise errors.md5_mismatch(sent, base64.b64encode(actual).decode("ascii"))


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refused with 413 before it is read when its Content-Length is over `limit`, and
    as soon as a chunked body grows past it. Read once per request; later calls return the same bytes."""
    cached: bytes | None = getattr(request.state, "body", None)
    if cached is None:
        declared = request.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise errors.request_too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.request_too_large()
            chunks.append(chunk)
        cached = b"".join(chunks)
        request.state.body = cached
    if len(cached) > limit:
        raise errors.request_too_large()
    return cached


async def read_json(request: Request, *, optional: bool = False, limit: int = MAX_BODY) -> Any:
    raw = await read_body(request, limit)
    if not raw.strip():
        if optional:
            return {}
        raise errors.invalid_body("The request body is empty.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid_body(f"The request body is not valid JSON: {exc}") from None


# --- responses -----------------------------------------------------------------------------------


def entity_headers(doc: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if "eTag" in doc:
        headers["ETag"] = doc["eTag"]
    if "lastModified" in doc:
        headers["Last-Modified"] = rfc1123(parse_iso(doc["lastModified"]))
    return headers


def created(url: str, doc: dict[str, Any]) -> Response:
    headers = {"DataServiceId": url, "Location": url, **entity_headers(doc)}
    return Response(status_code=201, headers=headers)


def accepted(status: int = 202, doc: dict[str, Any] | None = None, url: str | None = None) -> Response:
    headers = entity_headers(doc) if doc else {}
    if url:
        headers["DataServiceId"] = url
    return Response(status_code=status, headers=headers)


def json_response(body: dict[str, Any], headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def present(doc: dict[str, Any], url: str, select: set[str] | None = None) -> dict[str, Any]:
    """The wire form of a stored document: secrets left out (redaction.py), `url` added, `$select` applied."""
    out = dict(without_secrets(doc))
    out["url"] = url
    if select is not None:
        out = {k: v for k, v in out.items() if k in select}
    return out


def parse_select(request: Request) -> set[str] | None:
    raw = request.query_params.get("$select")
    if raw is None:
        return None
    fields = {part.strip() for part in raw.split(",") if part.strip()}
    if not fields:
        raise errors.invalid_query("$select", raw, "No property names were given.")
    return fields


def parse_max_results(request: Request, default: int = 1000, limit: int = 1000) -> int:
    raw = request.query_params.get("maxresults")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_query("maxresults", raw) from None
    if not 1 <= value <= limit:
        raise errors.invalid_query("maxresults", raw, f"The value must be between 1 and {limit}.")
    return value


def list_response(request: Request, kind: str, items: Iterable[dict[str, Any]], next_token: str | None) -> Response:
    body: dict[str, Any] = {"odata.metadata": f"{base_url(request)}/$metadata#{kind}", "value": list(items)}
    if next_token is not None:
        params = dict(request.query_params)
        params["$skiptoken"] = next_token
        from urllib.parse import urlencode

        # base_url has an account endpoint's path (the ASGI root_path); the route's path is what follows it
        body["odata.nextLink"] = f"{base_url(request)}{route_path(request)}?{urlencode(params)}"
    return json_response(body)


# --- conditional requests -------------------------------------------------------------------------


def check_conditions(request: Request, doc: dict[str, Any], *, reading: bool) -> None:
    """If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since against an entity (or a node's
    file). An ETag condition decides alone (RFC 9110 13.2.2, and Azure's storage rules): a date, to the
    second, cannot tell apart two changes within one second, so If-Unmodified-Since is not looked at when
    If-Match is there, nor If-Modified-Since when If-None-Match is."""
    etag = doc.get("eTag", "")
    modified = parse_iso(doc["lastModified"]) if "lastModified" in doc else None
    headers = request.headers
    if_match, if_none_match = headers.get("if-match"), headers.get("if-none-match")
    if if_match is not None and not _etag_matches(if_match, etag):
        raise errors.condition_not_met()
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        raise errors.not_modified() if reading else errors.condition_not_met()
    if modified is not None:
        if if_match is None and (value := headers.get("if-unmodified-since")) is not None:
            if _truncate(modified) > _http_date("If-Unmodified-Since", value):
                raise errors.condition_not_met()
        if if_none_match is None and (value := headers.get("if-modified-since")) is not None:
            if _truncate(modified) <= _http_date("If-Modified-Since", value):
                raise errors.not_modified() if reading else errors.condition_not_met()


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or etag in candidates or f'"{etag}"' in candidates


def _http_date(name: str, value: str) -> datetime:
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise errors.invalid_header(name, value) from None


def _truncate(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)
