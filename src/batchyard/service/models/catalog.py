"""Static catalogs: Azure VM sizes (for `vmSize`) and the images of `GET /supportedimages`.

VM sizes: name -> (cores, memory in MB), from Azure's published size tables. The real service reports
`vmSize` lower-cased ("standard_d2s_v3", see its Pool_Get example "standard_a1"), so lookups are
case-insensitive and the canonical name is the lower-case one. The Cloud Services names of older API
versions ("small", "large", ...) map to their A-series equivalents. STANDARD_A0 / "extrasmall" are left out on
purpose: the contract says Batch does not support STANDARD_A0.

Supported images: the Linux ones, and the Windows Server marketplace images of the `batch.node.windows amd64`
agent (their nodes run `cmd /c` command lines through Wine: README, "Windows pools"). End-of-life dates are the
dates the Azure Batch team announced for each node agent (Azure/Batch GitHub notices): ubuntu 16.04
2021-05-21, ubuntu 18.04 2023-05-30, centos 7 2024-06-30 (agent removed 2024-07-01), ubuntu 20.04 2025-04-23,
ubuntu 22.04 2027-06-30; debian 10 uses the Debian LTS end (2024-06-30), as no Batch-specific date was published.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

GIB = 1024  # MB per GiB

# A size family: {size number: GiB} when the number is the vCPU count, else {size number: (cores, GiB)}.
Sizes = dict[int, float | tuple[int, float]]


class VmSize(NamedTuple):
    name: str  # canonical (lower-case) name, as the service reports it
    cores: int
    memory_mb: int


def _series(template: str, sizes: Sizes, *, names: tuple[str, ...] = ("",)) -> dict[str, tuple[int, int]]:
    """Expand a size family into catalog entries.

    E.g. _series("standard_d{n}{s}_v3", {2: 8, ...}, names=("", "s")) gives standard_d2_v3, standard_d2s_v3...
    """
    out: dict[str, tuple[int, int]] = {}
    for suffix in names:
        for number, spec in sizes.items():
            cores, gib = spec if isinstance(spec, tuple) else (number, spec)
            out[template.format(n=number, s=suffix)] = (cores, int(gib * GIB))
    return out


# D1..D14 and D1_v2..D15_v2: the size number is not the core count.
_D_V1: Sizes = {
    1: (1, 3.5),
    2: (2, 7),
    3: (4, 14),
    4: (8, 28),
    11: (2, 14),
    12: (4, 28),
    13: (8, 56),
    14: (16, 112),
}
_PER_CORE_4: Sizes = {2: 8, 4: 16, 8: 32, 16: 64, 32: 128, 48: 192, 64: 256}
_PER_CORE_4_96: Sizes = {**_PER_CORE_4, 96: 384}
_E_V3: Sizes = {2: 16, 4: 32, 8: 64, 16: 128, 20: 160, 32: 256, 48: 384, 64: 432}
_E_V4: Sizes = {**_E_V3, 64: 504}
_E_V5: Sizes = {**_E_V4, 96: 672}

VM_SIZES: dict[str, tuple[int, int]] = {
    # Cloud Services names of older API versions (A-series equivalents).
    "small": (1, 1792),
    "medium": (2, 3584),
    "large": (4, 7168),
    "extralarge": (8, 14336),
    # Basic/Standard A (classic).
    "standard_a1": (1, 1792),
    "standard_a2": (2, 3584),
    "standard_a3": (4, 7168),
    "standard_a4": (8, 14336),
    "standard_a5": (2, 14336),
    "standard_a6": (4, 28672),
    "standard_a7": (8, 57344),
    "standard_a8": (8, 57344),
    "standard_a9": (16, 114688),
    "standard_a10": (8, 57344),
    "standard_a11": (16, 114688),
    # Av2.
    "standard_a1_v2": (1, 2048),
    "standard_a2_v2": (2, 4096),
    "standard_a4_v2": (4, 8192),
    "standard_a8_v2": (8, 16384),
    "standard_a2m_v2": (2, 16384),
    "standard_a4m_v2": (4, 32768),
    "standard_a8m_v2": (8, 65536),
    # D (v1), Dv2 and DSv2.
    **_series("standard_d{n}", _D_V1),
    **_series("standard_d{s}{n}_v2", {**_D_V1, 5: (16, 56), 15: (20, 140)}, names=("", "s")),
    # General purpose v3..v5 (4 GiB per vCPU).
    **_series("standard_d{n}{s}_v3", _PER_CORE_4, names=("", "s")),
    **_series("standard_d{n}{s}_v4", _PER_CORE_4, names=("", "s", "d", "ds")),
    **_series("standard_d{n}{s}_v4", _PER_CORE_4_96, names=("a", "as")),
    **_series("standard_d{n}{s}_v5", _PER_CORE_4_96, names=("", "s", "d", "ds", "as", "ads")),
    **_series("standard_d{n}ls_v5", {2: 4, 4: 8, 8: 16, 16: 32, 32: 64, 48: 96, 64: 128, 96: 192}),
    **_series("standard_d{n}{s}_v6", {**_PER_CORE_4_96, 128: 512, 192: 768}, names=("", "s", "d", "ds")),
    **_series("standard_d{n}{s}_v6", _PER_CORE_4_96, names=("as", "ads")),
    # Burstable.
    **_series("standard_b{n}ms", {1: 2, 2: 8, 4: 16, 8: 32, 12: 48, 16: 64, 20: 80}),
    "standard_b1s": (1, 1024),
    "standard_b2s": (2, 4096),
    # Memory optimized (8 GiB per vCPU).
    **_series("standard_e{n}{s}_v3", _E_V3, names=("", "s")),
    **_series("standard_e{n}{s}_v4", _E_V4, names=("", "s", "d", "ds")),
    **_series("standard_e{n}{s}_v5", _E_V5, names=("", "s", "d", "ds", "as", "ads")),
    # Compute optimized.
    **_series("standard_f{n}{s}", {1: 2, 2: 4, 4: 8, 8: 16, 16: 32}, names=("", "s")),
    **_series("standard_f{n}s_v2", {2: 4, 4: 8, 8: 16, 16: 32, 32: 64, 48: 96, 64: 128, 72: 144}),
    # GPU and HPC.
    "standard_nc6": (6, 57344),
    "standard_nc12": (12, 114688),
    "standard_nc24": (24, 229376),
    "standard_nc6s_v3": (6, 114688),
    "standard_nc12s_v3": (12, 229376),
    "standard_nc24s_v3": (24, 458752),
    "standard_nc4as_t4_v3": (4, 28672),
    "standard_nc8as_t4_v3": (8, 57344),
    "standard_nc16as_t4_v3": (16, 112640),
    "standard_nc64as_t4_v3": (64, 450560),
    "standard_nc24ads_a100_v4": (24, 225280),
    "standard_nc48ads_a100_v4": (48, 450560),
    "standard_nc96ads_a100_v4": (96, 901120),
    "standard_hb120rs_v2": (120, 466944),
    "standard_hb120rs_v3": (120, 458752),
    "standard_hc44rs": (44, 360448),
}


def canonical_vm_size(name: str) -> str:
    """The name as the service reports it (lower-case), whether or not the size is in the catalog."""
    return name.strip().lower()


def lookup_vm_size(name: str) -> VmSize | None:
    """Case-insensitive lookup ("STANDARD_D1_V2", "Standard_D1_v2", "standard_d1_v2" are one size)."""
    key = canonical_vm_size(name)
    hit = VM_SIZES.get(key)
    return VmSize(key, *hit) if hit is not None else None


def max_task_slots(name: str) -> int | None:
    """The largest taskSlotsPerNode allowed for a size: min(4 x cores, 256); None for unknown sizes."""
    size = lookup_vm_size(name)
    return None if size is None else min(4 * size.cores, 256)


# --- supported images ----------------------------------------------------------------------------------

WINDOWS_AGENT = "batch.node.windows amd64"


def _normalized(sku: str) -> str:
    return " ".join(sku.strip().lower().split())


def is_windows_agent_sku(sku: object) -> bool:
    """`batch.node.windows amd64` (case-insensitive): the nodes of its pools are Windows nodes."""
    return isinstance(sku, str) and _normalized(sku) == WINDOWS_AGENT


def os_type(sku: object) -> str:
    """The `osType` of a node agent SKU's images and nodes: "windows" or "linux"."""
    return "windows" if is_windows_agent_sku(sku) else "linux"


def _image(
    sku_id: str,
    publisher: str,
    offer: str,
    sku: str,
    *,
    capabilities: tuple[str, ...] = (),
    end_of_life: str | None = None,
    verified: bool = True,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "nodeAgentSKUId": sku_id,
        "imageReference": {"publisher": publisher, "offer": offer, "sku": sku, "version": "latest"},
        "osType": os_type(sku_id),
        "verificationType": "verified" if verified else "unverified",
    }
    if capabilities:
        doc["capabilities"] = list(capabilities)
    if end_of_life:
        doc["batchSupportEndOfLife"] = f"{end_of_life}T00:00:00Z"
    return doc


_GPU = ("DockerCompatible", "NvidiaTeslaDriverInstalled")


def _windows(sku: str, *, capabilities: tuple[str, ...] = ()) -> dict[str, Any]:
    """A Windows Server marketplace image (Azure lists these lower-cased)."""
    return _image(WINDOWS_AGENT, "microsoftwindowsserver", "windowsserver", sku, capabilities=capabilities)


_WINDOWS_SKUS = (
    "2016-datacenter",
    "2016-datacenter-smalldisk",
    "2019-datacenter",
    "2019-datacenter-core",
    "2019-datacenter-smalldisk",
    "2022-datacenter",
    "2022-datacenter-g2",
    "2022-datacenter-core",
    "2022-datacenter-core-g2",
    "2022-datacenter-smalldisk",
    "2022-datacenter-smalldisk-g2",
    "2022-datacenter-azure-edition",
)

# Images the 2017 documentation uses keep its casing ("Canonical"/"UbuntuServer"): its samples compare them exactly.
SUPPORTED_IMAGES: tuple[dict[str, Any], ...] = (
    _image("batch.node.ubuntu 24.04", "canonical", "ubuntu-24_04-lts", "server"),
    _image("batch.node.ubuntu 24.04", "microsoft-dsvm", "ubuntu-hpc", "2404", capabilities=_GPU),
    _image(
        "batch.node.ubuntu 22.04",
        "canonical",
        "0001-com-ubuntu-server-jammy",
        "22_04-lts",
        end_of_life="2027-06-30",
    ),
    _image(
        "batch.node.ubuntu 22.04",
        "canonical",
        "0001-com-ubuntu-server-jammy",
        "22_04-lts-gen2",
        end_of_life="2027-06-30",
    ),
    _image(
        "batch.node.ubuntu 22.04",
        "microsoft-dsvm",
        "ubuntu-hpc",
        "2204",
        capabilities=_GPU,
        end_of_life="2027-06-30",
    ),
    _image(
        "batch.node.ubuntu 20.04",
        "canonical",
        "0001-com-ubuntu-server-focal",
        "20_04-lts",
        end_of_life="2025-04-23",
    ),
    _image("batch.node.debian 12", "debian", "debian-12", "12"),
    _image("batch.node.debian 12", "debian", "debian-12", "12-gen2"),
    _image("batch.node.debian 11", "debian", "debian-11", "11"),
    _image("batch.node.el 9", "almalinux", "almalinux-x86_64", "9-gen2"),
    _image("batch.node.el 8", "almalinux", "almalinux-x86_64", "8-gen2"),
    _image("batch.node.el 9", "redhat", "rhel", "9-lvm-gen2", verified=False),
    _image("batch.node.el 8", "redhat", "rhel", "8-lvm-gen2", verified=False),
    # Retired agents that older tools still ask for.
    _image("batch.node.ubuntu 18.04", "Canonical", "UbuntuServer", "18.04-LTS", end_of_life="2023-05-30"),
    _image("batch.node.ubuntu 16.04", "Canonical", "UbuntuServer", "16.04-LTS", end_of_life="2021-05-21"),
    _image("batch.node.centos 7", "OpenLogic", "CentOS", "7_9", end_of_life="2024-06-30"),
    _image("batch.node.debian 10", "debian", "debian-10", "10", end_of_life="2024-06-30"),
    *(_windows(sku) for sku in _WINDOWS_SKUS),
    _windows("2016-datacenter-with-containers", capabilities=("DockerCompatible",)),
    _windows("2019-datacenter-with-containers", capabilities=("DockerCompatible",)),
)


def supported_images() -> list[dict[str, Any]]:
    """`BatchSupportedImage` documents for `GET /supportedimages` (fresh copies the caller may mutate)."""
    return copy.deepcopy(list(SUPPORTED_IMAGES))


# Commands the nodes of an image have that this host may lack, by node agent SKU family: command -> the host
# command that provides it. Debian and Ubuntu hosts ship `python3` only, but Batch's Linux nodes run
# `python ...` start tasks (Azure-Samples' `python simple_task.py`), so every Linux image's nodes have
# `python`. Nodes get these as a directory last on their PATH (agent/image_commands.py): where the host has
# the command itself, the host's comes first.
_IMAGE_COMMANDS: dict[str, dict[str, str]] = {
    "batch.node.ubuntu": {"python": "python3"},
    "batch.node.debian": {"python": "python3"},
    "batch.node.el": {"python": "python3"},
    "batch.node.centos": {"python": "python3"},
}


def image_commands(node_agent_sku_id: str | None) -> dict[str, str]:
    """The commands the nodes of an image (by its node agent SKU) have: command -> host command providing it."""
    name = " ".join((node_agent_sku_id or "").strip().lower().split())
    family = name.split(" ", 1)[0]
    return dict(_IMAGE_COMMANDS.get(family, {}))


def node_agent_skus() -> list[dict[str, Any]]:
    """The same data in the `GET /nodeagentskus` shape of older API versions (id, verifiedImageReferences, osType)."""
    by_sku: dict[str, dict[str, Any]] = {}
    for image in SUPPORTED_IMAGES:
        entry = by_sku.setdefault(
            image["nodeAgentSKUId"],
            {"id": image["nodeAgentSKUId"], "verifiedImageReferences": [], "osType": image["osType"]},
        )
        entry["verifiedImageReferences"].append(dict(image["imageReference"]))
    return list(by_sku.values())


def is_supported_agent_sku(sku: str) -> bool:
    """Any Linux `batch.node.*` agent SKU, or the Windows one (case-insensitive)."""
    if not isinstance(sku, str):
        return False
    name = _normalized(sku)
    if name.startswith("batch.node.windows"):
        return name == WINDOWS_AGENT
    return name.startswith("batch.node.") and len(name) > len("batch.node.")
