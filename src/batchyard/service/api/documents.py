"""Listing and reading the entities kept in memory (pools, jobs, job schedules), all the same way:
`$filter`, `$select`, `$expand=stats`, paging in creation order, and the entity headers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from batchyard.service.api.common import list_filter, odata_element, page, skip_token
from batchyard.service.api.usage import wants_stats, with_stats
from batchyard.service.http import (
    check_conditions,
    entity_headers,
    json_response,
    list_response,
    parse_max_results,
    parse_select,
    present,
)


class Entity(Protocol):
    seq: int
    doc: dict[str, Any]


E = TypeVar("E", bound=Entity)


def list_documents(
    request: Request,
    filter_kind: str,
    odata_kind: str,
    entities: Iterable[E],
    url_of: Callable[[E], str],
    stats_of: Callable[[E], dict[str, Any]],
) -> Response:
    keep = list_filter(request, filter_kind)
    select = parse_select(request)
    kept = [entity for entity in entities if keep(entity.doc)]
    chosen, token = page(kept, lambda entity: entity.seq, skip_token(request), parse_max_results(request))
    expand = wants_stats(request)
    views = (with_stats(present(e.doc, url_of(e), select), select, expand, partial(stats_of, e)) for e in chosen)
    return list_response(request, odata_kind, views, token)


def get_document(
    request: Request, odata_kind: str, entity: E, url: str, stats_of: Callable[[E], dict[str, Any]]
) -> Response:
    check_conditions(request, entity.doc, reading=True)
    select = parse_select(request)
    view = present(entity.doc, url, select)
    body = odata_element(request, odata_kind) | with_stats(view, select, wants_stats(request), lambda: stats_of(entity))
    return json_response(body, entity_headers(entity.doc))
