"""The Azure Batch Python tutorial (python_tutorial_client.py) against batchyard, with azure-batch 15.x.

The workflow of the tutorial, step by step, with Azure Storage replaced by a small HTTP server this
script runs itself (compute nodes download resource files from any `httpUrl`):

  1-2. write the task script and three input files to a temporary directory and serve it over HTTP;
  3.   create a pool whose start task downloads python_tutorial_task.py and copies it to the shared
       directory of every node ($AZ_BATCH_NODE_SHARED_DIR) as the node joins the pool;
  4.   create a job on that pool;
  5.   add one task per input file: the input is the task's resource file, and the command runs
       the task script on it (through /bin/bash -c: command lines run without a shell);
  6.   monitor the tasks until they complete, with a timeout;
  7.   print each task's stdout (the top 3 words of its file) instead of downloading from Storage;
  8-9. delete the job and the pool (unless --keep).

Run it against `scripts/serve.sh` (defaults: http://127.0.0.1:8650 and the development account):

    .venv/bin/python examples/python_tutorial.py
"""

from __future__ import annotations

import argparse
import datetime
import functools
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from azure.batch import BatchClient
from azure.batch import models as batchmodels
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

try:
    from batchyard.service.config import DEFAULT_PORT, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
except ImportError:  # run from an environment with only azure-batch: the same well-known development account
    DEFAULT_PORT = 8650
    DEV_ACCOUNT_NAME = "devbatchaccount1"
    DEV_ACCOUNT_KEY = "YOKvuQHzuN66teD9WhjpOfdKqBFg1SAK7F3ql+BFSw/wa9fowELKd1p/shlyH46e8zKw0eVH5LXwAv4BdleUlg=="

TASK_SCRIPT = Path(__file__).resolve().with_name("python_tutorial_task.py")

# The tutorial's ./data/taskdata*.txt: three short texts, each with a clear top three.
INPUT_FILES = {
    "taskdata1.txt": (
        "The lighthouse keeper climbed the lighthouse stairs at dusk. The lamp was cold, so the keeper\n"
        "lit the lamp, and the lamp burned all night. Ships passed the lighthouse safely, and the keeper\n"
        "wrote in his log: lamp lit, sea calm, ships safe. At dawn the keeper put out the lamp.\n"
    ),
    "taskdata2.txt": (
        "A river runs from the mountain to the sea. The river carries stones, and the stones\n"
        "become sand. Children build castles of sand by the river, and the river takes the castles\n"
        "back to the sea. Sand, stones and river: the mountain gives, the sea keeps, the sea remembers.\n"
    ),
    "taskdata3.txt": (
        "Bread needs flour, water, salt and time. Mix the flour and the water, add the salt,\n"
        "then give the dough time. Knead the dough, rest the dough, bake the dough. Good bread is mostly\n"
        "time: time to rise, time to bake, time to cool.\n"
    ),
}


def wrap_commands_in_shell(commands: list[str]) -> str:
    """The tutorial's common.helpers.wrap_commands_in_shell('linux', ...)."""
    return "/bin/bash -c 'set -e; set -o pipefail; {}; wait'".format("; ".join(commands))


def print_batch_exception(err: HttpResponseError) -> None:
    """Print the Batch error code, message and details of a failed request."""
    print("-------------------------------------------")
    print("Exception encountered:")
    error = err.error
    if error is not None:
        print(f"{error.code}: {error.message}")
        for detail in error.details or []:
            print(f"{detail.code}:\t{detail.message}")
    else:
        print(err.message)
    print("-------------------------------------------")


@contextmanager
def serve_directory(directory: Path, host: str) -> Iterator[str]:
    """Serve `directory` over HTTP on a free port (the tutorial's Storage containers); yields the base URL."""

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            pass

    server = ThreadingHTTPServer((host, 0), functools.partial(Handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stage_files(directory: Path) -> tuple[list[str], list[str]]:
    """Steps 1-2: the application and input "containers" (here: one directory served over HTTP)."""
    shutil.copyfile(TASK_SCRIPT, directory / TASK_SCRIPT.name)
    for name, text in INPUT_FILES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return [TASK_SCRIPT.name], list(INPUT_FILES)


def select_image(client: BatchClient, node_agent_sku: str) -> batchmodels.VirtualMachineConfiguration:
    """The tutorial's select_latest_verified_vm_image_with_node_agent_sku, with list_supported_images."""
    for image in client.list_supported_images():
        if image.node_agent_sku_id == node_agent_sku and image.verification_type == "verified":
            return batchmodels.VirtualMachineConfiguration(
                image_reference=image.image_reference, node_agent_sku_id=image.node_agent_sku_id
            )
    raise RuntimeError(f"no verified image for the node agent SKU {node_agent_sku!r}")


def create_pool(
    client: BatchClient, pool_id: str, resource_files: list[batchmodels.ResourceFile], args: argparse.Namespace
) -> None:
    """Step 3: a pool whose start task copies the task script to the node's shared directory."""
    print(f"Creating pool [{pool_id}]...")
    task_commands = [
        # Copy python_tutorial_task.py to the "shared" directory that all tasks on the node can read.
        "cp -r $AZ_BATCH_TASK_WORKING_DIR/* $AZ_BATCH_NODE_SHARED_DIR",
    ]
    pool = batchmodels.BatchPoolCreateOptions(
        id=pool_id,
        virtual_machine_configuration=select_image(client, args.node_agent_sku),
        vm_size=args.vm_size,
        target_dedicated_nodes=args.nodes,
        start_task=batchmodels.BatchStartTask(
            command_line=wrap_commands_in_shell(task_commands),
            user_identity=batchmodels.UserIdentity(
                auto_user=batchmodels.AutoUserSpecification(
                    scope=batchmodels.AutoUserScope.POOL, elevation_level=batchmodels.ElevationLevel.ADMIN
                )
            ),
            wait_for_success=True,
            resource_files=resource_files,
        ),
    )
    try:
        client.create_pool(pool)
    except HttpResponseError as err:
        print_batch_exception(err)
        raise


def create_job(client: BatchClient, job_id: str, pool_id: str) -> None:
    """Step 4."""
    print(f"Creating job [{job_id}]...")
    try:
        client.create_job(
            batchmodels.BatchJobCreateOptions(id=job_id, pool_info=batchmodels.BatchPoolInfo(pool_id=pool_id))
        )
    except HttpResponseError as err:
        print_batch_exception(err)
        raise


def add_tasks(client: BatchClient, job_id: str, input_files: list[batchmodels.ResourceFile], numwords: int) -> None:
    """Step 5: one task per input file; the file is the task's resource file."""
    print(f"Adding {len(input_files)} tasks to job [{job_id}]...")
    tasks = [
        batchmodels.BatchTaskCreateOptions(
            id=f"topNtask{index}",
            command_line=wrap_commands_in_shell(
                [
                    f"python3 $AZ_BATCH_NODE_SHARED_DIR/{TASK_SCRIPT.name} "
                    f"--filepath {input_file.file_path} --numwords {numwords}"
                ]
            ),
            resource_files=[input_file],
        )
        for index, input_file in enumerate(input_files)
    ]
    # create_tasks is the SDK's add_collection helper: it raises CreateTasksError if any task fails to add.
    client.create_tasks(job_id, tasks)


def wait_for_tasks_to_complete(client: BatchClient, job_id: str, pool_id: str, timeout: datetime.timedelta) -> None:
    """Step 6: poll until every task of the job is completed, or raise after `timeout`.

    Gives up early if every node of the pool failed its start task (e.g. the nodes cannot reach the
    file server): then no task can ever run.
    """
    deadline = time.monotonic() + timeout.total_seconds()
    print(f"Monitoring all tasks for 'Completed' state, timeout in {timeout}...", end="", flush=True)
    while time.monotonic() < deadline:
        print(".", end="", flush=True)
        tasks = list(client.list_tasks(job_id))
        if all(task.state == batchmodels.BatchTaskState.COMPLETED for task in tasks):
            print()
            return
        nodes = list(client.list_nodes(pool_id))
        if nodes and all(node.state == batchmodels.BatchNodeState.START_TASK_FAILED for node in nodes):
            print()
            failure = nodes[0].start_task_info.failure_info if nodes[0].start_task_info else None
            detail = f": {failure.code}: {failure.message}" if failure else ""
            raise RuntimeError(f"the start task failed on every node of pool {pool_id}{detail}")
        time.sleep(1)
    print()
    raise RuntimeError(f"Tasks did not reach 'Completed' state within timeout period of {timeout}")


def print_task_output(client: BatchClient, job_id: str) -> bool:
    """Step 7: print each task's stdout (and stderr if it failed); True if every task succeeded."""
    print("Printing task output...")
    ok = True
    for task in sorted(client.list_tasks(job_id), key=lambda t: t.id):
        info = task.execution_info
        print(f"Task: {task.id} (exit code {info.exit_code if info else None})")
        print("Standard output:")
        print(read_task_file(client, job_id, task.id, "stdout.txt"), end="")
        if info is None or info.exit_code != 0:
            ok = False
            print("Standard error:")
            print(read_task_file(client, job_id, task.id, "stderr.txt"), end="")
    return ok


def read_task_file(client: BatchClient, job_id: str, task_id: str, path: str) -> str:
    return b"".join(client.download_task_file(job_id, task_id, path)).decode("utf-8", errors="replace")


def delete_resources(client: BatchClient, job_id: str | None, pool_id: str | None) -> None:
    """Step 9: delete the job and the pool this run created, and wait until they are gone."""
    for what, begin_delete, resource_id in (
        ("job", client.begin_delete_job, job_id),
        ("pool", client.begin_delete_pool, pool_id),
    ):
        if resource_id is None:
            continue
        print(f"Deleting {what} [{resource_id}]...")
        try:
            begin_delete(resource_id, polling_interval=1).result(timeout=60)
        except HttpResponseError as err:
            if err.status_code != 404:
                print_batch_exception(err)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the Azure Batch Python tutorial against batchyard.")
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the Batch account URL")
    parser.add_argument("--account-name", default=DEV_ACCOUNT_NAME)
    parser.add_argument("--account-key", default=DEV_ACCOUNT_KEY)
    parser.add_argument("--pool-id", default="PythonTutorialPool")
    parser.add_argument("--job-id", default="PythonTutorialJob")
    parser.add_argument("--nodes", type=int, default=2, help="dedicated nodes in the pool")
    parser.add_argument("--vm-size", default="STANDARD_A1_v2")
    parser.add_argument("--node-agent-sku", default="batch.node.ubuntu 18.04")
    parser.add_argument("--numwords", type=int, default=3, help="top words each task prints")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the tasks")
    parser.add_argument(
        "--serve-host",
        default="127.0.0.1",
        help="address to serve the input files on; compute nodes must reach it",
    )
    parser.add_argument("--keep", action="store_true", help="do not delete the job and the pool at the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = datetime.datetime.now().replace(microsecond=0)
    print(f"Sample start: {start}\n")

    client = BatchClient(args.endpoint, AzureNamedKeyCredential(args.account_name, args.account_key))
    ok = False
    with (
        tempfile.TemporaryDirectory(prefix="batchyard-tutorial-") as tmp,
        serve_directory(Path(tmp), args.serve_host) as base_url,
    ):
        application_names, input_names = stage_files(Path(tmp))
        application_files = [
            batchmodels.ResourceFile(http_url=f"{base_url}/{name}", file_path=name) for name in application_names
        ]
        input_files = [batchmodels.ResourceFile(http_url=f"{base_url}/{name}", file_path=name) for name in input_names]
        print(f"Serving {len(application_files) + len(input_files)} files from {base_url}")
        created: list[str] = []
        try:
            create_pool(client, args.pool_id, application_files, args)
            created.append("pool")
            create_job(client, args.job_id, args.pool_id)
            created.append("job")
            add_tasks(client, args.job_id, input_files, args.numwords)
            wait_for_tasks_to_complete(client, args.job_id, args.pool_id, datetime.timedelta(seconds=args.timeout))
            print("  Success! All tasks reached the 'Completed' state within the specified timeout period.")
            ok = print_task_output(client, args.job_id)
        except (HttpResponseError, batchmodels.CreateTasksError, RuntimeError) as err:
            sys.stdout.flush()
            print(f"Error: {str(err).splitlines()[0]}", file=sys.stderr)
        finally:
            if args.keep:
                print(f"Keeping job [{args.job_id}] and pool [{args.pool_id}] (--keep).")
            else:
                delete_resources(client, args.job_id if "job" in created else None, args.pool_id if created else None)

    end = datetime.datetime.now().replace(microsecond=0)
    print(f"\nSample end: {end}")
    print(f"Elapsed time: {end - start}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
