"""What is worth telling the operator, found in the database's rows (read-only).

Each finder returns ``Event``s whose (kind, subject, period) names one occurrence: the sweep
finds the same condition again and again, and the outbox tells it once per channel.

- ``certificate_expiring``: a name set's current certificate (jackdaw.inventory) expires within
  ``NOTIFY_EXPIRY_DAYS`` without a successor; once per certificate.
- ``order_failures``: ``NOTIFY_ORDER_FAILURES`` or more orders for one name turned invalid
  within 24 h; once per name and day.
- ``budget_low``: an upstream budget bucket (jackdaw.ledger) has less than
  ``NOTIFY_BUDGET_PERCENT`` of its capacity left; once per bucket and day.
- ``upstream_paused``: the upstream CA paused names for the relay's account; once per set of
  paused names.
- ``relay_cert_failing``: the relay's own certificate failed to renew (raised by its job,
  jackdaw.relaycert.job); once per day.
- ``profile_withdrawn``: the upstream CA stopped listing a certificate profile the relay keeps
  offering for ``UPSTREAM_PROFILE_GRACE`` (raised by the directory's fetch as well,
  jackdaw.upstream.directory); once per profile and withdrawal.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jackdaw import inventory
from jackdaw.durations import human
from jackdaw.ledger import Limit, level, whole
from jackdaw.models import BudgetBucket, Order, UpstreamDirectory, UpstreamPause
from jackdaw.protocol.constants import Status
from jackdaw.upstream.directory import Stored

#: the window of ``order_failures``
FAILURE_WINDOW = timedelta(hours=24)
#: order ids listed in an ``order_failures`` notification
LISTED_ORDERS = 10


class EventKind(StrEnum):
    CERTIFICATE_EXPIRING = "certificate_expiring"
    RELAY_CERT_FAILING = "relay_cert_failing"
    ORDER_FAILURES = "order_failures"
    BUDGET_LOW = "budget_low"
    UPSTREAM_PAUSED = "upstream_paused"
    PROFILE_WITHDRAWN = "profile_withdrawn"
    TEST = "test"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    #: what it is about (at most 255 characters)
    subject: str
    #: which occurrence of it (at most 64 characters)
    period: str
    #: one line: an e-mail's subject
    title: str
    text: str
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self, relay_domain: str, now: datetime) -> dict[str, Any]:
        """The document every channel sends."""
        return {"event": str(self.kind), "subject": self.subject, "period": self.period, "relay": relay_domain,
                "raised": now.isoformat(timespec="seconds"), "title": self.title, "text": self.text,
                "details": self.details}


def day(now: datetime) -> str:
    return now.date().isoformat()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def expiring(s: Session, within_days: int, now: datetime) -> list[Event]:
    if within_days <= 0:
        return []
    events = []
    for cert in inventory.due_for_renewal(s, timedelta(days=within_days), now):
        names = ", ".join(cert.names)
        days_left = cert.days_left(now)
        when = (f"expired {-days_left:.1f} days ago" if days_left < 0 else f"expires in {days_left:.1f} days")
        events.append(Event(
            EventKind.CERTIFICATE_EXPIRING, cert.certificate_id, "once",
            f"certificate for {names} {when} and was not renewed",
            f"The current certificate for {names} (serial {cert.serial}) {when}, on "
            f"{cert.not_after.isoformat(timespec='seconds')}, and no newer certificate for these names was "
            f"issued. Its client should have renewed it by now: check the host's ACME client (its timer, its "
            f"logs) and `jackdaw orders --name {cert.names[0]}`.",
            {"names": list(cert.names), "serial": cert.serial, "certificate_id": cert.certificate_id,
             "not_after": cert.not_after.isoformat(timespec="seconds"), "days_left": round(days_left, 2),
             "order_id": cert.order_id, "account_id": cert.account_id}))
    return events


def order_failures(s: Session, threshold: int, now: datetime) -> list[Event]:
    if threshold <= 0:
        return []
    failed: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    q = (select(Order.id, Order.identifiers, Order.error, Order.updated)
         .where(Order.status == Status.INVALID, Order.updated >= now - FAILURE_WINDOW))
    for order_id, identifiers, error, updated in s.execute(q):
        problem = str((error or {}).get("type", "")).rsplit(":", 1)[-1] or "unknown"
        for name in {n.lower() for n in identifiers}:
            failed[name].append((updated, order_id, problem))
    events = []
    for name, orders in sorted(failed.items()):
        if len(orders) < threshold:
            continue
        orders.sort(reverse=True)
        problems = Counter(problem for _, _, problem in orders)
        summary = ", ".join(f"{n} {p}" for p, n in problems.most_common())
        events.append(Event(
            EventKind.ORDER_FAILURES, name, day(now),
            f"{len(orders)} failed orders for {name} in 24 h",
            f"{len(orders)} orders for {name} became invalid within the last 24 hours ({summary}). The latest: "
            f"`jackdaw order show {orders[0][1]}`.",
            {"name": name, "count": len(orders), "problems": dict(problems),
             "orders": [order_id for _, order_id, _ in orders[:LISTED_ORDERS]]}))
    return events


def budget_low(s: Session, limits: Sequence[Limit], percent: int, now: datetime) -> list[Event]:
    if percent <= 0 or not limits:
        return []
    by_name = {lim.name: lim for lim in limits}
    events = []
    for row in s.scalars(select(BudgetBucket).where(BudgetBucket.limit.in_(by_name))):
        lim = by_name[row.limit]
        left = level(row, lim, now)
        if left >= lim.capacity * percent / 100:
            continue
        label = row.label or row.key
        subject = f"{row.limit} {row.key}"
        if len(subject) > 255:  # the account's key is the directory URL
            subject = f"{row.limit} sha256:{_digest(row.key)}"
        events.append(Event(
            EventKind.BUDGET_LOW, subject, day(now),
            f"upstream budget {row.limit} for {label} nearly spent: {whole(left)} of {lim.capacity} left",
            f"The upstream CA's limit {row.limit} ({lim.describe()}) for {label} has {whole(left)} of "
            f"{lim.capacity} tokens left: orders that need it will be refused (rateLimited) until it refills. "
            f"`jackdaw budget` shows every bucket.",
            {"limit": row.limit, "key": row.key, "label": label, "left": round(left, 2), "capacity": lim.capacity,
             "period_seconds": lim.period}))
    return events


def upstream_paused(s: Session) -> list[Event]:
    pauses = list(s.scalars(select(UpstreamPause).order_by(UpstreamPause.name)))
    if not pauses:
        return []
    names = [p.name for p in pauses]
    urls = sorted({p.unpause_url for p in pauses if p.unpause_url})
    return [Event(
        EventKind.UPSTREAM_PAUSED, "upstream account", _digest(",".join(names)),
        f"the upstream CA paused issuance for {len(names)} name(s): {', '.join(names[:5])}"
        f"{', ...' if len(names) > 5 else ''}",
        f"The upstream CA paused issuance for {', '.join(names)} for the relay's account after repeated "
        f"failures; the relay refuses orders for them. Fix the cause, unpause at {' '.join(urls) or 'the CA'}, "
        f"then run `jackdaw budget unpause {' '.join(names)}`.",
        {"names": names, "unpause_urls": urls,
         "since": min(p.since for p in pauses).isoformat(timespec="seconds")})]


def profiles_withdrawn(s: Session, directory_url: str, grace: timedelta, now: datetime) -> list[Event]:
    row = s.get(UpstreamDirectory, directory_url)
    meta = Stored.of(row).view(grace, now) if row is not None else None
    if meta is None:
        return []
    return [Event(
        EventKind.PROFILE_WITHDRAWN, f"profile {name}", since.isoformat(timespec="seconds"),
        f"the upstream CA no longer lists profile {name}; the relay offers it until "
        f"{until.isoformat(timespec='seconds')}",
        f"The upstream CA's directory ({directory_url}) stopped listing the certificate profile {name} at "
        f"{since.isoformat(timespec='seconds')}. The relay keeps offering it for UPSTREAM_PROFILE_GRACE, until "
        f"{until.isoformat(timespec='seconds')}, in case this is a blip; an order for it that the CA refuses fails "
        f"with invalidProfile. If the CA dropped it for good, move clients (certbot --required-profile, lego "
        f"--profile) and UPSTREAM_PROFILE / PROFILES_ALLOWED to a profile it lists: "
        f"{', '.join(sorted(set(meta.profiles) - set(meta.withdrawn))) or 'none'}.",
        {"profile": name, "directory": directory_url, "since": since.isoformat(timespec="seconds"),
         "until": until.isoformat(timespec="seconds")})
        for name, (since, until) in sorted(meta.withdrawn.items())]


def relay_cert_failing(domain: str, reason: str, attempts: int, retry_in: float, not_after: datetime | None,
                       now: datetime) -> Event:
    left = f"; the installed certificate expires on {not_after.isoformat(timespec='seconds')}" if not_after else ""
    return Event(
        EventKind.RELAY_CERT_FAILING, domain, day(now),
        f"the relay certificate for {domain} failed to renew",
        f"Renewing the relay's own certificate for {domain} failed (attempt {attempts}): {reason}. The next try is "
        f"in {human(retry_in)}{left}. `jackdaw relay-cert status` shows the job.",
        {"domain": domain, "reason": reason, "attempts": attempts, "retry_in_seconds": round(retry_in),
         "not_after": not_after.isoformat(timespec="seconds") if not_after else None})


def channel_check(now: datetime) -> Event:
    """What `jackdaw notify test` sends."""
    return Event(EventKind.TEST, "test", now.isoformat(timespec="seconds"),
                 "test notification", "A test notification from `jackdaw notify test`: this channel works.")
