"""Which certificate is current for each set of names, and which sets are due (one owner).

The status page, `jackdaw certificates`, the expiry metric and the expiry notifications all ask
the same question: for each distinct set of names the relay has issued for, which unrevoked
certificate is the newest (latest notAfter), and has it been renewed before it gets close to
expiry? A later certificate for the same set supersedes an earlier one, whichever client asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from jackdaw.models import Certificate, Order, utcnow


@dataclass(frozen=True)
class Current:
    """The current certificate of one name set."""

    names: tuple[str, ...]  # sorted, lower-case: the set's identity
    certificate_id: str
    serial: str
    not_after: datetime
    created: datetime
    order_id: str
    account_id: str

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def due(self, within: timedelta, now: datetime) -> bool:
        """Not renewed although it expires within ``within`` (expired ones included)."""
        return self.not_after - now <= within

    @property
    def renewal_window(self) -> timedelta:
        """Where clients renew: the last third of the lifetime (certbot's 30 of 90 days, lego's and
        Caddy's default, and the ARI window the relay computes: jackdaw.ra.renewal)."""
        return (self.not_after - self.created) / 3

    def overdue(self, now: datetime) -> bool:
        """Not renewed although inside its renewal window (its client should have renewed)."""
        return self.due(self.renewal_window, now)


def name_set(identifiers: list[str]) -> tuple[str, ...]:
    return tuple(sorted({name.lower() for name in identifiers}))


def current_certificates(session: Session, now: datetime | None = None,
                         include_expired_days: int = 30) -> list[Current]:
    """The current certificate per name set, soonest expiry first.

    Revoked certificates are never current. A set whose newest certificate expired more than
    ``include_expired_days`` ago is dropped (its hosts are gone or renew elsewhere).
    """
    now = now or utcnow()
    q = (select(Certificate.id, Certificate.serial, Certificate.not_after, Certificate.created,
                Order.id, Order.account_id, Order.identifiers)
         .join(Order, Certificate.order_id == Order.id)
         .where(Certificate.revoked.is_(None),
                Certificate.not_after > now - timedelta(days=include_expired_days)))
    best: dict[tuple[str, ...], Current] = {}
    for cert_id, serial, not_after, created, order_id, account_id, identifiers in session.execute(q):
        names = name_set(list(identifiers))
        seen = best.get(names)
        if seen is None or (not_after, created) > (seen.not_after, seen.created):
            best[names] = Current(names, cert_id, serial, not_after, created, order_id, account_id)
    return sorted(best.values(), key=lambda c: (c.not_after, c.names))


def due_for_renewal(session: Session, within: timedelta, now: datetime | None = None) -> list[Current]:
    """Name sets whose current certificate expires within ``within`` without a successor."""
    now = now or utcnow()
    return [c for c in current_certificates(session, now) if c.due(within, now)]
