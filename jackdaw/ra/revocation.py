"""Certificate revocation (RFC 8555 §7.6): recorded here, forwarded upstream by a job."""

from __future__ import annotations

from typing import Any

import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from jackdaw.jobs import JobKind, JobQueue
from jackdaw.models import Account, Certificate, utcnow
from jackdaw.protocol import problems

#: reasons a subscriber may give (RFC 5280 §5.3.1), as Boulder allows them
REASONS = {0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged", 4: "superseded",
           5: "cessationOfOperation"}
_SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def parse_request(payload: dict[str, Any]) -> tuple[x509.Certificate, int]:
    raw = payload.get("certificate")
    if not isinstance(raw, str) or not raw:
        raise problems.Malformed("revokeCert needs a 'certificate' (base64url DER)")
    try:
        cert = x509.load_der_x509_certificate(jose.b64.b64decode(raw))
    except (ValueError, TypeError):
        raise problems.Malformed("'certificate' is not a base64url DER certificate") from None
    reason = payload.get("reason", 0)
    if not isinstance(reason, int) or isinstance(reason, bool) or reason not in REASONS:
        raise problems.BadRevocationReason(
            f"reason {reason!r} is not accepted; use one of "
            + ", ".join(f"{code} ({name})" for code, name in REASONS.items())
        )
    return cert, reason


def find_certificate(session: Session, cert: x509.Certificate) -> Certificate:
    serial = format(cert.serial_number, "x")
    der = cert.public_bytes(serialization.Encoding.DER)
    for stored in session.scalars(select(Certificate).where(Certificate.serial == serial)):
        leaf = x509.load_pem_x509_certificate(stored.chain_pem.encode())
        if leaf.public_bytes(serialization.Encoding.DER) == der:
            return stored
    raise problems.NotFound("this relay did not issue that certificate")


def authorize(stored: Certificate, cert: x509.Certificate, account: Account | None, jwk: jose.JWK | None) -> None:
    """The owning account (kid) or the certificate's own key (jwk) may revoke."""
    if account is not None:
        if stored.order.account_id != account.id:
            raise problems.Unauthorized("this account does not own the certificate")
        return
    assert jwk is not None
    if jwk.public_key().key.public_bytes(*_SPKI) != cert.public_key().public_bytes(*_SPKI):
        raise problems.Unauthorized("the request is not signed by the certificate's key")


def revoke(session: Session, queue: JobQueue, stored: Certificate, reason: int) -> None:
    if stored.revoked is not None:
        raise problems.AlreadyRevoked("the certificate is already revoked")
    stored.revoked = utcnow()
    stored.revocation_reason = reason
    queue.enqueue(session, JobKind.REVOKE, stored.id)
