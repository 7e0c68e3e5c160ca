"""The `order` job: leg 2 for one client order, through the one sequence (upstream.sequence).

It starts when every name is validated (the client is still on its way to finalize): the
upstream order is authorized meanwhile, and finalized with the client's own CSR once the
client has finalized (its finalize re-queues this job). Only this job touches its upstream
order, so an upstream order is never polled from two threads; its writes are fenced
(jobs.fenced), so a run that lost its claim cannot fail or overwrite what the next run did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import metrics, states
from jackdaw.jobs import JobContext, JobKind, JobQueue, fenced
from jackdaw.logs import log_context
from jackdaw.models import Certificate, Order
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.upstream import renewal as upstream_renewal
from jackdaw.upstream.sequence import AwaitingCSR, Failed, Issued, Leg2

log = logging.getLogger(__name__)


def renewal_id(leaf: x509.Certificate) -> str | None:
    """The certificate's ARI id (RFC 9773 §4.1), None if it has no authority key identifier."""
    try:
        return upstream_renewal.cert_id(leaf)
    except x509.ExtensionNotFound:
        return None


@dataclass
class OrderJob:
    sessions: sessionmaker[Session]
    leg2: Leg2

    @property
    def queue(self) -> JobQueue:
        return self.leg2.dns01.queue

    def __call__(self, ctx: JobContext) -> None:
        with log_context(order_id=ctx.subject_id):
            self._run(ctx)

    def _run(self, ctx: JobContext) -> None:
        with self.sessions() as s:
            order = s.get(Order, ctx.subject_id)
            if order is None or order.status not in (Status.READY, Status.PROCESSING):
                return
            names, csr_der, profile, replaces = list(order.identifiers), order.csr, order.profile, order.replaces
            account_id, client = order.account_id, order.requester
            progress = self.leg2.load(s, ctx.kind, ctx.subject_id)
        # every line of this run (leg 2's failures too) names the account and the client's address
        with log_context(account_id=account_id, client=client):
            outcome = self.leg2.advance(ctx, names, lambda: x509.load_der_x509_csr(csr_der) if csr_der else None,
                                        row=progress, profile=profile, replaces=replaces)
            if isinstance(outcome, Issued):
                self._store_certificate(ctx, outcome.chain)
            elif isinstance(outcome, Failed):
                self._record_failure(ctx, outcome.error)
            else:
                assert isinstance(outcome, AwaitingCSR)  # the client's finalize queues this job again

    def _store_certificate(self, ctx: JobContext, chain: str) -> None:
        order_id = ctx.subject_id
        leaf = x509.load_pem_x509_certificate(chain.encode())
        with fenced(self.sessions, ctx) as s:
            order = s.get(Order, order_id, with_for_update=True)
            if order is None or not states.issued(order):
                return
            cert = Certificate(order_id=order.id, serial=format(leaf.serial_number, "x"), chain_pem=chain,
                               not_after=leaf.not_valid_after_utc, ari_id=renewal_id(leaf))
            s.add(cert)
            s.flush()
            took = (order.updated - order.created).total_seconds()
            account_id, client, names = order.account_id, order.requester, ", ".join(order.identifiers)
            if cert.ari_id is not None:  # the upstream's renewal window, fetched ahead of the client asking
                self.queue.enqueue(s, JobKind.RENEWAL_INFO, cert.id)
            self.leg2.finish(s, JobKind.ORDER, order_id)
        metrics.TIME_TO_CERTIFICATE.observe(max(0.0, took))
        log.info("order %s: certificate issued for %s, serial %x, account %s, client %s", order_id, names,
                 leaf.serial_number, account_id, client or "-",
                 extra={"order_id": order_id, "account_id": account_id, "client": client})

    def _record_failure(self, ctx: JobContext, error: dict[str, Any]) -> None:
        """A processing order becomes invalid; a ready one keeps the error for its finalize."""
        with fenced(self.sessions, ctx) as s:
            order = s.get(Order, ctx.subject_id, with_for_update=True)
            if order is not None:
                states.upstream_failed(order, error)

    def give_up(self, ctx: JobContext, reason: str) -> None:
        problem = problems.ServerInternal("certificate issuance failed")
        self.leg2.abandon(ctx, problem)
        self._record_failure(ctx, problem.to_json())
