"""Opening a database an older service wrote: its data is moved into the current tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.storage.applications import ApplicationRegistry


def test_the_application_registry_moves_from_meta_to_its_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    apps = {
        "render": {
            "id": "Render",
            "displayName": "Renderer",
            "allowUpdates": True,
            "defaultVersion": "1.0",
            "packages": {"1.0": {"version": "1.0", "state": "active", "format": "zip", "blob": "render/1.0/a.zip"}},
        },
        "empty": {"id": "empty", "displayName": None, "allowUpdates": False, "defaultVersion": None, "packages": {}},
    }
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('applications', ?)", (orjson.dumps(apps).decode(),))
    conn.execute("INSERT INTO meta VALUES ('node_secret', 'ab')")
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        assert {app["id"].lower(): app for app in store.load_applications()} == apps
        assert store.get_meta("applications") is None
        assert store.get_meta("node_secret") == "ab"
        registry = ApplicationRegistry(store, None, 20, 40)
        assert registry.apps == apps
        registry.update("render", {"displayName": "New"})
        registry.delete("empty")
    finally:
        store.close()

    again = SqliteStore(path)  # the move happens once; later changes are in the table
    try:
        assert [(app["id"], app["displayName"]) for app in again.load_applications()] == [("Render", "New")]
    finally:
        again.close()
