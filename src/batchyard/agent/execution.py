"""One run on the node: directories, environment, resource files, the process, and its result.

A task sees only the documented AZ_BATCH_* variables, its job's and its own settings, and a
minimal PATH/HOME/LANG (PATH ending with the image's commands the host lacks): never the agent's
credentials or the service's keys. On an agent running as root it runs as the user its identity names
(task_users.py), in a directory that user owns. A run with `container` runs in a podman container
(container_runs.py): the task process is then `podman start --attach`, and killing it stops the container.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchyard.agent import image_commands, wine
from batchyard.agent.accounts import OsAccount
from batchyard.agent.certificates import visible_to
from batchyard.agent.certificates import write_into as write_certificates
from batchyard.agent.container_images import ensure_image
from batchyard.agent.container_runs import ContainerFailure, ContainerRun, ImageFailure, create_args, volumes
from batchyard.agent.output_files import upload_outputs
from batchyard.agent.packages import PackageError, install_packages
from batchyard.agent.podman import Podman, RuntimeMissing
from batchyard.agent.resource_files import DownloadError, download_resource_files
from batchyard.agent.runner import DEFAULT_KILL_GRACE, ProcessResult, ProcessSpec, RunningProcess, start_process
from batchyard.agent.task_users import (
    OPEN_DIR,
    POOL_USER,
    PRIVATE_DIR,
    WORKING_DIR,
    TaskUser,
    TaskUsers,
    UnknownUser,
    hand_over,
    open_parents,
)
from batchyard.agent.transfer import BlobCache

PODMAN_FAILED = 125  # podman's exit code when it could not run the container's command
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class NodeContext:
    root: Path
    node_id: str
    values: dict[str, Any] = field(default_factory=dict)
    package_env: dict[str, str] = field(default_factory=dict)  # the pool's application packages
    blob_cache: BlobCache | None = None  # resource files many tasks of this node share
    certificates: list[dict[str, Any]] = field(default_factory=list)  # the pool's (agent/certificates.py)
    users: TaskUsers | None = None  # who runs run as (agent/task_users.py)
    image_bin: Path | None = None  # the image's commands the host lacks (agent/image_commands.py)
    podman: Podman = field(init=False)  # runs with containerSettings (agent/container_runs.py)
    wine_prefixes: wine.WinePrefixes | None = None  # a Windows node's (agent/wine.py); None on a Linux node

    def __post_init__(self) -> None:
        self.blob_cache = self.blob_cache or BlobCache(self.root / ".batchyard" / "blobcache")
        self.podman = Podman(self.root)

    def welcome(self, message: dict[str, Any]) -> None:
        self.values = dict(message)
        if self.users is not None:
            self.users.welcome(str(message.get("pool", "")), list(message.get("userAccounts") or []))
        self.image_bin = image_commands.install(self.root, message.get("commands") or {}, BASE_PATH)
        if message.get("osType") == "windows":
            self.wine_prefixes = self.wine_prefixes or wine.WinePrefixes(wine.find_wine())
            self.wine_prefixes.prepare(self.wine_account(None), self.node_env())  # the pool's default task user's
        else:
            self.wine_prefixes = None

    def wine_account(self, user: TaskUser | None) -> OsAccount:
        """Whose Wine prefix a run uses: its user's (the pool's default task user when it names none)."""
        if user is not None:
            return user.account
        if self.users is not None:
            return self.users.user_for(None, self.root).account
        return OsAccount(uid=None, home=self.root / "users" / POOL_USER, lookup_env={})

    def node_env(self) -> dict[str, str]:
        root = str(self.root)
        return {
            "PATH": BASE_PATH if self.image_bin is None else f"{BASE_PATH}:{self.image_bin}",
            "LANG": "C.UTF-8",
            "AZ_BATCH_NODE_ROOT_DIR": root,
            "AZ_BATCH_NODE_SHARED_DIR": f"{root}/shared",
            "AZ_BATCH_NODE_STARTUP_DIR": f"{root}/startup",
            "AZ_BATCH_NODE_STARTUP_WORKING_DIR": f"{root}/startup/wd",
            "AZ_BATCH_NODE_ID": self.node_id,
            "AZ_BATCH_NODE_IS_DEDICATED": "true" if self.values.get("dedicated", True) else "false",
            "AZ_BATCH_POOL_ID": str(self.values.get("pool", "")),
            "AZ_BATCH_ACCOUNT_NAME": str(self.values.get("account", "")),
            "AZ_BATCH_ACCOUNT_URL": str(self.values.get("accountUrl", "")),
        }


def _iso(dt: datetime) -> str:
    """2026-12-04T17:30:00.123456Z (isoformat: a few times faster than strftime, twice per run)."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class Execution:
    def __init__(self, context: NodeContext, run: dict[str, Any]) -> None:
        self.context = context
        self.run_spec = run
        self.task_dir = context.root / run["dir"]
        self.working_dir = self.task_dir / WORKING_DIR
        self.process: RunningProcess | None = None
        self.killed = False
        self._preparing: asyncio.Future[None] | None = None
        self.package_env: dict[str, str] = {}
        self.user: TaskUser | None = None
        self.container = (
            ContainerRun(context.podman, run["container"], context.node_id, run["aid"])
            if run.get("container")
            else None
        )
        self._stopping: asyncio.Future[None] | None = None  # a container being stopped by kill()

    def environment(self) -> dict[str, str]:
        run = self.run_spec
        env = self.context.node_env()
        task_dir, working_dir = str(self.task_dir), str(self.working_dir)
        env.update(
            {
                "HOME": working_dir,
                "AZ_BATCH_TASK_DIR": task_dir,
                "AZ_BATCH_TASK_WORKING_DIR": working_dir,
                "AZ_BATCH_TASK_RETRY_COUNT": str(run.get("retry", 0)),
                "AZ_BATCH_CERTIFICATES_DIR": f"{task_dir}/certs",
                "AZ_BATCH_TASK_USER": self.user.name if self.user else "_azbatch",
                "AZ_BATCH_TASK_USER_IDENTITY": self.user.identity if self.user else "PoolNonAdmin",
            }
        )
        if self.user is not None and self.container is None:
            env.update(self.user.account.lookup_env)  # `whoami` and the like find a user without passwd entry
        if self.container is not None:
            del env["PATH"]  # the host's: the image's own applies in the container, unless the task sets one
        if run.get("job"):  # tasks, and the job preparation and release tasks
            env["AZ_BATCH_JOB_ID"] = run["job"]
            env["AZ_BATCH_TASK_ID"] = run["task"]
        if run.get("mi"):  # a multi-instance task: the same relative path on every node (mpi_launch.py)
            env["AZ_BATCH_TASK_SHARED_DIR"] = str(self.task_dir)
            env["BATCHYARD_MPI_LAUNCHER"] = str(Path(sys.executable).with_name("batchyard-mpi-launch"))
        if run.get("prepDir"):
            prep_dir = self.context.root / run["prepDir"]
            env["AZ_BATCH_JOB_PREP_DIR"] = str(prep_dir)
            env["AZ_BATCH_JOB_PREP_WORKING_DIR"] = str(prep_dir / "wd")
        env.update(self.context.package_env)
        env.update(self.package_env)
        # The user's settings come last, as in Azure Batch (they may override PATH and the like).
        env.update(run.get("env") or {})
        return env

    def kill(self) -> None:
        self.killed = True
        if self.process is not None:
            self.process.terminate()
        elif self._preparing is not None:
            self._preparing.cancel()

    async def _prepare(self) -> None:
        """The container image, task application packages (reused when on the node already), then resource
        files."""
        if self.container is not None:
            await self.container.pull()
        if packages := self.run_spec.get("packages"):
            self.package_env = await install_packages(self.context.root, packages)
        files = self.run_spec.get("files") or []
        if files:
            await download_resource_files(files, self.working_dir, self.context.blob_cache)
        if shared := self.run_spec.get("sharedFiles"):  # multi-instance common resource files
            await download_resource_files(shared, self.task_dir, self.context.blob_cache)

    async def _deploy_pool_packages(self, started: datetime) -> dict[str, Any]:
        """The pool's application packages, then its container images (`containerImageNames`)."""
        try:
            self.context.package_env = await install_packages(self.context.root, self.run_spec.get("packages") or [])
            if (images := self.run_spec.get("images")) is not None:
                registries = list(images.get("registries") or [])
                for image in images.get("names") or []:
                    await ensure_image(self.context.podman, image, registries)
                if not images.get("names"):
                    self.context.podman.ready()  # a container pool's node needs the runtime even so
        except (PackageError, ImageFailure) as error:
            return self._failed(started, error.failure)
        except RuntimeMissing as missing:
            return self._failed(started, ImageFailure("", str(missing)).failure)
        return {"exit": None, "start": _iso(started), "end": _iso(datetime.now(UTC)), "failure": None, "stats": None}

    async def run(self) -> dict[str, Any]:
        started = datetime.now(UTC)
        if self.run_spec.get("prefail"):  # the service could not resolve what the run needs
            return self._failed(started, self.run_spec["prefail"])
        if self.run_spec["kind"] == "packages":
            return await self._deploy_pool_packages(started)
        if self.context.users is not None:
            try:
                self.user = self.context.users.user_for(self.run_spec.get("user"), self.task_dir)
            except UnknownUser as error:
                return self._failed(started, error.failure)
        # Made just now, the task directory holds its empty working directory and nothing else until the
        # agent puts files there (no task user can write in its parent): handing it over needs no walk.
        only_working_dir = _make_dirs(self.task_dir, self.working_dir)
        audience = "starttask" if self.run_spec["kind"] == "start" else "task"
        if certs := visible_to(self.context.certificates, audience):  # before the program starts
            write_certificates(self.task_dir / "certs", certs)
            only_working_dir = False
        spec = self.run_spec
        if spec.get("files") or spec.get("packages") or spec.get("sharedFiles") or self.container is not None:
            only_working_dir = False
            self._preparing = asyncio.ensure_future(self._prepare())
            try:
                await self._preparing
            except (DownloadError, PackageError, ImageFailure) as error:
                return self._failed(started, error.failure)
            except asyncio.CancelledError:
                return self._ended(started)
            finally:
                self._preparing = None
        if self.killed:
            return self._ended(started)
        if self.user is not None:  # after the agent has put files there, before the program starts
            open_parents(self.context.root, self.task_dir)
            shared_dir = self.run_spec["kind"] in ("start", "prep")
            mode = OPEN_DIR if shared_dir else PRIVATE_DIR
            hand_over(self.task_dir, self.user.account, mode, walk=not only_working_dir)
        account = self.user.account if self.user is not None else None
        env = self.environment()
        command_line, process_env = self.run_spec["cmd"], env
        prefixes = self.context.wine_prefixes
        if prefixes is not None and self.container is None:
            if prefixes.wine is None:
                return self._failed(started, wine.NOT_INSTALLED)
            command_line, process_env = await self._through_wine(prefixes, command_line, env)
        process_spec = ProcessSpec(
            command_line=command_line,
            cwd=self.working_dir,
            env=process_env,
            # The primary's coordination command writes beside the application's output (README).
            stdout_path=self.task_dir / self.run_spec.get("stdout", "stdout.txt"),
            stderr_path=self.task_dir / self.run_spec.get("stderr", "stderr.txt"),
            max_wall_clock=self.run_spec.get("wall"),
            session=self.run_spec.get("session", "default"),
            account=account,
        )
        if self.container is not None:
            try:
                process_spec = await self._in_container(process_spec)
            except ContainerFailure as error:
                return self._failed(started, error.failure)
            if self.killed:
                await self.container.remove()
                return self._ended(started)
        self.process = await start_process(process_spec)
        if self.killed:
            self.process.terminate()
        outcome = await self.process.wait()
        if self.container is not None:
            outcome = await self._container_ended(outcome, process_spec.stderr_path)
        elif prefixes is not None and not (outcome.timed_out or outcome.terminated or self.killed):
            if missing := wine.program_not_found(outcome.exit_code, process_spec.stdout_path, process_spec.stderr_path):
                outcome = dataclasses.replace(outcome, exit_code=None, start_error=missing)
        result = self._result(outcome)
        if self.container is not None:
            result["container"] = self.container.info()
        if self.run_spec.get("outputs") and not self.killed:
            await self._upload_outputs(result, env)
        return result

    async def _through_wine(
        self, prefixes: wine.WinePrefixes, command_line: str, env: dict[str, str]
    ) -> tuple[str, dict[str, str]]:
        """A Windows node's command line and environment: Wine runs the program, in its user's prefix."""
        assert prefixes.wine is not None
        account = self.context.wine_account(self.user)
        wine.make_home(account)
        await prefixes.ready(account)
        argv = [prefixes.wine, *wine.split_command_line(command_line)]
        return shlex.join(argv), wine.windows_environment(env, account)

    async def _in_container(self, spec: ProcessSpec) -> ProcessSpec:
        """The container made for the run, and the process that runs it: podman attached to it, as root
        (the container has the run's user), with only podman's environment."""
        assert self.container is not None
        root = self.context.root
        prep = root / self.run_spec["prepDir"] if self.run_spec.get("prepDir") else None
        settings = self.run_spec["container"]
        try:
            args = create_args(
                settings,
                self.container.image,
                self.container.name,
                spec.command_line,
                spec.env,
                volumes(settings, root, self.task_dir, prep),
                self.working_dir,
                spec.account,
                root,
            )
        except ValueError as error:  # a command line or run options that do not split
            raise ContainerFailure(str(error)) from None
        await self.container.create(args, spec.env)
        command = self.container.start_command()
        return dataclasses.replace(
            spec, command_line=command, env=self.context.podman.env, account=None, on_kill=self._stop_container
        )

    def _stop_container(self) -> None:
        assert self.container is not None
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self.container.stop(DEFAULT_KILL_GRACE))

    async def _container_ended(self, outcome: ProcessResult, stderr_path: Path) -> ProcessResult:
        """Podman's own failures to start the command (exit 125) as start errors; the container removed."""
        assert self.container is not None
        if self._stopping is not None:
            await self._stopping
        if outcome.exit_code == PODMAN_FAILED and not (outcome.timed_out or outcome.terminated):
            if error := await self.container.start_error(stderr_path):
                outcome = dataclasses.replace(outcome, exit_code=None, start_error=error)
        await self.container.remove()
        return outcome

    async def _upload_outputs(self, result: dict[str, Any], env: dict[str, str]) -> None:
        """Output files after the process exited; a failed upload fails an otherwise successful run."""
        succeeded = result["failure"] is None and result["exit"] == 0
        try:
            failure = await asyncio.to_thread(
                upload_outputs, self.run_spec["outputs"], self.working_dir, self.task_dir, env, succeeded
            )
        except Exception as exc:  # never leave the task without a result
            failure = {"category": "servererror", "code": "FileUploadMiscError", "message": str(exc)}
        result["end"] = _iso(datetime.now(UTC))
        if failure is not None and succeeded:
            result["failure"] = failure

    def _result(self, outcome: ProcessResult) -> dict[str, Any]:
        failure = None
        if outcome.start_error is not None:
            not_found = "No such file" in outcome.start_error or "not found" in outcome.start_error
            failure = {
                "category": "usererror",
                "code": "CommandProgramNotFound" if not_found else "CommandLaunchFailed",
                "message": "The program specified in the task's command line was not found"
                if not_found
                else "An error occurred when launching the task's command line",
                "details": [{"name": "Message", "value": outcome.start_error}],
            }
        elif outcome.timed_out:
            failure = {
                "category": "servererror",
                "code": "TaskEnded",
                "message": "The task was ended because it exceeded its maximum wall clock time",
            }
        elif outcome.terminated or self.killed:
            failure = {"category": "usererror", "code": "TaskEnded", "message": "Task Was Ended by User Request"}
        return {
            "exit": outcome.exit_code,
            "start": _iso(outcome.start_time),
            "end": _iso(outcome.end_time),
            "failure": failure,
            "stats": {
                "userCPUTime": outcome.user_cpu,
                "kernelCPUTime": outcome.kernel_cpu,
                "maxRss": outcome.max_rss_bytes,
                "readBytes": outcome.read_bytes,
                "writeBytes": outcome.write_bytes,
                "readOps": outcome.read_ops,
                "writeOps": outcome.write_ops,
            },
        }

    def _failed(self, started: datetime, failure: dict[str, Any]) -> dict[str, Any]:
        now = _iso(datetime.now(UTC))
        return {"exit": None, "start": _iso(started), "end": now, "failure": failure, "stats": None}

    def _ended(self, started: datetime) -> dict[str, Any]:
        return self._failed(
            started, {"category": "usererror", "code": "TaskEnded", "message": "Task Was Ended by User Request"}
        )

    def internal_failure(self, message: str) -> dict[str, Any]:
        return self._failed(datetime.now(UTC), {"category": "servererror", "code": "AgentError", "message": message})


def _make_dirs(task_dir: Path, working_dir: Path) -> bool:
    """Create the task and working directories: two mkdir calls in the common case (hot path).
    True when both were made just now (neither was there before)."""
    try:
        os.mkdir(task_dir)
        os.mkdir(working_dir)
    except OSError:
        os.makedirs(working_dir, exist_ok=True)
        return False
    return True
