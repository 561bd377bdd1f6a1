"""`--adjustable-clock`: tests move the service's time forward instead of waiting for it."""

from __future__ import annotations

from pathlib import Path

import httpx
from azure.batch import models as m

from tests.api.helpers import create_job
from tests.conftest import advance_clock, make_client, start_service, wait_for


def test_job_max_wall_clock_time_expires_when_the_clock_moves(tmp_path: Path) -> None:
    service = start_service(tmp_path / "svc", "--adjustable-clock")
    try:
        client = make_client(service.url)
        create_job(client, "j", "nopool", constraints=m.BatchJobConstraints(max_wall_clock_time="PT1H"))
        advance_clock(service, 1800)
        assert client.get_job("j").state == "active"
        advance_clock(service, 1801)
        job = wait_for(lambda: (j := client.get_job("j")).state == "completed" and j, what="job expiry")
        assert job.execution_info.termination_reason == "MaxWallClockTimeExpiry"
    finally:
        service.stop()


def test_clock_control_is_absent_without_the_flag(service: object) -> None:
    url = f"{service.url}/_batchyard/clock?api-version=2025-06-01"  # type: ignore[attr-defined]
    assert httpx.post(url, json={"advanceSeconds": 5}).status_code in (403, 404)
