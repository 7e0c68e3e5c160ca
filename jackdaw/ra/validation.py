"""The `validate` job: run the relay's HTTP-01 check, then move challenge, authz and order.

One attempt per run; a failed attempt with CHALLENGE_RETRIES left is tried again after
CHALLENGE_RETRY_DELAY by rescheduling, not by sleeping in the job thread."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import josepy as jose
from acme import challenges
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import metrics, states
from jackdaw.jobs import JobContext, JobQueue, Wait, fenced
from jackdaw.logs import log_context
from jackdaw.models import Challenge
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.protocol.jws import load_jwk
from jackdaw.ra import bindings
from jackdaw.ra.policy import check_requester, redirect_refusal
from jackdaw.va.http01 import HTTP01Validator

log = logging.getLogger(__name__)


@dataclass
class ValidationJob:
    sessions: sessionmaker[Session]
    queue: JobQueue
    validator: HTTP01Validator
    #: ALLOWED_DOMAINS: a redirect is followed only to a name the requester could order
    allowed_domains: Sequence[str] = ()

    def __call__(self, ctx: JobContext) -> None:
        with self.sessions() as s:
            chall = s.get(Challenge, ctx.subject_id)
            if chall is None or chall.status != Status.PROCESSING:
                return
            name = chall.authz.identifier
            token = chall.token
            order = chall.authz.order
            account_key = load_jwk(order.account.jwk)
            binding = bindings.binding_of(s, order.account)
            requester = order.requester
            ids = {"order_id": order.id, "account_id": order.account_id, "client": requester}
        # Network I/O happens outside any transaction (SQLite holds its write lock per transaction).
        http01 = challenges.HTTP01(token=jose.b64.b64decode(token))
        expected = http01.key_authorization(account_key)
        with log_context(**ids):  # the validator's own lines name the order, account and client too
            result = self.validator.validate(name, token, expected,
                                             partial(redirect_refusal, self.allowed_domains, binding))
        if result.problem is None:
            resolved = [a for r in result.records if r.get("hostname") == name for a in r.get("addressesResolved", [])]
            try:
                check_requester(binding, requester, resolved, name)
            except problems.AcmeProblem as refused:
                result.problem = refused
        with fenced(self.sessions, ctx) as s:
            chall = s.get(Challenge, ctx.subject_id, with_for_update=True)
            if chall is None or chall.status != Status.PROCESSING:
                return
            chall.tries += 1
            chall.validation_records = result.records
            retry = result.problem is not None and chall.tries < self.validator.retries
            if retry:
                tries = chall.tries
            else:
                self._decide(s, chall, name, result.problem)
        if retry:
            assert result.problem is not None
            raise Wait(f"HTTP-01 attempt {tries} failed: {result.problem.detail}", self.validator.retry_delay)
        # counted once the outcome is stored (a challenge answered meanwhile returned above)
        metrics.VALIDATIONS.labels(outcome="valid" if result.problem is None else result.problem.code).inc()

    def _decide(self, s: Session, chall: Challenge, name: str, problem: problems.AcmeProblem | None) -> None:
        order = chall.authz.order
        extra = {"order_id": order.id, "account_id": order.account_id, "client": order.requester}
        who = f"account {order.account_id}, client {order.requester or '-'}"
        if problem is None:
            # a ready order waits for its client's finalize: leg 2 starts there, so an order
            # never finalized spends nothing upstream
            states.challenge_passed(chall)
            log.info("validated %s for order %s (%s)", name, order.id, who, extra=extra)
        else:
            states.challenge_failed(chall, problem)
            log.info("validation of %s failed for order %s (%s): %s", name, order.id, who, problem.detail,
                     extra=extra)

    def give_up(self, ctx: JobContext, reason: str) -> None:
        with fenced(self.sessions, ctx) as s:
            chall = s.get(Challenge, ctx.subject_id)
            if chall is None or chall.status != Status.PROCESSING:
                return
            problem = problems.ServerInternal("validation could not be completed", identifier=chall.authz.identifier)
            states.challenge_failed(chall, problem)
        metrics.VALIDATIONS.labels(outcome=problem.code).inc()
