"""The `renewal_info` job: fetch the upstream CA's ARI window (RFC 9773) for one certificate.

Queued when a certificate is stored and again when a client asks for a window that is due for
a refresh; the answer (window, explanationURL, and when to ask again: the CA's Retry-After) is
kept on the certificate row, where leg 1's renewalInfo answers from (jackdaw.ra.renewal), so
no client request ever waits on the CA.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import requests
from acme import client as acme_client
from acme import messages
from cryptography import x509
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import __version__
from jackdaw.jobs import JobContext, RetryLater, backoff, fenced
from jackdaw.models import Certificate, utcnow
from jackdaw.upstream.account import UpstreamAccount

log = logging.getLogger(__name__)

#: when the CA sends no Retry-After (RFC 9773 §4.3.3 suggests six hours)
DEFAULT_REFRESH = timedelta(hours=6)
#: bounds on how often one certificate's window is fetched
MIN_REFRESH, MAX_REFRESH = timedelta(minutes=1), timedelta(days=1)
FETCH_TIMEOUT = 10.0


def cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1, encoded exactly as certbot's `acme` encodes it."""
    return acme_client._renewal_info_path_component(cert)


def refresh_after(resp: requests.Response) -> timedelta:
    raw = resp.headers.get("Retry-After", "")
    wait = timedelta(seconds=int(raw)) if raw.isdigit() else DEFAULT_REFRESH
    return min(max(wait, MIN_REFRESH), MAX_REFRESH)


@dataclass
class RenewalInfoJob:
    sessions: sessionmaker[Session]
    upstream: UpstreamAccount

    def __call__(self, ctx: JobContext) -> None:
        with self.sessions() as s:
            cert = s.get(Certificate, ctx.subject_id)
            if cert is None or cert.ari_id is None or cert.not_after <= utcnow():
                return  # RFC 9773 §4.3: not after the certificate expired
            ari_id = cert.ari_id
        meta = self.upstream.meta() or self.upstream.refresh_meta()
        if meta is None or meta.renewal_info is None:
            self._store(ctx, None, DEFAULT_REFRESH)  # no ARI upstream: the computed window stands
            return
        settings = self.upstream.settings
        try:
            resp = requests.get(f"{meta.renewal_info.rstrip('/')}/{ari_id}", timeout=FETCH_TIMEOUT,
                                verify=settings.upstream_ca_bundle or True,
                                headers={"User-Agent": f"jackdaw/{__version__}"})
        except requests.RequestException as exc:
            raise RetryLater(f"upstream renewalInfo: {exc}", backoff(ctx.attempts, 300)) from exc
        if resp.status_code == 404:
            self._store(ctx, None, DEFAULT_REFRESH)
            return
        if resp.status_code != 200:
            raise RetryLater(f"upstream renewalInfo: HTTP {resp.status_code}", backoff(ctx.attempts, 300))
        try:
            info = messages.RenewalInfo.from_json(resp.json())
        except (ValueError, TypeError) as exc:  # josepy's DeserializationError is a ValueError
            raise RetryLater(f"upstream renewalInfo is not a RenewalInfo: {exc}", backoff(ctx.attempts, 300)) from exc
        explanation = resp.json().get("explanationURL")
        self._store(ctx, (info.suggested_window.start, info.suggested_window.end,
                                     explanation if isinstance(explanation, str) else None), refresh_after(resp))

    def _store(self, ctx: JobContext, found: tuple[object, object, str | None] | None, wait: timedelta) -> None:
        with fenced(self.sessions, ctx) as s:
            cert = s.get(Certificate, ctx.subject_id)
            if cert is None:
                return
            cert.ari_refresh = utcnow() + wait
            if found is not None:
                start, end, explanation = found
                cert.ari_start, cert.ari_end, cert.ari_explanation = start, end, explanation  # type: ignore[assignment]
                log.info("certificate %s: upstream renewal window %s .. %s", cert.serial, start, end)
