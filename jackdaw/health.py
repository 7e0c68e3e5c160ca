"""Readiness: can this process serve ACME and issue? (`GET /readyz`; `/healthz` is liveness.)

Three checks, each cheap enough for a probe every few seconds:

- database: ``SELECT 1`` (read-only: never waits for SQLite's write lock), or while the database
  is away (jackdaw.outage) that outage's reason;
- migrations: the schema is at alembic head (once true, remembered until the database is lost);
- upstream: the upstream account is usable — the database holds its key and account URL for
  LE_DIRECTORY — or else the upstream directory answers (the account is registered on first
  use, never by a probe). The directory answer is remembered for 60 s, good or bad.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import Engine, text

from jackdaw import schema
from jackdaw.outage import Outage
from jackdaw.settings import Settings
from jackdaw.upstream.account import UpstreamAccount, fetch_directory

log = logging.getLogger(__name__)

UPSTREAM_CACHE_SECONDS = 60.0
UPSTREAM_TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason}


@dataclass(frozen=True)
class Report:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks.values())

    def to_json(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not ready",
                "checks": {name: check.to_json() for name, check in self.checks.items()}}


def _short(exc: BaseException) -> str:
    """One line about ``exc``; for requests' wrapped urllib3 errors, the underlying one."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None  # urllib3 MaxRetryError
    if isinstance(reason, BaseException):
        return f"{type(exc).__name__}: {_short(reason)}"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


class Readiness:
    def __init__(self, settings: Settings, engine: Engine, upstream: UpstreamAccount,
                 outage: Outage | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.upstream = upstream
        self.outage = outage
        self._at_head = False
        self._lock = threading.Lock()
        self._directory: tuple[float, Check] | None = None
        self._was_ready: bool | None = None

    def report(self) -> Report:
        database = self._database()
        migrations = self._migrations() if database.ok else Check(False, "not checked: database unreachable")
        report = Report({"database": database, "migrations": migrations, "upstream": self._upstream()})
        if report.ready != self._was_ready:  # log changes, not every probe
            self._was_ready = report.ready
            if report.ready:
                log.info("ready")
            else:
                log.warning("not ready: %s", "; ".join(f"{n}: {c.reason}" for n, c in report.checks.items()
                                                     if not c.ok))
        return report

    def _database(self) -> Check:
        outage = self.outage
        if outage is not None and not outage.probe():  # away: its reason names file, owner, command
            self._at_head = False
            return Check(False, outage.reason)
        try:
            with self.engine.connect().execution_options(read_only=True) as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            self._at_head = False  # a database back from away may be another one (a restore)
            if outage is not None:
                outage.failed(exc)  # ACME answers 503 from now, not after its own first error
            return Check(False, _short(exc))
        return Check(True, f"{self.engine.dialect.name} reachable")

    def _migrations(self) -> Check:
        if not self._at_head:
            try:
                self._at_head = schema.is_at_head(self.engine)
            except Exception as exc:
                return Check(False, f"cannot read the schema revision: {_short(exc)}")
            if not self._at_head:
                return Check(False, "schema is not at the latest migration: run `jackdaw db upgrade`")
        return Check(True, "schema at head")

    def _upstream(self) -> Check:
        directory = self.settings.le_directory
        try:
            url = self.upstream.recorded_account_url()
        except Exception:  # the database check reports why; the directory may still answer
            url = None
        if url:
            return Check(True, f"account {url} recorded for {directory}")
        with self._lock:
            now = time.monotonic()
            if self._directory is None or now - self._directory[0] >= UPSTREAM_CACHE_SECONDS:
                self._directory = (now, self._probe_directory())
            return self._directory[1]

    def _probe_directory(self) -> Check:
        directory = self.settings.le_directory
        try:
            doc = fetch_directory(self.settings, timeout=UPSTREAM_TIMEOUT)
        except requests.RequestException as exc:
            return Check(False, f"no account yet and directory {directory} unreachable: {_short(exc)}")
        except ValueError as exc:
            return Check(False, f"no account yet and {exc}")
        meta: dict[str, Any] = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
        if meta.get("externalAccountRequired") and not self.settings.le_eab_kid:
            return Check(False, f"LE_EAB_KID: the upstream CA {directory} requires an external account binding; "
                                "set LE_EAB_KID and LE_EAB_HMAC_KEY")
        return Check(True, f"no account yet (registered on first use); directory {directory} answers")
