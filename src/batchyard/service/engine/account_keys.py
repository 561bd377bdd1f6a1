"""Which Batch account an entity belongs to, kept in its key.

One service serves several accounts in one engine and one store. A pool, job, job schedule, certificate or
application is stored and looked up under a key: its id in lower case for the service's own account (the
one the command line names, `None` here), so that stores from before there were other accounts need no
change, and `account/id` for an account made through the management plane. Ids cannot hold a `/` (the
contract allows letters, digits, hyphens and underscores; certificate keys are `sha1-<thumbprint>`), so a
key says its account without a lookup. Tasks live under their job's key, and nodes under their pool's.
"""

from __future__ import annotations

# The service's own account: the one `batchyard serve --account-name` names.
SERVICE_ACCOUNT: str | None = None


def scoped_key(account: str | None, entity_id: str) -> str:
    """The key of an entity of `account` (None: the service's own) with this id (any case)."""
    return scoped_id(account, entity_id.lower())


def scoped_id(account: str | None, entity_id: str) -> str:
    """The id, as given, with its account in front (as a key, without the case folded): for records that keep
    an id as the user spelled it beside other accounts' (pool usage metrics)."""
    return entity_id if account is None else f"{account}/{entity_id}"


def id_in(account: str | None, name: str) -> str | None:
    """The entity id in a scoped id (or key) of `account`; None for another account's."""
    if account is None:
        return None if "/" in name else name
    prefix = f"{account}/"
    return name[len(prefix) :] if name.startswith(prefix) else None


def account_of(key: str) -> str | None:
    """The account (None: the service's own) of an entity's key."""
    account, slash, _ = key.partition("/")
    return account if slash else None


def in_account(key: str, account: str | None) -> bool:
    return account_of(key) == account


def account_path(account: str | None) -> str:
    """Where an account's data plane is below the service's URL: the service's own at its root, another at
    `/accounts/{name}` (its `accountEndpoint` is `host:port/accounts/{name}`; azure-core keeps an endpoint's
    path, and the Shared Key signature covers it)."""
    return "" if account is None else f"/accounts/{account}"
