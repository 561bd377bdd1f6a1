"""azure-batch's own live tests (tests/test_batch.py of the 15.1.0 source distribution, fetched from PyPI
and run unmodified) against batchyard, through the stand-in for the Azure SDK's test tools in
tests/sdk_suite (see README, "The Azure SDK's own tests"). Every scenario passes; a failure fails this test."""

from __future__ import annotations

from pathlib import Path

from tests.sdk_suite.runner import run_suite

SCENARIOS = 32  # 16 tests, each with the sync and the async client


def test_the_azure_sdks_own_suite_passes(tmp_path: Path) -> None:
    # -n 4: most of the suite's time is its own polling sleeps (10 s while a pool is not steady).
    outcomes = run_suite(tmp_path / "report.xml", "-n", "4")
    assert len(outcomes) == SCENARIOS, outcomes
    failed = {name for name, outcome in outcomes.items() if outcome != "passed"}
    assert failed == set(), "failures (see the suite's output above)"
