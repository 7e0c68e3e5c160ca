"""Durable jobs and the worker threads that run them.

A job is a row (kind, subject_id) that exists while work is wanted. Worker threads in every
gunicorn worker claim rows under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
serializes every transaction with BEGIN IMMEDIATE), so a job whose worker died is claimed
again once its lease lapses. Enqueueing the same (kind, subject) again while it runs bumps its
generation, and the runner then runs it once more instead of deleting it: no request is lost
and no two threads ever run the same job at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.db import rowcount
from jackdaw.models import Job, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
#: how often each process looks for work queued elsewhere (its own enqueues wake it at once)
PROBE_INTERVAL = 0.5
IDLE_WAIT = 10.0


class RetryLater(Exception):
    """Raised by a handler to run the job again after `delay` seconds."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass
class JobContext:
    id: int
    kind: str
    subject_id: str
    attempts: int
    queue: JobQueue
    _last_beat: float = 0.0

    def heartbeat(self) -> None:
        """Extend the lease; long handlers call this from their polling loops."""
        now = time.monotonic()
        if now - self._last_beat < self.queue.lease.total_seconds() / 4:
            return
        self._last_beat = now
        with self.queue.sessions.begin() as s:
            s.execute(update(Job).where(Job.id == self.id).values(lease_until=utcnow() + self.queue.lease))


Handler = Callable[[JobContext], None]
GiveUp = Callable[[str, str], None]


class JobQueue:
    def __init__(self, engine: Engine, sessions: sessionmaker[Session], threads: int = 4,
                 lease_seconds: float = 30.0) -> None:
        self.engine = engine
        self.sessions = sessions
        self.threads = threads
        self.lease = timedelta(seconds=lease_seconds)
        self.handlers: dict[str, tuple[Handler, GiveUp | None]] = {}
        self.periodic: list[tuple[float, Callable[[], object]]] = []
        self._wake = threading.Condition()
        self._pending_wakes = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def register(self, kind: str, handler: Handler, give_up: GiveUp | None = None) -> None:
        self.handlers[kind] = (handler, give_up)

    # -- enqueue ---------------------------------------------------------------------------

    def enqueue(self, session: Session, kind: str, subject_id: str, delay: float = 0.0) -> None:
        """Add (or re-arm) a job inside the caller's transaction; threads wake on commit."""
        run_at = utcnow() + timedelta(seconds=delay)
        dialect = session.get_bind().dialect.name
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Job)
        stmt = ins.values(kind=kind, subject_id=subject_id, run_at=run_at, attempts=0, generation=0,
                          created=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[Job.kind, Job.subject_id],
            set_={"generation": Job.generation + 1, "run_at": run_at},
        )
        session.execute(stmt)
        session.info["jackdaw_wake"] = True

    def after_commit(self, session: Session) -> None:
        if session.info.pop("jackdaw_wake", False):
            self.wake()

    def wake(self) -> None:
        with self._wake:
            self._pending_wakes += 1
            self._wake.notify()

    # -- run -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._workers:
            return
        self._stop.clear()
        for n in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"jackdaw-job-{n}", daemon=True)
            t.start()
            self._workers.append(t)
        t = threading.Thread(target=self._periodic_loop, name="jackdaw-periodic", daemon=True)
        t.start()
        self._workers.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._workers:
            t.join(timeout)
        self._workers.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("job loop error")
                ran = False
            if ran:
                continue
            with self._wake:
                if self._pending_wakes == 0:
                    # Local enqueues notify; the probe notifies for work other processes queued.
                    self._wake.wait(timeout=IDLE_WAIT)
                self._pending_wakes = max(0, self._pending_wakes - 1)

    def _periodic_loop(self) -> None:
        last: dict[int, float] = {}
        while not self._stop.wait(PROBE_INTERVAL):
            try:
                if self._due():
                    with self._wake:
                        self._pending_wakes += self.threads
                        self._wake.notify_all()
            except Exception:
                log.exception("job probe failed")
            for i, (every, fn) in enumerate(self.periodic):
                # each task runs at the first tick, then every `every` seconds (the monotonic
                # clock starts near 0 at boot: "never ran" is not the same as "ran at 0")
                if i not in last or time.monotonic() - last[i] >= every:
                    last[i] = time.monotonic()
                    try:
                        fn()
                    except Exception:
                        log.exception("periodic task failed")

    def _due(self) -> bool:
        """A read-only look for due work (no write lock on SQLite), one per process per tick."""
        now = utcnow()
        with self.engine.connect().execution_options(read_only=True) as conn, conn.begin():
            return conn.execute(
                select(Job.id).where(Job.run_at <= now, (Job.lease_until.is_(None)) | (Job.lease_until < now)).limit(1)
            ).first() is not None

    def claim(self) -> tuple[JobContext, int] | None:
        now = utcnow()
        with self.sessions.begin() as s:
            q = (
                select(Job)
                .where(Job.run_at <= now, (Job.lease_until.is_(None)) | (Job.lease_until < now))
                .order_by(Job.run_at)
                .limit(1)
            )
            if s.get_bind().dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            job = s.scalars(q).first()
            if job is None:
                return None
            job.lease_until = now + self.lease
            job.attempts += 1
            ctx = JobContext(job.id, job.kind, job.subject_id, job.attempts, self, time.monotonic())
            return ctx, job.generation

    def run_once(self) -> bool:
        claimed = self.claim()
        if claimed is None:
            return False
        ctx, generation = claimed
        handler, give_up = self.handlers.get(ctx.kind, (None, None))
        try:
            if handler is None:
                raise RuntimeError(f"no handler for job kind {ctx.kind!r}")
            handler(ctx)
        except RetryLater as exc:
            self._release(ctx, exc.delay, str(exc))
            return True
        except Exception as exc:
            log.exception("job %s %s failed (attempt %d)", ctx.kind, ctx.subject_id, ctx.attempts)
            if ctx.attempts >= MAX_ATTEMPTS:
                if give_up is not None:
                    give_up(ctx.subject_id, f"{type(exc).__name__}: {exc}")
            else:
                self._release(ctx, min(2.0**ctx.attempts, 60.0), f"{type(exc).__name__}: {exc}")
                return True
        self._finish(ctx, generation)
        return True

    def _release(self, ctx: JobContext, delay: float, reason: str) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(Job)
                .where(Job.id == ctx.id)
                .values(lease_until=None, run_at=utcnow() + timedelta(seconds=delay), last_error=reason[:2000])
            )
        if delay <= 0:
            self.wake()

    def _finish(self, ctx: JobContext, generation: int) -> None:
        with self.sessions.begin() as s:
            gone = rowcount(s.execute(delete(Job).where(Job.id == ctx.id, Job.generation == generation)))
            if not gone:  # asked for again while running: run again now
                s.execute(update(Job).where(Job.id == ctx.id).values(lease_until=None, attempts=0))
        if not gone:
            self.wake()

    def drain(self, timeout: float = 30.0) -> None:
        """Run jobs in this thread until none is due (tests without worker threads)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_once():
            pass
