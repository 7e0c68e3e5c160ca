"""The state changes an operator may make: re-queue a stuck order's upstream job, cancel an
order, block or unblock an account, revoke a certificate.

Each runs in one transaction with the order row locked (FOR UPDATE on PostgreSQL; SQLite
transactions are BEGIN IMMEDIATE), so it cannot interleave with a finalize or a job's own
state change. The running relay's worker threads find re-queued jobs through their periodic
probe of the jobs table; nothing here talks to the relay process.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import states
from jackdaw.db import rowcount
from jackdaw.jobs import JobKind, JobQueue
from jackdaw.models import Account, Certificate, Job, Order, utcnow
from jackdaw.ops.queries import DnsRecordView, JobView, NotFound, job_view, order_dns_records, order_jobs
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.upstream.sequence import failed_upstream, reset_upstream_order

CANCEL_DETAIL = "cancelled by the operator"


class Refused(Exception):
    """The object is in a state where the action makes no sense; the message says why."""


@dataclass(frozen=True)
class RetryResult:
    order_id: str
    status: str
    #: the stored upstream order had failed and was dropped: the job starts a new one
    new_upstream_order: bool
    #: the job row after re-arming it (run_at now, generation bumped, attempts reset)
    job: JobView
    #: a worker held the job when it was re-armed; it runs again as soon as that run ends
    was_running: bool


@dataclass(frozen=True)
class CancelResult:
    order_id: str
    previous_status: str
    error: dict[str, object]
    jobs_deleted: int
    #: an upstream job was running when cancelled; that run ends on its own, its result unused
    was_running: bool
    #: TXT values still recorded; the relay's periodic orphan sweep removes them
    dns_records: list[DnsRecordView]


def _locked_order(session: Session, order_id: str) -> Order:
    order = session.get(Order, order_id, with_for_update=True)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return order


def retry_order(sessions: sessionmaker[Session], queue: JobQueue, order_id: str) -> RetryResult:
    """Re-queue the upstream (leg 2) job of an order stuck in `processing`, or of a `ready` order
    whose upstream attempt failed (its dead upstream order is dropped so a new one is created).

    Refused for pending, valid and invalid orders, and for ready orders without an upstream error
    (those wait for their client). A job row that exists is re-armed (run now, generation bumped,
    attempt budget reset); a lease a worker still holds is left alone so no two threads ever
    run the same job.
    """
    now = utcnow()
    with sessions.begin() as s:
        order = _locked_order(s, order_id)
        new_upstream = False
        if order.status == Status.PROCESSING:
            pass
        elif order.status == Status.READY and failed_upstream(s, order.id):
            if order.expires <= now:
                raise Refused(f"order {order.id} expired at {order.expires:%Y-%m-%d %H:%M:%S}Z before it was "
                              f"finalized; the client has to place a new order")
            reset_upstream_order(s, queue, JobKind.ORDER, order.id)
            order.updated = now
            new_upstream = True
        elif order.status == Status.READY:
            raise Refused(f"order {order.id} is ready and has no upstream error: it waits for its client to "
                          f"finalize; nothing to retry")
        elif order.status == Status.PENDING:
            raise Refused(f"order {order.id} is pending: it waits for its client's HTTP-01 validation; "
                          f"nothing to retry")
        else:
            raise Refused(f"order {order.id} is {order.status}: a final state, nothing to retry")
        before = s.scalars(select(Job).where(Job.kind == JobKind.ORDER, Job.subject_id == order.id)).first()
        was_running = before is not None and before.lease_until is not None and before.lease_until > now
        queue.enqueue(s, JobKind.ORDER, order.id)
        s.execute(update(Job).where(Job.kind == JobKind.ORDER, Job.subject_id == order.id).values(attempts=0)
                  .execution_options(synchronize_session=False))
        job = s.scalars(select(Job).where(Job.kind == JobKind.ORDER, Job.subject_id == order.id)
                        .execution_options(populate_existing=True)).one()
        return RetryResult(order.id, order.status, new_upstream, job_view(job), was_running)


def cancel_order(sessions: sessionmaker[Session], order_id: str) -> CancelResult:
    """Make a pending/ready/processing order invalid ("cancelled by the operator") and delete its
    job rows. Its unfinished challenges and authorizations become invalid too, so no validation
    is left waiting for a job that no longer exists. TXT values still recorded are left to the
    relay's orphan sweep, which removes records whose order has no job.
    """
    now = utcnow()
    with sessions.begin() as s:
        order = _locked_order(s, order_id)
        if order.status in (Status.VALID, Status.INVALID):
            raise Refused(f"order {order.id} is already {order.status}: nothing to cancel")
        previous = order.status
        states.cancel(order, problems.Unauthorized(CANCEL_DETAIL))
        jobs = [j for j in order_jobs(s, order) if j.kind in (JobKind.ORDER, JobKind.VALIDATE)]
        was_running = any(j.kind == JobKind.ORDER and j.lease_until is not None and j.lease_until > now for j in jobs)
        deleted = 0
        if jobs:
            deleted = rowcount(s.execute(delete(Job).where(Job.id.in_([j.id for j in jobs]))
                                         .execution_options(synchronize_session=False)))
        records = [DnsRecordView(r.id, r.zone, r.fqdn, r.value, r.created) for r in order_dns_records(s, order.id)]
        assert order.error is not None
        return CancelResult(order.id, previous, dict(order.error), deleted, was_running, records)


def set_account_blocked(sessions: sessionmaker[Session], account_id: str, blocked: bool) -> Account:
    """`jackdaw account block|unblock ID`: the transition is jackdaw.states'."""
    with sessions.begin() as s:
        account = s.get(Account, account_id, with_for_update=True)
        if account is None:
            raise NotFound(f"no account {account_id!r}")
        try:
            (states.block if blocked else states.unblock)(account)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        return account


def revoke_certificate(sessions: sessionmaker[Session], queue: JobQueue, serial: str, reason: int) -> Certificate:
    """`jackdaw certificate revoke SERIAL`: recorded as a client's revokeCert is (jackdaw.ra.revocation),
    and the same job forwards it upstream from the running relay."""
    from jackdaw.ra import revocation

    serial = serial.strip().lower().replace(":", "").lstrip("0") or "0"
    with sessions.begin() as s:
        found = list(s.scalars(select(Certificate).where(Certificate.serial == serial).with_for_update()))
        if not found:
            raise NotFound(f"no certificate with serial {serial!r} (`jackdaw certificates` lists them)")
        if len(found) > 1:
            raise Refused(f"{len(found)} certificates have serial {serial!r}")
        try:
            revocation.revoke(s, queue, found[0], reason)
        except problems.AcmeProblem as exc:
            raise Refused(exc.detail) from None
        return found[0]
