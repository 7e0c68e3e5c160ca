"""JobQueue semantics on SQLite and PostgreSQL, with a dummy handler under a test kind.

A job is a (kind, subject) row: asking twice before it runs runs it once, asking while it runs
runs it exactly once more, a lapsed lease (dead worker) is claimed again, RetryLater
reschedules, and no two threads, in one process or two, ever run the same job at once. Claims
are fenced: a run that lost its claim can no longer touch the row, the heartbeat keeps a live
run's claim however long a call takes, and leases are measured on the database's clock.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import db as jackdaw_db
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.jobs import MAX_ATTEMPTS, JobContext, JobQueue, LostClaim, RetryLater, Wait
from jackdaw.models import Job, utcnow

KIND = "test-kind"


@dataclass
class Process:
    """One engine + queue, as one gunicorn worker process would have."""

    sessions: sessionmaker[Session]
    queue: JobQueue


@pytest.fixture
def process_factory(database_url: str) -> Iterator[Callable[[int], Process]]:
    made: list[Process] = []

    def make(threads: int = 1, lease: float = 30.0) -> Process:
        engine = make_engine(database_url)
        sessions = make_sessionmaker(engine)
        queue = JobQueue(engine, sessions, threads=threads, lease_seconds=lease)
        event.listen(sessions, "after_commit", queue.after_commit)
        made.append(Process(sessions, queue))
        return made[-1]

    yield make
    for proc in made:
        proc.queue.stop()
        proc.queue.engine.dispose()


@pytest.fixture
def proc(process_factory: Callable[[int], Process]) -> Process:
    return process_factory(1)


def enqueue(p: Process, subject: str, delay: float = 0.0) -> None:
    with p.sessions.begin() as s:
        p.queue.enqueue(s, KIND, subject, delay=delay)


def jobs(p: Process) -> list[Job]:
    with p.sessions() as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def set_job(p: Process, subject: str, **values: object) -> None:
    with p.sessions.begin() as s:
        s.execute(update(Job).where(Job.kind == KIND, Job.subject_id == subject).values(**values))


PAST = timedelta(seconds=-5)


def test_enqueued_twice_before_running_runs_once(proc: Process) -> None:
    runs: list[str] = []
    proc.queue.register(KIND, lambda ctx: runs.append(ctx.subject_id))
    enqueue(proc, "s1")
    enqueue(proc, "s1")
    enqueue(proc, "s2")
    assert [(j.subject_id, j.generation) for j in jobs(proc)] == [("s1", 1), ("s2", 0)]

    proc.queue.drain()

    assert sorted(runs) == ["s1", "s2"]
    assert jobs(proc) == []


@pytest.mark.parametrize("asks", [1, 3], ids=["asked-once", "asked-three-times"])
def test_enqueued_while_running_runs_exactly_once_more(proc: Process, asks: int) -> None:
    runs: list[int] = []

    def handler(ctx: JobContext) -> None:
        runs.append(ctx.attempts)
        if len(runs) == 1:
            for _ in range(asks):
                enqueue(proc, ctx.subject_id)  # another request arrives while this one runs

    proc.queue.register(KIND, handler)
    enqueue(proc, "s1")
    proc.queue.drain()

    assert runs == [1, 1]  # the re-run starts afresh (attempts reset), and only one re-run
    assert jobs(proc) == []


def test_lapsed_lease_is_claimed_again(proc: Process) -> None:
    runs: list[str] = []
    proc.queue.register(KIND, lambda ctx: runs.append(ctx.subject_id))
    enqueue(proc, "s1")

    first = proc.queue.claim()  # a worker claims it ... and dies without finishing
    assert first is not None
    assert proc.queue.claim() is None  # leased: nobody else may take it
    assert proc.queue.run_once() is False

    set_job(proc, "s1", lease_until=utcnow() + PAST)  # the lease lapses
    second = proc.queue.claim()
    assert second is not None
    assert (second.id, second.subject_id, second.attempts) == (first.id, "s1", 2)
    assert second.token != first.token

    set_job(proc, "s1", lease_until=utcnow() + PAST)  # that one dies too; a live worker finishes it
    proc.queue.drain()
    assert runs == ["s1"]
    assert jobs(proc) == []


def test_retry_later_reschedules(proc: Process) -> None:
    runs: list[float] = []

    def handler(ctx: JobContext) -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RetryLater("not yet", 3600)

    proc.queue.register(KIND, handler)
    enqueue(proc, "s1")
    proc.queue.drain()

    assert len(runs) == 1  # not run again: it is due in an hour
    [job] = jobs(proc)
    assert job.lease_until is None and job.last_error == "not yet" and job.attempts == 1
    assert timedelta(seconds=3500) < job.run_at - utcnow() <= timedelta(seconds=3600)

    set_job(proc, "s1", run_at=utcnow() + PAST)  # the hour has passed
    proc.queue.drain()
    assert len(runs) == 2
    assert jobs(proc) == []


def test_retry_later_zero_runs_again_now(proc: Process) -> None:
    runs = itertools.count()

    def handler(ctx: JobContext) -> None:
        if next(runs) < 2:
            raise RetryLater("again", 0)

    proc.queue.register(KIND, handler)
    enqueue(proc, "s1")
    proc.queue.drain()
    assert next(runs) == 3
    assert jobs(proc) == []


def test_failures_back_off_then_give_up(proc: Process) -> None:
    given_up: list[tuple[str, str]] = []

    def handler(ctx: JobContext) -> None:
        raise ValueError(f"broken #{ctx.attempts}")

    proc.queue.register(KIND, handler, lambda ctx, reason: given_up.append((ctx.subject_id, reason)))
    enqueue(proc, "s1")
    for attempt in range(1, MAX_ATTEMPTS):
        assert proc.queue.run_once()
        [job] = jobs(proc)
        assert job.attempts == attempt and job.last_error == f"ValueError: broken #{attempt}"
        assert job.run_at > utcnow()  # backing off
        set_job(proc, "s1", run_at=utcnow() + PAST)
    assert given_up == []
    assert proc.queue.run_once()
    assert given_up == [("s1", f"ValueError: broken #{MAX_ATTEMPTS}")]
    assert jobs(proc) == []


@dataclass
class OverlapDetector:
    """Counts runs of the same subject that overlap in time, without any lock of its own
    (list.append/pop and len are atomic under the GIL, itertools.count's next too)."""

    hold: float = 0.01
    running: dict[str, list[int]] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    starts: dict[str, list[float]] = field(default_factory=dict)
    total: itertools.count[int] = field(default_factory=itertools.count)
    in_flight: list[int] = field(default_factory=list)
    peak: int = 0

    def __call__(self, ctx: JobContext) -> None:
        self.in_flight.append(1)
        self.peak = max(self.peak, len(self.in_flight))
        slot = self.running.setdefault(ctx.subject_id, [])
        slot.append(1)
        if len(slot) > 1:
            self.overlaps.append(ctx.subject_id)
        self.starts.setdefault(ctx.subject_id, []).append(time.monotonic())
        next(self.total)
        time.sleep(self.hold)
        slot.pop()
        self.in_flight.pop()


def test_overlap_detector_detects_overlaps() -> None:
    """Control for the test below: two threads in the same job are noticed."""
    detector = OverlapDetector(hold=0.2)
    ctx = JobContext(1, KIND, "s1", 1, None)  # type: ignore[arg-type]
    threads = [threading.Thread(target=detector, args=(ctx,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert detector.overlaps == ["s1"]


def test_two_processes_never_run_the_same_job_concurrently(process_factory: Callable[[int], Process]) -> None:
    detector = OverlapDetector()
    procs = [process_factory(4), process_factory(4)]
    for p in procs:
        p.queue.register(KIND, detector)
    subjects = [f"s{i}" for i in range(12)]
    last_ask: dict[str, float] = {}

    def ask(p: Process, subject: str) -> None:
        last_ask[subject] = time.monotonic()  # before the commit: some run must start after it
        enqueue(p, subject)

    for i, subject in enumerate(subjects):
        ask(procs[i % 2], subject)
    for p in procs:
        p.queue.start()
    # Requests keep arriving, through both processes, while jobs run.
    for n in range(60):
        ask(procs[n % 2], subjects[(n * 7) % len(subjects)])
        time.sleep(0.005)

    deadline = time.monotonic() + 20
    while jobs(procs[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in procs:
        p.queue.stop()

    assert jobs(procs[0]) == [], "jobs left behind"
    assert detector.overlaps == []
    assert detector.peak > 1, "jobs never ran in parallel: the test proved nothing"
    runs = next(detector.total)
    assert len(subjects) <= runs <= len(subjects) + 60
    for subject in subjects:  # no request lost: each subject ran after it was last asked for
        assert max(detector.starts[subject]) > last_ask[subject], subject


# --- fenced claims --------------------------------------------------------------------------


def owner(p: Process, subject: str) -> str | None:
    return next((j.owner for j in jobs(p) if j.subject_id == subject), None)


def test_a_run_that_lost_its_claim_stops_and_touches_nothing(process_factory: Callable[..., Process]) -> None:
    a, b = process_factory(1), process_factory(1)
    side_effects: list[str] = []
    taken_over: list[JobContext] = []

    def handler(ctx: JobContext) -> None:
        ctx.guard()
        side_effects.append("first")
        # this process freezes (GC pause, a stopped VM) past its lease; another takes over
        set_job(a, ctx.subject_id, lease_until=utcnow() + PAST)
        ctx.renewed -= a.queue.lease_seconds  # the freeze, as this process's clock saw it
        other = b.queue.claim()
        assert other is not None
        taken_over.append(other)
        ctx.guard()  # before the next side effect: LostClaim
        side_effects.append("second")

    a.queue.register(KIND, handler)
    enqueue(a, "s1")
    assert a.queue.run_once()
    assert side_effects == ["first"]
    [job] = jobs(a)  # not finished, not rescheduled by the stale run: still the new owner's
    assert job.owner == taken_over[0].token and job.lease_until is not None
    b.queue.register(KIND, lambda ctx: None)
    b.queue._finish(taken_over[0])
    assert jobs(a) == []


def test_finish_and_reschedule_of_a_lost_claim_change_nothing(proc: Process) -> None:
    enqueue(proc, "s1")
    stale = proc.queue.claim()
    assert stale is not None
    set_job(proc, "s1", lease_until=utcnow() + PAST)
    fresh = proc.queue.claim()
    assert fresh is not None
    proc.queue._reschedule(stale, 3600, "stale", progress=False)
    proc.queue._finish(stale)
    [job] = jobs(proc)
    assert job.owner == fresh.token and job.last_error is None
    assert not proc.queue.renew(stale) and proc.queue.renew(fresh)
    stale.renewed -= proc.queue.lease_seconds  # it froze: its next guard asks the database
    with pytest.raises(LostClaim):
        stale.guard()
    fresh.guard()  # renewed a moment ago: no need to ask


def test_heartbeat_keeps_a_long_call_claimed(process_factory: Callable[..., Process]) -> None:
    """A provider call three leases long: the heartbeat renews the lease, so the other
    process never claims the job, and the run is not told it lost its claim."""
    detector = OverlapDetector(hold=3.0)
    guarded: list[bool] = []

    def handler(ctx: JobContext) -> None:
        detector(ctx)
        ctx.guard()
        guarded.append(True)

    procs = [process_factory(2, 1.0), process_factory(2, 1.0)]
    for p in procs:
        p.queue.register(KIND, handler)
    enqueue(procs[0], "s1")
    for p in procs:
        p.queue.start()
    deadline = time.monotonic() + 15
    while jobs(procs[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in procs:
        p.queue.stop()
    assert jobs(procs[0]) == []
    assert next(detector.total) == 1 and detector.overlaps == [] and guarded == [True]


def test_wait_is_progress_not_failure(proc: Process) -> None:
    """A handler that waits more often than MAX_ATTEMPTS is never given up."""
    given_up: list[str] = []
    steps = itertools.count()

    def handler(ctx: JobContext) -> None:
        assert ctx.attempts == 1  # a step that made progress resets the count
        if next(steps) < 2 * MAX_ATTEMPTS:
            raise Wait("next step", 0)

    proc.queue.register(KIND, handler, lambda ctx, reason: given_up.append(ctx.subject_id))
    enqueue(proc, "s1")
    proc.queue.drain()
    assert next(steps) == 2 * MAX_ATTEMPTS + 1 and given_up == [] and jobs(proc) == []


def test_retry_later_is_bounded_by_the_kinds_attempts(proc: Process) -> None:
    given_up: list[tuple[str, str]] = []

    def handler(ctx: JobContext) -> None:
        raise RetryLater(f"refused #{ctx.attempts}", 0)

    proc.queue.register(KIND, handler, lambda ctx, reason: given_up.append((ctx.subject_id, reason)), max_attempts=3)
    enqueue(proc, "s1")
    proc.queue.drain()
    assert given_up == [("s1", "refused #3")] and jobs(proc) == []


def test_asked_again_during_a_run_that_waits_runs_now(proc: Process) -> None:
    runs: list[int] = []

    def handler(ctx: JobContext) -> None:
        runs.append(ctx.generation)
        if len(runs) == 1:
            enqueue(proc, ctx.subject_id)  # e.g. its DNS values were just served
            raise Wait("would wait an hour", 3600)

    proc.queue.register(KIND, handler)
    enqueue(proc, "s1")
    proc.queue.drain()
    assert runs == [0, 1] and jobs(proc) == []


def test_asking_again_never_delays_work_already_due(proc: Process) -> None:
    enqueue(proc, "s1")
    enqueue(proc, "s1", delay=3600)
    [job] = jobs(proc)
    assert job.run_at <= utcnow() + timedelta(seconds=1)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_leases_come_from_the_database_clock(proc: Process, monkeypatch: pytest.MonkeyPatch) -> None:
    """This host's clock an hour fast: leases and run times still follow PostgreSQL's now()."""
    from datetime import datetime as real_datetime

    class FastClock(real_datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real_datetime.now(tz) + timedelta(hours=1)

    monkeypatch.setattr(jackdaw_db, "datetime", FastClock)
    enqueue(proc, "s1")
    ctx = proc.queue.claim()
    assert ctx is not None, "the job is due on the database's clock"
    with proc.sessions() as s:
        db_now = s.scalar(select(func.now()))
    [job] = jobs(proc)
    assert job.lease_until is not None
    assert abs((job.lease_until - db_now).total_seconds() - proc.queue.lease_seconds) < 5


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_heartbeat_does_not_wait_for_a_fenced_write(proc: Process) -> None:
    """A fenced write holds its job's row until it commits (renewing that lease itself): the
    heartbeat skips the row rather than wait, which could deadlock with a write that also
    queues another job this process is running."""
    enqueue(proc, "s1")
    ctx = proc.queue.claim()
    assert ctx is not None
    proc.queue._running[ctx.token] = ctx
    beat = threading.Thread(target=proc.queue.heartbeat)
    with proc.sessions.begin() as s:
        assert proc.queue.fence(s, ctx)  # the write's transaction holds the row
        beat.start()
        beat.join(10)
        waited = beat.is_alive()
    beat.join()
    assert not waited, "the heartbeat waited for the fenced write"
    assert not ctx.lost
