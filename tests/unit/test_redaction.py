"""The contract's secret properties never leave the service (service/redaction.py)."""

from __future__ import annotations

from batchyard.service.redaction import without_secrets


def test_every_secret_is_left_out_wherever_it_is_nested() -> None:
    pool = {
        "id": "p",
        "userAccounts": [{"name": "a", "password": "x", "linuxUserConfiguration": {"uid": 1, "sshPrivateKey": "k"}}],
        "mountConfiguration": [
            {"azureBlobFileSystemConfiguration": {"accountName": "n", "accountKey": "k", "sasKey": "s"}},
            {"cifsMountConfiguration": {"username": "u", "password": "p", "source": "//s"}},
        ],
        "virtualMachineConfiguration": {
            "containerConfiguration": {"containerRegistries": [{"username": "u", "password": "p"}]}
        },
        "metadata": [{"name": "password", "value": "a metadata value named password is not a secret"}],
    }
    assert without_secrets(pool) == {
        "id": "p",
        "userAccounts": [{"name": "a", "linuxUserConfiguration": {"uid": 1}}],
        "mountConfiguration": [
            {"azureBlobFileSystemConfiguration": {"accountName": "n"}},
            {"cifsMountConfiguration": {"username": "u", "source": "//s"}},
        ],
        "virtualMachineConfiguration": {"containerConfiguration": {"containerRegistries": [{"username": "u"}]}},
        "metadata": [{"name": "password", "value": "a metadata value named password is not a secret"}],
    }
    assert pool["userAccounts"][0]["password"] == "x"  # the stored document is unchanged


def test_a_document_without_secrets_is_not_copied() -> None:
    task = {"id": "t", "commandLine": "true", "environmentSettings": [{"name": "A", "value": "1"}]}
    assert without_secrets(task) is task
