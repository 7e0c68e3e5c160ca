"""The directories the relay writes (the SQLite database's, RELAY_CERT_DIR, PROMETHEUS_MULTIPROC_DIR)
are writable by this user, or can be created: checked by `jackdaw check` and at gunicorn's start,
so an unwritable one is one line naming the setting, not a failure at the first write."""

from __future__ import annotations

import os
from pathlib import Path

from jackdaw.db import sqlite_path
from jackdaw.dbcheck import running_as, sqlite_access
from jackdaw.envparse import ConfigError
from jackdaw.serving import MULTIPROC_DIR, Serving
from jackdaw.settings import Settings


def sqlite_file(database_url: str) -> Path | None:
    """The file of an SQLite URL; None for PostgreSQL, in-memory SQLite and no URL at all."""
    path = sqlite_path(database_url) if database_url else None
    return Path(path) if path else None


def check_writable(key: str, directory: Path) -> None:
    """``directory`` is writable, or its nearest existing ancestor is (so it can be made)."""
    existing = directory.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    who = running_as()
    if not existing.is_dir():
        raise ConfigError(f"{key}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        made = "" if existing == directory.absolute() else f" (nor can {directory} be created in it)"
        raise ConfigError(f"{key}: {existing} is not writable by {who}{made}")


def check_state_dirs(settings: Settings, serving: Serving) -> None:
    database = sqlite_file(settings.database_url)
    if database is not None:
        key = "DATABASE_URL" if settings.env.get("DATABASE_URL", "").strip() else "DATA_DIR"
        if not os.path.isdir(database.parent):  # to be made: writable, or can be created
            check_writable(key, database.parent)
        else:  # whose file or directory is in the way and what to run, as gunicorn's start says
            # it; a missing file is fine where it can be made (the unit runs check before `db upgrade`)
            problem = sqlite_access(database.absolute(), missing_ok=True)
            if problem is not None:
                raise ConfigError(f"{key}: {problem}")
    if settings.relay_cert_enabled:
        key = "RELAY_CERT_DIR" if settings.relay_cert_dir is not None else "DATA_DIR"
        check_writable(key, settings.relay_cert_path)
    if serving.multiproc_dir is not None:
        check_writable(MULTIPROC_DIR, serving.multiproc_dir)
