"""The Azure Batch Python tutorial (python_tutorial_client.py) with Azure Storage, as in the docs.

Against batchyard and its linked Azurite (`scripts/serve.sh` starts both), with the official SDKs
(`azure-batch` 15.x and `azure-storage-blob` 12.x):

  1. create the containers `application`, `input` and `output` in the storage account;
  2. upload python_tutorial_storage_task.py and taskdata1..3.txt, and make read SAS URLs for them;
  3. create a pool whose start task copies the task script to $AZ_BATCH_NODE_SHARED_DIR;
  4. create a job;
  5. add one task per input file; each gets a container SAS with write access to `output`
     and uploads its result there itself;
  6. wait until every task has completed;
  7. download the three outputs from the `output` container and print them;
  8-9. delete the containers, the job and the pool (unless --keep).

    .venv/bin/python examples/python_tutorial_storage.py

The storage account defaults to Azurite's development account on 127.0.0.1:10000 (what `serve.sh`
starts); pass --storage-connection-string (or AZURE_STORAGE_CONNECTION_STRING) for another one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from azure.batch import BatchClient
from azure.batch import models as batchmodels
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)
from python_tutorial import (
    DEFAULT_PORT,
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    INPUT_FILES,
    create_job,
    delete_resources,
    print_batch_exception,
    select_image,
    wait_for_tasks_to_complete,
    wrap_commands_in_shell,
)

TASK_SCRIPT = Path(__file__).resolve().with_name("python_tutorial_storage_task.py")
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
CONTAINERS = ("application", "input", "output")


def upload_file_to_container(
    blob_client: BlobServiceClient, container_name: str, file_path: Path
) -> batchmodels.ResourceFile:
    """Upload a local file; a ResourceFile with a read SAS URL for it (the tutorial's helper)."""
    blob_name = file_path.name
    print(f"Uploading file {file_path} to container [{container_name}]...")
    with open(file_path, "rb") as data:
        blob_client.get_blob_client(container_name, blob_name).upload_blob(data, overwrite=True)
    sas_token = generate_blob_sas(
        blob_client.account_name,
        container_name,
        blob_name,
        account_key=blob_client.credential.account_key,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2),
    )
    sas_url = f"{blob_client.url.rstrip('/')}/{container_name}/{blob_name}?{sas_token}"
    return batchmodels.ResourceFile(http_url=sas_url, file_path=blob_name)


def get_container_sas_token(
    blob_client: BlobServiceClient, container_name: str, permission: ContainerSasPermissions
) -> str:
    return generate_container_sas(
        blob_client.account_name,
        container_name,
        account_key=blob_client.credential.account_key,
        permission=permission,
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2),
    )


def create_pool(
    client: BatchClient, pool_id: str, application_files: list[batchmodels.ResourceFile], args: argparse.Namespace
) -> None:
    """Step 3: the start task copies the task script into the node's shared directory."""
    print(f"Creating pool [{pool_id}]...")
    client.create_pool(
        batchmodels.BatchPoolCreateOptions(
            id=pool_id,
            virtual_machine_configuration=select_image(client, args.node_agent_sku),
            vm_size=args.vm_size,
            target_dedicated_nodes=args.nodes,
            start_task=batchmodels.BatchStartTask(
                command_line=wrap_commands_in_shell(["cp -r $AZ_BATCH_TASK_WORKING_DIR/* $AZ_BATCH_NODE_SHARED_DIR"]),
                user_identity=batchmodels.UserIdentity(
                    auto_user=batchmodels.AutoUserSpecification(
                        scope=batchmodels.AutoUserScope.POOL, elevation_level=batchmodels.ElevationLevel.ADMIN
                    )
                ),
                wait_for_success=True,
                resource_files=application_files,
            ),
        )
    )


def add_tasks(
    client: BatchClient,
    job_id: str,
    input_files: list[batchmodels.ResourceFile],
    blob_client: BlobServiceClient,
    numwords: int,
) -> None:
    """Step 5: each task processes one input file and uploads its result with a container SAS."""
    print(f"Adding {len(input_files)} tasks to job [{job_id}]...")
    sas = get_container_sas_token(blob_client, "output", ContainerSasPermissions(write=True))
    tasks = [
        batchmodels.BatchTaskCreateOptions(
            id=f"topNtask{index}",
            command_line=wrap_commands_in_shell(
                [
                    f"python3 $AZ_BATCH_NODE_SHARED_DIR/{TASK_SCRIPT.name} --filepath {input_file.file_path} "
                    f"--numwords {numwords} --storageaccount {blob_client.account_name} --storagecontainer output "
                    f'--sastoken "{sas}" --blobendpoint {blob_client.url.rstrip("/")}'
                ]
            ),
            resource_files=[input_file],
        )
        for index, input_file in enumerate(input_files)
    ]
    client.create_tasks(job_id, tasks)


def download_blobs_from_container(
    blob_client: BlobServiceClient, container_name: str, directory: Path
) -> dict[str, str]:
    """Step 7: every blob of the output container, saved to `directory`; name -> text."""
    print(f"Downloading all files from container [{container_name}]...")
    directory.mkdir(parents=True, exist_ok=True)
    outputs = {}
    container = blob_client.get_container_client(container_name)
    for blob in container.list_blobs():
        data = container.download_blob(blob.name).readall()
        (directory / blob.name).write_bytes(data)
        outputs[blob.name] = data.decode("utf-8")
    return outputs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the Azure Batch Python tutorial (with Storage) against batchyard."
    )
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the Batch account URL")
    parser.add_argument("--account-name", default=DEV_ACCOUNT_NAME)
    parser.add_argument("--account-key", default=DEV_ACCOUNT_KEY)
    parser.add_argument(
        "--storage-connection-string",
        default=os.environ.get("AZURE_STORAGE_CONNECTION_STRING", AZURITE),
        help="the (linked) storage account; default: Azurite's development account on 127.0.0.1:10000",
    )
    parser.add_argument("--pool-id", default="PythonTutorialPool")
    parser.add_argument("--job-id", default="PythonTutorialJob")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--vm-size", default="STANDARD_A1_v2")
    parser.add_argument("--node-agent-sku", default="batch.node.ubuntu 18.04")
    parser.add_argument("--numwords", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the tasks")
    parser.add_argument("--output-dir", type=Path, default=Path("tutorial-output"), help="where outputs are saved")
    parser.add_argument("--keep", action="store_true", help="keep the containers, the job and the pool")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Sample start: {datetime.datetime.now().replace(microsecond=0)}\n")
    blob_client = BlobServiceClient.from_connection_string(args.storage_connection_string)
    for name in CONTAINERS:  # step 1
        try:
            blob_client.create_container(name)
        except ResourceExistsError:
            pass
    staging = args.output_dir / "input"
    staging.mkdir(parents=True, exist_ok=True)
    for name, text in INPUT_FILES.items():
        (staging / name).write_text(text, encoding="utf-8")
    application_files = [upload_file_to_container(blob_client, "application", TASK_SCRIPT)]  # step 2
    input_files = [upload_file_to_container(blob_client, "input", staging / name) for name in INPUT_FILES]

    client = BatchClient(args.endpoint, AzureNamedKeyCredential(args.account_name, args.account_key))
    created: list[str] = []
    ok = False
    try:
        create_pool(client, args.pool_id, application_files, args)
        created.append("pool")
        create_job(client, args.job_id, args.pool_id)
        created.append("job")
        add_tasks(client, args.job_id, input_files, blob_client, args.numwords)
        wait_for_tasks_to_complete(client, args.job_id, args.pool_id, datetime.timedelta(seconds=args.timeout))
        print("  Success! All tasks reached the 'Completed' state within the specified timeout period.")
        outputs = download_blobs_from_container(blob_client, "output", args.output_dir)
        for name in sorted(outputs):
            print(f"Output: {name}\n{outputs[name]}", end="")
        ok = len(outputs) == len(input_files)
    except (HttpResponseError, batchmodels.CreateTasksError, RuntimeError) as err:
        if isinstance(err, HttpResponseError):
            print_batch_exception(err)
        print(f"Error: {str(err).splitlines()[0]}", file=sys.stderr)
    finally:
        if not args.keep:
            for name in CONTAINERS:  # step 8
                print(f"Deleting container [{name}]...")
                blob_client.delete_container(name)
            delete_resources(client, args.job_id if "job" in created else None, args.pool_id if created else None)
    print(f"\nSample end: {datetime.datetime.now().replace(microsecond=0)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
