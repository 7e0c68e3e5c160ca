"""The `order` job: leg 2 for one client order, resumable from what is stored.

Steps, each skipped when already done: create the upstream order (URL stored at once),
satisfy its DNS-01 authorizations, and — once the client has finalized — finalize upstream
with the client's own CSR and store the chain. Only this job touches an upstream order, so an
upstream order is never polled from two threads.

The steps themselves (new order, DNS-01 authorization, finalize, polling) are module-level
functions so that the relay's own certificate (jackdaw.relaycert) drives leg 2 the same way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from acme import challenges, messages
from acme import client as acme_client
from cryptography import x509
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import metrics
from jackdaw.dns.base import DNSProviderError
from jackdaw.dns.propagation import PropagationTimeout
from jackdaw.jobs import JobContext, RetryLater
from jackdaw.logs import log_context
from jackdaw.models import Certificate, Order, utcnow
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.upstream.account import UpstreamAccount
from jackdaw.upstream.dns01 import DNS01Solver

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25
POLL_MAX = 2.0
AUTHZ_DEADLINE = 300.0
FINALIZE_DEADLINE = 300.0
TRANSIENT_RETRIES = 5


class UpstreamFailed(Exception):
    """The upstream CA said no; carries the problem the client will see on its order."""

    def __init__(self, problem: problems.AcmeProblem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def count_upstream_error(exc: BaseException) -> None:
    """jackdaw_upstream_errors_total: the CA's problem type, or the transport failure's kind."""
    if isinstance(exc, messages.Error):
        kind = exc.code or "unknown"
    elif isinstance(exc, UpstreamFailed):
        kind = exc.problem.code
    elif isinstance(exc, requests.Timeout):
        kind = "timeout"
    elif isinstance(exc, requests.ConnectionError):
        kind = "connection"
    elif isinstance(exc, requests.RequestException):
        kind = "http"
    else:
        return  # DNS failures have their own metrics
    metrics.UPSTREAM_ERRORS.labels(type=kind).inc()


def problem_from_upstream(error: messages.Error, context: str) -> problems.AcmeProblem:
    code = error.code or "serverInternal"
    cls = problems.PROBLEM_TYPES.get(code, problems.ServerInternal)
    detail = f"upstream CA {context}: {error.detail or error.description or code}"
    return cls(detail)


@dataclass
class OrderJob:
    sessions: sessionmaker[Session]
    upstream: UpstreamAccount
    dns01: DNS01Solver

    def __call__(self, ctx: JobContext) -> None:
        with log_context(order_id=ctx.subject_id):
            self._run(ctx)

    def _run(self, ctx: JobContext) -> None:
        with self.sessions() as s:
            order = s.get(Order, ctx.subject_id)
            if order is None or order.status not in (Status.READY, Status.PROCESSING):
                return
            names, csr_der, upstream_url = list(order.identifiers), order.csr, order.upstream_order_url
        # A previous attempt may have died between writing and removing TXT values.
        self.dns01.cleanup(ctx.subject_id)
        try:
            self._advance(ctx, names, csr_der, upstream_url)
        except UpstreamFailed as failed:
            count_upstream_error(failed)
            self._record_failure(ctx.subject_id, failed.problem)
        except PropagationTimeout as exc:
            self._record_failure(ctx.subject_id, problems.DNS(f"DNS-01 record did not propagate: {exc}"))
        except messages.Error as error:
            count_upstream_error(error)
            if error.code == "accountDoesNotExist":
                self.upstream.forget()
                raise RetryLater("upstream account unknown; registering again", 0) from error
            if error.code == "rateLimited" or ctx.attempts >= TRANSIENT_RETRIES or error.code != "serverInternal":
                self._record_failure(ctx.subject_id, problem_from_upstream(error, "refused the order"))
            else:
                raise RetryLater(f"upstream error {error.code}", 2.0**ctx.attempts) from error
        except (requests.RequestException, DNSProviderError) as exc:
            count_upstream_error(exc)
            if ctx.attempts >= TRANSIENT_RETRIES:
                self._record_failure(ctx.subject_id, problems.ServerInternal(f"upstream leg failed: {exc}"))
            else:
                raise RetryLater(f"{type(exc).__name__}: {exc}", 2.0**ctx.attempts) from exc
        finally:
            if not self.dns01.cleanup(ctx.subject_id):
                log.warning("order %s: TXT clean-up incomplete, rows kept for retry", ctx.subject_id,
                            extra={"order_id": ctx.subject_id})

    def _advance(self, ctx: JobContext, names: list[str], csr_der: bytes | None, upstream_url: str | None) -> None:
        client = self.upstream.client()
        if upstream_url is None:
            upstream_url = self._new_upstream_order(client, ctx.subject_id, names)
        body = fetch_order(client, upstream_url)
        if body.status == messages.STATUS_PENDING:
            authorize(ctx, client, body, self.dns01)
            body = fetch_order(client, upstream_url)
        if body.status == messages.STATUS_INVALID:
            raise UpstreamFailed(order_problem(body, "invalidated the order"))
        if csr_der is None:
            with self.sessions.begin() as s:
                order = s.get(Order, ctx.subject_id)
                if order is not None:
                    order.upstream_status = str(body.status)
                    order.upstream_error = None
            return  # the client has not finalized yet; finalize re-queues this job
        if body.status == messages.STATUS_READY:
            finalize(client, body, x509.load_der_x509_csr(csr_der))
        body = poll_order(ctx, client, upstream_url)
        assert body.certificate is not None
        chain = post_as_get(client, body.certificate).text
        self._store_certificate(ctx.subject_id, chain)

    def _new_upstream_order(self, client: acme_client.ClientV2, order_id: str, names: list[str]) -> str:
        url = new_order(client, names)
        with self.sessions.begin() as s:
            order = s.get(Order, order_id)
            if order is not None:
                order.upstream_order_url = url
        log.info("order %s: upstream order %s", order_id, url, extra={"order_id": order_id})
        return url

    def _store_certificate(self, order_id: str, chain: str) -> None:
        leaf = x509.load_pem_x509_certificate(chain.encode())
        with self.sessions.begin() as s:
            order = s.get(Order, order_id, with_for_update=True)
            if order is None or order.status != Status.PROCESSING:
                return
            s.add(Certificate(order_id=order.id, serial=format(leaf.serial_number, "x"), chain_pem=chain,
                              not_after=leaf.not_valid_after_utc))
            order.status = Status.VALID
            order.upstream_status = Status.VALID
            order.updated = utcnow()
            took = (order.updated - order.created).total_seconds()
        metrics.TIME_TO_CERTIFICATE.observe(max(0.0, took))
        log.info("order %s: certificate issued, serial %x", order_id, leaf.serial_number,
                 extra={"order_id": order_id})

    def _record_failure(self, order_id: str, problem: problems.AcmeProblem) -> None:
        """A processing order becomes invalid; a ready one keeps the error for its finalize."""
        with self.sessions.begin() as s:
            order = s.get(Order, order_id, with_for_update=True)
            if order is None:
                return
            order.upstream_error = problem.to_json()
            order.upstream_status = Status.INVALID
            if order.status == Status.PROCESSING:
                order.fail(problem.to_json())
        log.warning("order %s: leg 2 failed: %s", order_id, problem.detail, extra={"order_id": order_id})

    def give_up(self, order_id: str, reason: str) -> None:
        self._record_failure(order_id, problems.ServerInternal("certificate issuance failed"))


# -- leg 2 steps, shared with jackdaw.relaycert ---------------------------------------------


def post_as_get(client: acme_client.ClientV2, url: str) -> requests.Response:
    return client.net.post(url, None, new_nonce_url=client.directory["newNonce"])


def fetch_order(client: acme_client.ClientV2, url: str) -> messages.Order:
    body: messages.Order = messages.Order.from_json(post_as_get(client, url).json())
    return body


def new_order(client: acme_client.ClientV2, names: list[str]) -> str:
    """Create an upstream order for ``names``; returns its URL."""
    request = messages.NewOrder(
        identifiers=[messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in names]
    )
    resp = client.net.post(client.directory["newOrder"], request, new_nonce_url=client.directory["newNonce"])
    return str(resp.headers["Location"])


def finalize(client: acme_client.ClientV2, body: messages.Order, csr: x509.CertificateSigningRequest) -> None:
    client.net.post(body.finalize, messages.CertificateRequest(csr=csr), new_nonce_url=client.directory["newNonce"])


def authorize(ctx: JobContext, client: acme_client.ClientV2, body: messages.Order, dns01: DNS01Solver) -> None:
    """Satisfy every pending authorization of ``body`` with DNS-01.

    The TXT values are recorded under ``ctx.subject_id``: the caller removes them with
    ``dns01.cleanup(ctx.subject_id)`` whatever happens.
    """
    account_key = client.net.key
    assert account_key is not None
    pending: list[tuple[str, messages.ChallengeBody]] = []
    wanted: list[tuple[str, str]] = []
    for authz_url in body.authorizations:
        authz = messages.Authorization.from_json(post_as_get(client, authz_url).json())
        if authz.status == messages.STATUS_VALID:
            continue
        if authz.status != messages.STATUS_PENDING:
            raise UpstreamFailed(problems.Unauthorized(
                f"upstream authorization for {authz.identifier.value} is {authz.status}"))
        challb = next((c for c in authz.challenges if isinstance(c.chall, challenges.DNS01)), None)
        if challb is None:
            raise UpstreamFailed(problems.ServerInternal(
                f"upstream CA offers no dns-01 challenge for {authz.identifier.value}"))
        chall: challenges.DNS01 = challb.chall
        wanted.append((chall.validation_domain_name(authz.identifier.value), chall.validation(account_key)))
        pending.append((authz_url, challb))
    if not pending:
        return
    records = dns01.present(ctx.subject_id, wanted)
    ctx.heartbeat()
    dns01.wait(records)
    for _, challb in pending:
        client.answer_challenge(challb, challb.chall.response(account_key))
    deadline = time.monotonic() + AUTHZ_DEADLINE
    for authz_url, _ in pending:
        delay = POLL_INTERVAL
        while True:
            resp = post_as_get(client, authz_url)
            authz = messages.Authorization.from_json(resp.json())
            if authz.status == messages.STATUS_VALID:
                break
            if authz.status != messages.STATUS_PENDING:
                raise UpstreamFailed(authz_problem(authz))
            if time.monotonic() > deadline:
                raise UpstreamFailed(problems.ServerInternal(
                    f"upstream authorization for {authz.identifier.value} still pending after "
                    f"{AUTHZ_DEADLINE:.0f} s"))
            ctx.heartbeat()
            time.sleep(retry_delay(resp, delay))
            delay = min(delay * 2, POLL_MAX)


def poll_order(ctx: JobContext, client: acme_client.ClientV2, url: str) -> messages.Order:
    """Poll a finalized upstream order until it is valid with a certificate URL."""
    deadline = time.monotonic() + FINALIZE_DEADLINE
    delay = POLL_INTERVAL
    while True:
        resp = post_as_get(client, url)
        body: messages.Order = messages.Order.from_json(resp.json())
        if body.status == messages.STATUS_VALID and body.certificate:
            return body
        if body.status == messages.STATUS_INVALID:
            raise UpstreamFailed(order_problem(body, "invalidated the order"))
        if body.status not in (messages.STATUS_PROCESSING, messages.STATUS_READY):
            raise UpstreamFailed(problems.ServerInternal(f"upstream order is {body.status} after finalize"))
        if time.monotonic() > deadline:
            raise UpstreamFailed(problems.ServerInternal("upstream CA did not issue in time"))
        ctx.heartbeat()
        time.sleep(retry_delay(resp, delay))
        delay = min(delay * 2, POLL_MAX)


def retry_delay(resp: requests.Response, default: float) -> float:
    # Honour the CA's Retry-After, but never sleep past our own short cap.
    raw = resp.headers.get("Retry-After", "")
    return min(float(raw), POLL_MAX) if raw.isdigit() else default


def order_problem(body: messages.Order, what: str) -> problems.AcmeProblem:
    if body.error is not None:
        return problem_from_upstream(body.error, what)
    return problems.ServerInternal(f"upstream CA {what}")


def authz_problem(authz: messages.Authorization) -> problems.AcmeProblem:
    for challb in authz.challenges:
        if challb.error is not None:
            return problem_from_upstream(challb.error, f"rejected DNS-01 for {authz.identifier.value}")
    return problems.Unauthorized(f"upstream authorization for {authz.identifier.value} is {authz.status}")
