"""The `revoke` job: forward a client's revocation to the upstream CA (the issuing account)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from acme import messages
from cryptography import x509
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.jobs import JobContext, RetryLater
from jackdaw.models import Certificate, utcnow
from jackdaw.upstream.account import UpstreamAccount

log = logging.getLogger(__name__)


@dataclass
class RevokeJob:
    sessions: sessionmaker[Session]
    upstream: UpstreamAccount

    def __call__(self, ctx: JobContext) -> None:
        with self.sessions() as s:
            stored = s.get(Certificate, ctx.subject_id)
            if stored is None or stored.revoked is None or stored.upstream_revoked is not None:
                return
            leaf = x509.load_pem_x509_certificate(stored.chain_pem.encode())
            reason = stored.revocation_reason or 0
        try:
            self.upstream.client().revoke(leaf, reason)
        except messages.Error as error:
            if error.code == "accountDoesNotExist":
                self.upstream.forget()
                raise RetryLater("upstream account unknown; registering again", 0) from error
            if error.code != "alreadyRevoked":
                raise RetryLater(f"upstream refused revocation: {error}", min(2.0**ctx.attempts, 300)) from error
        except requests.RequestException as exc:
            raise RetryLater(f"upstream unreachable: {exc}", min(2.0**ctx.attempts, 300)) from exc
        with self.sessions.begin() as s:
            stored = s.get(Certificate, ctx.subject_id)
            if stored is not None:
                stored.upstream_revoked = utcnow()
        log.info("certificate %s revoked upstream (reason %d)", ctx.subject_id, reason)
