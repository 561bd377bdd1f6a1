"""The pure parts of container runs: image references, registry matching, and the `podman create` line."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard.agent.accounts import TASKS_GID, OsAccount
from batchyard.agent.container_images import credentials_for, on_loopback, qualified, registry_of, server_key
from batchyard.agent.container_runs import create_args, steers_podman, volumes
from batchyard.agent.podman import NODE_LABEL, containers_conf


@pytest.mark.parametrize(
    ("image", "registry", "full"),
    [
        ("busybox", "docker.io", "docker.io/library/busybox"),
        ("busybox:1.36", "docker.io", "docker.io/library/busybox:1.36"),
        ("library/ubuntu", "docker.io", "docker.io/library/ubuntu"),
        ("docker.io/library/ubuntu", "docker.io", "docker.io/library/ubuntu"),
        ("myacr.azurecr.io/app/tool:2", "myacr.azurecr.io", "myacr.azurecr.io/app/tool:2"),
        ("127.0.0.1:5000/tool", "127.0.0.1:5000", "127.0.0.1:5000/tool"),
        ("localhost/tool:1", "localhost", "localhost/tool:1"),
    ],
)
def test_image_references_name_their_registry(image: str, registry: str, full: str) -> None:
    assert registry_of(image) == registry
    assert qualified(image) == full


def test_registry_servers_match_with_or_without_scheme_and_docker_hub_aliases() -> None:
    assert server_key("https://MyAcr.azurecr.io/") == "myacr.azurecr.io"
    assert server_key(None) == server_key("index.docker.io") == "docker.io"
    registries = [
        {"registryServer": "other.io", "username": "a"},
        {"registryServer": "https://myacr.azurecr.io", "username": "b"},
        {"username": "hub"},
    ]
    assert credentials_for("myacr.azurecr.io/app:1", registries) == registries[1]
    assert credentials_for("docker.io/library/busybox", registries) == registries[2]
    assert credentials_for("elsewhere.io/x", registries) is None


@pytest.mark.parametrize(
    ("server", "loopback"),
    [("127.0.0.1:5000", True), ("localhost:80", True), ("[::1]:5000", True), ("myacr.azurecr.io", False)],
)
def test_only_loopback_registries_are_reached_without_tls(server: str, loopback: bool) -> None:
    assert on_loopback(server) is loopback


def test_the_agents_containers_conf_drops_default_ulimits_and_picks_runc_when_there() -> None:
    assert "default_ulimits = []" in containers_conf(runc=True)
    assert 'runtime = "runc"' in containers_conf(runc=True)
    assert "runtime" not in containers_conf(runc=False)


def test_mounts_are_the_node_root_by_default_else_the_listed_directories(tmp_path: Path) -> None:
    root, task = tmp_path / "node", tmp_path / "node" / "workitems" / "j" / "job-1" / "t"
    assert volumes({"mounts": None}, root, task, None) == ["--volume", f"{root}:{root}"]
    assert volumes({"mounts": []}, root, task, None) == []
    listed = [{"source": "Task"}, {"source": "Shared", "isReadOnly": True}, {"source": "JobPrep"}]
    assert volumes({"mounts": listed}, root, task, None) == [
        "--volume",
        f"{task}:{task}",
        "--volume",
        f"{root / 'shared'}:{root / 'shared'}:ro",
    ]


def test_the_create_line_names_variables_without_values_and_runs_as_the_task_user(tmp_path: Path) -> None:
    account = OsAccount(uid=1_073_741_900, home=tmp_path, lookup_env={}, gid=1_073_741_901, umask=0o022)
    args = create_args(
        {"options": "--memory 64m --env EXTRA=1", "workdir": "taskWorkingDirectory"},
        "localhost/tool:1",
        "batchyard-n-t-1",
        "/bin/sh -c 'echo $AZ_BATCH_TASK_ID'",
        {"AZ_BATCH_AUTHENTICATION_TOKEN": "secret", "PATH": "/opt/bin:/bin"},
        ["--volume", "/n:/n"],
        tmp_path / "wd",
        account,
        Path("/n"),
    )
    assert "secret" not in " ".join(args)  # passed by name: podman takes the value from its environment
    assert args[args.index("AZ_BATCH_AUTHENTICATION_TOKEN") - 1] == "--env"
    assert "PATH=/opt/bin:/bin" in args  # a name that steers podman itself travels with its value
    assert args[args.index("--user") + 1] == "1073741900:1073741901"
    assert args[args.index("--group-add") + 1] == str(TASKS_GID)
    assert args[args.index("--umask") + 1] == "0022"
    assert args[args.index("--workdir") + 1] == str(tmp_path / "wd")
    assert args[args.index("--label") + 1] == f"{NODE_LABEL}=/n"
    image_at = args.index("localhost/tool:1")
    assert args[image_at - 4 : image_at] == ["--memory", "64m", "--env", "EXTRA=1"]  # run options, before the image
    assert args[image_at + 1 :] == ["/bin/sh", "-c", "echo $AZ_BATCH_TASK_ID"]


def test_an_admin_run_is_root_and_the_image_workdir_is_kept(tmp_path: Path) -> None:
    admin = OsAccount(uid=None, home=tmp_path, lookup_env={})
    args = create_args({"workdir": "containerImageDefault"}, "img", "n", "true", {}, [], tmp_path, admin, Path("/n"))
    assert "--user" not in args and "--workdir" not in args
    with pytest.raises(ValueError):
        create_args({}, "img", "n", "   ", {}, [], tmp_path, None, Path("/n"))


def test_names_that_steer_podman() -> None:
    assert all(steers_podman(name) for name in ("PATH", "TMPDIR", "CONTAINERS_CONF", "XDG_RUNTIME_DIR", "LD_PRELOAD"))
    assert not any(steers_podman(name) for name in ("AZ_BATCH_TASK_ID", "MY_SETTING"))
