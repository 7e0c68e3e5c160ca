"""Durable jobs and the worker threads that run them.

A job is a row (kind, subject_id) that exists while work is wanted. Worker threads in every
gunicorn worker claim rows under a lease. A claim carries an owner token; every later write to
the row (lease renewal, reschedule, finish) is ``... WHERE id = ? AND owner = ?``, so a run whose
lease lapsed and was taken over can no longer touch the row, and ``JobContext.guard()`` stops it
before its next side effect. Every write a handler makes to its subject's rows goes through
``fenced``: the transaction also renews the lease ``WHERE id = ? AND owner = ?`` and rolls back
with ``LostClaim`` when no row matched, so a run frozen between ``guard()`` and its write (a GC
pause, a stalled disk, a partition that heals) writes nothing over the run that took over.
Leases are measured on the database's clock (PostgreSQL's ``now()``), not each host's. A
heartbeat thread renews the leases of every run in flight, so only a dead or frozen process
loses its claims.

Handlers do one bounded step at a time: instead of sleeping they raise ``Wait`` (progress made,
run again after a delay; the step's state is stored by the handler), so thousands of subjects
can be in flight on a few threads. ``RetryLater`` and unexpected exceptions are failures,
counted in ``attempts`` and bounded by the kind's ``max_attempts``; the last one calls the
kind's ``give_up``; a database that is away (jackdaw.outage) is no failure of the job: the run
stops, and its lease lapses. Enqueueing the same (kind, subject) again while it runs bumps its
generation, and the runner then runs it once more instead of deleting it: no request is lost.
"""

from __future__ import annotations

import heapq
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import metrics
from jackdaw.db import db_now, rowcount
from jackdaw.models import Job
from jackdaw.outage import Outage

log = logging.getLogger(__name__)


class JobKind(StrEnum):
    """Every kind of durable work, once."""

    VALIDATE = "validate"  # HTTP-01 check of one challenge (subject: challenge id)
    ORDER = "order"  # leg 2 of one client order (subject: order id)
    REVOKE = "revoke"  # forward one revocation upstream (subject: certificate id)
    RELAY_CERT = "relay_cert"  # the relay's own certificate (subject: jackdaw.relaycert.job_subject)
    DNS_ZONE = "dns_zone"  # write, check and remove the TXT values of one zone (subject: zone)
    RENEWAL_INFO = "renewal_info"  # fetch the upstream's ARI window of one certificate (subject: certificate id)
    RETENTION = "retention"  # prune what the relay no longer keeps (subject: jackdaw.retention.SUBJECT)
    NOTIFY_SWEEP = "notify_sweep"  # look for events worth telling the operator (subject: jackdaw.notify.SWEEP)
    NOTIFY = "notify"  # deliver one notification on its channel (subject: notification id)
    UPSTREAM_DIRECTORY = "upstream_directory"  # fetch and store the upstream directory's meta (subject: its URL)


MAX_ATTEMPTS = 8
#: how often each process looks for work queued elsewhere (its own enqueues wake it at once)
PROBE_INTERVAL = 0.5
IDLE_WAIT = 10.0
#: at most this long between two failure reports of the job loop (a database outage)
LOOP_ERROR_LOG_EVERY = 60.0


class Wait(Exception):
    """Raised by a handler that made progress and must look again after ``delay`` seconds
    (the CA's Retry-After, the propagation interval, a provider's settle time)."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = max(0.0, delay)


class RetryLater(Exception):
    """Raised by a handler whose step failed transiently: run again after ``delay`` seconds.
    Counts as a failed attempt."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class LostClaim(Exception):
    """This run no longer holds its job (its lease lapsed and another run took it over)."""


def backoff(attempts: int, cap: float = 60.0) -> float:
    return float(min(2.0 ** max(attempts, 0), cap))


@dataclass
class JobContext:
    id: int
    kind: str
    subject_id: str
    #: failed (or crashed) runs in a row, this one included; a completed step resets it
    attempts: int
    queue: JobQueue | None
    generation: int = 0
    #: this claim's owner token
    token: str = ""
    created: datetime | None = None
    lost: bool = False
    #: time.monotonic() when the lease was last set: the database cannot have let it lapse
    #: within lease_seconds of that (both clocks tick at the same rate)
    renewed: float = field(default_factory=time.monotonic)

    def guard(self) -> None:
        """Call before every side effect: raises LostClaim when another run may hold the job
        now (this one must stop without touching anything). A lease set less than half a lease
        ago is still ours; an older one is renewed, conditional on the owner token."""
        if self.lost:
            raise LostClaim(f"job {self.kind} {self.subject_id}: claim {self.token} lost")
        queue = self.queue
        if queue is None or time.monotonic() - self.renewed < queue.lease_seconds / 2:
            return
        renewed = time.monotonic()
        if not queue.renew(self):
            self.lost = True
            raise LostClaim(f"job {self.kind} {self.subject_id}: claim {self.token} lost")
        self.renewed = renewed


Handler = Callable[[JobContext], None]
#: called with the run's context (its writes are fenced too) and the last failure
GiveUp = Callable[[JobContext, str], None]

#: test-only: a job kind whose first fenced write stops this process (SIGSTOP) just before its
#: fence, as a GC pause or a stopped VM would (tests/e2e/test_fenced_writes.py); unset in production
FREEZE_BEFORE_FENCE = os.environ.get("JACKDAW_TEST_FREEZE_BEFORE_FENCE", "")
_frozen_once = threading.Event()


@contextmanager
def fenced(sessions: sessionmaker[Session], ctx: JobContext | None) -> Iterator[Session]:
    """A transaction for a write the run ``ctx`` makes: it commits only while the run still
    holds its claim (LostClaim, and nothing written, otherwise). The one place job writes are
    fenced. Without a run, or for a context without a queue (a test or a tool driving a
    handler by hand), there is no claim: the transaction is a plain one."""
    if ctx is not None and FREEZE_BEFORE_FENCE == ctx.kind and not _frozen_once.is_set():  # outside any transaction
        _frozen_once.set()
        os.kill(os.getpid(), signal.SIGSTOP)
    if ctx is not None and ctx.lost:  # the heartbeat already saw the takeover
        raise LostClaim(f"job {ctx.kind} {ctx.subject_id}: claim {ctx.token} lost before a write")
    with sessions.begin() as s:
        yield s
        queue = ctx.queue if ctx is not None else None
        if ctx is None or queue is None:
            return
        s.flush()  # the subject's rows first, the job row last: the order a finalize locks them in
        if not queue.fence(s, ctx):
            ctx.lost = True
            raise LostClaim(f"job {ctx.kind} {ctx.subject_id}: claim {ctx.token} lost before a write")


@dataclass(frozen=True)
class JobSpec:
    handler: Handler
    give_up: GiveUp | None = None
    max_attempts: int = MAX_ATTEMPTS


@dataclass
class _LoopErrors:
    """Logs the job loop's failures (the database is down) once a minute, not every tick."""

    last: float = field(default=-LOOP_ERROR_LOG_EVERY)

    def report(self, what: str) -> None:
        if time.monotonic() - self.last >= LOOP_ERROR_LOG_EVERY:
            self.last = time.monotonic()
            log.exception("%s (reported at most once a minute)", what)


class JobQueue:
    def __init__(self, engine: Engine, sessions: sessionmaker[Session], threads: int = 4,
                 lease_seconds: float = 30.0, outage: Outage | None = None) -> None:
        self.engine = engine
        #: the service's (jackdaw.outage): the database away is its one line, not this loop's
        self.outage = outage
        self.sessions = sessions
        self.threads = threads
        self.lease_seconds = lease_seconds
        self.handlers: dict[str, JobSpec] = {}
        self.periodic: list[tuple[float, Callable[[], object]]] = []
        self._wake = threading.Condition()
        #: reasons to claim: local enqueues, work the probe saw due, a due timer
        self._pending_wakes = 0
        #: time.monotonic() when jobs this process rescheduled fall due (a min-heap)
        self._timers: list[float] = []
        self._stop = threading.Event()
        #: notified whenever a run of this process ends (request threads waiting for an outcome)
        self._ran = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._running: dict[str, JobContext] = {}
        self._running_lock = threading.Lock()
        self._errors = _LoopErrors()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def register(self, kind: str, handler: Handler, give_up: GiveUp | None = None,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.handlers[kind] = JobSpec(handler, give_up, max_attempts)

    # -- enqueue ---------------------------------------------------------------------------

    def enqueue(self, session: Session, kind: str, subject_id: str, delay: float = 0.0) -> None:
        """Add (or re-arm) a job inside the caller's transaction; threads wake on commit.

        A job already due sooner keeps its time: asking again never delays work."""
        run_at = db_now(self.dialect, delay)
        ins = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(Job)
        stmt = ins.values(kind=kind, subject_id=subject_id, run_at=run_at, attempts=0, generation=0,
                          created=db_now(self.dialect))
        earliest = func.least if self.dialect == "postgresql" else func.min
        stmt = stmt.on_conflict_do_update(
            index_elements=[Job.kind, Job.subject_id],
            set_={"generation": Job.generation + 1, "run_at": earliest(Job.run_at, stmt.excluded.run_at)},
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

    def wait_for_a_run(self, timeout: float) -> None:
        """Return when a run of this process ends, or after ``timeout`` s (runs elsewhere)."""
        with self._ran:
            self._ran.wait(timeout)

    def _a_run_ended(self) -> None:
        with self._ran:
            self._ran.notify_all()

    def _wake_at(self, delay: float) -> None:
        """A job this process rescheduled falls due in ``delay`` s: claim then, not at a poll."""
        with self._wake:
            heapq.heappush(self._timers, time.monotonic() + delay)
            self._wake.notify()  # a waiting thread recomputes its timeout

    def _work_to_do(self) -> bool:
        """Wait until there is a reason to claim (True) or the queue stops (False). A thread
        never claims just because it finished a run: that would ask the database for nothing
        whenever the queue is idle."""
        with self._wake:
            while not self._stop.is_set():
                now = time.monotonic()
                while self._timers and self._timers[0] <= now:
                    heapq.heappop(self._timers)
                    self._pending_wakes += 1
                if self._pending_wakes > 0:
                    self._pending_wakes -= 1
                    return True
                self._wake.wait(timeout=min(IDLE_WAIT, self._timers[0] - now) if self._timers else IDLE_WAIT)
            return False

    # -- run -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Job threads run in this process (not in tests that drain the queue by hand)."""
        return bool(self._workers) and not self._stop.is_set()

    def start(self) -> None:
        if self._workers:
            return
        self._stop.clear()
        for n in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"jackdaw-job-{n}", daemon=True)
            t.start()
            self._workers.append(t)
        for target, name in ((self._periodic_loop, "jackdaw-periodic"), (self._heartbeat_loop, "jackdaw-heartbeat")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._workers:
            t.join(timeout)
        self._workers.clear()

    def _report(self, what: str, exc: Exception) -> None:
        if self.outage is None or not self.outage.failed(exc):
            self._errors.report(what)

    def _loop(self) -> None:
        while self._work_to_do():
            try:
                # a run's own follow-ups (asked again meanwhile, a reschedule) wake a thread
                self.run_once()
            except Exception as exc:
                self._report("job loop error", exc)

    def _periodic_loop(self) -> None:
        last: dict[int, float] = {}
        while not self._stop.wait(PROBE_INTERVAL):
            if self.outage is not None and not self.outage.probe(due_only=True):
                continue  # the database is away: this loop tries it, and runs nothing that would fail
            try:
                due = self._due()
                if due:
                    with self._wake:  # work other processes queued, or whose time came
                        self._pending_wakes = max(self._pending_wakes, due)
                        self._wake.notify(due)
            except Exception as exc:
                self._report("job probe failed", exc)
            for i, (every, fn) in enumerate(self.periodic):
                # each task runs at the first tick, then every `every` seconds (the monotonic
                # clock starts near 0 at boot: "never ran" is not the same as "ran at 0")
                if i not in last or time.monotonic() - last[i] >= every:
                    last[i] = time.monotonic()
                    try:
                        fn()
                    except Exception as exc:
                        if self.outage is None or not self.outage.failed(exc):
                            log.exception("periodic task failed")

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.heartbeat()
            except Exception as exc:
                self._report("job heartbeat failed", exc)

    def heartbeat(self) -> None:
        """Renew the lease of every run in flight in this process; mark the ones taken over."""
        with self._running_lock:
            running = dict(self._running)
        if not running:
            return
        renewed = time.monotonic()
        mine = select(Job.id).where(Job.owner.in_(running))
        if self.dialect == "postgresql":  # a row a fenced write holds now is renewed by that write:
            mine = mine.with_for_update(skip_locked=True)  # waiting for it could deadlock
        with self.sessions.begin() as s:
            extended = set(s.scalars(update(Job).where(Job.id.in_(mine.scalar_subquery()))
                                     .values(lease_until=db_now(self.dialect, self.lease_seconds))
                                     .returning(Job.owner).execution_options(synchronize_session=False)))
            held = set(s.scalars(select(Job.owner).where(Job.owner.in_(running))))
        for token, ctx in running.items():
            if token not in held:
                ctx.lost = True
            elif token in extended:
                ctx.renewed = max(ctx.renewed, renewed)

    def renew(self, ctx: JobContext) -> bool:
        """Extend ``ctx``'s lease if it still holds the job."""
        with self.sessions.begin() as s:
            return self.fence(s, ctx)

    def fence(self, s: Session, ctx: JobContext) -> bool:
        """Inside ``s``'s transaction: renew ``ctx``'s lease if it still holds the job. The row
        stays locked until ``s`` commits (SQLite: the writer lock), so a takeover, which must
        update that row, comes wholly before this transaction (no row matched) or after it."""
        renewed = time.monotonic()
        held = rowcount(s.execute(
            update(Job).where(Job.id == ctx.id, Job.owner == ctx.token)
            .values(lease_until=db_now(self.dialect, self.lease_seconds))
            .execution_options(synchronize_session=False))) == 1
        if held:
            ctx.renewed = max(ctx.renewed, renewed)
        return held

    def _due(self) -> int:
        """A read-only look for due work (no write lock on SQLite), one per process per tick:
        how many jobs are due, up to the number of threads (so only that many are woken)."""
        now = db_now(self.dialect)
        with self.engine.connect().execution_options(read_only=True) as conn, conn.begin():
            return len(conn.execute(
                select(Job.id).where(Job.run_at <= now, or_(Job.lease_until.is_(None), Job.lease_until < now))
                .limit(max(self.threads, 1))
            ).all())

    def claim(self) -> JobContext | None:
        token = secrets.token_hex(8)
        asked = time.monotonic()  # the lease runs from the database's now(), no earlier than this
        with self.sessions.begin() as s:
            now = db_now(self.dialect)
            q = (
                select(Job.id, Job.kind, Job.subject_id, Job.attempts, Job.generation, Job.created)
                .where(Job.run_at <= now, or_(Job.lease_until.is_(None), Job.lease_until < now))
                .order_by(Job.run_at)
                .limit(1)
            )
            if self.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            row = s.execute(q).first()
            if row is None:
                return None
            s.execute(update(Job).where(Job.id == row.id)
                      .values(owner=token, lease_until=db_now(self.dialect, self.lease_seconds),
                              attempts=Job.attempts + 1)
                      .execution_options(synchronize_session=False))
            return JobContext(row.id, row.kind, row.subject_id, row.attempts + 1, self, row.generation, token,
                              row.created, renewed=asked)

    def ask(self, kind: str, subject_id: str, delay: float = 0.0) -> None:
        """``enqueue`` in a transaction of its own (periodic tasks)."""
        with self.sessions.begin() as s:
            self.enqueue(s, kind, subject_id, delay)

    def try_claim(self, kind: str, subject_id: str) -> JobContext | None:
        """Claim the job (kind, subject) now unless a run holds it, creating its row if need be:
        for an operator tool that must not interleave with that job (a zone's provider writes).
        ``release`` hands it back; the job then runs once, as if asked for."""
        token = secrets.token_hex(8)
        now, until = db_now(self.dialect), db_now(self.dialect, self.lease_seconds)
        ins = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(Job)
        stmt = ins.values(kind=kind, subject_id=subject_id, run_at=now, attempts=0, generation=0, created=now,
                          owner=token, lease_until=until).on_conflict_do_update(
            index_elements=[Job.kind, Job.subject_id], set_={"owner": token, "lease_until": until},
            where=or_(Job.lease_until.is_(None), Job.lease_until < now))
        with self.sessions.begin() as s:
            s.execute(stmt)
            row = s.execute(select(Job.id, Job.attempts, Job.generation)
                            .where(Job.kind == kind, Job.subject_id == subject_id, Job.owner == token)).first()
        return None if row is None else JobContext(row.id, kind, subject_id, row.attempts, self, row.generation,
                                                    token)

    def release(self, ctx: JobContext) -> None:
        self._reschedule(ctx, 0, None, progress=True)

    def run_once(self) -> bool:
        ran = self._run_once()
        if ran:
            self._a_run_ended()
        return ran

    def _run_once(self) -> bool:
        ctx = self.claim()
        if ctx is None:
            return False
        spec = self.handlers.get(ctx.kind)
        with self._running_lock:
            self._running[ctx.token] = ctx
        started = time.monotonic()
        outcome = "done"
        try:
            if spec is None:
                raise RuntimeError(f"no handler for job kind {ctx.kind!r}")
            spec.handler(ctx)
        except LostClaim:
            outcome = "lost"
            log.warning("job %s %s: its claim was taken over by another run; this run stopped",
                        ctx.kind, ctx.subject_id)
            return True
        except Wait as wait:
            outcome = "wait"
            self._reschedule(ctx, wait.delay, None, progress=True)
            return True
        except Exception as exc:
            if self.outage is not None and self.outage.failed(exc) and self.outage.down:
                # the database is away: nothing can be written, its lease lapses and the job runs
                # again once the database is back (the outage is logged once, not per job)
                outcome = "retry"
                raise
            reason = str(exc) if isinstance(exc, RetryLater) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, RetryLater):
                log.exception("job %s %s failed (attempt %d)", ctx.kind, ctx.subject_id, ctx.attempts)
            max_attempts = spec.max_attempts if spec is not None else MAX_ATTEMPTS
            if ctx.attempts < max_attempts:
                outcome = "retry"
                delay = exc.delay if isinstance(exc, RetryLater) else backoff(ctx.attempts)
                self._reschedule(ctx, delay, reason, progress=False)
                return True
            outcome = "gave_up"
            log.error("job %s %s: giving up after %d attempts: %s", ctx.kind, ctx.subject_id, ctx.attempts, reason)
            if spec is not None and spec.give_up is not None and not ctx.lost:
                try:
                    spec.give_up(ctx, reason)
                except LostClaim:
                    outcome = "lost"
                    log.warning("job %s %s: its claim was taken over before it gave up", ctx.kind, ctx.subject_id)
                    return True
        finally:
            with self._running_lock:
                self._running.pop(ctx.token, None)
            metrics.JOB_RUNS.labels(kind=ctx.kind, outcome=outcome).inc()
            metrics.JOB_RUN_SECONDS.labels(kind=ctx.kind).observe(time.monotonic() - started)
        self._finish(ctx)
        return True

    def _reschedule(self, ctx: JobContext, delay: float, reason: str | None, *, progress: bool) -> None:
        """Release the claim; run again after ``delay``, or now if someone asked meanwhile."""
        values: dict[str, object] = {
            "owner": None,
            "lease_until": None,
            "run_at": case((Job.generation == ctx.generation, db_now(self.dialect, delay)),
                           else_=db_now(self.dialect)),
            "last_error": reason[:2000] if reason else None,
        }
        if progress:
            values["attempts"] = 0
        with self.sessions.begin() as s:
            done = rowcount(s.execute(update(Job).where(Job.id == ctx.id, Job.owner == ctx.token).values(**values)
                                      .execution_options(synchronize_session=False)))
            asked_again = done and delay > 0 and s.scalar(select(Job.generation).where(Job.id == ctx.id)) != \
                ctx.generation
        if not done:
            log.warning("job %s %s: claim lost before its reschedule", ctx.kind, ctx.subject_id)
        elif delay <= 0 or asked_again:
            self.wake()
        else:
            self._wake_at(delay)

    def _finish(self, ctx: JobContext) -> None:
        with self.sessions.begin() as s:
            gone = rowcount(s.execute(delete(Job).where(Job.id == ctx.id, Job.owner == ctx.token,
                                                        Job.generation == ctx.generation)))
            again = 0 if gone else rowcount(s.execute(  # asked for again while running: run again now
                update(Job).where(Job.id == ctx.id, Job.owner == ctx.token)
                .values(owner=None, lease_until=None, attempts=0, run_at=db_now(self.dialect))
                .execution_options(synchronize_session=False)))
        if again:
            self.wake()

    def drain(self, timeout: float = 30.0) -> None:
        """Run jobs in this thread until none is due (tests without worker threads)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_once():
            pass
