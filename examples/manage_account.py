"""The seed's Batch Management walkthrough ("Manage Batch accounts and quotas with the Batch Management client
library for .NET") with azure-mgmt-batch and azure-identity, against batchyard's management plane:

  1. list the Batch accounts of the subscription and count those in a region;
  2. get the subscription's account quota in that region: how many more accounts may be created there;
  3. print the account's compute quotas (dedicated and low-priority cores, pools, active jobs and schedules);
  4. list the account's keys (and, with --regenerate, regenerate one);
  5. build a data-plane client (azure-batch) from the account's endpoint and primary key, and use it;
  6. create a new Batch account, get it, use it through its own endpoint and key, and delete it.

It needs a service principal (README, Service principals and tokens):

    .venv/bin/batchyard principals create --name admin --data-dir batchyard-data > principal.json
    .venv/bin/python examples/manage_account.py --principal principal.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.identity import ClientSecretCredential
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch.models import BatchAccountCreateParameters, BatchAccountRegenerateKeyParameters

# batchyard's one subscription and resource group (README, Management plane)
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "batchyard"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"


def masked(key: str | None) -> str:
    return "(none)" if not key else key[:6] + "…"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--principal", required=True, help="the JSON `batchyard principals create` printed")
    parser.add_argument("--account", default="devbatchaccount1")
    parser.add_argument("--region", default="local")
    parser.add_argument("--regenerate", choices=["Primary", "Secondary"], help="regenerate this key")
    parser.add_argument("--new-account", default="mynewaccount", help="the account step 6 creates and deletes")
    args = parser.parse_args()

    with open(args.principal) as file:
        principal: dict[str, Any] = json.load(file)
    ca = principal["caCertificate"]
    credential = ClientSecretCredential(
        principal["tenantId"],
        principal["clientId"],
        principal["clientSecret"],
        authority=principal["authority"],
        disable_instance_discovery=True,  # a local authority, not one of Azure AD's
        connection_verify=ca,
    )
    management = BatchManagementClient(
        credential,
        SUBSCRIPTION_ID,
        base_url=principal["authority"],  # the service's HTTPS URL
        credential_scopes=[MANAGEMENT_SCOPE],
        connection_verify=ca,
    )

    # 1-2. accounts in the subscription and in the region, and how many more the region allows
    accounts = list(management.batch_account.list())
    print(f"Total number of Batch accounts under subscription id {SUBSCRIPTION_ID}: {len(accounts)}")
    in_region = sum(1 for account in accounts if account.location == args.region)
    quota = management.location.get_quotas(args.region).account_quota or 0
    print(f"Account quota for {args.region} region: {quota}")
    print(f"Accounts in {args.region}: {in_region}")
    print(f"You can create {quota - in_region} accounts in the {args.region} region.")

    # 3. the account's compute quotas
    account = management.batch_account.get(RESOURCE_GROUP, args.account)
    print(f"Dedicated core quota: {account.dedicated_core_quota}")
    print(f"Low-priority core quota: {account.low_priority_core_quota}")
    print(f"Pool quota: {account.pool_quota}")
    print(f"Active job and job schedule quota: {account.active_job_and_job_schedule_quota}")

    # 4. keys
    keys = management.batch_account.get_keys(RESOURCE_GROUP, args.account)
    print(f"Primary key: {masked(keys.primary)}")
    print(f"Secondary key: {masked(keys.secondary)}")
    if args.regenerate:
        keys = management.batch_account.regenerate_key(
            RESOURCE_GROUP, args.account, BatchAccountRegenerateKeyParameters(key_name=args.regenerate)
        )
        print(f"Regenerated the {args.regenerate.lower()} key: {masked(getattr(keys, args.regenerate.lower()))}")

    # 5. a data-plane client from the account's endpoint and its primary key
    assert keys.primary is not None and account.account_endpoint is not None
    batch = BatchClient(
        "https://" + account.account_endpoint,
        AzureNamedKeyCredential(args.account, keys.primary),
        connection_verify=ca,
    )
    pools = list(batch.list_pools())
    print(f"Batch account {args.account} at https://{account.account_endpoint}: {len(pools)} pools")

    # 6. create a new account, get it from the service, use it, and delete it
    management.batch_account.begin_create(
        RESOURCE_GROUP, args.new_account, BatchAccountCreateParameters(location=args.region)
    ).result()
    created = management.batch_account.get(RESOURCE_GROUP, args.new_account)
    print(f"Created Batch account {created.name} at https://{created.account_endpoint}")
    new_keys = management.batch_account.get_keys(RESOURCE_GROUP, args.new_account)
    assert new_keys.primary is not None and created.account_endpoint is not None
    new_batch = BatchClient(
        "https://" + created.account_endpoint,
        AzureNamedKeyCredential(args.new_account, new_keys.primary),
        connection_verify=ca,
    )
    print(f"Batch account {args.new_account}: {len(list(new_batch.list_pools()))} pools")
    management.batch_account.begin_delete(RESOURCE_GROUP, args.new_account).result()
    remaining = [account.name for account in management.batch_account.list()]
    print(f"Deleted Batch account {args.new_account}; accounts now: {', '.join(sorted(str(n) for n in remaining))}")


if __name__ == "__main__":
    main()
