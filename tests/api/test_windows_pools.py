"""Windows pools (README, "Windows pools"): the batch.node.windows amd64 agent and Windows Server images,
their nodes' `cmd /c` command lines run through Wine, remote login by RDP, and a host without Wine."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import (
    create_job,
    delete_pool_quietly,
    error_code,
    idle_nodes,
    read_task_file,
    run_task,
    signed_request,
    temp_pool,
)
from tests.conftest import Service, make_client, start_service, wait_for

WINE = shutil.which("wine") or shutil.which("wine64")
needs_wine = pytest.mark.skipif(WINE is None, reason="needs Wine (Debian's wine package; scripts/test.sh installs it)")
# Wine makes the node's prefix (its C: drive) when the node starts: many seconds on a busy host.
WINE_WAIT = 240.0


def windows_config(**extra: Any) -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher="MicrosoftWindowsServer", offer="WindowsServer", sku="2022-datacenter-smalldisk"
        ),
        node_agent_sku_id="batch.node.windows amd64",
        **extra,
    )


def create_windows_pool(client: Any, pool_id: str, **extra: Any) -> None:
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=windows_config(
                windows_configuration=m.WindowsConfiguration(enable_automatic_updates=False),
                os_disk=m.BatchOsDisk(caching=m.CachingType.READ_WRITE),
            ),
            target_dedicated_nodes=1,
            **extra,
        )
    )


@pytest.fixture(scope="module")
def windows_pool(client: Any, service: Service) -> Iterator[tuple[str, str, str]]:
    """(pool id, its node's id, a job on it): one Windows node for the module, its Wine prefix made once."""
    pool_id, job_id = "windows-pool", "windows-job"
    accounts = [
        m.UserAccount(
            name="winuser",
            password="Secret-123",
            windows_user_configuration=m.WindowsUserConfiguration(login_mode=m.LoginMode.BATCH),
        )
    ]
    # Without Wine it would fail, and the node would not become idle for the tests that need no Wine.
    start = (
        m.BatchStartTask(
            command_line='cmd /c "echo started> %AZ_BATCH_NODE_SHARED_DIR%\\started.txt"', wait_for_success=True
        )
        if WINE
        else None
    )
    create_windows_pool(client, pool_id, user_accounts=accounts, start_task=start)
    try:
        # The start task waits for the node's Wine prefix.
        node = wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=WINE_WAIT, what="the Windows node")[0]
        create_job(client, job_id, pool_id)
        yield pool_id, node.id, job_id
    finally:
        delete_pool_quietly(client, pool_id)


def test_supported_images_list_windows_server(client: Any) -> None:
    windows = list(client.list_supported_images(filter="osType eq 'windows'"))
    assert {(image.os_type, image.node_agent_sku_id) for image in windows} == {("windows", "batch.node.windows amd64")}
    skus = {image.image_reference.sku for image in windows}
    assert {"2016-datacenter-smalldisk", "2019-datacenter", "2022-datacenter"} <= skus
    assert all(image.image_reference.offer == "windowsserver" for image in windows)


def test_a_windows_pool_keeps_its_windows_properties(client: Any, windows_pool: tuple[str, str, str]) -> None:
    pool = client.get_pool(windows_pool[0])
    vmc = pool.virtual_machine_configuration
    assert vmc.node_agent_sku_id == "batch.node.windows amd64"
    assert vmc.windows_configuration.enable_automatic_updates is False
    assert vmc.os_disk.caching == "readwrite"
    assert pool.user_accounts[0].windows_user_configuration.login_mode == "batch"


def test_windows_configuration_is_refused_on_a_linux_pool(client: Any, unique: Callable[[str], str]) -> None:
    config = windows_config(windows_configuration=m.WindowsConfiguration(enable_automatic_updates=True))
    config.node_agent_sku_id = "batch.node.ubuntu 22.04"
    with pytest.raises(HttpResponseError) as caught:
        client.create_pool(
            m.BatchPoolCreateOptions(
                id=unique("linux-win"), vm_size="standard_d2s_v3", virtual_machine_configuration=config
            )
        )
    assert error_code(caught.value) == "InvalidPropertyValue"


@needs_wine
def test_a_cmd_task_runs_through_wine(client: Any, windows_pool: tuple[str, str, str]) -> None:
    job_id = windows_pool[2]
    task = run_task(client, job_id, "echo-id", "cmd /c echo %AZ_BATCH_TASK_ID%", timeout=WINE_WAIT)
    assert task.execution_info.result == "success", task.execution_info.failure_info
    assert read_task_file(client, job_id, "echo-id", "stdout.txt").strip() == "echo-id"


@needs_wine
def test_windows_paths_reach_the_node_directories(client: Any, windows_pool: tuple[str, str, str]) -> None:
    """%AZ_BATCH_NODE_SHARED_DIR% is a Windows path (Wine's Z: drive) of the node's shared directory."""
    pool_id, node_id, job_id = windows_pool
    command = 'cmd /c "echo %AZ_BATCH_NODE_SHARED_DIR%& echo from windows> %AZ_BATCH_NODE_SHARED_DIR%\\note.txt"'
    task = run_task(client, job_id, "shared", command, timeout=WINE_WAIT)
    assert task.execution_info.result == "success", task.execution_info.failure_info
    shown = read_task_file(client, job_id, "shared", "stdout.txt").strip()
    assert shown.startswith("Z:\\") and shown.endswith("\\shared") and "/" not in shown
    note = b"".join(client.download_node_file(pool_id, node_id, "shared/note.txt")).decode()
    assert note.strip() == "from windows"


@needs_wine
def test_the_exit_code_of_cmd_is_the_tasks(client: Any, windows_pool: tuple[str, str, str]) -> None:
    task = run_task(client, windows_pool[2], "exit-3", 'cmd /c "exit /b 3"', timeout=WINE_WAIT)
    assert task.execution_info.exit_code == 3
    assert task.execution_info.result == "failure"


@needs_wine
@pytest.mark.parametrize("program", ["nothere.exe /quiet", "C:\\nothere\\prog.exe"])
def test_a_program_wine_cannot_find_is_command_program_not_found(
    client: Any, windows_pool: tuple[str, str, str], program: str
) -> None:
    """As a Windows node says of a program that is not there; `cmd /c` of one is cmd's own exit code."""
    task_id = "missing-" + ("path" if "\\" in program else "name")
    task = run_task(client, windows_pool[2], task_id, program, timeout=WINE_WAIT)
    failure = task.execution_info.failure_info
    assert task.execution_info.result == "failure" and task.execution_info.exit_code is None
    assert (failure.category, failure.code) == ("usererror", "CommandProgramNotFound"), failure
    assert "Wine" in failure.details[0].value


@needs_wine
def test_the_start_task_runs_through_wine(client: Any, windows_pool: tuple[str, str, str]) -> None:
    pool_id, node_id, _ = windows_pool
    node = client.get_node(pool_id, node_id)
    assert node.start_task_info.exit_code == 0
    started = b"".join(client.download_node_file(pool_id, node_id, "shared/started.txt")).decode()
    assert started.strip() == "started"


def test_remote_login_is_rdp(client: Any, windows_pool: tuple[str, str, str]) -> None:
    pool_id, node_id, _ = windows_pool
    settings = client.get_node_remote_login_settings(pool_id, node_id)
    assert settings.remote_login_port == 3389
    assert settings.remote_login_ip_address


def test_get_remote_desktop_returns_an_rdp_file(
    client: Any, service: Service, windows_pool: tuple[str, str, str]
) -> None:
    """GetRemoteDesktop of the older api-versions (the legacy SDK's compute_node.get_remote_desktop)."""
    pool_id, node_id, _ = windows_pool
    address = client.get_node_remote_login_settings(pool_id, node_id).remote_login_ip_address
    reply = signed_request(service.url, "GET", f"/pools/{pool_id}/nodes/{node_id}/rdp", api_version="2022-01-01.15.0")
    assert reply.status_code == 200, reply.text
    assert f"full address:s:{address}:3389\r\n" in reply.text


def test_a_linux_node_has_no_remote_desktop(client: Any, service: Service, unique: Callable[[str], str]) -> None:
    pool_id = unique("linux-rdp")
    with temp_pool(client, pool_id):
        node = wait_for(lambda: idle_nodes(client, pool_id, 1), what="the Linux node")[0]
        reply = signed_request(service.url, "GET", f"/pools/{pool_id}/nodes/{node.id}/rdp")
        assert reply.status_code == 409
        assert reply.json()["code"] == "OperationNotValidOnNode"


@pytest.fixture(scope="module")
def service_without_wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose agents' PATH has the Python environment's programs only: no Wine."""
    path = str(Path(sys.executable).parent)
    assert shutil.which("wine", path=path) is None and shutil.which("wine64", path=path) is None
    svc = start_service(tmp_path_factory.mktemp("no-wine"), env={"PATH": path})
    yield svc
    svc.stop()


def test_without_wine_a_task_fails_saying_so(service_without_wine: Service) -> None:
    client = make_client(service_without_wine.url)
    create_windows_pool(client, "no-wine")
    wait_for(lambda: idle_nodes(client, "no-wine", 1), timeout=60, what="the Windows node")
    create_job(client, "no-wine-job", "no-wine")
    task = run_task(client, "no-wine-job", "echo", "cmd /c echo hello")
    failure = task.execution_info.failure_info
    assert task.execution_info.result == "failure"
    assert (failure.category, failure.code) == ("usererror", "CommandProgramNotFound")
    assert "Wine" in failure.details[0].value
