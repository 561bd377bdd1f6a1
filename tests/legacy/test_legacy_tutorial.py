"""The seed's Azure Batch Python tutorial (python_tutorial_client.py) with the legacy SDK, azure-batch 14.2.0.

Written in the tutorial's style: `azure.batch.BatchServiceClient` + `batch_auth.SharedKeyCredentials`, the
msrest models (`PoolAddParameter`, `StartTask`, `JobAddParameter`, `TaskAddParameter`), operation groups
(`pool.add`, `task.add_collection`, `task.list`, `compute_node.list`, `file.get_from_task`, `job.delete`,
`pool.delete`) and `BatchErrorException` for errors. Azure Storage is replaced by a loopback HTTP server
(resource files by `http_url`); the task script is examples/python_tutorial_task.py.

Run by the legacy venv: `.venv-legacy/bin/python -m pytest tests/legacy -q`.
"""

from __future__ import annotations

import base64
import datetime
import io
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.batch.batch_auth", reason="needs the legacy azure-batch 12.x-14.x SDK (.venv-legacy)")

import azure.batch as batch  # noqa: E402
import azure.batch.batch_auth as batchauth  # noqa: E402
import azure.batch.models as batchmodels  # noqa: E402

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME  # noqa: E402
from tests.conftest import wait_for  # noqa: E402

LEGACY_API_VERSION = "2024-02-01.19.0"
TASK_SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "python_tutorial_task.py"
STANDARD_OUT_FILE_NAME = "stdout.txt"


def _text(counts: dict[str, int]) -> str:
    """A deterministic text in which each word occurs `counts[word]` times (mixed case, with punctuation)."""
    words: list[str] = []
    for round_ in range(max(counts.values())):
        words += [word.capitalize() if round_ % 2 else word for word, count in counts.items() if round_ < count]
    return " ".join(words[:-1]) + ", " + words[-1] + ".\n"


# The tutorial's ./data/taskdata*.txt, and the top three words python_tutorial_task.py prints for each.
INPUTS = {
    "taskdata1.txt": {"wind": 6, "rain": 4, "cloud": 3, "sun": 2, "fog": 1},
    "taskdata2.txt": {"oak": 2, "pine": 7, "birch": 5, "elm": 1, "ash": 4},
    "taskdata3.txt": {"salt": 3, "pepper": 3, "bread": 9, "butter": 8, "jam": 4},
}
EXPECTED_STDOUT = {
    "taskdata1.txt": "wind: 6\nrain: 4\ncloud: 3\n",
    "taskdata2.txt": "pine: 7\nbirch: 5\nash: 4\n",
    "taskdata3.txt": "bread: 9\nbutter: 8\njam: 4\n",
}


# --- the tutorial's helpers (common/helpers.py and python_tutorial_client.py), for the 14.x SDK -----------


def wrap_commands_in_shell(ostype: str, commands: list[str]) -> str:
    if ostype.lower() == "linux":
        return "/bin/bash -c 'set -e; set -o pipefail; {}; wait'".format("; ".join(commands))
    raise ValueError(f"unknown ostype: {ostype}")


def print_batch_exception(batch_exception: batchmodels.BatchErrorException) -> None:
    print("-------------------------------------------")
    print("Exception encountered:")
    if batch_exception.error and batch_exception.error.message and batch_exception.error.message.value:
        print(batch_exception.error.message.value)
        if batch_exception.error.values:
            print()
            for mesg in batch_exception.error.values:
                print(f"{mesg.key}:\t{mesg.value}")
    print("-------------------------------------------")


def _read_stream_as_string(stream: Any, encoding: str | None) -> str:
    output = io.BytesIO()
    try:
        for data in stream:
            output.write(data)
        return output.getvalue().decode(encoding or "utf-8")
    finally:
        output.close()


def select_ubuntu_1804(batch_service_client: batch.BatchServiceClient) -> batchmodels.VirtualMachineConfiguration:
    """Pick the node agent and image by name, as the seed does with the node agent SKU list."""
    image = next(
        image
        for image in batch_service_client.account.list_supported_images()
        if "ubuntu 18.04" in image.node_agent_sku_id
    )
    return batchmodels.VirtualMachineConfiguration(
        image_reference=image.image_reference, node_agent_sku_id=image.node_agent_sku_id
    )


def create_pool(
    batch_service_client: batch.BatchServiceClient,
    pool_id: str,
    resource_files: list[batchmodels.ResourceFile],
    node_count: int = 2,
    task_commands: list[str] | None = None,
) -> None:
    print(f"Creating pool [{pool_id}]...")
    if task_commands is None:
        # Copy python_tutorial_task.py to the "shared" directory that all tasks on the node can access.
        task_commands = ["cp -r $AZ_BATCH_TASK_WORKING_DIR/* $AZ_BATCH_NODE_SHARED_DIR"]
    new_pool = batchmodels.PoolAddParameter(
        id=pool_id,
        virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
            image_reference=batchmodels.ImageReference(
                publisher="Canonical", offer="UbuntuServer", sku="18.04-LTS", version="latest"
            ),
            node_agent_sku_id="batch.node.ubuntu 18.04",
        ),
        vm_size="STANDARD_A1_v2",
        target_dedicated_nodes=node_count,
        start_task=batchmodels.StartTask(
            command_line=wrap_commands_in_shell("linux", task_commands),
            user_identity=batchmodels.UserIdentity(
                auto_user=batchmodels.AutoUserSpecification(
                    scope=batchmodels.AutoUserScope.pool, elevation_level=batchmodels.ElevationLevel.admin
                )
            ),
            wait_for_success=True,
            resource_files=resource_files,
        ),
    )
    try:
        batch_service_client.pool.add(new_pool)
    except batchmodels.BatchErrorException as err:
        print_batch_exception(err)
        raise


def create_job(batch_service_client: batch.BatchServiceClient, job_id: str, pool_id: str) -> None:
    print(f"Creating job [{job_id}]...")
    job = batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id))
    try:
        batch_service_client.job.add(job)
    except batchmodels.BatchErrorException as err:
        print_batch_exception(err)
        raise


def add_tasks(
    batch_service_client: batch.BatchServiceClient, job_id: str, input_files: list[batchmodels.ResourceFile]
) -> batchmodels.TaskAddCollectionResult:
    print(f"Adding {len(input_files)} tasks to job [{job_id}]...")
    tasks = []
    for index, input_file in enumerate(input_files):
        command = [
            f"python3 $AZ_BATCH_NODE_SHARED_DIR/python_tutorial_task.py --filepath {input_file.file_path} --numwords 3"
        ]
        tasks.append(
            batchmodels.TaskAddParameter(
                id=f"topNtask{index}",
                command_line=wrap_commands_in_shell("linux", command),
                resource_files=[input_file],
            )
        )
    return batch_service_client.task.add_collection(job_id, tasks)


def wait_for_tasks_to_complete(
    batch_service_client: batch.BatchServiceClient, job_id: str, timeout: datetime.timedelta
) -> bool:
    timeout_expiration = datetime.datetime.now() + timeout
    print(f"Monitoring all tasks for 'Completed' state, timeout in {timeout}...", end="")
    while datetime.datetime.now() < timeout_expiration:
        print(".", end="")
        sys.stdout.flush()
        tasks = batch_service_client.task.list(job_id)
        incomplete_tasks = [task for task in tasks if task.state != batchmodels.TaskState.completed]
        if not incomplete_tasks:
            print()
            return True
        time.sleep(0.2)
    print()
    raise RuntimeError(f"ERROR: Tasks did not reach 'Completed' state within timeout period of {timeout}")


def error_of(call: Any) -> batchmodels.BatchErrorException:
    with pytest.raises(batchmodels.BatchErrorException) as info:
        call()
    return info.value


def gone(call: Any, code: str) -> bool:
    try:
        call()
    except batchmodels.BatchErrorException as err:
        return err.error.code == code
    return False


# --- tests ------------------------------------------------------------------------------------------------


def test_the_legacy_api_version_is_accepted(legacy_client: Any, service: Any, unique: Any) -> None:
    assert legacy_client.api_version == LEGACY_API_VERSION
    raw = legacy_client.pool.exists(unique("absent"), raw=True)
    assert raw.output is False
    assert raw.response.status_code == 404
    assert f"api-version={LEGACY_API_VERSION}" in raw.response.url

    pool_id = unique("pool")
    legacy_client.pool.add(
        batchmodels.PoolAddParameter(
            id=pool_id,
            vm_size="STANDARD_A1_v2",
            virtual_machine_configuration=select_ubuntu_1804(legacy_client),
            target_dedicated_nodes=0,
        )
    )
    try:
        pool = legacy_client.pool.get(pool_id)
        assert pool.id == pool_id
        assert pool.state == batchmodels.PoolState.active
        assert pool.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 18.04"
        assert pool.virtual_machine_configuration.image_reference.offer == "UbuntuServer"
        assert legacy_client.pool.exists(pool_id) is True
    finally:
        legacy_client.pool.delete(pool_id)

    # A version the service does not know is refused the way Azure Batch refuses it.
    other = batch.BatchServiceClient(
        batchauth.SharedKeyCredentials(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY), batch_url=service.url
    )
    other.job.api_version = "2015-01-01.1.0"
    err = error_of(lambda: other.job.get("anything"))
    assert err.response.status_code == 400
    assert err.error.code == "InvalidQueryParameterValue"
    values = {v.key: v.value for v in err.error.values}
    assert values["QueryParameterName"] == "api-version"
    assert values["QueryParameterValue"] == "2015-01-01.1.0"


def test_list_supported_images_finds_ubuntu_1804_by_name(legacy_client: Any) -> None:
    images = list(legacy_client.account.list_supported_images())
    ubuntu = next(image for image in images if "ubuntu 18.04" in image.node_agent_sku_id)
    assert ubuntu.node_agent_sku_id == "batch.node.ubuntu 18.04"
    ref = ubuntu.image_reference
    assert (ref.publisher, ref.offer, ref.sku, ref.version) == ("Canonical", "UbuntuServer", "18.04-LTS", "latest")
    assert ubuntu.os_type == batchmodels.OSType.linux
    assert ubuntu.verification_type == batchmodels.VerificationType.verified
    assert isinstance(ubuntu.batch_support_end_of_life, datetime.datetime)
    # The legacy pager follows odata.nextLink through small pages to the same list.
    paged = list(
        legacy_client.account.list_supported_images(batchmodels.AccountListSupportedImagesOptions(max_results=4))
    )
    assert [(i.node_agent_sku_id, i.image_reference.sku) for i in paged] == [
        (i.node_agent_sku_id, i.image_reference.sku) for i in images
    ]


def test_python_tutorial_workflow(legacy_client: Any, file_server: tuple[str, Path], unique: Any) -> None:
    batch_client = legacy_client
    base_url, served = file_server
    pool_id, job_id = unique("PythonTutorialPool"), unique("PythonTutorialJob")

    # Steps 1-2: the "application" and "input" containers are one directory served over HTTP.
    shutil.copyfile(TASK_SCRIPT, served / TASK_SCRIPT.name)
    for name, counts in INPUTS.items():
        (served / name).write_text(_text(counts), encoding="utf-8")
    application_files = [
        batchmodels.ResourceFile(http_url=f"{base_url}/{TASK_SCRIPT.name}", file_path=TASK_SCRIPT.name)
    ]
    input_files = [batchmodels.ResourceFile(http_url=f"{base_url}/{name}", file_path=name) for name in INPUTS]

    try:
        create_pool(batch_client, pool_id, application_files, node_count=2)  # step 3
        create_job(batch_client, job_id, pool_id)  # step 4
        added = add_tasks(batch_client, job_id, input_files)  # step 5
        assert sorted(result.task_id for result in added.value) == ["topNtask0", "topNtask1", "topNtask2"]
        assert all(result.status == batchmodels.TaskAddStatus.success for result in added.value)
        assert wait_for_tasks_to_complete(batch_client, job_id, datetime.timedelta(seconds=60))  # step 6

        # The nodes ran the start task, which put the task script into their shared directory.
        nodes = wait_for(
            lambda: [
                n for n in batch_client.compute_node.list(pool_id) if n.state == batchmodels.ComputeNodeState.idle
            ],
            what="the nodes to be idle",
        )
        assert len(nodes) == 2
        for node in nodes:
            info = node.start_task_info
            assert info.state == batchmodels.StartTaskState.completed
            assert (info.exit_code, info.result) == (0, batchmodels.TaskExecutionResult.success)
            script = batch_client.file.get_from_compute_node(pool_id, node.id, f"shared/{TASK_SCRIPT.name}")
            assert _read_stream_as_string(script, "utf-8") == TASK_SCRIPT.read_text()

        # Step 7: each task printed the top three words of its input and wrote them to its output file.
        tasks = list(batch_client.task.list(job_id))
        assert len(tasks) == 3
        for task in tasks:
            name = list(INPUTS)[int(task.id.removeprefix("topNtask"))]
            assert task.execution_info.exit_code == 0, task.execution_info
            assert task.execution_info.result == batchmodels.TaskExecutionResult.success
            assert task.node_info.pool_id == pool_id
            assert task.node_info.node_id in {node.id for node in nodes}
            stream = batch_client.file.get_from_task(job_id, task.id, STANDARD_OUT_FILE_NAME)
            assert _read_stream_as_string(stream, None) == EXPECTED_STDOUT[name]
            output = batch_client.file.get_from_task(job_id, task.id, f"wd/{Path(name).stem}_OUTPUT.txt")
            assert _read_stream_as_string(output, "utf-8") == EXPECTED_STDOUT[name]
        counts = batch_client.job.get_task_counts(job_id).task_counts
        assert (counts.completed, counts.succeeded, counts.failed) == (3, 3, 0)
    finally:
        # Step 9: delete the job and the pool.
        for delete, resource_id in ((batch_client.job.delete, job_id), (batch_client.pool.delete, pool_id)):
            try:
                delete(resource_id)
            except batchmodels.BatchErrorException as err:
                print_batch_exception(err)

    wait_for(lambda: gone(lambda: batch_client.job.get(job_id), "JobNotFound"), what="the job to be deleted")
    wait_for(lambda: not batch_client.pool.exists(pool_id), what="the pool to be deleted")


def test_start_task_failure_with_wait_for_success(legacy_client: Any, unique: Any) -> None:
    pool_id = unique("pool")
    create_pool(legacy_client, pool_id, [], node_count=1, task_commands=["echo preparing", "exit 3"])
    try:
        node = wait_for(
            lambda: next(
                (
                    n
                    for n in legacy_client.compute_node.list(pool_id)
                    if n.state == batchmodels.ComputeNodeState.start_task_failed
                ),
                None,
            ),
            what="the start task to fail",
        )
        info = node.start_task_info
        assert info.state == batchmodels.StartTaskState.completed
        assert info.exit_code == 3
        assert info.result == batchmodels.TaskExecutionResult.failure
        assert info.failure_info.category == batchmodels.ErrorCategory.user_error
        stdout = legacy_client.file.get_from_compute_node(pool_id, node.id, "startup/stdout.txt")
        assert _read_stream_as_string(stdout, "utf-8") == "preparing\n"
    finally:
        legacy_client.pool.delete(pool_id)


def test_file_get_from_task_streams(legacy_client: Any, unique: Any) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    legacy_client.pool.add(
        batchmodels.PoolAddParameter(
            id=pool_id,
            vm_size="STANDARD_A1_v2",
            virtual_machine_configuration=select_ubuntu_1804(legacy_client),
            target_dedicated_nodes=1,
        )
    )
    try:
        create_job(legacy_client, job_id, pool_id)
        legacy_client.task.add(
            job_id,
            batchmodels.TaskAddParameter(
                id="big",
                command_line="python3 -c \"import sys; sys.stdout.write('0123456789' * 20000)\"",
            ),
        )
        task = wait_for(
            lambda: (t := legacy_client.task.get(job_id, "big")).state == batchmodels.TaskState.completed and t,
            what="the task to complete",
        )
        assert task.execution_info.exit_code == 0

        chunks: list[int] = []
        stream = legacy_client.file.get_from_task(
            job_id, "big", STANDARD_OUT_FILE_NAME, callback=lambda chunk, response=None: chunks.append(len(chunk))
        )
        assert b"".join(stream) == b"0123456789" * 20000
        assert len(chunks) > 1 and sum(chunks) == 200000

        ranged = legacy_client.file.get_from_task(
            job_id, "big", STANDARD_OUT_FILE_NAME, batchmodels.FileGetFromTaskOptions(ocp_range="bytes=10-24")
        )
        assert b"".join(ranged) == b"012345678901234"

        props = legacy_client.file.get_properties_from_task(job_id, "big", STANDARD_OUT_FILE_NAME, raw=True)
        assert props.headers["Content-Length"] == 200000
        assert props.headers["ocp-batch-file-isdirectory"] is False

        names = {f.name for f in legacy_client.file.list_from_task(job_id, "big")}
        assert {"stdout.txt", "stderr.txt"} <= names
    finally:
        legacy_client.job.delete(job_id)
        legacy_client.pool.delete(pool_id)


def test_batch_errors_seed_style(legacy_client: Any, unique: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client = legacy_client
    pool_id, job_id = unique("pool"), unique("job")
    pool = batchmodels.PoolAddParameter(
        id=pool_id,
        vm_size="STANDARD_A1_v2",
        virtual_machine_configuration=select_ubuntu_1804(client),
        target_dedicated_nodes=0,
    )
    client.pool.add(pool)
    try:
        err = error_of(lambda: client.pool.add(pool))
        assert (err.response.status_code, err.error.code) == (409, "PoolExists")
        assert err.error.message.value == "The specified pool already exists."

        assert error_of(lambda: client.pool.get(unique("absent"))).error.code == "PoolNotFound"
        assert error_of(lambda: client.job.get(unique("absent"))).error.code == "JobNotFound"
        assert error_of(lambda: client.job.delete(unique("absent"))).error.code == "JobNotFound"
        task = batchmodels.TaskAddParameter(id="t", command_line="/bin/true")
        assert error_of(lambda: client.task.add(unique("absent"), task)).error.code == "JobNotFound"

        create_job(client, job_id, pool_id)
        err = error_of(lambda: create_job(client, job_id, pool_id))
        assert (err.response.status_code, err.error.code) == (409, "JobExists")
        client.task.add(job_id, task)
        assert error_of(lambda: client.task.add(job_id, task)).error.code == "TaskExists"
        assert error_of(lambda: client.task.get(job_id, "absent")).error.code == "TaskNotFound"
        # add_collection reports a failed task in its result rather than raising.
        result = client.task.add_collection(
            job_id, [task, batchmodels.TaskAddParameter(id="t2", command_line="/bin/true")]
        )
        statuses = {r.task_id: (r.status, r.error.code if r.error else None) for r in result.value}
        assert statuses == {
            "t": (batchmodels.TaskAddStatus.client_error, "TaskExists"),
            "t2": (batchmodels.TaskAddStatus.success, None),
        }

        # The service validates what the client does not: detail values reach print_batch_exception.
        capsys.readouterr()
        bad = batchmodels.PoolAddParameter(
            id=unique("pool"),
            vm_size="STANDARD_A1_v2",
            virtual_machine_configuration=select_ubuntu_1804(client),
            target_dedicated_nodes=0,
            task_slots_per_node=0,
        )
        with pytest.raises(batchmodels.BatchErrorException) as info:
            create_pool_plain(client, bad)
        assert (info.value.response.status_code, info.value.error.code) == (400, "InvalidPropertyValue")
        printed = capsys.readouterr().out
        assert "The value provided for one of the properties in the request body is invalid." in printed
        assert "PropertyName:\ttaskSlotsPerNode" in printed
    finally:
        for delete, resource_id in ((client.job.delete, job_id), (client.pool.delete, pool_id)):
            try:
                delete(resource_id)
            except batchmodels.BatchErrorException:
                pass


def create_pool_plain(batch_service_client: batch.BatchServiceClient, pool: batchmodels.PoolAddParameter) -> None:
    try:
        batch_service_client.pool.add(pool)
    except batchmodels.BatchErrorException as err:
        print_batch_exception(err)
        raise


def test_wrong_key_is_an_authentication_error(service: Any) -> None:
    client = batch.BatchServiceClient(
        batchauth.SharedKeyCredentials(DEV_ACCOUNT_NAME, base64.b64encode(b"not the account key" * 3).decode()),
        batch_url=service.url,
    )
    err = error_of(lambda: list(client.pool.list()))
    assert (err.response.status_code, err.error.code) == (403, "AuthenticationFailed")
