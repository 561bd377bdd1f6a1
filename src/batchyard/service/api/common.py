"""Small helpers the resource modules share: the service facade of a request, paging, `$filter`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request

from batchyard.service import errors
from batchyard.service.account_paths import account_of_request
from batchyard.service.engine.facade import BatchService
from batchyard.service.engine.operations.base import Check
from batchyard.service.http import base_url, check_conditions
from batchyard.service.odata import Filter, parse_filter, to_predicate

T = TypeVar("T")


def service_of(request: Request) -> BatchService:
    """The service's operations, acting for the account the request is for (service/account_paths.py)."""
    service: BatchService = request.app.state.service
    return service.for_account(account_of_request(request))


def conditions(request: Request, reading: bool = False) -> Check:
    """The request's If-Match / If-None-Match / If-(Un)Modified-Since, as a check of the current document."""
    return lambda doc: check_conditions(request, doc, reading=reading)


def skip_token(request: Request) -> int:
    raw = request.query_params.get("$skiptoken")
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise errors.invalid_query("$skiptoken", raw) from None


def page(items: Sequence[T], order: Callable[[T], int], after: int, size: int) -> tuple[list[T], str | None]:
    """Items after the `after` position, at most `size`, and the token for the next page."""
    chosen = [item for item in items if order(item) > after]
    if len(chosen) > size:
        return chosen[:size], str(order(chosen[size - 1]))
    return chosen, None


def list_filter(request: Request, kind: str) -> Callable[[dict[str, Any]], bool]:
    """The `$filter` of a list request as a predicate over wire-shaped items (everything when absent)."""
    text = request.query_params.get("$filter")
    if not text:
        return _everything
    return to_predicate(parse_filter(text, kind), kind)


def parsed_filter(request: Request, kind: str) -> Filter | None:
    """The `$filter` of a list request, validated for that list (None when absent)."""
    text = request.query_params.get("$filter")
    if not text:
        return None
    return parse_filter(text, kind)


def _everything(item: dict[str, Any]) -> bool:
    return True


def url_for(request: Request, path: str) -> str:
    return f"{base_url(request)}{path}"


def odata_element(request: Request, kind: str) -> dict[str, Any]:
    return {"odata.metadata": f"{base_url(request)}/$metadata#{kind}/@Element"}
