"""`$expand=stats` on jobs, pools and job schedules, and the account's pool usage metrics (/poolusagemetrics)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import list_filter, page, service_of, skip_token, url_for
from batchyard.service.engine.records import JobRecord, PoolRecord
from batchyard.service.engine.schedules import ScheduleRecord
from batchyard.service.http import endpoint, list_response, parse_max_results
from batchyard.service.odata.literals import parse_datetime


def wants_stats(request: Request) -> bool:
    """Whether `$expand` asks for stats, the only expandable property of jobs, pools and schedules."""
    raw = request.query_params.get("$expand")
    if raw is None:
        return False
    parts = {part.strip() for part in raw.split(",")}
    if parts - {"stats"}:
        raise errors.invalid_query("$expand", raw, "Only 'stats' can be expanded.")
    return True


def with_stats(
    item: dict[str, Any], select: set[str] | None, expand: bool, stats: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The item with `stats` when expanded (and selected, if there is a `$select`)."""
    if expand and (select is None or "stats" in select):
        item["stats"] = stats()
    return item


def job_stats(request: Request, job: JobRecord) -> dict[str, Any]:
    return service_of(request).job_stats(job, url_for(request, f"/jobs/{job.doc['id']}"))


def pool_stats(request: Request, pool: PoolRecord) -> dict[str, Any]:
    return service_of(request).pool_stats(pool, url_for(request, f"/pools/{pool.doc['id']}"))


def schedule_stats(request: Request, schedule: ScheduleRecord) -> dict[str, Any]:
    return service_of(request).schedule_stats(schedule, url_for(request, f"/jobschedules/{schedule.doc['id']}"))


# --- /poolusagemetrics --------------------------------------------------------------------------------


def _time_param(request: Request, *names: str) -> float | None:
    for name in names:
        raw = request.query_params.get(name)
        if raw is not None:
            try:
                return parse_datetime(raw).timestamp()
            except ValueError:
                raise errors.invalid_query(name, raw, "The value is not a valid date and time.") from None
    return None


@endpoint
async def list_pool_usage_metrics(request: Request) -> Response:
    """Per pool, per 30-minute interval: vmSize and core hours. Only finished intervals are reported.

    Without startTime/endtime only the last finished interval is returned, as the contract says; with them,
    the intervals that start at or after startTime (rounded down to an interval) and end by endtime.
    """
    keep = list_filter(request, "poolUsageMetrics")
    start = _time_param(request, "startTime", "starttime", "startime")
    end = _time_param(request, "endtime", "endTime")
    if start is not None and end is not None and end < start:
        raise errors.invalid_query("endtime", request.query_params.get("endtime") or "", "endtime is before startTime.")
    items = [item for item in service_of(request).pool_usage_metrics(start, end) if keep(item)]
    numbered = list(enumerate(items, start=1))
    chosen, token = page(numbered, lambda pair: pair[0], skip_token(request), parse_max_results(request))
    return list_response(request, "poolusagemetrics", (item for _, item in chosen), token)


routes = [Route("/poolusagemetrics", list_pool_usage_metrics, methods=["GET"])]
