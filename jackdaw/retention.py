"""What the relay stops keeping, and when: one job (``JobKind.RETENTION``) prunes in bounded
batches and reschedules itself while more is left, so one instance at a time does it and no
run holds a thread for long.

- nonces: expired ones (a spent nonce is deleted when it is redeemed);
- certificates: ``RETENTION_CERT_MARGIN_DAYS`` after they expire (nobody renews, revokes or
  downloads an expired certificate), unless a revocation is still being forwarded;
- orders, with their authorizations, challenges and leg 2's record: once expired and untouched
  for ``RETENTION_DAYS``, with nothing left that refers to them: no certificate, no job, no TXT
  value still to be removed, no upstream budget still held or spent and
  not yet settled;
- budget buckets untouched for two of their periods: refilled, the same as no row (a missing
  bucket is created full); two, because a CA's retry time may hold one below zero for a period;
- issued name sets last issued longer ago than the CA's renewal window: no renewal any more;
- notifications ``NOTIFICATIONS_KEPT`` after they were raised, unless still being delivered:
  a row is what keeps its condition from being told again, so it outlives the condition.

Finished jobs are deleted when they finish (jackdaw.jobs); accounts and EAB keys are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from jackdaw import metrics
from jackdaw.budget import RENEWAL_WINDOW, Reservation
from jackdaw.jobs import JobContext, JobKind, Wait
from jackdaw.ledger import now_of
from jackdaw.models import (
    Authz,
    BudgetBucket,
    Certificate,
    Challenge,
    DnsRecord,
    IssuedSet,
    Job,
    Nonce,
    Notification,
    Order,
    UpstreamOrder,
)
from jackdaw.protocol.constants import Status

log = logging.getLogger(__name__)

SUBJECT = "all"
#: rows per statement, and per table per run: a run stays short; the job comes back for more
BATCH = 500
#: how often the job is asked for (each instance asks; the queue runs it once)
EVERY = 300.0
#: the longest-lived condition, an unrenewed certificate, stays current for at most
#: NOTIFY_EXPIRY_DAYS + 30 days (jackdaw.inventory's horizon): its row must outlive that
NOTIFICATIONS_KEPT = timedelta(days=400)


@dataclass(frozen=True)
class Retention:
    #: orders (and what hangs off them) go this long after they expired and last changed; None keeps them
    order_age: timedelta | None
    certificate_margin: timedelta
    #: budget limit name -> its period in seconds (jackdaw.ledger.Limit)
    bucket_periods: Mapping[str, float]


def pruned_orders(now: datetime, age: timedelta) -> Select[str]:
    cutoff = now - age
    order_job = (select(Job.id).where(Job.kind == JobKind.ORDER, Job.subject_id == Order.id))
    validation_job = (select(Job.id).join(Challenge, Challenge.id == Job.subject_id).join(Authz)
                      .where(Job.kind == JobKind.VALIDATE, Authz.order_id == Order.id))
    return (select(Order.id)
            .where(Order.expires < cutoff, Order.updated < cutoff, Order.status != Status.PROCESSING,
                   Order.budget.is_(None) | Order.budget.not_in((Reservation.HELD, Reservation.SPENT)),
                   ~exists(select(Certificate.id).where(Certificate.order_id == Order.id)),
                   ~exists(select(DnsRecord.id).where(DnsRecord.order_id == Order.id)),
                   ~exists(order_job), ~exists(validation_job))
            .limit(BATCH))


def pruned_certificates(now: datetime, margin: timedelta) -> Select[str]:
    forwarding = select(Job.id).where(Job.kind == JobKind.REVOKE, Job.subject_id == Certificate.id)
    return (select(Certificate.id).where(Certificate.not_after < now - margin, ~exists(forwarding))
            .limit(BATCH))


class RetentionJob:
    def __init__(self, sessions: sessionmaker[Session], retention: Retention) -> None:
        self.sessions = sessions
        self.retention = retention

    def __call__(self, ctx: JobContext) -> None:
        counts = self.prune(now=None)
        if any(n >= BATCH for n in counts.values()):
            ctx.guard()
            raise Wait("more to prune", 0)

    def prune(self, now: datetime | None) -> dict[str, int]:
        """One batch of each kind; ``now`` is the database's clock unless given (tests)."""
        counts: dict[str, int] = {}
        with self.sessions.begin() as s:
            now = now or now_of(s)
            counts["nonces"] = _delete_ids(s, Nonce.value, select(Nonce.value).where(Nonce.expires <= now).limit(BATCH))
        with self.sessions.begin() as s:
            counts["certificates"] = _delete_ids(s, Certificate.id,
                                                 pruned_certificates(now, self.retention.certificate_margin))
        if self.retention.order_age is not None:
            with self.sessions.begin() as s:
                ids = list(s.scalars(pruned_orders(now, self.retention.order_age)))
                if ids:
                    authzs = select(Authz.id).where(Authz.order_id.in_(ids)).scalar_subquery()
                    s.execute(delete(Challenge).where(Challenge.authz_id.in_(authzs)))
                    s.execute(delete(Authz).where(Authz.order_id.in_(ids)))
                    s.execute(delete(UpstreamOrder).where(UpstreamOrder.owner_kind == JobKind.ORDER,
                                                          UpstreamOrder.owner_id.in_(ids)))
                    s.execute(delete(Order).where(Order.id.in_(ids)))
                counts["orders"] = len(ids)
        with self.sessions.begin() as s:
            counts["budget_buckets"] = sum(
                _delete_buckets(s, name, now - timedelta(seconds=2 * period))
                for name, period in self.retention.bucket_periods.items())
        with self.sessions.begin() as s:
            counts["issued_sets"] = _delete_ids(s, IssuedSet.set_key, select(IssuedSet.set_key).where(
                IssuedSet.issued < now - RENEWAL_WINDOW).limit(BATCH))
        with self.sessions.begin() as s:
            old = list(s.scalars(select(Notification.id).where(Notification.created < now - NOTIFICATIONS_KEPT)
                                 .order_by(Notification.id).limit(BATCH)))
            sending = set(s.scalars(select(Job.subject_id).where(Job.kind == JobKind.NOTIFY,
                                                                 Job.subject_id.in_([str(i) for i in old]))))
            gone = [i for i in old if str(i) not in sending]
            if gone:
                s.execute(delete(Notification).where(Notification.id.in_(gone)))
            counts["notifications"] = len(gone)
        for table, n in counts.items():
            if n:
                metrics.PRUNED_ROWS.labels(table=table).inc(n)
        if any(counts.values()):
            log.info("retention: pruned %s", ", ".join(f"{n} {t}" for t, n in counts.items() if n))
        return counts


def _delete_ids(s: Session, column: InstrumentedAttribute[Any], ids: Select[str]) -> int:
    found = list(s.scalars(ids))
    if found:
        s.execute(delete(column.class_).where(column.in_(found)))
    return len(found)


def _delete_buckets(s: Session, name: str, before: datetime) -> int:
    keys = list(s.scalars(select(BudgetBucket.key).where(BudgetBucket.limit == name, BudgetBucket.updated < before)
                          .limit(BATCH)))
    if keys:
        s.execute(delete(BudgetBucket).where(BudgetBucket.limit == name, BudgetBucket.key.in_(keys),
                                             BudgetBucket.updated < before))
    return len(keys)

