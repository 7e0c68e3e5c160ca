"""Raising events and delivering them: rows in ``notifications``, work in the job queue.

``raise_events`` inserts one row per (event, channel) unless the row exists (the unique
(event, subject, period, channel) is the deduplication) and, in the same transaction, queues a
``JobKind.NOTIFY`` job per new row: a raised notification is delivered even if this process
dies right after. Delivery happens only in job threads; a failed one is retried with back-off
up to ``NOTIFY_ATTEMPTS`` times, then given up (logged, the row keeps the reason and is never
sent again). A channel added later gets the events that are still current at the next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import logs
from jackdaw.jobs import JobContext, JobKind, JobQueue, RetryLater, fenced
from jackdaw.ledger import Limit, now_of
from jackdaw.models import Notification, utcnow
from jackdaw.notify import events
from jackdaw.notify.channels import Channel, DeliveryFailed, configured
from jackdaw.notify.events import Event
from jackdaw.settings import Settings

log = logging.getLogger(__name__)

#: the sweep job's subject, and how often each instance asks for it (the queue runs it once)
SWEEP = "all"
EVERY = 120.0
#: first retry of a failed delivery, doubling up to RETRY_MAX
RETRY_BASE = 15.0
RETRY_MAX = 3600.0


def retry_delay(attempts: int) -> float:
    return min(RETRY_BASE * 2.0 ** max(attempts - 1, 0), RETRY_MAX)


def secrets_of(settings: Settings) -> dict[str, str]:
    """The notification secrets, also when read from a ``*_FILE`` (for the log redaction)."""
    found = {"NOTIFY_WEBHOOK_SECRET": (settings.notify_webhook_secret or b"").decode("utf-8", "replace"),
             "NOTIFY_SMTP_PASSWORD": settings.notify_smtp_password or ""}
    return {k: v for k, v in found.items() if v}


class Notifier:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], queue: JobQueue,
                 limits: Iterable[Limit] = (), channels: Mapping[str, Channel] | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.queue = queue
        self.limits = tuple(limits) if settings.budget_enabled else ()
        self.channels = dict(configured(settings) if channels is None else channels)
        # reasons quote errors of providers and the CA: what the logs redact, bodies do not carry
        self._secrets = logs.secret_values({**settings.env, **secrets_of(settings)})

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, logs.REDACTED)
        return text

    # -- raising ---------------------------------------------------------------------------

    def raise_events(self, found: Iterable[Event], now: datetime | None = None) -> list[int]:
        """Record ``found`` once per channel; returns the ids of the rows it added."""
        found = list(found)
        if not found or not self.channels:
            return []
        added: list[int] = []
        with self.sessions.begin() as s:
            now = now or now_of(s)
            ins = (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(Notification)
            for event in found:
                payload = event.payload(self.settings.relay_domain, now)
                for channel in self.channels:
                    new_id = s.execute(
                        ins.values(event=str(event.kind), subject=event.subject[:255], period=event.period[:64],
                                   channel=channel, payload=payload, created=now)
                        .on_conflict_do_nothing(index_elements=[Notification.event, Notification.subject,
                                                                Notification.period, Notification.channel])
                        .returning(Notification.id)).scalar()
                    if new_id is not None:
                        self.queue.enqueue(s, JobKind.NOTIFY, str(new_id))
                        added.append(new_id)
                        log.info("notification %d (%s %s) raised for %s: %s", new_id, event.kind, event.subject,
                                 channel, event.title)
        return added

    def relay_cert_failing(self, domain: str, reason: str, attempts: int, retry_in: float,
                           not_after: datetime | None) -> None:
        """Called by the relay certificate's job when a renewal attempt failed; never raises
        (the job's own failure is what matters to it)."""
        try:
            self.raise_events([events.relay_cert_failing(domain, self.redact(reason), attempts, retry_in,
                                                         not_after, utcnow())])
        except Exception:
            log.exception("notification of the relay certificate's failure could not be raised")

    # -- the sweep -------------------------------------------------------------------------

    def find(self, now: datetime | None = None) -> list[Event]:
        """Every event the rows show now."""
        s_ = self.settings
        with self.sessions() as s:
            now = now or now_of(s)
            return [*events.expiring(s, s_.notify_expiry_days, now),
                    *events.order_failures(s, s_.notify_order_failures, now),
                    *events.budget_low(s, self.limits, s_.notify_budget_percent, now),
                    *events.upstream_paused(s),
                    *self._withdrawn(s, now)]

    def _withdrawn(self, s: Session, now: datetime) -> list[Event]:
        return events.profiles_withdrawn(s, self.settings.le_directory,
                                         timedelta(seconds=self.settings.upstream_profile_grace), now)

    def profiles_withdrawn(self, names: list[str]) -> None:
        """Called by the upstream directory's fetch when the CA stopped listing profiles: told at
        once, not at the next sweep; never raises (the fetch's own outcome is what matters to it)."""
        if not self.channels:
            return
        try:
            with self.sessions() as s:
                found = self._withdrawn(s, now_of(s))
            self.raise_events([e for e in found if e.details.get("profile") in names])
        except Exception:
            log.exception("notification of withdrawn upstream profiles could not be raised")

    def run_sweep(self, ctx: JobContext) -> None:
        """The ``NOTIFY_SWEEP`` job."""
        self.sweep(ctx)

    def sweep(self, ctx: JobContext | None = None, now: datetime | None = None) -> list[int]:
        """Raise what the rows show; the ids raised (``now`` for tests). Old rows are pruned by
        jackdaw.retention."""
        if not self.channels:
            return []
        found = self.find(now)
        if ctx is not None:
            ctx.guard()
        return self.raise_events(found, now)

    # -- delivering ------------------------------------------------------------------------

    def deliver(self, ctx: JobContext) -> None:
        """The ``NOTIFY`` job: send one row on its channel."""
        with self.sessions() as s:
            row = s.get(Notification, int(ctx.subject_id))
            if row is None or row.sent is not None:
                return
            doc: dict[str, Any] = {"id": row.id, **row.payload}
            channel_name, what = row.channel, f"notification {row.id} ({row.event} {row.subject})"
        channel = self.channels.get(channel_name)
        if channel is None:
            self._record(ctx, row.id, sent=False, error=f"channel {channel_name} is no longer configured")
            log.warning("%s: channel %s is no longer configured; dropped", what, channel_name)
            return
        ctx.guard()
        try:
            channel.send(doc)
        except DeliveryFailed as exc:
            reason = f"{channel_name}: {exc}"
            self._record(ctx, row.id, sent=False, error=reason)
            delay = retry_delay(ctx.attempts)
            if ctx.attempts < self.settings.notify_attempts:
                log.warning("%s: delivery failed (attempt %d of %d): %s; next try in %.0f s", what, ctx.attempts,
                            self.settings.notify_attempts, reason, delay)
            raise RetryLater(reason, delay) from None
        self._record(ctx, row.id, sent=True, error=None)
        log.info("%s sent on %s", what, channel_name)

    def give_up(self, ctx: JobContext, reason: str) -> None:
        log.error("notification %s: giving up after %d attempts: %s", ctx.subject_id, self.settings.notify_attempts,
                  reason)

    def _record(self, ctx: JobContext, notification_id: int, *, sent: bool, error: str | None) -> None:
        with fenced(self.sessions, ctx) as s:
            values: dict[str, Any] = {"error": error}
            if sent:
                values["sent"] = now_of(s)
            s.execute(update(Notification).where(Notification.id == notification_id).values(**values)
                      .execution_options(synchronize_session=False))
