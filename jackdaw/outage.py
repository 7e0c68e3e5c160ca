"""The database away at run time: noticed once, answered with 503, tried again until it is back.

An error that says the database cannot be used (the file removed or unreadable, PostgreSQL
down, the schema behind: the DBAPI's OperationalError and InterfaceError, an undefined table or
column) is checked with ``dbcheck.problem_with``: when the database really is away, the outage
starts. Then every ACME request answers 503 (``serverInternal``, ``Retry-After``) unless it
finds the database back: one caller at a time tries it (``probe``; the others answer at once),
each ACME request that finds no try under way and, every ``PROBE_EVERY`` seconds, the job
threads' periodic loop, so an outage also ends with no request at all. A request is served the
moment the database is back, not a probe interval later. One log line when an outage starts,
one when it ends, per process. An error of one request only (SQLite's "database is
locked" after its busy timeout, a deadlock) is that request's 503 and one line, not an outage.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from jackdaw import dbcheck
from jackdaw.protocol import problems

log = logging.getLogger(__name__)

#: seconds a client is asked to wait (Retry-After) while the database is away
RETRY_AFTER = 5
#: seconds between the job threads' tries of the database while it is away (per process)
PROBE_EVERY = 1.0
#: PostgreSQL's SQLSTATEs for a schema behind the code: undefined table, undefined column
_SCHEMA_STATES = frozenset({"42P01", "42703"})


def is_database_error(exc: BaseException) -> bool:
    """An error that may mean the database cannot be used, rather than a bug in a statement."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) in _SCHEMA_STATES
    return False


def unavailable(detail: str = "the relay's database is unavailable; try again later") -> problems.AcmeProblem:
    return problems.Unavailable(detail, retry_after=RETRY_AFTER)


class Outage:
    """Per process: is the database away, since when and why."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._probing = threading.Lock()
        self._since: float | None = None
        self._next_probe = 0.0
        self.reason = ""

    @property
    def down(self) -> bool:
        return self._since is not None

    def check(self) -> None:
        """Raise a 503 problem while the database is away. Costs nothing while it is not."""
        if self._since is not None and not self.probe():
            raise unavailable()

    def failed(self, exc: BaseException) -> bool:
        """``exc`` reached the caller: True when it is the database's (the caller answers 503),
        after deciding whether the database is away (an outage starts) or this was one error."""
        if not is_database_error(exc):
            return False
        if isinstance(exc, sa_exc.TimeoutError):  # every pooled connection busy: a try would wait too
            log.warning("database error (no free connection in the pool): %s", dbcheck.words(exc))
            return True
        if self._since is None:
            found = dbcheck.problem_with(self.engine)
            if found is None:
                log.warning("database error (the database itself answers): %s", dbcheck.words(exc))
            else:
                self._start(found)
        return True

    def probe(self, due_only: bool = False) -> bool:
        """Try the database (with ``due_only``, not within PROBE_EVERY s of the last try); True when
        usable. One caller tries at a time: the others take the current answer at once."""
        if self._since is None:
            return True
        if due_only and time.monotonic() < self._next_probe:
            return False
        if not self._probing.acquire(blocking=False):
            return self._since is None
        try:
            self._next_probe = time.monotonic() + PROBE_EVERY
            found = dbcheck.problem_with(self.engine)
        finally:
            self._probing.release()
        if found is None:
            self._end()
            return True
        self.reason = found
        return False

    def _start(self, reason: str) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
            self._next_probe = self._since + PROBE_EVERY
            self.reason = reason
        log.error("database unavailable, ACME requests answer 503 until it is back: %s", reason)

    def _end(self) -> None:
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("database available again after %.0f s", time.monotonic() - since)
