"""Notifications for the operator: events found in the database (jackdaw.notify.events),
deduplicated and delivered by durable jobs (jackdaw.notify.outbox) on the configured channels
(jackdaw.notify.channels: webhook, e-mail, command)."""

from jackdaw.notify.outbox import EVERY, SWEEP, Notifier, secrets_of

__all__ = ["EVERY", "SWEEP", "Notifier", "secrets_of"]
