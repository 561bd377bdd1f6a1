"""Small helpers the resource modules share: the engine of a request, paging over ordered items."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request

from batchyard.service import errors
from batchyard.service.engine.engine import Engine
from batchyard.service.odata import IndexHint, parse_filter, to_index_hint, to_predicate, to_sql

T = TypeVar("T")


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


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


def sql_filter(request: Request, kind: str) -> tuple[str, tuple[Any, ...]]:
    """The `$filter` of a list request as an SQL condition over the store's columns."""
    text = request.query_params.get("$filter")
    if not text:
        return "", ()
    return to_sql(parse_filter(text, kind), kind)


def task_filter(request: Request) -> tuple[str, tuple[Any, ...], IndexHint | None]:
    """The `$filter` of a task list as SQL, with the index that may answer it (Store.list_tasks)."""
    text = request.query_params.get("$filter")
    if not text:
        return "", (), None
    parsed = parse_filter(text, "tasks")
    where, params = to_sql(parsed, "tasks")
    return where, params, to_index_hint(parsed, "tasks")


def _everything(item: dict[str, Any]) -> bool:
    return True


def url_for(request: Request, path: str) -> str:
    return f"{request.app.state.settings.base_url}{path}"


def odata_element(request: Request, kind: str) -> dict[str, Any]:
    return {"odata.metadata": f"{request.app.state.settings.base_url}/$metadata#{kind}/@Element"}
