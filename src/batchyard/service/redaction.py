"""Secrets the service keeps but never answers: the contract's `x-ms-secret` properties.

A pool's user account passwords and SSH private keys, mount keys, container registry passwords (of pools,
start tasks, job tasks and tasks) are needed on the nodes, so they are stored; Azure does not send them
back, and neither does batchyard. Every entity document goes through `without_secrets` on its way out.
"""

from __future__ import annotations

from typing import Any

# Property names that are x-ms-secret somewhere in the contract and mean a secret wherever they occur
# (UserAccount.password, LinuxUserConfiguration.sshPrivateKey, AzureBlobFileSystemConfiguration.accountKey
# and sasKey, AzureFileShareConfiguration.accountKey, CifsMountConfiguration.password,
# ContainerRegistryReference.password). No other property of an entity has these names.
SECRET_NAMES = frozenset({"password", "accountKey", "sasKey", "sshPrivateKey"})


def without_secrets(value: Any) -> Any:
    """`value` with every secret property left out (a copy where one was found; `value` itself otherwise)."""
    if isinstance(value, dict):
        cleaned = {name: without_secrets(item) for name, item in value.items() if name not in SECRET_NAMES}
        if len(cleaned) == len(value) and all(cleaned[name] is item for name, item in value.items()):
            return value
        return cleaned
    if isinstance(value, list):
        items = [without_secrets(item) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    return value
