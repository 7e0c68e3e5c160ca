"""The `revoke` job: forward a client's revocation to the upstream CA (the issuing account)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from acme import messages
from cryptography import x509
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.jobs import JobContext, RetryLater, backoff, fenced
from jackdaw.models import Certificate, utcnow
from jackdaw.upstream.account import UpstreamAccount
from jackdaw.upstream.errors import Verdict, triage

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
        ctx.guard()
        try:
            self.upstream.client().revoke(leaf, reason)
        except Exception as exc:
            kind = triage(exc)
            if kind is Verdict.ACCOUNT_GONE:
                self.upstream.forget()
                raise RetryLater("upstream account unknown; registering again", 0) from exc
            if kind is Verdict.TRANSIENT:
                raise RetryLater(f"upstream unreachable or in trouble: {exc}", backoff(ctx.attempts, 300)) from exc
            if not (isinstance(exc, messages.Error) and exc.code == "alreadyRevoked"):
                # a verdict, not a hiccup: asking again would get the same answer
                log.error("certificate %s: the upstream CA refused its revocation: %s", ctx.subject_id, exc)
                return
        with fenced(self.sessions, ctx) as s:
            stored = s.get(Certificate, ctx.subject_id)
            if stored is not None:
                stored.upstream_revoked = utcnow()
        log.info("certificate %s revoked upstream (reason %d)", ctx.subject_id, reason)

    def give_up(self, ctx: JobContext, reason: str) -> None:
        log.error("certificate %s: revocation not forwarded upstream after repeated failures: %s", ctx.subject_id,
                  reason)
