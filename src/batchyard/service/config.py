"""Service settings: where data lives, which account signs requests, how the service is reached."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from batchyard.providers.slurm_job import SlurmOptions

# The well-known development account, like Azurite's devstoreaccount1. It is public, so the
# service refuses to use it on anything but a loopback address.
DEV_ACCOUNT_NAME = "devbatchaccount1"
DEV_ACCOUNT_KEY = "YOKvuQHzuN66teD9WhjpOfdKqBFg1SAK7F3ql+BFSw/wa9fowELKd1p/shlyH46e8zKw0eVH5LXwAv4BdleUlg=="
DEV_ACCOUNT_SECONDARY_KEY = "y/2wOsex1yRQghmSy4tHt1rdTgdJ2yQkXSjcIMWsVeUmGh5DPotdFRb8uwIS7IEJM/oyDaAdNOHG/lTZAVngdw=="

DEFAULT_PORT = 8650
# An account's allowedAuthenticationModes, Azure's names (service/request_auth.py)
SHARED_KEY, AAD, TASK_TOKEN = "SharedKey", "AAD", "TaskAuthenticationToken"
AUTHENTICATION_MODES = (SHARED_KEY, AAD, TASK_TOKEN)
# The HTTP server's connection limits (service/connections.py); each agent holds one WebSocket.
DEFAULT_MAX_CONNECTIONS = 2048
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE_TIMEOUT = 5


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Timing:
    """Intervals the engine uses; tests shrink them."""

    # A node whose agent connection is gone for this long becomes unusable and its tasks requeue.
    node_lost_grace: float = 5.0
    # After a service restart, nodes whose agents did not reconnect by then get a new agent.
    adopt_grace: float = 3.0
    # Period of the housekeeping loop (wall clock limits, retention, lost nodes).
    housekeeping_interval: float = 1.0
    # An agent that sends nothing (not even its 1 s heartbeat) this long counts as lost, like a dropped link.
    heartbeat_timeout: float = 10.0
    # An agent on another host that is cut off from the service this long ends its runs; the service, which
    # cannot end them there, requeues a lost external node's runs only once that has surely happened.
    agent_lease: float = 30.0


@dataclass(frozen=True)
class AutoscaleTiming:
    """Autoscale clocks (README, Autoscale). Azure's values by default; development may shorten them."""

    # Metric samples are taken this often (Azure: 30 s).
    sample_period: float = 30.0
    # A sample is readable by formulas this long after it was taken; None: two sample periods (Azure: ~1 min).
    sample_delay: float | None = None
    # Shortest autoScaleEvaluationInterval accepted (the contract: 5 minutes).
    min_interval: float = 300.0

    @property
    def delay(self) -> float:
        return 2 * self.sample_period if self.sample_delay is None else self.sample_delay


@dataclass(frozen=True)
class DiagnosticLogs:
    """Service Logs are on (README, Diagnostic logs): where they go, and the account's Azure resource id."""

    # The storage account the records are written to (a connection string); None: kept for the live
    # stream (`GET /_batchyard/events`) only.
    storage_connection_string: str | None = None
    # A diagnostic setting belongs to the account's Azure resource; without a management plane, these
    # name it (the records' resourceId and the blobs' folder).
    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "batchyard"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path("./batchyard-data")
    # Where the service keeps its state: None for SQLite in the data directory, or a postgresql:// URL.
    database: str | None = None
    account_name: str = DEV_ACCOUNT_NAME
    account_keys: tuple[str, ...] = (DEV_ACCOUNT_KEY, DEV_ACCOUNT_SECONDARY_KEY)
    # Public base URL of the service (what AZ_BATCH_ACCOUNT_URL and `url` fields show).
    public_url: str | None = None
    # The HTTPS listener's port beside HTTP (None: HTTP only); bearer tokens are issued and accepted there.
    https_port: int | None = None
    # How the account's data plane may be called (allowedAuthenticationModes): all three by default.
    authentication_modes: tuple[str, ...] = AUTHENTICATION_MODES
    timing: Timing = field(default_factory=Timing)
    # Tests only: the engine's clock can be moved forward with POST /_batchyard/clock.
    adjustable_clock: bool = False
    # Active jobs and job schedules together (jobs a schedule creates are not refused).
    job_quota: int = 300
    # Pools the account may have (the seed's "Pools per Batch account"; auto pools count too).
    pool_quota: int = 100
    account_quota: int = 3  # Batch accounts per region (the service's own included), Azure's default
    # Dedicated cores all pools together may hold (the vmSize catalog gives each node's cores).
    core_quota: int = 500
    # Spot/low-priority cores all pools together may hold (a quota of its own, as on Azure).
    low_priority_core_quota: int = 100
    autoscale: AutoscaleTiming = field(default_factory=AutoscaleTiming)
    # The linked ("auto-storage") account, as a connection string (see README, Storage); None: no account.
    storage_connection_string: str | None = None
    # Application package quotas (Azure's defaults).
    application_quota: int = 20
    package_quota: int = 40
    # GET /metrics answers only `Authorization: Bearer <this>` when set; None: open (see README, Metrics).
    metrics_token: str | None = None
    # Service Logs; None: off (no record is written).
    diagnostic_logs: DiagnosticLogs | None = None
    # Defaults for pools whose nodes are Slurm jobs (providers/slurm.py).
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    # The other service instances on the same PostgreSQL database (failover): agents try each in turn.
    peer_urls: tuple[str, ...] = ()

    @property
    def uses_dev_account(self) -> bool:
        return DEV_ACCOUNT_KEY in self.account_keys or DEV_ACCOUNT_SECONDARY_KEY in self.account_keys

    @cached_property  # read for every link of every answer; the settings never change
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def service_urls(self) -> tuple[str, ...]:
        """Where agents find the service: this instance first, then its peers."""
        return (self.base_url, *(url.rstrip("/") for url in self.peer_urls if url.rstrip("/") != self.base_url))

    @cached_property
    def https_url(self) -> str | None:
        """The HTTPS base URL (the identity provider's authority too): the public URL's host, or the listening one."""
        if self.https_port is None:
            return None
        host = urlsplit(self.public_url).hostname if self.public_url else None
        return f"https://{_url_host(host or self.host)}:{self.https_port}"


# A service listening on every address is reached (and its certificate is made for) the loopback's.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def _url_host(host: str) -> str:
    host = _WILDCARDS.get(host, host)
    return f"[{host}]" if ":" in host else host


class SettingsError(Exception):
    pass


def parse_authentication_modes(text: str) -> tuple[str, ...]:
    """`SharedKey,AAD` -> the modes, in Azure's spelling (matched case-insensitively); at least one."""
    spelled = {mode.lower(): mode for mode in AUTHENTICATION_MODES}
    modes = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [mode for mode in modes if mode.lower() not in spelled]
    if unknown or not modes:
        raise SettingsError(
            f"--authentication-modes takes one or more of {', '.join(AUTHENTICATION_MODES)}, not '{text}'"
        )
    return tuple(dict.fromkeys(spelled[mode.lower()] for mode in modes))


def read_key_file(path: str | Path) -> str:
    """The key in a file (its first line), so it never shows in the command line other users can read."""
    try:
        return Path(path).read_text().strip().splitlines()[0].strip()
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read an account key from {path}: {exc or 'empty file'}") from exc


def account_from_environment(
    name: str | None, key: str | None, host: str, key_file: str | Path | None = None
) -> tuple[str, tuple[str, ...]]:
    """Resolve the account from flags, then the environment, then the development default.

    The keys leave the environment once read: processes the service starts (Azurite, agents) do not inherit them.
    """
    name = name or os.environ.get("BATCHYARD_ACCOUNT_NAME")
    key_file = key_file or os.environ.pop("BATCHYARD_ACCOUNT_KEY_FILE", None)
    from_file = read_key_file(key_file) if key_file else None
    key = key or from_file or os.environ.get("BATCHYARD_ACCOUNT_KEY")
    os.environ.pop("BATCHYARD_ACCOUNT_KEY", None)
    secondary = os.environ.pop("BATCHYARD_ACCOUNT_SECONDARY_KEY", None)
    if not name and not key:
        if not is_loopback(host):
            raise SettingsError(
                f"refusing to listen on {host} with the well-known development key: "
                "set --account-name/--account-key-file or BATCHYARD_ACCOUNT_NAME/BATCHYARD_ACCOUNT_KEY_FILE"
            )
        return DEV_ACCOUNT_NAME, (DEV_ACCOUNT_KEY, DEV_ACCOUNT_SECONDARY_KEY)
    if not name or not key:
        raise SettingsError("both an account name and an account key are needed")
    keys = (key, secondary) if secondary else (key,)
    if not is_loopback(host) and (DEV_ACCOUNT_KEY in keys or DEV_ACCOUNT_SECONDARY_KEY in keys):
        raise SettingsError(f"refusing to listen on {host} with the well-known development key")
    return name, keys
