"""`jackdaw notify test`: a test message on every configured channel, sent from here (not
through the job queue: the operator wants each channel's answer now), reported per channel."""

from __future__ import annotations

import secrets
import sys

from jackdaw.models import utcnow
from jackdaw.notify import channels, events
from jackdaw.settings import Settings


def test(settings: Settings) -> int:
    """Exit 0 if every configured channel took the message, 1 if one failed or none is configured."""
    configured = channels.configured(settings)
    if not configured:
        print("no notification channel is configured (NOTIFY_WEBHOOK_URL, NOTIFY_SMTP_HOST, NOTIFY_COMMAND)",
              file=sys.stderr)
        return 1
    now = utcnow()
    doc = {"id": f"test-{secrets.token_hex(4)}", **events.channel_check(now).payload(settings.relay_domain, now)}
    failed = 0
    for name, channel in configured.items():
        try:
            channel.send(doc)
        except channels.DeliveryFailed as exc:
            failed += 1
            print(f"{name}: FAILED ({channel.describe()}): {exc}")
        else:
            print(f"{name}: sent ({channel.describe()})")
    return 1 if failed else 0
