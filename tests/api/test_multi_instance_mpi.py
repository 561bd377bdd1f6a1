"""Real MPI over a multi-instance task on 3 local nodes (MPICH from Debian, mpi4py from PyPI).

The seed's Linux pattern: common resource files (the programs) land in AZ_BATCH_TASK_SHARED_DIR on
every node, the coordination command prepares each node (here: compiles), and the application
command runs mpiexec over AZ_BATCH_HOST_LIST, starting ranks through BATCHYARD_MPI_LAUNCHER.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m

from tests.api.helpers import create_job, own_python_identity
from tests.api.test_multi_instance import bash, done, mi_pool, mi_task
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]

HELLO_C = r"""
#include <mpi.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    int rank, size;
    char text[64];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0) {
        strcpy(text, "Hello from the master");
        for (int i = 1; i < size; i++) MPI_Send(text, 64, MPI_CHAR, i, 0, MPI_COMM_WORLD);
    } else {
        MPI_Recv(text, 64, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        printf("Rank %d received string %s from Rank 0\n", rank, text);
    }
    MPI_Finalize();
    return 0;
}
"""

REDUCE_PY = """
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.reduce(comm.Get_rank() + 1, op=MPI.SUM, root=0)
if comm.Get_rank() == 0:
    print(f"size={comm.Get_size()} sum={total}")
"""

MPIEXEC = (
    "mpiexec -launcher ssh -launcher-exec $BATCHYARD_MPI_LAUNCHER -hosts $AZ_BATCH_HOST_LIST -n 3 -ppn 1"
    " -wdir $AZ_BATCH_TASK_SHARED_DIR"
)


def _mpi4py_missing() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return True
    return False


pytestmark = pytest.mark.skipif(
    shutil.which("mpiexec") is None or shutil.which("mpicc") is None or _mpi4py_missing(),
    reason="MPICH (apt-get install mpich libmpich-dev) and mpi4py are not installed; scripts/test.sh installs them",
)


@pytest.fixture(scope="module")
def files_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The programs, served over HTTP for commonResourceFiles."""
    root = tmp_path_factory.mktemp("mpi-files")
    (root / "mpi_hello.c").write_text(HELLO_C)
    (root / "reduce.py").write_text(REDUCE_PY)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def common(url: str, name: str) -> list[m.ResourceFile]:
    return [m.ResourceFile(http_url=f"{url}/{name}", file_path=name)]


def run_mpi(client: Any, job_id: str, task: Any) -> str:
    client.create_task(job_id, task)
    done_task = wait_for(lambda: done(client, job_id, task.id), timeout=90, what="the MPI task")
    stdout = b"".join(client.download_task_file(job_id, task.id, "stdout.txt")).decode()
    stderr = b"".join(client.download_task_file(job_id, task.id, "stderr.txt")).decode()
    assert done_task.execution_info.result == "success", (stdout, stderr)
    return stdout


def test_seed_mpi_hello_world_on_three_nodes(client: Any, service: Service, unique: Unique, files_url: str) -> None:
    pool_id, job_id = unique("mpi"), unique("mpijob")
    with mi_pool(client, pool_id, 3):
        create_job(client, job_id, pool_id)
        task = mi_task(
            "hello",
            bash(f"{MPIEXEC} $AZ_BATCH_TASK_SHARED_DIR/mpi_hello"),
            3,
            bash("cd $AZ_BATCH_TASK_SHARED_DIR && mpicc -o mpi_hello mpi_hello.c"),
            user_identity=own_python_identity(),  # the launcher is a program of this venv
        )
        task.multi_instance_settings.common_resource_files = common(files_url, "mpi_hello.c")
        stdout = run_mpi(client, job_id, task)
        lines = sorted(line for line in stdout.splitlines() if line.startswith("Rank"))
        assert lines == [f"Rank {n} received string Hello from the master from Rank 0" for n in (1, 2)]
        for sub in client.list_subtasks(job_id, "hello"):  # every node compiled its own copy
            shared = service.data_dir / "nodes" / sub.node_info.node_id / sub.node_info.task_root_directory
            assert (shared / "mpi_hello").exists()


def test_mpi4py_reduction(client: Any, service: Service, unique: Unique, files_url: str) -> None:
    pool_id, job_id = unique("mpipy"), unique("mpipyjob")
    with mi_pool(client, pool_id, 3):
        create_job(client, job_id, pool_id)
        python = Path(sys.executable)
        task = mi_task("reduce", bash(f"{MPIEXEC} {python} reduce.py"), 3, user_identity=own_python_identity())
        task.multi_instance_settings.common_resource_files = common(files_url, "reduce.py")
        stdout = run_mpi(client, job_id, task)
        assert "size=3 sum=6" in stdout
