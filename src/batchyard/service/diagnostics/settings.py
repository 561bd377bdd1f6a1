"""The account's diagnostic settings (`Microsoft.Insights/diagnosticSettings`), kept on disk, and whether they
turn the Service Logs on.

A setting names a destination and the log categories it takes; one whose destination is the linked storage
account and that takes `ServiceLog` (by name or through the `allLogs` group) turns the writing of Service Log
records on. The management plane (management/diagnostic_settings.py) checks a setting before it is kept here;
the recorder asks `service_logs_on` before each record, so a change takes effect at once. The settings are
kept in `DATA_DIR/management/diagnostic-settings.json`: a restart keeps them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

from batchyard.service.diagnostics.records import CATEGORY as SERVICE_LOG
from batchyard.service.management.resources import storage_account_name
from batchyard.service.private_files import write_private

log = logging.getLogger("batchyard.diagnostics")

SETTINGS_FILE = Path("management") / "diagnostic-settings.json"
AUDIT_LOG = "AuditLog"
ALL_METRICS = "AllMetrics"
# Azure Batch's log categories and the groups each belongs to ("Supported logs for Microsoft.Batch/batchAccounts").
LOG_CATEGORIES: dict[str, tuple[str, ...]] = {AUDIT_LOG: ("allLogs", "audit"), SERVICE_LOG: ("allLogs",)}
CATEGORY_GROUPS: tuple[str, ...] = ("allLogs", "audit")
METRIC_CATEGORIES: tuple[str, ...] = (ALL_METRICS,)

# A setting as the management plane shows it: {"name", "properties": {"storageAccountId", "logs", "metrics"}}.
Setting = dict[str, Any]


def enabled_log_categories(setting: Setting) -> set[str]:
    """The log categories a setting takes: those enabled by name, and the members of the groups enabled."""
    enabled: set[str] = set()
    for entry in setting["properties"].get("logs") or []:
        if not entry.get("enabled"):
            continue
        if entry.get("category"):
            enabled.add(entry["category"])
        elif group := entry.get("categoryGroup"):
            enabled.update(name for name, groups in LOG_CATEGORIES.items() if group in groups)
    return enabled


class DiagnosticSettings:
    """The account's settings by name (module doc). `linked_account` is the linked storage account's name, the
    only destination records can be written to (None: the service has none)."""

    def __init__(self, data_dir: Path, linked_account: str | None) -> None:
        self._path = data_dir / SETTINGS_FILE
        self.linked_account = linked_account
        self._settings: dict[str, Setting] = {}  # by name, case folded (ARM's names are case-insensitive)
        self.service_logs_on = False
        self._load()

    def _load(self) -> None:
        if not self._path.exists():
            return
        try:
            saved = orjson.loads(self._path.read_bytes())
            settings = {str(s["name"]).casefold(): s for s in saved["settings"] if isinstance(s["properties"], dict)}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("%s is unreadable (%s): the account has no diagnostic settings", self._path, exc)
            return
        self._settings = settings
        self._recompute()
        for setting in settings.values():
            if not self._writes_here(setting) and SERVICE_LOG in enabled_log_categories(setting):
                log.warning(
                    "diagnostic setting %r sends Service Logs to %s, which is not the linked storage account (%s): "
                    "they are not written",
                    setting["name"],
                    setting["properties"].get("storageAccountId"),
                    self.linked_account,
                )

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self._path, orjson.dumps({"settings": list(self._settings.values())}))

    def all(self) -> list[Setting]:
        return list(self._settings.values())

    def get(self, name: str) -> Setting | None:
        return self._settings.get(name.casefold())

    def put(self, setting: Setting) -> None:
        self._settings[str(setting["name"]).casefold()] = setting
        self._changed()

    def delete(self, name: str) -> bool:
        """Remove a setting; False when there was none of that name."""
        if self._settings.pop(name.casefold(), None) is None:
            return False
        self._changed()
        return True

    def _changed(self) -> None:
        self._save()
        self._recompute()

    def _recompute(self) -> None:
        self.service_logs_on = any(
            self._writes_here(setting) and SERVICE_LOG in enabled_log_categories(setting)
            for setting in self._settings.values()
        )

    def _writes_here(self, setting: Setting) -> bool:
        name = storage_account_name(str(setting["properties"].get("storageAccountId") or ""))
        return (
            name is not None and self.linked_account is not None and name.casefold() == self.linked_account.casefold()
        )
