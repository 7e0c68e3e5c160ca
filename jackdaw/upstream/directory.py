"""What the upstream CA's directory offers (profiles, ``renewalInfo``, CAA identities, "EAB
required"), kept in the database per directory URL (``upstream_directories``).

- Served from the first request after any start, by every instance: request threads read the
  row (at most every CACHE_SECONDS per process) and never wait on the CA.
- Fetched by one job (``JobKind.UPSTREAM_DIRECTORY``) every UPSTREAM_DIRECTORY_REFRESH seconds
  across all instances: each process's periodic tick reads the row and asks for the job when the
  last attempt is that old (DOWN_RECHECK while the CA is not answering). A failed fetch keeps the
  last good meta and records why.
- A profile the CA stops listing stays offered for UPSTREAM_PROFILE_GRACE after the first fetch
  that missed it (Let's Encrypt's directory once briefly listed no profiles, and clients naming
  one broke). An order for it that the CA then refuses fails with the CA's ``invalidProfile``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import requests
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import __version__
from jackdaw.db import make_sessionmaker
from jackdaw.jobs import JobContext, JobKind, JobQueue
from jackdaw.ledger import now_of
from jackdaw.models import UpstreamDirectory as Row
from jackdaw.models import utcnow
from jackdaw.settings import Settings

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 5.0
#: seconds between fetches while the CA does not answer (to notice soon that it is back)
DOWN_RECHECK = 10.0
#: seconds a process serves the row it read before reading it again
CACHE_SECONDS = 5.0
#: how often each process looks at the row (and asks for a fetch when one is due)
SYNC_EVERY = 5.0
#: seconds between two fetches however often they are asked for
MIN_GAP = 5.0


@dataclass(frozen=True)
class UpstreamMeta:
    """What the upstream CA's directory offers, as the relay serves it now."""

    #: certificate profiles (draft-ietf-acme-profiles): name -> description; those the CA
    #: stopped listing are included while their grace lasts
    profiles: dict[str, str]
    #: the CA's CAA issuer domain names (dns-persist-01 records name one of them)
    caa_identities: tuple[str, ...]
    #: the ARI renewalInfo base URL (RFC 9773), if the CA has ARI
    renewal_info: str | None
    eab_required: bool
    #: when the CA last answered (None: never)
    fetched: datetime | None = None
    #: profiles the CA no longer lists but the relay still offers: name -> (since, until)
    withdrawn: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)


@dataclass(frozen=True)
class Listing:
    """One fetch of the directory."""

    profiles: dict[str, str]
    caa_identities: tuple[str, ...]
    renewal_info: str | None
    eab_required: bool


@dataclass(frozen=True)
class Stored:
    """The row, read once."""

    directory_url: str
    profiles: dict[str, str]
    #: name -> (description, since)
    withdrawn: dict[str, tuple[str, datetime]]
    caa_identities: tuple[str, ...]
    renewal_info: str | None
    eab_required: bool
    fetched: datetime | None
    checked: datetime | None
    error: str | None

    @classmethod
    def of(cls, row: Row) -> Stored:
        return cls(row.directory_url, dict(row.profiles or {}),
                   {name: (str(w.get("description", "")), datetime.fromisoformat(w["since"]))
                    for name, w in (row.withdrawn or {}).items()},
                   tuple(row.caa_identities or ()), row.renewal_info, row.eab_required, row.fetched, row.checked,
                   row.error)

    def view(self, grace: timedelta, now: datetime) -> UpstreamMeta | None:
        """The meta as served at ``now``; None while the CA never answered."""
        if self.fetched is None:
            return None
        kept = {name: (desc, since, since + grace) for name, (desc, since) in self.withdrawn.items()
                if now < since + grace}
        return UpstreamMeta(
            profiles={**{name: desc for name, (desc, _, _) in kept.items()}, **self.profiles},
            caa_identities=self.caa_identities, renewal_info=self.renewal_info, eab_required=self.eab_required,
            fetched=self.fetched, withdrawn={name: (since, until) for name, (_, since, until) in kept.items()})

    def due(self, every: float, now: datetime) -> bool:
        return self.checked is None or (now - self.checked).total_seconds() >= every


def fetch_directory(settings: Settings, timeout: float = FETCH_TIMEOUT) -> dict[str, Any]:
    """The upstream directory document (a plain GET, over the configured trust)."""
    resp = requests.get(settings.le_directory, timeout=timeout, allow_redirects=False,
                        verify=settings.upstream_ca_bundle or True, headers={"User-Agent": f"jackdaw/{__version__}"})
    resp.raise_for_status()
    doc = resp.json()
    if not isinstance(doc, dict) or "newAccount" not in doc:
        raise ValueError(f"{settings.le_directory} is not an ACME directory (HTTP {resp.status_code})")
    return doc


def parse(doc: dict[str, Any]) -> Listing:
    meta: dict[str, Any] = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
    profiles: dict[str, Any] = meta["profiles"] if isinstance(meta.get("profiles"), dict) else {}
    return Listing(
        profiles={str(k): str(v) for k, v in profiles.items()},
        caa_identities=tuple(str(c) for c in meta.get("caaIdentities") or () if isinstance(c, str)),
        renewal_info=str(doc["renewalInfo"]) if isinstance(doc.get("renewalInfo"), str) else None,
        eab_required=bool(meta.get("externalAccountRequired")))


def merge(listed: dict[str, str], withdrawn: dict[str, dict[str, str]], found: dict[str, str], now: datetime,
          grace: timedelta) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The withdrawn profiles after a fetch that found ``found`` where ``listed`` was before;
    and the names withdrawn by this fetch. A profile listed again is no longer withdrawn; one
    whose grace is over is forgotten."""
    kept = {name: w for name, w in withdrawn.items()
            if name not in found and now < datetime.fromisoformat(w["since"]) + grace}
    new = sorted(name for name in listed if name not in found and name not in kept)
    for name in new:
        kept[name] = {"description": listed[name], "since": now.isoformat()}
    return kept, new


def job_subject(directory_url: str) -> str:
    """The job's subject: the URL, or its digest when longer than the column."""
    if len(directory_url) <= 255:
        return directory_url
    return "sha256:" + hashlib.sha256(directory_url.encode()).hexdigest()


class Reachability(Protocol):
    """The upstream account's record of whether the CA answers (jackdaw.upstream.account)."""

    def note_unreachable(self, exc: BaseException) -> str: ...

    def note_reachable(self) -> None: ...

    def down_at(self) -> datetime | None: ...


class UpstreamDirectory:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], reachability: Reachability) -> None:
        self.settings = settings
        self.sessions = sessions
        # reads never queue for SQLite's write lock (jackdaw.db): a request thread reads here
        self._reads = make_sessionmaker(sessions.kw["bind"].execution_options(read_only=True))
        self.reachability = reachability
        #: told the names of profiles a fetch found withdrawn (a notification); never raises
        self.on_withdrawn: Callable[[list[str]], None] | None = None
        self._lock = threading.Lock()
        self._cached: Stored | None = None
        self._cached_at = -CACHE_SECONDS
        self._failed_at = -60.0

    @property
    def url(self) -> str:
        return self.settings.le_directory

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.upstream_profile_grace)

    # -- for request threads ----------------------------------------------------------------

    def meta(self) -> UpstreamMeta | None:
        """The meta as stored (read at most every CACHE_SECONDS); None while the CA never answered."""
        stored = self._cached
        if time.monotonic() - self._cached_at >= CACHE_SECONDS:
            stored = self.load()
        return stored.view(self.grace, utcnow()) if stored is not None else None

    def load(self) -> Stored | None:
        """Read the row (and keep it for CACHE_SECONDS); the last one read if the database fails."""
        with self._lock:
            if time.monotonic() - self._cached_at < CACHE_SECONDS:
                return self._cached
            try:
                with self._reads() as s:
                    row = s.get(Row, self.url)
                    self._cached = Stored.of(row) if row is not None else None
            except Exception as exc:  # the database is away: readiness says so; this says it once a minute
                if time.monotonic() - self._failed_at >= 60:
                    self._failed_at = time.monotonic()
                    log.warning("upstream directory: cannot read the stored meta (%s); serving the last one read",
                                exc)
            self._cached_at = time.monotonic()
            return self._cached

    # -- fetching ---------------------------------------------------------------------------

    def refresh(self) -> UpstreamMeta | None:
        """Fetch the directory now and store it (the job, operator commands); the meta as stored."""
        try:
            listing = parse(fetch_directory(self.settings))
        except requests.ConnectionError as exc:  # refused, no route, DNS, TLS: the CA cannot be reached
            reference = self.reachability.note_unreachable(exc)
            self._store(None, f"unreachable: {type(exc).__name__} (reference {reference} in the log)")
        except (requests.RequestException, ValueError) as exc:
            log.warning("upstream directory %s: %s", self.url, exc)
            self._store(None, f"{type(exc).__name__}: {exc}"[:500])
        else:
            self.reachability.note_reachable()
            if listing.eab_required and not self.settings.le_eab_kid:
                log.error("the upstream CA %s requires an external account binding: set LE_EAB_KID and "
                          "LE_EAB_HMAC_KEY", self.url)
            withdrawn = self._store(listing, None)
            if withdrawn:
                log.warning("the upstream CA %s no longer lists profile(s) %s; offered for %.0f s more "
                            "(UPSTREAM_PROFILE_GRACE)", self.url, ", ".join(withdrawn), self.grace.total_seconds())
                if self.on_withdrawn is not None:
                    self.on_withdrawn(withdrawn)
        self._cached_at = -CACHE_SECONDS  # read what was stored at the next look
        return self.meta()

    def _store(self, listing: Listing | None, error: str | None) -> list[str]:
        """Record an attempt: ``listing`` when the CA answered (else ``error``). Returns the
        profiles this fetch found withdrawn."""
        with self.sessions.begin() as s:
            dialect = s.get_bind().dialect.name
            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Row)
            s.execute(ins.values(directory_url=self.url, profiles={}, withdrawn={}, caa_identities=[],
                                 eab_required=False).on_conflict_do_nothing(index_elements=[Row.directory_url]))
            q = select(Row).where(Row.directory_url == self.url)
            row = s.scalars(q.with_for_update() if dialect == "postgresql" else q).one()
            now = now_of(s)
            row.checked, row.error = now, error
            if listing is None:
                return []
            # a first fetch withdraws nothing: there was nothing listed before
            withdrawn, new = merge(dict(row.profiles or {}), dict(row.withdrawn or {}), listing.profiles, now,
                                   self.grace)
            row.profiles, row.withdrawn = listing.profiles, withdrawn
            row.caa_identities, row.renewal_info = list(listing.caa_identities), listing.renewal_info
            row.eab_required, row.fetched = listing.eab_required, now
            return new

    def run(self, ctx: JobContext) -> None:
        """The ``UPSTREAM_DIRECTORY`` job: fetch, unless another run just did (processes that
        asked at the same time)."""
        self._cached_at = -CACHE_SECONDS
        stored = self.load()
        with self._reads() as s:
            now = now_of(s)
        if stored is not None and not stored.due(min(MIN_GAP, self.settings.upstream_directory_refresh), now):
            return
        ctx.guard()
        self.refresh()

    def _every(self, stored: Stored | None) -> float:
        if (stored is not None and stored.error is not None) or self.reachability.down_at() is not None:
            return min(DOWN_RECHECK, self.settings.upstream_directory_refresh)
        return self.settings.upstream_directory_refresh

    def sync(self, queue: JobQueue) -> None:
        """A periodic task of each process: read the row; ask for a fetch when one is due; a CA
        this process saw fail is known to answer again once a later fetch (anywhere) succeeded."""
        self._cached_at = -CACHE_SECONDS
        stored = self.load()
        down = self.reachability.down_at()
        if down is not None and stored is not None and stored.error is None and stored.checked is not None \
                and stored.checked > down:
            self.reachability.note_reachable()
        with self._reads() as s:
            now = now_of(s)
        if stored is None or stored.due(self._every(stored), now):
            queue.ask(JobKind.UPSTREAM_DIRECTORY, job_subject(self.url))
