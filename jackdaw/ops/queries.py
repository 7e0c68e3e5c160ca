"""Read-only views for operators: each function takes a sessionmaker and returns dataclasses.

Nothing here prints or changes a row; ``jackdaw.ops.render`` turns the results into text/JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from jackdaw import inventory, ledger
from jackdaw.jobs import JobKind
from jackdaw.models import (
    Account,
    Authz,
    BudgetBucket,
    Certificate,
    DnsRecord,
    EabKey,
    Job,
    Order,
    UpstreamOrder,
    UpstreamPause,
    utcnow,
)
from jackdaw.settings import Settings


class NotFound(LookupError):
    """No row with that id."""


@dataclass(frozen=True)
class AccountView:
    id: str
    status: str
    contact: list[str]
    created: datetime
    orders: int
    #: when the operator blocked it (`jackdaw account block`), else None
    blocked: datetime | None = None


@dataclass(frozen=True)
class OrderSummary:
    id: str
    account_id: str
    status: str
    identifiers: list[str]
    created: datetime
    updated: datetime
    upstream_status: str | None


@dataclass(frozen=True)
class CertificateView:
    serial: str
    names: list[str]
    not_after: datetime
    #: whole days until not_after; once expired, minus the whole days since
    days_left: int
    expired: bool
    revoked: datetime | None
    revocation_reason: int | None
    upstream_revoked: datetime | None
    order_id: str
    account_id: str
    #: the current certificate of its name set (jackdaw.inventory): the one its hosts should serve
    current: bool = False


@dataclass(frozen=True)
class ChallengeView:
    id: str
    type: str
    status: str
    token: str
    validated: datetime | None
    error: dict[str, Any] | None
    validation_records: list[dict[str, Any]]


@dataclass(frozen=True)
class AuthzView:
    id: str
    identifier: str
    wildcard: bool
    status: str
    expires: datetime
    challenges: list[ChallengeView]


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    subject_id: str
    run_at: datetime
    lease_until: datetime | None
    attempts: int
    generation: int
    last_error: str | None
    created: datetime

    def leased(self, now: datetime) -> bool:
        """A worker holds it right now (its lease has not lapsed)."""
        return self.lease_until is not None and self.lease_until > now


@dataclass(frozen=True)
class DnsRecordView:
    id: int
    zone: str
    fqdn: str
    value: str
    created: datetime


@dataclass(frozen=True)
class OrderDetail:
    id: str
    account_id: str
    status: str
    identifiers: list[str]
    created: datetime
    updated: datetime
    expires: datetime
    error: dict[str, Any] | None
    csr_present: bool
    upstream_order_url: str | None
    upstream_status: str | None
    #: where leg 2 stands (jackdaw.upstream.sequence.Stage), None before it started
    upstream_stage: str | None
    upstream_error: dict[str, Any] | None
    authorizations: list[AuthzView]
    certificate: CertificateView | None
    jobs: list[JobView]
    dns_records: list[DnsRecordView]


def _days_left(not_after: datetime, now: datetime) -> int:
    seconds = (not_after - now).total_seconds()
    return int(seconds / 86400)  # towards zero: expired an hour ago is 0, not -1


def list_accounts(sessions: sessionmaker[Session]) -> list[AccountView]:
    """Every account, oldest first, with its number of orders."""
    counts = select(Order.account_id, func.count(Order.id).label("n")).group_by(Order.account_id).subquery()
    q = (
        select(Account, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.account_id == Account.id)
        .order_by(Account.created, Account.id)
    )
    with sessions() as s:
        return [
            AccountView(a.id, a.status, list(a.contact or []), a.created, int(n), a.blocked)
            for a, n in s.execute(q)
        ]


def list_orders(sessions: sessionmaker[Session], status: str | None = None, name: str | None = None,
                limit: int | None = None) -> list[OrderSummary]:
    """Orders newest first; ``name`` matches a substring of any identifier (case-insensitive)."""
    q = (select(Order, UpstreamOrder.status).outerjoin(UpstreamOrder, _leg2_of_order())
         .order_by(Order.created.desc(), Order.id))
    if status:
        q = q.where(Order.status == status)
    if name:
        # identifiers is a JSON list of lower-cased names: a substring of its text form is a
        # substring of one name (names hold no quotes or commas), on SQLite and PostgreSQL alike
        q = q.where(cast(Order.identifiers, String).contains(name.strip().lower(), autoescape=True))
    if limit is not None:
        q = q.limit(limit)
    with sessions() as s:
        return [
            OrderSummary(o.id, o.account_id, o.status, list(o.identifiers), o.created, o.updated, upstream)
            for o, upstream in s.execute(q)
        ]


def _leg2_of_order() -> Any:
    return (UpstreamOrder.owner_kind == JobKind.ORDER) & (UpstreamOrder.owner_id == Order.id)


def _certificate_view(cert: Certificate, order: Order, now: datetime, current: bool = False) -> CertificateView:
    return CertificateView(
        serial=cert.serial, names=list(order.identifiers), not_after=cert.not_after,
        days_left=_days_left(cert.not_after, now), expired=cert.not_after <= now, revoked=cert.revoked,
        revocation_reason=cert.revocation_reason, upstream_revoked=cert.upstream_revoked, order_id=order.id,
        account_id=order.account_id, current=current,
    )


def list_certificates(sessions: sessionmaker[Session], now: datetime | None = None,
                      expiring_within: int | None = None, name: str | None = None) -> list[CertificateView]:
    """Every issued certificate, soonest expiry first (as `certbot certificates`), each marked
    if it is its name set's current one; optionally only those expiring within
    ``expiring_within`` days (expired ones included) and those naming ``name``."""
    now = now or utcnow()
    q = select(Certificate, Order).join(Order, Certificate.order_id == Order.id).order_by(
        Certificate.not_after, Certificate.serial)
    if expiring_within is not None:
        q = q.where(Certificate.not_after <= now + timedelta(days=expiring_within))
    wanted = name.strip().lower().rstrip(".") if name else None
    with sessions() as s:
        current = {c.certificate_id for c in inventory.current_certificates(s, now)}
        return [_certificate_view(cert, order, now, cert.id in current) for cert, order in s.execute(q)
                if wanted is None or wanted in (n.lower() for n in order.identifiers)]


def job_view(job: Job) -> JobView:
    return JobView(job.id, job.kind, job.subject_id, job.run_at, job.lease_until, job.attempts, job.generation,
                   job.last_error, job.created)


def order_jobs(session: Session, order: Order) -> list[Job]:
    """Job rows about this order: its upstream job, its challenges' validations, its revocation."""
    challenge_ids = [c.id for a in order.authzs for c in a.challenges]
    conditions = [(Job.kind == JobKind.ORDER) & (Job.subject_id == order.id)]
    if challenge_ids:
        conditions.append((Job.kind == JobKind.VALIDATE) & Job.subject_id.in_(challenge_ids))
    if order.certificate is not None:
        conditions.append((Job.kind == JobKind.REVOKE) & (Job.subject_id == order.certificate.id))
    return list(session.scalars(select(Job).where(or_(*conditions)).order_by(Job.id)))


def order_dns_records(session: Session, order_id: str) -> list[DnsRecord]:
    return list(session.scalars(select(DnsRecord).where(DnsRecord.order_id == order_id).order_by(DnsRecord.id)))


def order_detail(sessions: sessionmaker[Session], order_id: str, now: datetime | None = None) -> OrderDetail:
    """Everything stored about one order: why it is where it is. NotFound if no such order."""
    now = now or utcnow()
    with sessions() as s:
        order = s.scalars(
            select(Order).where(Order.id == order_id).options(
                selectinload(Order.authzs).selectinload(Authz.challenges), selectinload(Order.certificate))
        ).first()
        if order is None:
            raise NotFound(f"no order {order_id!r}")
        authzs = [
            AuthzView(a.id, a.identifier, a.wildcard, a.status, a.expires, [
                ChallengeView(c.id, c.type, c.status, c.token, c.validated, c.error, list(c.validation_records or []))
                for c in a.challenges
            ])
            for a in order.authzs
        ]
        cert = order.certificate
        leg2 = s.scalars(select(UpstreamOrder).where(UpstreamOrder.owner_kind == JobKind.ORDER,
                                                     UpstreamOrder.owner_id == order.id)).first()
        return OrderDetail(
            id=order.id, account_id=order.account_id, status=order.status, identifiers=list(order.identifiers),
            created=order.created, updated=order.updated, expires=order.expires, error=order.error,
            csr_present=order.csr is not None, upstream_order_url=leg2.url if leg2 else None,
            upstream_status=leg2.status if leg2 else None, upstream_stage=leg2.stage if leg2 else None,
            upstream_error=leg2.error if leg2 else None, authorizations=authzs,
            certificate=_certificate_view(cert, order, now) if cert is not None else None,
            jobs=[job_view(j) for j in order_jobs(s, order)],
            dns_records=[DnsRecordView(r.id, r.zone, r.fqdn, r.value, r.created)
                         for r in order_dns_records(s, order.id)],
        )


@dataclass(frozen=True)
class EabKeyView:
    name: str
    kid: str
    allow: list[str]
    wildcards: bool
    sources: list[str]
    requester_in_dns: bool
    orders_per_hour: int | None
    profiles: list[str]
    created: datetime
    revoked: datetime | None
    accounts: int


def eab_view(key: EabKey, accounts: int) -> EabKeyView:
    return EabKeyView(key.name, key.kid, list(key.allow), key.wildcards, list(key.sources or []),
                      key.requester_in_dns, key.orders_per_hour, list(key.profiles or []), key.created, key.revoked,
                      accounts)


def list_eab_keys(sessions: sessionmaker[Session]) -> list[EabKeyView]:
    """Every EAB key (never its HMAC key) with the number of accounts bound with it."""
    from jackdaw.ra.bindings import list_keys

    with sessions() as s:
        return [eab_view(k, n) for k, n in list_keys(s)]


@dataclass(frozen=True)
class BucketView:
    limit: str
    rule: str
    key: str
    label: str
    tokens: float
    capacity: int
    #: seconds until the bucket is full again
    full_in: float


@dataclass(frozen=True)
class PauseView:
    name: str
    unpause_url: str | None
    since: datetime


@dataclass(frozen=True)
class BudgetView:
    enabled: bool
    limits: list[str]
    #: the emptiest buckets first
    buckets: list[BucketView]
    paused: list[PauseView]


def budget_view(sessions: sessionmaker[Session], settings: Settings) -> BudgetView:
    from jackdaw.budget import Budget, client_limit

    limits = {lim.name: lim for lim in Budget(settings).limits()}
    now = utcnow()
    buckets: list[BucketView] = []
    with sessions() as s:
        keys = {k.kid: k for k in s.scalars(select(EabKey))}
        for row in s.scalars(select(BudgetBucket)):
            lim = limits.get(row.limit)
            if lim is None and row.limit == "client-orders" and row.key in keys:
                lim = client_limit(keys[row.key])
            if lim is None:
                continue  # a limit switched off since
            tokens = ledger.level(row, lim, now)
            buckets.append(BucketView(row.limit, lim.describe(), row.key, row.label or row.key, round(tokens, 2),
                                      lim.capacity, round((lim.capacity - tokens) * lim.interval, 1)))
        paused = [PauseView(p.name, p.unpause_url, p.since) for p in s.scalars(select(UpstreamPause)
                                                                             .order_by(UpstreamPause.name))]
    buckets.sort(key=lambda b: (b.tokens / b.capacity, b.limit, b.label))
    return BudgetView(settings.budget_enabled, [f"{lim.name}: {lim.describe()}" for lim in limits.values()],
                      buckets, paused)
