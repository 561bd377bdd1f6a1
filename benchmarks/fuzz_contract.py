"""The long run of the REST contract fuzz: `--requests` (100,000) generated requests against `batchyard serve`.

    .venv/bin/python benchmarks/fuzz_contract.py                          # 100,000 requests
    .venv/bin/python benchmarks/fuzz_contract.py --requests 100000 --minutes 20   # stop after 20 minutes
    .venv/bin/python benchmarks/fuzz_contract.py --requests 2000 --report /tmp/fuzz.txt

The same generation, steering and checks as `tests/api/test_contract_fuzz.py` (see `tests/api/contract_fuzz.py`),
but the operation is drawn at random for every request (the suite runs each operation in turn), the state the
run builds up (what its own requests created, changed or broke) carries on to the end, and a failure is
counted and the run goes on. Hypothesis runs in rounds of `--round` requests with a fresh random seed each.

It prints the requests sent, the operations they reached (and how many of those answered 2xx at least once),
the answers by status, and the failures by kind: `server_error` (status >= 500), `error_shape` (a 4xx body
that is not the Batch error shape), `undocumented_status`, `response_schema` (a 2xx body off the operation's
response schema), `transport` (no answer); and whether the service's log has a traceback. `--report FILE`
writes up to 3 requests of every (kind, operation) that failed. The exit code is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.api import contract_fuzz as cf  # noqa: E402
from tests.conftest import start_service  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long, whatever the count")
    parser.add_argument("--round", type=int, default=1000, help="requests per hypothesis run")
    parser.add_argument("--report", type=Path, default=None, help="write the failing requests here")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the service (and its node) on the way out
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="batchyard-fuzz-"))
    data_dir.chmod(0o711)  # task users (a root service) pass through to the node roots
    service = start_service(data_dir, *cf.SERVICE_ARGS)
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes else None
    statuses: collections.Counter[str] = collections.Counter()
    reached: collections.Counter[str] = collections.Counter()
    succeeded: set[str] = set()
    failures: collections.Counter[str] = collections.Counter()
    examples: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    sent = unsent = 0
    try:
        client = cf.Client(service.url)
        known = cf.seed(client)
        contract = cf.load_contract()
        operations = cf.operations(contract)
        schemas = cf.ResponseSchemas(contract)
        chosen = st.sampled_from(operations)
        modes = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

        def one(data: Any) -> None:
            nonlocal sent, unsent
            if sent + unsent >= args.requests or (deadline and time.monotonic() > deadline):
                return
            op = data.draw(chosen)
            outcome = cf.exercise(op, data.draw(modes), data.draw, client, known, schemas)
            if outcome.status is None and not outcome.failures:
                unsent += 1
                return
            sent += 1
            reached[op.operation_id] += 1
            statuses[str(outcome.status) if outcome.status else "none"] += 1
            if outcome.status and 200 <= outcome.status < 300:
                succeeded.add(op.operation_id)
            for failure in outcome.failures:
                failures[failure.kind] += 1
                kept = examples[(failure.kind, op.operation_id)]
                if len(kept) < 3:
                    kept.append(outcome.describe())

        while sent + unsent < args.requests and not (deadline and time.monotonic() > deadline):
            wanted = min(args.round, args.requests - sent - unsent)
            run = settings(
                max_examples=wanted,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(st.data())(one))
            run()
            elapsed = time.monotonic() - started
            print(
                f"  {sent:>7} requests in {elapsed:6.0f} s ({sent / elapsed:.0f}/s), {sum(failures.values())} failures",
                flush=True,
            )
        client.close()
    finally:
        service.stop()
    elapsed = time.monotonic() - started
    log = service.log()
    # A traceback's own first line; the access log may quote "Traceback" from a generated request.
    tracebacks = sum(1 for line in log.splitlines() if line.startswith("Traceback (most recent call last)"))

    print()
    print(f"requests sent:        {sent} in {elapsed / 60:.1f} min ({sent / elapsed:.0f}/s); {unsent} not sendable")
    print(f"operations reached:   {len(reached)} of {len(operations)}; {len(succeeded)} answered 2xx at least once")
    print(f"never 2xx:            {', '.join(sorted(set(reached) - succeeded)) or '-'}")
    print(f"answers by status:    {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))}")
    print(f"failures by kind:     {dict(failures) or 0}")
    for kind, operation in sorted(examples):
        print(f"  {kind:20s} {operation}")
    print(f"service tracebacks:   {tracebacks}")
    print(f"service data dir:     {data_dir} (the service's log is service.log)")
    if args.report:
        with open(args.report, "w") as out:
            for (kind, operation), kept in sorted(examples.items()):
                out.write(f"## {kind} {operation}\n\n" + "\n\n".join(kept) + "\n\n")
        print(f"failing requests:     {args.report}")
    return 1 if failures or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
