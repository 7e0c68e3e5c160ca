"""Everything the operator's overview shows, read once: the status page (`GET /status`,
jackdaw.wfe.status) and `jackdaw status` both render the one ``StatusReport`` made here.

Read-only, and bounded whatever the size of the database: lists are LIMITed, counts are single
aggregates, and every time window is narrowed by an indexed column first (orders.expires: an
order that failed since T was alive at T; certificates.not_after: one issued since T expires
after T). The current certificate per name set, and which sets are overdue, come from
jackdaw.inventory; the relay certificate from jackdaw.relaycert; the budget from
``queries.budget_view``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import __version__, inventory
from jackdaw.models import Certificate, Job, Order, utcnow
from jackdaw.models import UpstreamAccount as UpstreamAccountRow
from jackdaw.models import UpstreamDirectory as UpstreamDirectoryRow
from jackdaw.ops import queries
from jackdaw.protocol.constants import Status
from jackdaw.protocol.problems import ACME_ERROR_PREFIX
from jackdaw.relaycert import CertStore, job_state
from jackdaw.settings import Settings
from jackdaw.upstream.directory import Stored

#: days of issuances and failures in the history (the plot)
HISTORY_DAYS = 30
FAILURE_WINDOW = timedelta(hours=24)
#: failed orders read for the last 24 h (the count is exact; the grouping covers these)
FAILURES_READ = 500
#: orders listed per problem type
FAILURES_PER_TYPE = 10
#: certificates listed, soonest expiry first; those expired longer ago than
#: EXPIRED_SHOWN are left out (as jackdaw.inventory drops their sets)
CERTIFICATES_SHOWN = 200
EXPIRED_SHOWN = timedelta(days=30)
#: the emptiest budget buckets shown
BUCKETS_SHOWN = 10
DETAIL_CHARS = 300


@dataclass(frozen=True)
class RelayJob:
    run_at: datetime
    attempts: int
    running: bool
    last_error: str | None


@dataclass(frozen=True)
class RelayCertView:
    domain: str
    #: RELAY_CERT_ENABLED: false means the operator provides nginx's certificate
    enabled: bool
    directory: str
    #: why nginx could not use what is there, or None
    problem: str | None
    serial: str | None
    issuer: str | None
    names: list[str]
    not_after: datetime | None
    #: None for the self-signed placeholder: its days say nothing about a real certificate
    days_left: float | None
    placeholder: bool
    #: why a renewal is due now, or None
    renewal_due: str | None
    job: RelayJob | None


@dataclass(frozen=True)
class WithdrawnProfile:
    """A profile the upstream CA stopped listing, still offered (UPSTREAM_PROFILE_GRACE)."""

    name: str
    since: datetime
    until: datetime


@dataclass(frozen=True)
class UpstreamView:
    directory_url: str
    #: the CA's host name
    ca: str
    #: None until the account is registered (on first use)
    account_url: str | None
    key_stored: datetime | None
    key_encrypted: bool
    #: the directory's meta as stored (jackdaw.upstream.directory): when the CA last answered
    #: (None: never), when the relay last asked, and why that failed
    meta_fetched: datetime | None = None
    meta_checked: datetime | None = None
    meta_error: str | None = None
    #: seconds since ``meta_fetched``
    meta_age: float | None = None
    #: profiles offered (the CA's, and those in their grace)
    profiles: list[str] = field(default_factory=list)
    #: profiles the CA stopped listing, still offered: name, since, until
    withdrawn: list[WithdrawnProfile] = field(default_factory=list)


@dataclass(frozen=True)
class BudgetSummary:
    #: ``buckets``: the emptiest BUCKETS_SHOWN of those not full
    view: queries.BudgetView
    #: buckets not full
    buckets_total: int


@dataclass(frozen=True)
class JobKindCount:
    kind: str
    depth: int
    oldest: datetime | None


@dataclass(frozen=True)
class QueueView:
    depth: int
    by_kind: list[JobKindCount]
    oldest: queries.JobView | None
    #: jobs whose last run failed and that will be retried
    failing: int


@dataclass(frozen=True)
class Failure:
    order_id: str
    names: list[str]
    detail: str
    when: datetime


@dataclass(frozen=True)
class FailureGroup:
    #: the ACME problem type without its urn: prefix (dns, connection, rateLimited, ...)
    type: str
    count: int
    #: the latest FAILURES_PER_TYPE, newest first
    orders: list[Failure]


@dataclass(frozen=True)
class FailuresView:
    since: datetime
    total: int
    #: most frequent type first
    groups: list[FailureGroup]
    #: more failures than FAILURES_READ: the groups cover the latest of them only
    truncated: bool


@dataclass(frozen=True)
class CertificateRow:
    serial: str
    names: list[str]
    not_after: datetime
    days_left: float
    order_id: str
    #: the current certificate of its name set (jackdaw.inventory)
    current: bool
    #: current, and its client has not renewed it inside its renewal window
    overdue: bool
    revoked: bool
    expired: bool


@dataclass(frozen=True)
class OverdueSet:
    names: list[str]
    serial: str
    not_after: datetime
    days_left: float
    order_id: str


@dataclass(frozen=True)
class CertificatesView:
    #: soonest expiry first, at most CERTIFICATES_SHOWN
    rows: list[CertificateRow]
    total: int
    #: name sets with a current certificate
    name_sets: int
    overdue: list[OverdueSet]


@dataclass(frozen=True)
class Day:
    #: YYYY-MM-DD, UTC
    day: str
    issued: int
    failed: int


@dataclass(frozen=True)
class StatusReport:
    generated: datetime
    version: str
    relay_domain: str
    #: what needs the operator, one line each (empty: all well)
    attention: list[str]
    relay_certificate: RelayCertView
    upstream: UpstreamView
    budget: BudgetSummary
    jobs: QueueView
    failures: FailuresView
    certificates: CertificatesView
    #: HISTORY_DAYS days, oldest first, every day present
    history: list[Day]


def gather(sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> StatusReport:
    now = now or utcnow()
    relay = relay_certificate(sessions, settings, now)
    budget = queries.budget_view(sessions, settings)
    with sessions() as s:
        upstream = upstream_account(s, settings, now)
        jobs = job_queue(s)
        failures = recent_failures(s, now)
        certificates = certificate_list(s, now)
        days = history(s, now)
    spent = [b for b in budget.buckets if b.tokens < b.capacity]  # a full bucket says nothing
    summary = BudgetSummary(replace(budget, buckets=spent[:BUCKETS_SHOWN]), len(spent))
    return StatusReport(
        generated=now, version=__version__, relay_domain=settings.relay_domain,
        attention=attention(relay, budget, jobs, failures, certificates, upstream),
        relay_certificate=relay, upstream=upstream, budget=summary, jobs=jobs, failures=failures,
        certificates=certificates, history=days,
    )


def relay_certificate(sessions: sessionmaker[Session], settings: Settings, now: datetime) -> RelayCertView:
    current = CertStore(settings.relay_cert_path, settings.relay_domain).status()
    with sessions() as s:
        job = job_state(s, settings.relay_domain)
    days = current.days_left(now)
    return RelayCertView(
        domain=settings.relay_domain, enabled=settings.relay_cert_enabled, directory=str(current.directory),
        problem=current.problem, serial=current.serial or None, issuer=current.issuer or None,
        names=list(current.names), not_after=current.not_after,
        days_left=None if days is None or current.placeholder else round(days, 1),
        placeholder=current.placeholder,
        renewal_due=current.renewal_reason(settings.relay_cert_renew_days, now) if settings.relay_cert_enabled
        else None,
        job=None if job is None else RelayJob(job.run_at, job.attempts, job.running, job.last_error),
    )


def upstream_account(s: Session, settings: Settings, now: datetime) -> UpstreamView:
    """From the database only: the page never registers an account or contacts the CA."""
    row = s.get(UpstreamAccountRow, settings.le_directory)
    directory = s.get(UpstreamDirectoryRow, settings.le_directory)
    stored = Stored.of(directory) if directory is not None else None
    meta = stored.view(timedelta(seconds=settings.upstream_profile_grace), now) if stored is not None else None
    return UpstreamView(
        directory_url=settings.le_directory, ca=urlsplit(settings.le_directory).hostname or settings.le_directory,
        account_url=row.account_url if row is not None else None,
        key_stored=row.created if row is not None else None,
        key_encrypted=bool(row is not None and row.key_encrypted),
        meta_fetched=stored.fetched if stored is not None else None,
        meta_checked=stored.checked if stored is not None else None,
        meta_error=stored.error if stored is not None else None,
        meta_age=(now - stored.fetched).total_seconds() if stored is not None and stored.fetched else None,
        profiles=sorted(meta.profiles) if meta is not None else [],
        withdrawn=[WithdrawnProfile(name, since, until) for name, (since, until) in sorted(meta.withdrawn.items())]
        if meta is not None else [],
    )


def job_queue(s: Session) -> QueueView:
    by_kind = [JobKindCount(kind, int(n), oldest) for kind, n, oldest in s.execute(
        select(Job.kind, func.count(), func.min(Job.created)).group_by(Job.kind).order_by(Job.kind))]
    oldest = s.scalars(select(Job).order_by(Job.created, Job.id).limit(1)).first()
    failing = s.scalar(select(func.count()).select_from(Job).where(Job.attempts > 0)) or 0
    return QueueView(sum(k.depth for k in by_kind), by_kind,
                     queries.job_view(oldest) if oldest is not None else None, int(failing))


def _failed_since(since: datetime) -> list[ColumnElement[bool]]:
    # an order that failed since `since` had not expired then: orders.expires is indexed
    return [Order.status == Status.INVALID, Order.expires > since, Order.updated >= since]


def problem_type(error: dict[str, Any] | None) -> str:
    kind = str((error or {}).get("type") or "")
    return kind.removeprefix(ACME_ERROR_PREFIX) or "unknown"


def _detail(error: dict[str, Any] | None) -> str:
    error = error or {}
    detail = str(error.get("detail") or "")
    subs = [str(sub.get("detail")) for sub in error.get("subproblems") or [] if isinstance(sub, dict)
            and sub.get("detail")]
    text = "; ".join([detail, *subs]) if subs else detail
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS - 1] + "…"


def recent_failures(s: Session, now: datetime) -> FailuresView:
    since = now - FAILURE_WINDOW
    total = s.scalar(select(func.count()).select_from(Order).where(*_failed_since(since))) or 0
    rows = s.execute(select(Order.id, Order.identifiers, Order.error, Order.updated)
                     .where(*_failed_since(since)).order_by(Order.updated.desc(), Order.id).limit(FAILURES_READ))
    grouped: dict[str, list[Failure]] = defaultdict(list)
    for order_id, identifiers, error, updated in rows:
        grouped[problem_type(error)].append(Failure(order_id, list(identifiers), _detail(error), updated))
    groups = [FailureGroup(kind, len(items), items[:FAILURES_PER_TYPE]) for kind, items in grouped.items()]
    groups.sort(key=lambda g: (-g.count, g.type))
    return FailuresView(since, int(total), groups, total > FAILURES_READ)


def certificate_list(s: Session, now: datetime) -> CertificatesView:
    current = inventory.current_certificates(s, now)
    current_ids = {c.certificate_id for c in current}
    overdue = [c for c in current if c.overdue(now)]
    overdue_ids = {c.certificate_id for c in overdue}
    shown = Certificate.not_after > now - EXPIRED_SHOWN
    total = s.scalar(select(func.count()).select_from(Certificate).where(shown)) or 0
    rows = [
        CertificateRow(serial, list(identifiers), not_after, round((not_after - now).total_seconds() / 86400, 1),
                       order_id, cert_id in current_ids, cert_id in overdue_ids, revoked is not None,
                       not_after <= now)
        for cert_id, serial, not_after, revoked, order_id, identifiers in s.execute(
            select(Certificate.id, Certificate.serial, Certificate.not_after, Certificate.revoked, Order.id,
                   Order.identifiers)
            .join(Order, Certificate.order_id == Order.id).where(shown)
            .order_by(Certificate.not_after, Certificate.serial).limit(CERTIFICATES_SHOWN))
    ]
    return CertificatesView(rows, int(total), len(current), [
        OverdueSet(list(c.names), c.serial, c.not_after, round(c.days_left(now), 1), c.order_id) for c in overdue])


def _utc_day(s: Session, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column, as YYYY-MM-DD, in the database's own terms."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)  # SQLite keeps UTC as naive text


def history(s: Session, now: datetime) -> list[Day]:
    """Certificates issued and orders failed per UTC day, the last HISTORY_DAYS days (today included)."""
    first = (now - timedelta(days=HISTORY_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    issued_day = _utc_day(s, Certificate.created)
    issued = {day: int(n) for day, n in s.execute(
        select(issued_day, func.count()).where(Certificate.not_after > first, Certificate.created >= first)
        .group_by(issued_day))}
    failed_day = _utc_day(s, Order.updated)
    failed = {day: int(n) for day, n in s.execute(
        select(failed_day, func.count()).where(*_failed_since(first)).group_by(failed_day))}
    days = [(first + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(HISTORY_DAYS)]
    return [Day(d, issued.get(d, 0), failed.get(d, 0)) for d in days]


def attention(relay: RelayCertView, budget: queries.BudgetView, jobs: QueueView, failures: FailuresView,
              certificates: CertificatesView, upstream: UpstreamView | None = None) -> list[str]:
    lines = []
    if upstream is not None:
        lines += [f"the upstream CA no longer lists profile {w.name} (since {w.since:%Y-%m-%d %H:%M}Z); offered "
                  f"until {w.until:%Y-%m-%d %H:%M}Z (UPSTREAM_PROFILE_GRACE)" for w in upstream.withdrawn]
        if upstream.meta_error:
            served = (f"what it offered at {upstream.meta_fetched:%Y-%m-%d %H:%M:%S}Z" if upstream.meta_fetched
                      else "no profiles (never fetched)")
            lines.append(f"upstream directory: the last fetch failed ({upstream.meta_error}); serving {served}")
    if relay.renewal_due:
        lines.append(f"relay certificate: {relay.renewal_due}")
    if relay.job is not None and relay.job.last_error:
        lines.append(f"relay certificate: renewal failing (attempt {relay.job.attempts}): {relay.job.last_error}")
    if certificates.overdue:
        lines.append(f"{len(certificates.overdue)} name set(s) not renewed within their renewal window")
    lines += [f"the upstream CA paused {p.name} for the relay's account" for p in budget.paused]
    spent = [b for b in budget.buckets if b.tokens < 1]
    if spent:
        lines.append("budget spent: " + ", ".join(f"{b.limit} for {b.label}" for b in spent[:5])
                     + (f" (+{len(spent) - 5} more)" if len(spent) > 5 else ""))
    if failures.total:
        lines.append(f"{failures.total} order(s) failed in the last 24 h")
    if jobs.failing:
        lines.append(f"{jobs.failing} job(s) retrying after a failure")
    return lines
