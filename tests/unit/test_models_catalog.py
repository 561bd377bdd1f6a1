"""VM size catalog and the supported-images list."""

from __future__ import annotations

import pytest

from batchyard.service.models import catalog, validate


@pytest.mark.parametrize(
    ("name", "canonical", "cores", "memory_mb"),
    [
        ("Standard_D2s_v3", "standard_d2s_v3", 2, 8192),
        ("STANDARD_D1_V2", "standard_d1_v2", 1, 3584),
        ("standard_d1_v2", "standard_d1_v2", 1, 3584),
        ("Standard_A1_v2", "standard_a1_v2", 1, 2048),
        ("STANDARD_A1", "standard_a1", 1, 1792),
        ("small", "small", 1, 1792),
        ("Standard_D4_v3", "standard_d4_v3", 4, 16384),
        ("Standard_D8s_v5", "standard_d8s_v5", 8, 32768),
        ("Standard_F2s_v2", "standard_f2s_v2", 2, 4096),
        ("Standard_E4s_v3", "standard_e4s_v3", 4, 32768),
        ("Standard_D14", "standard_d14", 16, 114688),
    ],
)
def test_vm_size_lookup(name: str, canonical: str, cores: int, memory_mb: int) -> None:
    assert catalog.lookup_vm_size(name) == catalog.VmSize(canonical, cores, memory_mb)
    assert catalog.canonical_vm_size(name) == canonical


def test_unknown_and_unsupported_sizes() -> None:
    assert catalog.lookup_vm_size("Standard_Nope_v9") is None
    assert catalog.lookup_vm_size("STANDARD_A0") is None  # the contract: Batch does not support A0
    assert catalog.canonical_vm_size(" Standard_Nope_v9 ") == "standard_nope_v9"


def test_max_task_slots() -> None:
    assert catalog.max_task_slots("Standard_D2s_v3") == 8
    assert catalog.max_task_slots("Standard_HB120rs_v3") == 256
    assert catalog.max_task_slots("unknown") is None


def test_all_catalog_names_are_canonical() -> None:
    for name, (cores, memory) in catalog.VM_SIZES.items():
        assert name == name.lower() and cores > 0 and memory > 0


def test_supported_images_match_the_contract() -> None:
    images = catalog.supported_images()
    for image in images:
        assert validate("BatchSupportedImage", image) == image
        windows = image["nodeAgentSKUId"] == "batch.node.windows amd64"
        assert image["osType"] == ("windows" if windows else "linux")
        assert catalog.is_supported_agent_sku(image["nodeAgentSKUId"])
    skus = {image["nodeAgentSKUId"] for image in images}
    for sku in (
        "batch.node.ubuntu 22.04",
        "batch.node.ubuntu 24.04",
        "batch.node.ubuntu 16.04",
        "batch.node.ubuntu 18.04",
        "batch.node.centos 7",
        "batch.node.debian 10",
        "batch.node.debian 12",
        "batch.node.el 9",
        "batch.node.windows amd64",
    ):
        assert sku in skus
    windows_skus = {i["imageReference"]["sku"] for i in images if i["osType"] == "windows"}
    assert {"2016-datacenter-smalldisk", "2019-datacenter", "2022-datacenter-core"} <= windows_skus


def test_retired_images_carry_end_of_life() -> None:
    by_sku = {image["nodeAgentSKUId"]: image for image in catalog.supported_images()}
    assert by_sku["batch.node.ubuntu 18.04"]["batchSupportEndOfLife"] == "2023-05-30T00:00:00Z"
    assert by_sku["batch.node.ubuntu 16.04"]["batchSupportEndOfLife"] == "2021-05-21T00:00:00Z"
    assert by_sku["batch.node.centos 7"]["batchSupportEndOfLife"] == "2024-06-30T00:00:00Z"
    assert by_sku["batch.node.ubuntu 18.04"]["imageReference"] == {
        "publisher": "Canonical",
        "offer": "UbuntuServer",
        "sku": "18.04-LTS",
        "version": "latest",
    }
    assert "batchSupportEndOfLife" not in by_sku["batch.node.ubuntu 24.04"]


def test_supported_images_are_copies() -> None:
    catalog.supported_images()[0]["osType"] = "changed"
    assert catalog.supported_images()[0]["osType"] == "linux"


def test_node_agent_skus_legacy_shape() -> None:
    skus = {entry["id"]: entry for entry in catalog.node_agent_skus()}
    assert skus["batch.node.ubuntu 22.04"]["osType"] == "linux"
    assert {
        "publisher": "canonical",
        "offer": "0001-com-ubuntu-server-jammy",
        "sku": "22_04-lts",
        "version": "latest",
    } in (skus["batch.node.ubuntu 22.04"]["verifiedImageReferences"])


@pytest.mark.parametrize(
    ("sku", "ok"),
    [
        ("batch.node.ubuntu 22.04", True),
        ("Batch.Node.Ubuntu 20.04", True),
        ("batch.node.el 9", True),
        ("batch.node.centos 7", True),
        ("batch.node.ubuntu 24.04-arm64", True),
        ("batch.node.windows amd64", True),
        ("Batch.Node.Windows  AMD64", True),
        ("batch.node.windows arm64", False),
        ("batch.node.", False),
        ("ubuntu 22.04", False),
        ("", False),
    ],
)
def test_is_supported_agent_sku(sku: str, ok: bool) -> None:
    assert catalog.is_supported_agent_sku(sku) is ok
