"""A property-based fuzz of the REST contract: requests generated from it, answers checked against it.

Shared by `tests/api/test_contract_fuzz.py` (bounded, in the suite) and `benchmarks/fuzz_contract.py` (the
long run). Requests come from schemathesis (`schemathesis.openapi`, OpenAPI 2.0) over the service's copy of the
contract, drawn with hypothesis, in both of its modes: positive (what the contract allows) and negative (what
it forbids: wrong types, missing required properties, unknown properties, values out of range). They are
sent with httpx and signed with Shared Key here (`batchyard.service.auth.sign_request`), as the SDK would.

Generation uses a stricter copy of the contract: every object definition with properties gets
`additionalProperties: false`, so that positive bodies carry the contract's properties (the contract leaves
extra ones open, and a body of random keys exercises nothing) and negative ones may add unknown properties.
Answers are checked against the contract as it is.

To reach past the first lookup, a case is then steered, with hypothesis draws, some of the time:

- path ids are replaced by ids that exist (seeded before the run, or created by the run's own requests);
  the seeds are never deleted or terminated, and the one-node pool is never resized, patched, stripped of
  its node or given a start task (those operations get ids the run created, or random ones);
- `api-version` is the contract's most of the time, and a list's `$filter`, `$select` and `maxresults`
  come from small grammars; most requests leave out the generated optional headers (mostly malformed,
  they would stop nearly every request at the header checks);
- half of the positive bodies keep only their required properties and at most two others, so that one
  feature at a time gets past validation; a positive create body mostly gets a valid id, the empty seeded
  pool, a real VM size and image; no pool is ever asked for more than 2 nodes, and the service runs with a
  core quota of one core, which the seeded one-node pool holds, so that no generated pool, start task or
  task gets a node (the seeded job that has one is completed before the run).

Each answer is checked (`check`): no status >= 500; every 4xx body in the Batch error shape
(`{"odata.metadata"?, "code": str, "message": {"lang": str, "value": str}, "values"?: [{"key": str,
"value": str}]}`, JSON); a 2xx status the operation documents, and a 2xx JSON body valid against the
operation's response schema (Draft 4 over the contract's definitions, with `format` checked).
"""

from __future__ import annotations

import base64
import copy
import json
import string
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode

import batchyard.service.models
from batchyard.service.auth import format_ocp_date, sign_request
from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.api.helpers import self_signed_pfx

CONTRACT_PATH = Path(batchyard.service.models.__file__).parent / "contract.json"
API_VERSION = "2025-06-01.21.0"

# The service's arguments for a fuzz run: one core, held by the seeded one-node pool (standard_a1).
SERVICE_ARGS = ("--core-quota", "1")

POOL_EMPTY, POOL_NODES = "fuzz-empty", "fuzz-nodes"
JOB_ACTIVE, JOB_DONE = "fuzz-active", "fuzz-done"
TASK_ACTIVE, TASK_DONE = "fuzz-active-task", "fuzz-done-task"
SCHEDULE = "fuzz-schedule"
NODE_USER = "fuzzuser"

VM_CONFIG = {
    "imageReference": {
        "publisher": "canonical",
        "offer": "0001-com-ubuntu-server-jammy",
        "sku": "22_04-lts",
        "version": "latest",
    },
    "nodeAgentSKUId": "batch.node.ubuntu 22.04",
}


# --- the contract ----------------------------------------------------------------------------------------


def load_contract() -> dict[str, Any]:
    return dict(json.loads(CONTRACT_PATH.read_text()))


def _closed(contract: dict[str, Any]) -> dict[str, Any]:
    """The contract with `additionalProperties: false` on every object definition that lists properties."""
    strict = copy.deepcopy(contract)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(strict["definitions"])
    return strict


@dataclass
class Operation:
    method: str  # upper-case
    path: str  # as in the contract, with {placeholders}
    operation_id: str
    responses: dict[str, Any]  # status (or "default") -> the contract's response object
    api: Any  # schemathesis APIOperation over the strict contract
    lists: bool  # takes $filter
    body_required: list[str]  # the required properties of its body, when the body is an object
    strategies: dict[str, Any] = field(default_factory=dict)

    def strategy(self, mode: GenerationMode) -> Any:
        if mode.value not in self.strategies:
            self.strategies[mode.value] = self.api.as_strategy(generation_mode=mode)
        return self.strategies[mode.value]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def operations(contract: dict[str, Any] | None = None) -> list[Operation]:
    """Every operation of the contract, in its order."""
    contract = contract or load_contract()
    schema = schemathesis.openapi.from_dict(_closed(contract))
    apis = {}
    for result in schema.get_all_operations():
        api = result.ok()
        apis[(api.method.upper(), api.path)] = api
    found = []
    for path, item in contract["paths"].items():
        for method, spec in item.items():
            if method == "parameters":
                continue
            names = {p.get("name") for p in spec.get("parameters", [])}
            required: list[str] = []
            for param in spec.get("parameters", []):
                ref = param.get("schema", {}).get("$ref", "") if param.get("in") == "body" else ""
                if ref:
                    required = list(contract["definitions"][ref.rsplit("/", 1)[-1]].get("required", []))
            api = apis[(method.upper(), path)]
            op = Operation(
                method.upper(), path, spec["operationId"], spec["responses"], api, "$filter" in names, required
            )
            found.append(op)
    return found


class ResponseSchemas:
    """Draft 4 validators of the contract's response schemas, built on first use.

    Properties the contract marks write-only (`x-ms-mutability` without "read", such as a certificate's
    `data` and `password`) are not required in an answer, and must not be in one. With `$select`, an answer
    carries only the selected properties, so `required` does not apply.
    """

    def __init__(self, contract: dict[str, Any]) -> None:
        self.definitions = _read_view(copy.deepcopy(contract["definitions"]))
        self.optional = _without_required(copy.deepcopy(self.definitions))
        self.validators: dict[tuple[str, bool], Any] = {}

    def errors(self, schema: dict[str, Any], body: Any, selected: bool = False) -> list[str]:
        key = (json.dumps(schema, sort_keys=True), selected)
        if key not in self.validators:
            root = {**schema, "definitions": self.optional if selected else self.definitions}
            self.validators[key] = jsonschema_rs.Draft4Validator(root, validate_formats=True)
        return [
            f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}"
            for e in self.validators[key].iter_errors(body)
        ]


def _read_view(definitions: dict[str, Any]) -> dict[str, Any]:
    for definition in definitions.values():
        properties = definition.get("properties", {})
        for name, prop in properties.items():
            mutability = prop.get("x-ms-mutability")
            if mutability is not None and "read" not in mutability:
                properties[name] = {"not": {}, "description": "write-only: never in an answer"}
                if name in definition.get("required", []):
                    definition["required"].remove(name)
    return definitions


def _without_required(node: Any) -> Any:
    if isinstance(node, dict):
        if isinstance(node.get("required"), list):
            del node["required"]
        for value in node.values():
            _without_required(value)
    elif isinstance(node, list):
        for value in node:
            _without_required(value)
    return node


# --- the answers' checks ---------------------------------------------------------------------------------


@dataclass
class Failure:
    kind: str  # server_error, error_shape, undocumented_status, response_schema, transport
    detail: str


def batch_error_problems(body: Any) -> list[str]:
    """What keeps `body` from being the Batch error shape (nothing when it is)."""
    if not isinstance(body, dict):
        return [f"not a JSON object: {type(body).__name__}"]
    problems = []
    extra = set(body) - {"odata.metadata", "code", "message", "values"}
    if extra:
        problems.append(f"unexpected properties {sorted(extra)}")
    if "odata.metadata" in body and not isinstance(body["odata.metadata"], str):
        problems.append("odata.metadata is not a string")
    if not isinstance(body.get("code"), str) or not body["code"]:
        problems.append("code is not a non-empty string")
    message = body.get("message")
    if not isinstance(message, dict) or set(message) != {"lang", "value"}:
        problems.append("message is not {lang, value}")
    elif not isinstance(message["lang"], str) or not isinstance(message["value"], str):
        problems.append("message.lang or message.value is not a string")
    if "values" in body:
        values = body["values"]
        if not isinstance(values, list) or not all(
            isinstance(item, dict)
            and set(item) == {"key", "value"}
            and isinstance(item["key"], str)
            and isinstance(item["value"], str)
            for item in values
        ):
            problems.append("values is not a list of {key, value} strings")
    return problems


def check(
    op: Operation,
    request_headers: dict[str, str],
    response: httpx.Response,
    schemas: ResponseSchemas,
    selected: bool = False,
) -> list[Failure]:
    """The contract's and the Batch error shape's rules for one answer (`selected`: the request had `$select`)."""
    status = response.status_code
    code = str(status)
    if status >= 500:
        return [Failure("server_error", f"{status}: {response.text[:300]}")]
    if status == 304:  # a conditional GET/HEAD that matched: allowed when the request was conditional
        if op.method in ("GET", "HEAD") and {"if-none-match", "if-modified-since"} & {
            h.lower() for h in request_headers
        }:
            return []
        return [Failure("undocumented_status", "304 to a request that was not conditional")]
    if 200 <= status < 300:
        if code not in op.responses:
            return [Failure("undocumented_status", f"{status}, the contract documents {sorted(op.responses)}")]
        schema = op.responses[code].get("schema")
        if op.method == "HEAD" or schema is None or schema.get("type") == "file":
            return []
        if not response.headers.get("content-type", "").startswith("application/json"):
            return [Failure("response_schema", f"content type {response.headers.get('content-type')!r}")]
        try:
            body = response.json()
        except ValueError:
            return [Failure("response_schema", f"not JSON: {response.text[:200]!r}")]
        problems = schemas.errors(schema, body, selected)
        return [Failure("response_schema", "; ".join(problems[:5]))] if problems else []
    if 400 <= status < 500:
        if op.method == "HEAD":
            return []  # no body
        if not response.headers.get("content-type", "").startswith("application/json"):
            return [Failure("error_shape", f"{status} with content type {response.headers.get('content-type')!r}")]
        try:
            body = response.json()
        except ValueError:
            return [Failure("error_shape", f"{status} with a body that is not JSON: {response.text[:200]!r}")]
        problems = batch_error_problems(body)
        return [Failure("error_shape", f"{status}: {'; '.join(problems)}: {response.text[:300]}")] if problems else []
    return [Failure("undocumented_status", f"{status}")]


# --- the seeded resources ---------------------------------------------------------------------------------


@dataclass
class Known:
    """Ids that exist: the seeds, and what the run's own requests created."""

    pools: list[str] = field(default_factory=lambda: [POOL_EMPTY, POOL_NODES])
    jobs: list[str] = field(default_factory=lambda: [JOB_ACTIVE, JOB_DONE])
    tasks: dict[str, list[str]] = field(default_factory=lambda: {JOB_ACTIVE: [TASK_ACTIVE], JOB_DONE: [TASK_DONE]})
    schedules: list[str] = field(default_factory=lambda: [SCHEDULE])
    nodes: list[str] = field(default_factory=list)
    thumbprints: list[str] = field(default_factory=list)  # sha1; the seeded certificate's first

    def remember(self, kind: str, resource_id: str, job_id: str = "") -> None:
        ids = self.tasks.setdefault(job_id, []) if kind == "tasks" else getattr(self, kind)
        if resource_id not in ids and len(ids) < 200:
            ids.append(resource_id)


class Client:
    """Signed requests to one service (the development account)."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        self.url = url
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        url = httpx.URL(self.url + path, params=params or [])
        sent = {k.lower(): v for k, v in (headers or {}).items()}
        for name in ("ocp-date", "authorization", "date", "content-length"):
            sent.pop(name, None)
        sent["ocp-date"] = format_ocp_date()
        if body is not None:
            sent["content-length"] = str(len(body))
            sent.setdefault("content-type", "application/json; odata=minimalmetadata")
        sent["authorization"] = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, method, str(url), sent)
        raw = [(k.encode("latin-1"), _header_bytes(v)) for k, v in sent.items()]
        return self.http.request(method, url, content=body, headers=raw)

    def json(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.send(
            method, path, [("api-version", API_VERSION)], body=None if body is None else json.dumps(body).encode()
        )


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _wait(check_: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check_():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def seed(client: Client) -> Known:
    """The resources the fuzz aims at: an empty pool, a one-node pool, an active and a completed job with a
    task each (the completed one ran, so it has files), a job schedule, a node user and a certificate."""

    def ok(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 300:
            raise RuntimeError(f"seeding failed: {response.status_code} {response.text}")
        return response

    pool = {"vmSize": "standard_a1", "virtualMachineConfiguration": VM_CONFIG}
    ok(client.json("POST", "/pools", {"id": POOL_EMPTY, **pool, "targetDedicatedNodes": 0}))
    ok(client.json("POST", "/pools", {"id": POOL_NODES, **pool, "targetDedicatedNodes": 1}))
    ok(client.json("POST", "/jobs", {"id": JOB_ACTIVE, "poolInfo": {"poolId": POOL_EMPTY}}))
    ok(client.json("POST", f"/jobs/{JOB_ACTIVE}/tasks", {"id": TASK_ACTIVE, "commandLine": "/bin/true"}))
    ok(client.json("POST", "/jobs", {"id": JOB_DONE, "poolInfo": {"poolId": POOL_NODES}}))
    command = "/bin/sh -c 'echo out; echo err >&2'"
    ok(client.json("POST", f"/jobs/{JOB_DONE}/tasks", {"id": TASK_DONE, "commandLine": command}))
    schedule = {
        "id": SCHEDULE,
        "schedule": {"doNotRunUntil": "2100-01-01T00:00:00Z", "recurrenceInterval": "P1D"},
        "jobSpecification": {"poolInfo": {"poolId": POOL_EMPTY}},
    }
    ok(client.json("POST", "/jobschedules", schedule))

    def task_done() -> bool:
        return ok(client.json("GET", f"/jobs/{JOB_DONE}/tasks/{TASK_DONE}")).json()["state"] == "completed"

    _wait(task_done, "the seeded task to complete")
    # No task added later (by the fuzz) runs: the job with a node is completed, the other one's pool is empty.
    ok(client.json("POST", f"/jobs/{JOB_DONE}/terminate"))
    known = Known()
    known.nodes = [node["id"] for node in ok(client.json("GET", f"/pools/{POOL_NODES}/nodes")).json()["value"]]
    user = {"name": NODE_USER, "password": "Fuzz-Pass-1234", "isAdmin": False}
    ok(client.json("POST", f"/pools/{POOL_NODES}/nodes/{known.nodes[0]}/users", user))
    thumbprint, data, _ = self_signed_pfx("fuzz")
    body = {"thumbprint": thumbprint, "thumbprintAlgorithm": "sha1", "data": base64.b64encode(data).decode()}
    ok(client.json("POST", "/certificates", body | {"certificateFormat": "pfx", "password": "fuzz"}))
    known.thumbprints = [thumbprint]
    return known


# --- steering the generated cases ---------------------------------------------------------------------------

_FILE_PATHS = ["stdout.txt", "stderr.txt", "wd", "startup", "startup/stdout.txt", "workitems", "..", "wd/../..", ""]
_FILTER_PROPS = [
    "id",
    "state",
    "creationTime",
    "lastModified",
    "stateTransitionTime",
    "executionInfo/exitCode",
    "executionInfo/result",
    "executionInfo/startTime",
    "executionInfo/poolId",
    "vmSize",
    "allocationState",
    "startTime",
    "endTime",
    "poolId",
    "name",
    "isDirectory",
    "url",
    "nodeAgentSKUId",
    "verificationType",
    "thumbprint",
    "schedulingState",
]
_SELECT_PROPS = ["id", "state", "url", "eTag", "lastModified", "creationTime", "executionInfo", "stats", "nope", "*"]
_IDS = st.from_regex(r"[A-Za-z0-9_-]{1,30}", fullmatch=True).map(lambda s: "fz" + s)


def _literal() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["'active'", "'completed'", "'idle'", "'running'", "'steady'", "'fuzz-empty'", "true", "0"]),
        st.integers(-(2**40), 2**40).map(str),
        st.text(max_size=8).map(lambda s: "'" + s.replace("'", "''") + "'"),
        st.datetimes().map(lambda d: f"datetime'{d.isoformat()}Z'"),
        st.text(string.printable, max_size=6),
    )


def _comparison() -> st.SearchStrategy[str]:
    compare = st.tuples(
        st.sampled_from(_FILTER_PROPS), st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "xx"]), _literal()
    ).map(" ".join)
    starts = st.tuples(st.sampled_from(_FILTER_PROPS), _literal()).map(lambda t: f"startswith({t[0]}, {t[1]})")
    return st.one_of(compare, starts)


FILTERS = st.recursive(
    _comparison(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
        inner.map(lambda s: f"({s})"),
        inner.map(lambda s: f"not {s}"),
    ),
    max_leaves=4,
)
SELECTS = st.lists(st.sampled_from(_SELECT_PROPS), min_size=1, max_size=4).map(",".join)


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


_ALL_SEEDS = frozenset(
    i.lower() for i in (POOL_EMPTY, POOL_NODES, JOB_ACTIVE, JOB_DONE, TASK_ACTIVE, TASK_DONE, SCHEDULE)
)


def protected_seeds(op: Operation) -> dict[str, frozenset[str]]:
    """Seeds (lower-case) a path parameter of this operation must not get: it would delete or end them, or
    change what the seeded node runs or whether it stays."""
    last = op.path.rstrip("}").rsplit("{", 1)[-1]
    if op.method == "DELETE" and op.path.endswith("}") and last in ("poolId", "jobId", "jobScheduleId", "taskId"):
        return {last: _ALL_SEEDS}
    if op.path.startswith("/certificates(") and op.method == "DELETE":
        return {"thumbprint": frozenset(["*"])}  # "*": none of the known ids
    if op.path.endswith("/deallocate"):
        return {"poolId": frozenset([POOL_NODES])}  # the seeded node is the only one
    if op.path in ("/jobs/{jobId}/terminate", "/jobschedules/{jobScheduleId}/terminate"):
        return {"jobId": _ALL_SEEDS, "jobScheduleId": _ALL_SEEDS}
    if op.path.startswith("/pools/{poolId}") and (
        op.method == "PATCH"
        or op.path.rsplit("/", 1)[-1] in ("resize", "removenodes", "updateproperties", "enableautoscale")
    ):
        return {"poolId": frozenset([POOL_NODES])}
    return {}


def steer(op: Operation, case: Any, mode: GenerationMode, draw: Callable[[Any], Any], known: Known) -> None:
    """Aim a generated case at existing resources and valid values, some of the time (see the module doc)."""
    protected = protected_seeds(op)
    params = case.path_parameters or {}

    def pick(name: str, ids: list[str]) -> str | None:
        banned = protected.get(name, frozenset())
        allowed = [] if "*" in banned else [i for i in ids if i.lower() not in banned]
        # The draws do not depend on the known ids (they change as the run goes: hypothesis wants the same
        # draws for the same choices); the index is taken modulo their number.
        aimed, index = draw(st.integers(0, 9)) < 8, draw(st.integers(0, 2**16))
        if allowed and aimed:
            chosen = allowed[index % len(allowed)]
            params[name] = _quote(chosen)
            return chosen
        return None

    if "nodeId" in params and pick("nodeId", known.nodes) and POOL_NODES not in protected.get("poolId", ()):
        params["poolId"] = POOL_NODES
    elif "poolId" in params:
        pick("poolId", known.pools)
    job = pick("jobId", known.jobs) if "jobId" in params else None
    if "taskId" in params:
        pick("taskId", known.tasks.get(job, []) if job else [t for ts in known.tasks.values() for t in ts])
    if "jobScheduleId" in params:
        pick("jobScheduleId", known.schedules)
    if "filePath" in params and draw(st.booleans()):
        params["filePath"] = _quote(draw(st.sampled_from(_FILE_PATHS)))
    if "userName" in params and draw(st.booleans()):
        params["userName"] = NODE_USER
    if "thumbprintAlgorithm" in params and draw(st.integers(0, 9)) < 8:
        params["thumbprintAlgorithm"] = "sha1"
    if "thumbprint" in params:
        pick("thumbprint", known.thumbprints)
    if draw(st.integers(0, 9)) < 7:  # most requests without the generated (mostly malformed) optional headers
        kept = {"content-type", "return-client-request-id"}
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() in kept}
        if draw(st.booleans()):
            case.headers["client-request-id"] = str(draw(st.uuids()))
    query = case.query if isinstance(case.query, dict) else {}
    if draw(st.integers(0, 9)) < 8:
        query["api-version"] = API_VERSION
    if op.method == "GET" and op.lists:
        if draw(st.booleans()):
            query["$filter"] = draw(FILTERS)
        if draw(st.integers(0, 3)) == 0:
            query["$select"] = draw(SELECTS)
        if draw(st.integers(0, 3)) == 0:
            query["maxresults"] = draw(st.integers(-2, 1100))
    case.query = query
    body = case.body
    if mode is GenerationMode.POSITIVE and isinstance(body, dict) and draw(st.booleans()):
        # the required properties and at most two others: one optional feature at a time gets checked deeply
        others = sorted(set(body) - set(op.body_required))
        chosen = set(draw(st.lists(st.sampled_from(others), max_size=2))) if others else set()
        body = case.body = {k: v for k, v in body.items() if k in op.body_required or k in chosen}
    if mode is GenerationMode.POSITIVE and isinstance(body, dict):
        if "id" in body and draw(st.integers(0, 7)) > 0:
            body["id"] = draw(_IDS)
        if op.path.endswith("/users") and "name" in body and draw(st.integers(0, 3)) > 0:
            body["name"] = draw(_IDS)
        if isinstance(body.get("value"), list) and op.path.endswith("/addtaskcollection"):
            for item in body["value"]:
                if isinstance(item, dict) and draw(st.integers(0, 3)) > 0:
                    item["id"] = draw(_IDS)
        if isinstance(body.get("poolInfo"), dict) and draw(st.integers(0, 7)) > 0:
            body["poolInfo"] = {"poolId": POOL_EMPTY}
        spec = body.get("jobSpecification")
        if isinstance(spec, dict) and isinstance(spec.get("poolInfo"), dict) and draw(st.integers(0, 3)) > 0:
            spec["poolInfo"] = {"poolId": POOL_EMPTY}
        if "vmSize" in body and draw(st.booleans()):
            body["vmSize"] = draw(st.sampled_from(["standard_a1", "STANDARD_D2S_V3", "small"]))
        if "virtualMachineConfiguration" in body and draw(st.booleans()):
            body["virtualMachineConfiguration"] = copy.deepcopy(VM_CONFIG)
    _cap_nodes(body)


def _cap_nodes(body: Any) -> None:
    """No generated pool asks for more than 2 nodes (the core quota refuses all but the seeded one anyway)."""
    if isinstance(body, dict):
        for key in ("targetDedicatedNodes", "targetLowPriorityNodes", "targetDedicated"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 2:
                body[key] = 2
        for value in body.values():
            _cap_nodes(value)
    elif isinstance(body, list):
        for value in body:
            _cap_nodes(value)


def request_of(case: Any, base: str = "") -> tuple[str, str, list[tuple[str, str]], dict[str, str], bytes | None]:
    """method, path, query, headers and body of a case, as they go on the wire."""
    kwargs = case.as_transport_kwargs(base_url="http://fuzz")
    url = urllib.parse.urlsplit(kwargs["url"])
    params: list[tuple[str, str]] = []
    raw = kwargs.get("params") or {}
    if isinstance(raw, str):  # schemathesis writes some queries out itself
        params = urllib.parse.parse_qsl(raw, keep_blank_values=True)
    else:
        for name, value in raw.items():
            for item in value if isinstance(value, list) else [value]:
                params.append((str(name), _query_text(item)))
    headers = {
        str(k): str(v)
        for k, v in (kwargs.get("headers") or {}).items()
        if k not in ("X-Schemathesis-TestCaseId", "User-Agent")
    }
    body: bytes | None = None
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body = data if isinstance(data, bytes) else str(data).encode()
    return case.method.upper(), url.path, params, headers, body


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def remember_created(op: Operation, path: str, body: bytes | None, response: httpx.Response, known: Known) -> None:
    """Ids of what a generated request created, for later requests to aim at."""
    if response.status_code != 201 or not body:
        return
    try:
        resource_id = json.loads(body).get("id")
    except (ValueError, AttributeError):
        return
    if not isinstance(resource_id, str):
        return
    kind = {"/pools": "pools", "/jobs": "jobs", "/jobschedules": "schedules", "/jobs/{jobId}/tasks": "tasks"}.get(
        op.path
    )
    if kind is not None:
        job_id = urllib.parse.unquote(path.split("/")[2]) if kind == "tasks" else ""
        known.remember(kind, resource_id, job_id)


def iter_failures(failures: list[Failure]) -> Iterator[str]:
    for failure in failures:
        yield f"{failure.kind}: {failure.detail}"


# --- one request ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    op: Operation
    mode: GenerationMode
    request: tuple[str, str, list[tuple[str, str]], dict[str, str], bytes | None]
    status: int | None  # None: not sent (a header or URL the HTTP client refuses to write)
    failures: list[Failure]
    code: str | None = None  # the Batch error code of a 4xx

    def describe(self) -> str:
        method, path, params, headers, body = self.request
        query = urllib.parse.urlencode(params)
        lines = [f"{self.op.operation_id} ({self.mode.value}): {method} {path}{'?' + query if query else ''}"]
        lines += [f"  {k}: {v!r}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"  body: {body[:2000]!r}")
        lines.append(f"  -> {self.status}")
        lines += [f"  {line}" for line in iter_failures(self.failures)]
        return "\n".join(lines)


def exercise(
    op: Operation,
    mode: GenerationMode,
    draw: Callable[[Any], Any],
    client: Client,
    known: Known,
    schemas: ResponseSchemas,
) -> Outcome:
    """Generate one request for `op`, steer it, send it signed and check the answer."""
    case = draw(op.strategy(mode))
    steer(op, case, mode, draw, known)
    request = request_of(case)
    method, path, params, headers, body = request
    try:
        response = client.send(method, path, params, headers, body)
    except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError, ValueError):
        return Outcome(op, mode, request, None, [])
    except httpx.HTTPError as exc:
        return Outcome(op, mode, request, None, [Failure("transport", repr(exc))])
    failures = check(op, headers, response, schemas, any(name == "$select" for name, _ in params))
    code = None
    if 400 <= response.status_code < 500 and method != "HEAD" and not failures:
        code = response.json().get("code")
    remember_created(op, path, body, response, known)
    return Outcome(op, mode, request, response.status_code, failures, code)
