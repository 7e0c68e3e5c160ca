"""ARI on leg 1 (RFC 9773): renewal windows for the certificates the relay issued, and a
client's ``replaces`` checked so its renewal is an ARI renewal upstream too.

A client's certificate *is* the upstream CA's certificate (the CSR went upstream as-is), so
its certificate id (§4.1: the issuer's key identifier and the serial) is the upstream's id as
well: the window is the upstream CA's for that very certificate, fetched by a job
(jackdaw.upstream.renewal) and answered from the database, or computed from the certificate's
lifetime until one is known. Only the relay holds the upstream account, so only the relay can
send the upstream ``replaces`` that makes the renewal exempt from the CA's rate limits.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from jackdaw.models import Account, Certificate, Order, utcnow
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.upstream.renewal import cert_id

__all__ = ["Window", "cert_id", "check_replaces", "find", "parse_cert_id", "window"]

#: how long a client may cache a computed window (no upstream answer yet)
COMPUTED_RETRY_AFTER = 3600


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_cert_id(text: str) -> tuple[bytes, int]:
    """(keyIdentifier, serial) of a certificate id; Malformed if it is none."""
    aki, dot, serial = text.partition(".")
    try:
        if not dot or not aki or not serial or any(c not in _ALPHABET for c in aki + serial):
            raise ValueError
        return _b64(aki), int.from_bytes(_b64(serial), "big", signed=True)
    except ValueError:
        raise problems.Malformed(f"{text[:100]!r} is not an ARI certificate id (keyIdentifier.serial, "
                                 "base64url)") from None


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def find(s: Session, text: str) -> Certificate:
    """The certificate this relay issued with that id."""
    _, serial = parse_cert_id(text)
    found = s.scalars(select(Certificate).where(Certificate.serial == format(serial, "x"),
                                                Certificate.ari_id == text)).first()
    if found is None:
        raise problems.NotFound("this relay issued no certificate with that id")
    return found


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    explanation: str | None
    #: seconds the client may cache it (the Retry-After)
    retry_after: int
    #: the upstream's window is due for a (re)fetch
    stale: bool

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"suggestedWindow": {"start": _rfc3339(self.start), "end": _rfc3339(self.end)}}
        if self.explanation:
            doc["explanationURL"] = self.explanation
        return doc


def _rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def computed_window(cert: Certificate, not_before: datetime, now: datetime) -> tuple[datetime, datetime]:
    """With no word from the upstream: the middle of the last third of the lifetime, two days
    wide (as Pebble and Let's Encrypt suggest); a revoked certificate is due now."""
    if cert.revoked is not None:
        return now - timedelta(hours=1), now - timedelta(hours=1) + timedelta(seconds=1)
    lifetime = cert.not_after - not_before
    ideal = cert.not_after - lifetime / 3
    start = max(not_before, ideal - min(timedelta(days=1), lifetime / 10))
    end = min(cert.not_after, ideal + min(timedelta(days=1), lifetime / 10))
    return start, max(end, start + timedelta(seconds=1))


def window(s: Session, text: str, now: datetime | None = None) -> tuple[Certificate, Window]:
    now = now or utcnow()
    cert = find(s, text)
    stale = cert.ari_refresh is None or cert.ari_refresh <= now
    if cert.ari_start is not None and cert.ari_end is not None and cert.revoked is None:
        retry = int((cert.ari_refresh - now).total_seconds()) if not stale and cert.ari_refresh else 60
        return cert, Window(cert.ari_start, cert.ari_end, cert.ari_explanation, max(60, retry), stale)
    leaf = x509.load_pem_x509_certificate(cert.chain_pem.encode())
    start, end = computed_window(cert, leaf.not_valid_before_utc, now)
    return cert, Window(start, end, None, COMPUTED_RETRY_AFTER, stale and cert.revoked is None)


def check_replaces(s: Session, account: Account, names: list[str], text: Any) -> Certificate:
    """§5: the replaced certificate exists, was issued to this account, shares a name with the
    new order, and no other order that is not invalid replaces it already."""
    if not isinstance(text, str) or not text:
        raise problems.Malformed("'replaces' must be an ARI certificate id")
    cert = find(s, text)
    order = s.get(Order, cert.order_id)
    assert order is not None
    if order.account_id != account.id:
        raise problems.Unauthorized("the certificate 'replaces' names was not issued to this account")
    if not set(order.identifiers) & set(names):
        raise problems.Malformed("the new order shares no name with the certificate it replaces")
    if cert.replaced_by is not None:
        other = s.get(Order, cert.replaced_by)
        if other is not None and other.status != Status.INVALID:
            raise problems.AlreadyReplaced(f"certificate {cert.serial} is already replaced by another order")
    return cert
