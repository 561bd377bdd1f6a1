"""The dedicated core quota: a resize past it allocates what fits and reports a resize error."""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import create_pool
from tests.conftest import make_client, start_service, wait_for


def test_resize_beyond_the_core_quota_stops_at_the_quota(tmp_path: Path) -> None:
    service = start_service(tmp_path / "svc", "--core-quota", "4")
    try:
        client = make_client(service.url)
        create_pool(client, "p", nodes=3)  # standard_d2s_v3: 2 cores each, so 2 nodes fit
        pool = wait_for(lambda: (p := client.get_pool("p")).allocation_state == "steady" and p, what="steady pool")
        assert pool.current_dedicated_nodes == 2
        assert pool.target_dedicated_nodes == 3
        assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]
    finally:
        service.stop()
