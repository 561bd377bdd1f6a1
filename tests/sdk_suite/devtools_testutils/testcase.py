"""The test base classes: live against batchyard, a test's credential is its account's Shared Key."""

from __future__ import annotations

from typing import Any


class AzureRecordedTestCase:
    @property
    def is_live(self) -> bool:
        return True

    def get_credential(self, client_class: Any, **kwargs: Any) -> Any:
        # In Azure this is an Entra ID credential; batchyard's accounts sign with Shared Key, and the
        # account a test runs against is the one its AccountPreparer created last.
        from azure.core.credentials import AzureNamedKeyCredential

        from .accounts import current_account

        account = current_account()
        return AzureNamedKeyCredential(account.name, account.key)


class AzureMgmtRecordedTestCase(AzureRecordedTestCase):
    pass
