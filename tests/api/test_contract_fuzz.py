"""The REST contract, fuzzed: every operation of BatchService-2025-06-01.21.0.json, with requests generated from
it by schemathesis (OpenAPI 2.0) and hypothesis, Shared Key signed, against a real `batchyard serve`.

Each operation gets `BATCHYARD_FUZZ_EXAMPLES` (default 50) requests, positive and negative, aimed at seeded
resources most of the time (see `tests/api/contract_fuzz.py` for the generation, the steering and what keeps
the run bounded: a one-core quota that the seeded one-node pool holds, no pool asked for more than 2 nodes,
the seeds never deleted). A request fails the test when its answer has:

- a status >= 500;
- a 4xx body that is not the Batch error shape
  (`{"odata.metadata"?, "code": str, "message": {"lang": str, "value": str}, "values"?: [{"key", "value"}]}`);
- a 2xx status the operation does not document, or a 2xx JSON body that does not validate against the
  operation's response schema.

schemathesis's own runner and checks are not used: requests are signed and sent here (httpx), and the checks
above are this project's (the contract's BatchError schema allows any object, and write-only properties need
the contract's `x-ms-mutability`). The long run is `benchmarks/fuzz_contract.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.api import contract_fuzz as cf
from tests.conftest import Service, start_service

EXAMPLES = int(os.environ.get("BATCHYARD_FUZZ_EXAMPLES", "50"))
OPERATIONS = cf.operations()
MODES = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


class Target:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.client = cf.Client(service.url)
        self.known = cf.seed(self.client)
        self.schemas = cf.ResponseSchemas(cf.load_contract())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    service = start_service(Path(tmp_path_factory.mktemp("fuzz")), *cf.SERVICE_ARGS)
    try:
        target = Target(service)
        yield target
        target.client.close()
    finally:
        service.stop()


def test_the_fuzz_covers_every_operation_of_the_contract() -> None:
    contract = cf.load_contract()
    assert len(OPERATIONS) == sum(len([m for m in item if m != "parameters"]) for item in contract["paths"].values())
    assert len(OPERATIONS) == 77


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.operation_id for op in OPERATIONS])
def test_operation_answers_by_the_contract(target: Target, op: cf.Operation) -> None:
    @settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(st.data())
    def fuzz(data: Any) -> None:
        outcome = cf.exercise(op, data.draw(MODES), data.draw, target.client, target.known, target.schemas)
        assert not outcome.failures, outcome.describe()

    fuzz()


def test_the_service_logged_no_unhandled_error(target: Target) -> None:
    """An exception a handler did not turn into an answer (or a background task's) shows in the log."""
    log = target.service.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]
