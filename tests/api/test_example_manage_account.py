"""examples/manage_account.py (the seed's Batch Management walkthrough) runs against the management plane."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from batchyard.service.config import DEV_ACCOUNT_SECONDARY_KEY
from tests.api.test_identity import create_principal
from tests.conftest import Service, make_client, start_service

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "manage_account.py"


def test_manage_account_example(tmp_path: Path) -> None:
    svc: Service = start_service(tmp_path / "svc")
    try:
        principal = tmp_path / "principal.json"
        principal.write_text(json.dumps(create_principal(svc, "--name", "walkthrough")))
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), "--principal", str(principal), "--regenerate", "Secondary"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert result.returncode == 0, report
        endpoint = svc.https_url
        for line in (
            "Total number of Batch accounts under subscription id 00000000-0000-0000-0000-000000000000: 1",
            "Account quota for local region: 3",
            "Accounts in local: 1",
            "You can create 2 accounts in the local region.",
            "Dedicated core quota: 500",
            "Low-priority core quota: 100",
            "Pool quota: 100",
            "Active job and job schedule quota: 300",
            "Regenerated the secondary key: ",
            f"Batch account devbatchaccount1 at {endpoint}: 0 pools",
            f"Created Batch account mynewaccount at {endpoint}/accounts/mynewaccount",
            "Batch account mynewaccount: 0 pools",
            "Deleted Batch account mynewaccount; accounts now: devbatchaccount1",
        ):
            assert line in result.stdout, report
        # the secondary key the example regenerated is refused on the data plane from then on
        with pytest.raises(HttpResponseError) as refused:
            list(make_client(svc.url, DEV_ACCOUNT_SECONDARY_KEY).list_pools())
        assert refused.value.status_code == 403
    finally:
        svc.stop()
