"""The resource preparers: decorators that make a resource before a test and remove it after, handing it
to the test as keyword arguments (as the Azure SDK's AbstractPreparer does). Resource groups and storage
accounts are names only here; Batch accounts and pools are made by the management stand-in
(management.py) that `create_mgmt_client` returns."""

from __future__ import annotations

import functools
import os
import random
import string
from collections import namedtuple
from collections.abc import Callable
from typing import Any

from .management import LocalBatchManagementClient
from .resource_testcase import RESOURCE_GROUP_PARAM

FakeResource = namedtuple("FakeResource", ["name", "id"])


class AzureTestError(Exception):
    pass


class AzureMgmtPreparer:
    def __init__(
        self,
        name_prefix: str,
        random_name_length: int,
        disable_recording: bool = True,
        playback_fake_resource: Any = None,
        client_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.name_prefix = name_prefix
        self.random_name_length = random_name_length
        self.moniker = name_prefix
        self.resource_moniker = name_prefix

    @property
    def is_live(self) -> bool:
        return True

    def create_mgmt_client(self, client_class: Any, **kwargs: Any) -> LocalBatchManagementClient:
        return LocalBatchManagementClient()

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return {}

    def remove_resource(self, name: str, **kwargs: Any) -> None:
        return None

    def random_name(self) -> str:
        tail = self.random_name_length - len(self.name_prefix)
        return self.name_prefix + "".join(random.choices(string.ascii_lowercase + string.digits, k=tail))

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def with_resource(test_self: Any, **kwargs: Any) -> Any:
            name = self.random_name()
            made = self.create_resource(name, **kwargs)
            try:
                return await fn(test_self, **(kwargs | made))
            finally:
                self.remove_resource(name, **(kwargs | made))

        return with_resource


class ResourceGroupPreparer(AzureMgmtPreparer):
    """A resource group is only a name to the preparers that follow."""

    def __init__(self, name_prefix: str = "rgpy", location: str = "westus", **kwargs: Any) -> None:
        super().__init__(name_prefix, 24)
        self.location = location

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        group = FakeResource(name=name, id=f"/subscriptions/local/resourceGroups/{name}")
        return {RESOURCE_GROUP_PARAM: group, "location": self.location}


CachedResourceGroupPreparer = ResourceGroupPreparer


class StorageAccountPreparer(AzureMgmtPreparer):
    """The storage account a Batch account links to: the account's service links the shared Azurite
    (accounts.py), so here it is only a name."""

    def __init__(self, name_prefix: str = "", location: str = "westus", **kwargs: Any) -> None:
        super().__init__(name_prefix, 24)

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return {"storage_account": FakeResource(name=name, id=name)}


class EnvironmentVariableLoader(AzureMgmtPreparer):
    """Hands the test `<prefix>_...` settings from the environment (upper case), else the defaults given."""

    def __init__(self, directory: str, **defaults: str) -> None:
        super().__init__("", 0)
        self.defaults = defaults

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return {key: os.environ.get(key.upper(), value) for key, value in self.defaults.items()}
