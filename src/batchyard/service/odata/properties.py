"""Which properties each Batch list operation can filter on, with which operators.

Source: "OData filters in Azure Batch", https://learn.microsoft.com/rest/api/batchservice/odata-filters-in-batch
(the page every `$filter` parameter of the REST contract links to; read from its source
docs-ref-conceptual/batchservice/odata-filters-in-batch.md, ms.date 08/27/2018, and checked against the
current rendered page). The tables below transcribe it row by row; deviations are commented where they occur.

Types are the page's (String, Int, DateTime, Boolean); a String whose contract schema is an enum is typed
"enum" here and names the contract definition, so literal values can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PropType = Literal["string", "enum", "int", "bool", "datetime"]

COMPARE = ("eq", "ne", "gt", "ge", "lt", "le")
ALL_OPS = frozenset((*COMPARE, "startswith"))
_EQ = frozenset(("eq",))
_EQ_NE = frozenset(("eq", "ne"))
_ORDERED = frozenset(COMPARE)
_STRING_ALL = ALL_OPS
_STARTSWITH = frozenset(("startswith",))


@dataclass(frozen=True)
class PropertySpec:
    name: str  # as written in $filter (case-sensitive)
    path: tuple[str, ...]  # where it lives in the wire-shaped document
    type: PropType
    ops: frozenset[str]
    enum: str | None = None  # contract definition holding the allowed values


@dataclass(frozen=True)
class ListSpec:
    kind: str
    title: str  # the page's heading, used in error messages
    model: str  # contract definition of one listed item
    properties: dict[str, PropertySpec]


def _p(
    name: str, type_: PropType, ops: frozenset[str], enum: str | None = None, path: str | None = None
) -> PropertySpec:
    return PropertySpec(name, tuple((path or name).split("/")), type_, ops, enum)


def _dt(name: str) -> PropertySpec:
    return _p(name, "datetime", _ORDERED)


def _list(kind: str, title: str, model: str, *props: PropertySpec) -> ListSpec:
    return ListSpec(kind, title, model, {p.name: p for p in props})


_JOB_PROPS = (
    _p("state", "enum", _EQ_NE, "BatchJobState"),
    _dt("stateTransitionTime"),
    _dt("creationTime"),
    _dt("lastModified"),
    _dt("executionInfo/startTime"),
    _dt("executionInfo/endTime"),
    _p("executionInfo/poolId", "string", _STRING_ALL),
)


def _task_info(prefix: str, state_enum: str) -> tuple[PropertySpec, ...]:
    return (
        _p(f"{prefix}/state", "enum", _EQ_NE, state_enum),
        _dt(f"{prefix}/startTime"),
        _dt(f"{prefix}/endTime"),
        _p(f"{prefix}/exitCode", "int", _ORDERED),
        _p(f"{prefix}/result", "enum", _EQ_NE, "BatchTaskExecutionResult"),
    )


LISTS: dict[str, ListSpec] = {
    spec.kind: spec
    for spec in (
        _list(
            "supportedImages",
            "List supported images",
            "BatchSupportedImage",
            _p("osType", "enum", _EQ_NE, "OSType"),
            _p("verificationType", "enum", _EQ_NE, "ImageVerificationType"),
            _p("nodeAgentSKUId", "string", _EQ_NE),
        ),
        _list(
            "certificates",
            "List certificates",
            "BatchCertificate",
            _p("state", "enum", _EQ_NE, "BatchCertificateState"),
            _dt("stateTransitionTime"),
        ),
        _list(
            "nodes",
            "List nodes in a pool",
            "BatchNode",
            _p("state", "enum", _EQ_NE, "BatchNodeState"),
            _dt("stateTransitionTime"),
            _dt("lastBootTime"),
            _dt("allocationTime"),
            _p("startTaskInfo/state", "enum", _EQ, "BatchStartTaskState"),  # the page allows eq only
            _p("startTaskInfo/result", "enum", _EQ_NE, "BatchTaskExecutionResult"),
            _p("startTaskInfo/exitCode", "int", _ORDERED),
            _dt("startTaskInfo/startTime"),
            _dt("startTaskInfo/endTime"),
        ),
        # The contract's $filter description of /nodecounts links to the supported-images anchor by
        # mistake; the page's own table for this operation is the one used.
        _list("poolNodeCounts", "List pool node counts", "BatchPoolNodeCounts", _p("poolId", "string", _EQ)),
        _list("taskFiles", "List task files", "BatchNodeFile", _p("name", "string", _STARTSWITH)),
        _list("nodeFiles", "List compute node files", "BatchNodeFile", _p("name", "string", _STARTSWITH)),
        # The page lists no `id` row for jobs in a job schedule (unlike List jobs); followed as written.
        _list("jobScheduleJobs", "List jobs in a job schedule", "BatchJob", *_JOB_PROPS),
        _list(
            "jobSchedules",
            "List job schedules",
            "BatchJobSchedule",
            _p("id", "string", _STRING_ALL),
            _p("state", "enum", _EQ_NE, "BatchJobScheduleState"),
            _dt("stateTransitionTime"),
            _dt("creationTime"),
            _dt("lastModified"),
            _dt("executionInfo/endTime"),
            _dt("schedule/doNotRunUntil"),
            _dt("schedule/doNotRunAfter"),
        ),
        _list("jobs", "List jobs", "BatchJob", _p("id", "string", _STRING_ALL), *_JOB_PROPS),
        _list(
            "pools",
            "List pools",
            "BatchPool",
            _p("id", "string", _STRING_ALL),
            _p("state", "enum", _EQ_NE, "BatchPoolState"),
            _dt("stateTransitionTime"),
            _p("allocationState", "enum", _EQ, "AllocationState"),  # the page allows eq only
            _dt("allocationStateTransitionTime"),
            _dt("creationTime"),
            _p("enableAutoScale", "bool", _EQ_NE),
            _dt("lastModified"),
            # vmSize is an open string (the service lower-cases it); values compare case-insensitively anyway.
            _p("vmSize", "string", _EQ_NE),
            _p("enableInterNodeCommunication", "bool", _EQ_NE),
        ),
        _list(
            "jobPrepReleaseStatus",
            "List job preparation and release status",
            "BatchJobPreparationAndReleaseTaskStatus",
            _p("poolId", "string", _EQ_NE),
            _p("nodeId", "string", _EQ_NE),
            *_task_info("jobPreparationTaskExecutionInfo", "BatchJobPreparationTaskState"),
            *_task_info("jobReleaseTaskExecutionInfo", "BatchJobReleaseTaskState"),
        ),
        _list(
            "tasks",
            "List tasks",
            "BatchTask",
            _p("id", "string", _STRING_ALL),
            _p("state", "enum", _EQ_NE, "BatchTaskState"),
            _dt("stateTransitionTime"),
            _dt("creationTime"),
            # The page names this row `lastModifiedTime`, but the task's wire property is `lastModified`
            # (as on jobs, pools and schedules). Both spellings are accepted and read `lastModified`.
            _p("lastModifiedTime", "datetime", _ORDERED, path="lastModified"),
            _dt("lastModified"),
            _dt("executionInfo/startTime"),
            _dt("executionInfo/endTime"),
            _p("executionInfo/exitCode", "int", _ORDERED),
            _p("executionInfo/result", "enum", _EQ_NE, "BatchTaskExecutionResult"),
        ),
        # The operation's description also speaks of filtering on startTime/endTime, but the page's table
        # has only poolId (those two are separate `starttime`/`endtime` query parameters in the contract).
        # Note the table has no `ne` for this one.
        _list(
            "poolUsageMetrics",
            "List account usage metrics",
            "BatchPoolUsageMetrics",
            _p("poolId", "string", frozenset(("eq", "ge", "gt", "le", "lt", "startswith"))),
        ),
    )
}


def list_spec(list_kind: str) -> ListSpec:
    try:
        return LISTS[list_kind]
    except KeyError:
        raise ValueError(f"unknown list kind {list_kind!r}; known: {', '.join(LISTS)}") from None
