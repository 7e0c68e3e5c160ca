"""Leg 2, the one sequence: new order → DNS-01 authorizations → finalize → download.

Used by client orders (jackdaw.upstream.issuer), the relay's own certificate
(jackdaw.relaycert) and anything later. Its progress is an ``upstream_orders`` row per owner
(a job kind and subject). ``advance`` runs the steps that can run now, each bounded and
idempotent, and raises ``jobs.Wait`` when the next one has to wait (DNS propagation, the CA's
validation or issuance), so no thread ever sleeps on the CA:

    new ─▶ authorize ─▶ propagate ─▶ answer ─▶ validate ─▶ ready ─▶ issue ─▶ (Issued)
                │                                            │
                └──────────── already valid ─────────────────┘          any ─▶ failed

Every step re-reads the upstream state it acts on, so a run that resumes another's work (a
crash, a lapsed lease) does not repeat a side effect: a challenge already answered is not
answered again, an order already finalized is not finalized again. ``ctx.guard()`` comes before
every request that changes something upstream, and every write of a run is ``jobs.fenced``: a run
that lost its claim while it waited on the CA writes nothing over the run that took over.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import josepy as jose
import requests
from acme import challenges, messages
from acme import client as acme_client
from cryptography import x509
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.budget import Budget
from jackdaw.db import rowcount
from jackdaw.dns import persist
from jackdaw.dns.resolver import DNSLookupError, make_resolver
from jackdaw.jobs import JobContext, JobKind, JobQueue, LostClaim, RetryLater, Wait, backoff, fenced
from jackdaw.models import UpstreamOrder, utcnow
from jackdaw.protocol import problems
from jackdaw.upstream.account import UpstreamAccount
from jackdaw.upstream.dns01 import DNS01
from jackdaw.upstream.dns01 import release as release_values
from jackdaw.upstream.errors import (
    UpstreamFailed,
    Verdict,
    authz_problem,
    error_code,
    order_problem,
    problem_from_upstream,
    triage,
    unreachable_problem,
)

log = logging.getLogger(__name__)

#: first poll of the CA after answering or finalizing (the gap then doubles), and the longest gap:
#: a CA that takes milliseconds costs milliseconds, one that takes seconds about as many polls
POLL_FIRST = 0.05
POLL_MAX = 1.0
AUTHZ_DEADLINE = timedelta(seconds=300)
ISSUE_DEADLINE = timedelta(seconds=300)
#: steps one run may take without waiting (a guard against a loop between stages)
MAX_STEPS = 12
#: runs in a row that could not reach the CA before an order with nothing upstream yet fails
#: (back-offs of 2 and 4 s between them): a CA blip is ridden out, an outage is told at once
UNREACHABLE_ATTEMPTS = 3


class Stage(StrEnum):
    NEW = "new"
    AUTHORIZE = "authorize"
    PROPAGATE = "propagate"
    ANSWER = "answer"
    VALIDATE = "validate"
    READY = "ready"
    ISSUE = "issue"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Issued:
    chain: str


@dataclass(frozen=True)
class Failed:
    problem: problems.AcmeProblem
    #: the problem as stored, with ``retryAfter`` when the CA said when to come back
    error: dict[str, Any]


@dataclass(frozen=True)
class AwaitingCSR:
    """Authorized upstream; the owner has no CSR yet (a client that has not finalized)."""


Outcome = Issued | Failed | AwaitingCSR
CSRSource = Callable[[], x509.CertificateSigningRequest | None]


def _from_the_ca(exc: requests.ConnectionError, upstream: UpstreamAccount) -> bool:
    """Whether the request that got no answer went to LE_DIRECTORY's host. An upstream
    order stored under an earlier LE_DIRECTORY (staging before production, a restored backup)
    failing says nothing about today's CA: it must not refuse every newOrder meanwhile."""
    url = getattr(exc.request, "url", None)
    return not url or urlsplit(str(url)).netloc == urlsplit(upstream.directory_url).netloc


@dataclass
class Leg2:
    sessions: sessionmaker[Session]
    upstream: UpstreamAccount
    dns01: DNS01
    budget: Budget | None = None

    # -- the owner's calls -------------------------------------------------------------------

    def advance(self, ctx: JobContext, names: list[str], csr: CSRSource, *, row: UpstreamOrder | None = None,
                profile: str | None = None, replaces: str | None = None) -> Outcome:
        """Run what can run now for the owner ``(ctx.kind, ctx.subject_id)``; raises Wait or
        RetryLater, or returns the outcome. The owner stores an Issued chain and calls
        ``finish`` in the same transaction. ``row``: the owner's progress if it read it already
        (``load``, in the owner's own transaction)."""
        row = row or self._row(ctx.kind, ctx.subject_id, names, profile, replaces)
        try:
            for _ in range(MAX_STEPS):
                outcome = self._step(ctx, row, csr)
                if outcome is not None:
                    return outcome
            raise Wait("leg 2: step budget of this run spent", 0)
        except (Wait, RetryLater, LostClaim):
            raise
        except Exception as exc:
            kind = triage(exc)
            if kind is Verdict.ACCOUNT_GONE:
                self.upstream.forget()
                self._save(ctx, row, stage=Stage.NEW, url=None, challenges=[])  # that order was the old account's
                raise RetryLater("upstream account unknown; registering again", 0) from exc
            if kind is Verdict.TRANSIENT:
                if isinstance(exc, requests.ConnectionError) and _from_the_ca(exc, self.upstream):
                    # not a slow answer: no answer at all, from the CA itself
                    reference = self.upstream.note_unreachable(exc)
                    # nothing upstream yet, and the CA keeps not answering: the client hears it now,
                    # not after its own patience ran out
                    if row.stage == Stage.NEW and ctx.attempts >= UNREACHABLE_ATTEMPTS:
                        return self._fail(ctx, row, unreachable_problem(reference))
                raise RetryLater(f"{type(exc).__name__}: {exc}", backoff(ctx.attempts)) from exc
            if isinstance(exc, UpstreamFailed):
                return self._fail(ctx, row, exc.problem)
            assert isinstance(exc, messages.Error)  # the only other refusal
            return self._refused(ctx, row, exc)

    def abandon(self, ctx: JobContext, problem: problems.AcmeProblem) -> None:
        """The owner's job (``ctx``) gave up: record why and take its DNS values back."""
        with self.sessions() as s:
            row = _find(s, ctx.kind, ctx.subject_id)
        if row is not None and row.stage not in (Stage.DONE, Stage.FAILED):
            self._fail(ctx, row, problem)

    def finish(self, s: Session, owner_kind: str, owner_id: str) -> None:
        """Inside the owner's transaction that stored the certificate: the budget learns the
        set was issued (a later order for it is a renewal)."""
        row = _find(s, owner_kind, owner_id)
        if row is not None:
            if self.budget is not None and row.stage != Stage.DONE:
                self.budget.issued(s, list(row.names), ari=row.replaces is not None)
            row.stage, row.status, row.stage_since = Stage.DONE, "valid", utcnow()

    def reset(self, s: Session, owner_kind: str, owner_id: str) -> None:
        """Forget the owner's upstream order: the next ``advance`` starts a new one."""
        reset_upstream_order(s, self.dns01.queue, owner_kind, owner_id)

    def state(self, owner_kind: str, owner_id: str) -> UpstreamOrder | None:
        with self.sessions() as s:
            return _find(s, owner_kind, owner_id)

    @staticmethod
    def load(s: Session, owner_kind: str, owner_id: str) -> UpstreamOrder | None:
        """The owner's progress, read in the owner's session."""
        return _find(s, owner_kind, owner_id)

    # -- steps -------------------------------------------------------------------------------

    def _step(self, ctx: JobContext, row: UpstreamOrder, csr: CSRSource) -> Outcome | None:
        if row.stage == Stage.DONE:
            problem = problems.ServerInternal("upstream order already used")
            return Failed(problem, problem.to_json())
        if row.stage == Stage.FAILED:
            return Failed(problems.AcmeProblem.from_json(row.error or {}), row.error or {})
        client = self.upstream.client()
        if row.stage == Stage.NEW:
            ctx.guard()
            url = new_order(client, row.names, row.profile, row.replaces)
            log.info("%s %s: upstream order %s", row.owner_kind, row.owner_id, url, extra=_extra(row))
            self._save(ctx, row, stage=Stage.AUTHORIZE, url=url)
            return None
        assert row.url is not None
        if row.stage == Stage.AUTHORIZE:
            self._authorize(ctx, client, row)
        elif row.stage == Stage.PROPAGATE:
            progress = self.dns01.progress(row.owner_id, str(row.id))
            if progress.error is not None:
                raise UpstreamFailed(problems.DNS(f"DNS-01 record {progress.error}"))
            if not progress.done:
                raise Wait("DNS-01 values not yet served by every name server", progress.wait)
            self._save(ctx, row, stage=Stage.ANSWER)
        elif row.stage == Stage.ANSWER:
            for chall in row.challenges:
                ctx.guard()
                answer(client, chall["url"])
            self._save(ctx, row, stage=Stage.VALIDATE)
            raise Wait("upstream CA validating DNS-01", POLL_FIRST)
        elif row.stage == Stage.VALIDATE:
            self._validate(ctx, client, row)
        elif row.stage == Stage.READY:
            return self._finalize(ctx, client, row, csr)
        elif row.stage == Stage.ISSUE:
            return self._issue(ctx, client, row)
        return None

    def _authorize(self, ctx: JobContext, client: acme_client.ClientV2, row: UpstreamOrder) -> None:
        body = fetch_order(client, row.url or "")
        if body.status == messages.STATUS_INVALID:
            raise UpstreamFailed(order_problem(body, "invalidated the order"))
        if body.status != messages.STATUS_PENDING:  # ready, or already finalized by an earlier run
            self._save(ctx, row, status=body.status.name,
                       stage=Stage.READY if body.status == messages.STATUS_READY else Stage.ISSUE)
            return
        account_key = client.net.key
        assert account_key is not None
        pending: list[dict[str, str]] = []
        wanted: list[tuple[str, str]] = []
        for authz_url in body.authorizations:
            authz = messages.Authorization.from_json(post_as_get(client, authz_url).json())
            if authz.status == messages.STATUS_VALID:
                continue
            if authz.status != messages.STATUS_PENDING:
                raise UpstreamFailed(authz_problem(authz))
            persist = self._persistent(client, authz)
            if persist is not None:  # a published dns-persist-01 record: nothing to write
                pending.append({"authz": authz_url, "url": persist})
                continue
            challb = next((c for c in authz.challenges if isinstance(c.chall, challenges.DNS01)), None)
            if challb is None:
                raise UpstreamFailed(problems.ServerInternal(
                    f"upstream CA offers no dns-01 challenge for {authz.identifier.value}"))
            chall: challenges.DNS01 = challb.chall
            wanted.append((chall.validation_domain_name(authz.identifier.value), chall.validation(account_key)))
            pending.append({"authz": authz_url, "url": challb.uri})
        if not pending:
            self._save(ctx, row, status=body.status.name, stage=Stage.READY)
            return
        if not wanted:  # every name is proven by its persistent record: answer right away
            self._save(ctx, row, status=body.status.name, stage=Stage.ANSWER, challenges=pending)
            return
        ctx.guard()
        self.dns01.request(row.owner_kind, row.owner_id, str(row.id), wanted, ctx=ctx)
        self._save(ctx, row, status=body.status.name, stage=Stage.PROPAGATE, challenges=pending)
        raise Wait("DNS-01 values asked for", self.dns01.settings.dns_propagation_interval)

    def _persistent(self, client: acme_client.ClientV2, authz: messages.Authorization) -> str | None:
        """The URL of the authorization's dns-persist-01 challenge when UPSTREAM_CHALLENGE allows
        it and the name's _validation-persist record authorizes this account; None to go on with
        dns-01 (``auto``). With ``dns-persist-01`` alone, a missing record fails the order."""
        settings = self.dns01.settings
        if settings.upstream_challenge == "dns-01":
            return None
        name = authz.identifier.value
        wildcard = bool(authz.wildcard)
        offered = next((c for c in authz.challenges
                        if isinstance(c.chall, challenges.UnrecognizedChallenge)
                        and c.chall.jobj.get("type") == persist.CHALLENGE), None)
        account_uri = str(client.net.account.uri) if client.net.account is not None else ""
        if offered is not None:
            jobj = offered.chall.jobj
            issuers = [str(i) for i in jobj.get("issuer-domain-names") or []]
            account_uri = str(jobj.get("accounturi") or account_uri)
            try:
                found = persist.served(name, make_resolver(settings.dns_resolver), port=settings.dns_authoritative_port,
                                       issuers=issuers, account_uri=account_uri, wildcard=wildcard)
            except DNSLookupError as exc:
                log.info("%s: no dns-persist-01 record looked up: %s", name, exc)
                found = {}
            if found and all(found.values()):
                log.info("%s: proven by its dns-persist-01 record (no DNS write)", name)
                return str(offered.uri)
        if settings.upstream_challenge == "auto":
            return None
        issuer = (self.upstream.meta() or self.upstream.refresh_meta())
        hint = persist.record_value((issuer.caa_identities or ("<the CA's issuer domain>",))[0] if issuer
                                    else "<the CA's issuer domain>", account_uri, wildcard)
        raise UpstreamFailed(problems.DNS(
            f"{name}: UPSTREAM_CHALLENGE=dns-persist-01 and "
            + ("the upstream CA offers no dns-persist-01 challenge" if offered is None else
               f"not every authoritative server serves {persist.record_name(name)} TXT \"{hint}\" "
               "(jackdaw dns-persist show NAME)")))

    def _validate(self, ctx: JobContext, client: acme_client.ClientV2, row: UpstreamOrder) -> None:
        waiting: requests.Response | None = None
        for chall in row.challenges:
            resp = post_as_get(client, chall["authz"])
            authz = messages.Authorization.from_json(resp.json())
            if authz.status == messages.STATUS_PENDING:
                waiting = resp
            elif authz.status != messages.STATUS_VALID:
                if self.budget is not None:
                    with fenced(self.sessions, ctx) as s:
                        self.budget.failed_upstream(s, [authz.identifier.value])
                raise UpstreamFailed(authz_problem(authz))
        if waiting is not None:
            if utcnow() - row.stage_since > AUTHZ_DEADLINE:
                raise UpstreamFailed(problems.ServerInternal(
                    f"upstream authorization still pending after {AUTHZ_DEADLINE.total_seconds():.0f} s"))
            raise Wait("upstream CA validating DNS-01", poll_delay(waiting, row))
        self._save(ctx, row, release=True, stage=Stage.READY, challenges=[])

    def _finalize(self, ctx: JobContext, client: acme_client.ClientV2, row: UpstreamOrder,
                  csr: CSRSource) -> Outcome | None:
        request = csr()
        if request is None:
            return AwaitingCSR()
        body = fetch_order(client, row.url or "")
        if body.status == messages.STATUS_READY:
            ctx.guard()
            done = finalize(client, body, request)
            if done.status == messages.STATUS_VALID and done.certificate:  # issued at once (Boulder may)
                return Issued(post_as_get(client, done.certificate).text)
            self._save(ctx, row, status=messages.STATUS_PROCESSING.name, stage=Stage.ISSUE)
            raise Wait("upstream CA issuing", POLL_FIRST)
        if body.status == messages.STATUS_PENDING:  # its authorizations went away: authorize again
            self._save(ctx, row, status=body.status.name, stage=Stage.AUTHORIZE)
        elif body.status == messages.STATUS_INVALID:
            raise UpstreamFailed(order_problem(body, "invalidated the order"))
        else:  # processing or valid: finalized by an earlier run
            self._save(ctx, row, status=body.status.name, stage=Stage.ISSUE)
        return None

    def _issue(self, ctx: JobContext, client: acme_client.ClientV2, row: UpstreamOrder) -> Outcome | None:
        resp = post_as_get(client, row.url or "")
        body = messages.Order.from_json(resp.json())
        if body.status == messages.STATUS_VALID and body.certificate:
            return Issued(post_as_get(client, body.certificate).text)
        if body.status == messages.STATUS_INVALID:
            raise UpstreamFailed(order_problem(body, "invalidated the order"))
        if body.status == messages.STATUS_READY:  # the finalize never arrived: send it again
            self._save(ctx, row, status=body.status.name, stage=Stage.READY)
            return None
        if body.status != messages.STATUS_PROCESSING:
            raise UpstreamFailed(problems.ServerInternal(f"upstream order is {body.status.name} after finalize"))
        if utcnow() - row.stage_since > ISSUE_DEADLINE:
            raise UpstreamFailed(problems.ServerInternal("upstream CA did not issue in time"))
        raise Wait("upstream CA issuing", poll_delay(resp, row))

    # -- storage -----------------------------------------------------------------------------

    def _row(self, owner_kind: str, owner_id: str, names: list[str], profile: str | None,
             replaces: str | None) -> UpstreamOrder:
        with self.sessions.begin() as s:
            row = _find(s, owner_kind, owner_id)
            if row is None:
                row = UpstreamOrder(owner_kind=owner_kind, owner_id=owner_id, names=list(names), profile=profile,
                                    replaces=replaces, stage=Stage.NEW, challenges=[], stage_since=utcnow())
                s.add(row)
                s.flush()
            return row

    def _save(self, ctx: JobContext, row: UpstreamOrder, *, release: bool = False, **values: object) -> None:
        """Store the run's progress (and, with ``release``, take back its DNS values), fenced:
        nothing is stored by a run that lost its claim."""
        if "stage" in values and values["stage"] != row.stage:
            values["stage_since"] = utcnow()
            log.debug("%s %s: leg 2 %s -> %s", row.owner_kind, row.owner_id, row.stage, values["stage"],
                      extra=_extra(row))
        with fenced(self.sessions, ctx) as s:
            if release:
                release_values(s, self.dns01.queue, row.owner_id, str(row.id))
            if not rowcount(s.execute(update(UpstreamOrder).where(UpstreamOrder.id == row.id).values(
                    updated=utcnow(), **values).execution_options(synchronize_session=False))):
                raise UpstreamFailed(problems.ServerInternal("upstream order was reset meanwhile"))
        for key, value in values.items():
            setattr(row, key, value)

    def _refused(self, ctx: JobContext, row: UpstreamOrder, error: messages.Error) -> Failed:
        """The CA refused the order. A pause or a rate limit is recorded in the budget, so the
        next orders for these names are refused here, and told to the client in our words."""
        retry, paused = None, []
        if self.budget is not None:
            detail = str(error.detail or "")
            with fenced(self.sessions, ctx) as s:
                paused = self.budget.paused(s, detail)
                if not paused and error.code == "rateLimited":
                    retry = retry_time(detail)
                    self.budget.rate_limited(s, row.names, detail, retry)
        note = f"; paused for {', '.join(paused)} until the relay's operator unpauses it" if paused else ""
        note += self._withdrawn_note(row, error)
        note += f"; retry after {retry:%Y-%m-%d %H:%M:%S} UTC" if retry else ""
        return self._fail(ctx, row, problem_from_upstream(error, "refused the order", note), retry)

    def _withdrawn_note(self, row: UpstreamOrder, error: messages.Error) -> str:
        """Why the relay took an order for a profile the CA refuses: it stopped listing it."""
        if error_code(error) != "invalidProfile" or row.profile is None:
            return ""
        meta = self.upstream.meta()
        withdrawn = meta.withdrawn.get(row.profile) if meta is not None else None
        if withdrawn is None:
            return ""
        return (f"; the upstream CA stopped listing profile {row.profile} at {withdrawn[0]:%Y-%m-%d %H:%M:%S} UTC and "
                f"the relay offers it until {withdrawn[1]:%Y-%m-%d %H:%M:%S} UTC in case it comes back")

    def _fail(self, ctx: JobContext, row: UpstreamOrder, problem: problems.AcmeProblem,
              retry: datetime | None = None) -> Failed:
        doc = problem.to_json()
        if retry is not None:  # carried to the client as Retry-After on its order
            doc["retryAfter"] = retry.strftime("%Y-%m-%dT%H:%M:%SZ")
        self._save(ctx, row, release=True, stage=Stage.FAILED, error=doc, challenges=[])
        log.warning("%s %s: leg 2 failed: %s", row.owner_kind, row.owner_id, problem.detail, extra=_extra(row))
        return Failed(problem, doc)


def reset_upstream_order(s: Session, queue: JobQueue, owner_kind: str, owner_id: str) -> None:
    """Inside the caller's transaction: drop the owner's upstream order and take back its DNS
    values; the owner's next run starts a new upstream order."""
    row = _find(s, owner_kind, owner_id)
    if row is not None:
        release_values(s, queue, owner_id, str(row.id))
        s.execute(delete(UpstreamOrder).where(UpstreamOrder.id == row.id))


def failed_upstream(s: Session, order_id: str) -> bool:
    """Whether a client order's leg 2 ended in failure (its ready order can be retried)."""
    row = _find(s, JobKind.ORDER, order_id)
    return row is not None and row.stage == Stage.FAILED


def _find(s: Session, owner_kind: str, owner_id: str) -> UpstreamOrder | None:
    return s.scalars(select(UpstreamOrder).where(UpstreamOrder.owner_kind == owner_kind,
                                                 UpstreamOrder.owner_id == owner_id)).first()


def _extra(row: UpstreamOrder) -> dict[str, str]:
    return {"order_id": row.owner_id}


# -- the CA's protocol, through acme's messages ------------------------------------------------


def post_as_get(client: acme_client.ClientV2, url: str) -> requests.Response:
    return client.net.post(url, None, new_nonce_url=client.directory["newNonce"])


def fetch_order(client: acme_client.ClientV2, url: str) -> messages.Order:
    body: messages.Order = messages.Order.from_json(post_as_get(client, url).json())
    return body


class NewOrder(messages.NewOrder):
    """acme's NewOrder with RFC 9773's ``replaces`` (acme 5.9 has ``profile`` but not this)."""

    replaces: str | None = jose.field("replaces", omitempty=True)


def new_order(client: acme_client.ClientV2, names: list[str], profile: str | None = None,
              replaces: str | None = None) -> str:
    """Create an upstream order for ``names``; returns its URL."""
    request = NewOrder(
        identifiers=[messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in names],
        **({"profile": profile} if profile else {}),
        **({"replaces": replaces} if replaces else {}),
    )
    resp = client.net.post(client.directory["newOrder"], request, new_nonce_url=client.directory["newNonce"])
    return str(resp.headers["Location"])


def answer(client: acme_client.ClientV2, url: str) -> None:
    """Tell the CA to validate a challenge, unless an earlier run already did."""
    try:
        client.net.post(url, challenges.DNS01Response(), new_nonce_url=client.directory["newNonce"])
    except messages.Error:
        current = messages.ChallengeBody.from_json(post_as_get(client, url).json())
        if current.status not in (messages.STATUS_PROCESSING, messages.STATUS_VALID):
            raise


def finalize(client: acme_client.ClientV2, body: messages.Order,
             csr: x509.CertificateSigningRequest) -> messages.Order:
    resp = client.net.post(body.finalize, messages.CertificateRequest(csr=csr),
                           new_nonce_url=client.directory["newNonce"])
    return messages.Order.from_json(resp.json())


_RETRY_AT = re.compile(r"retry after (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)", re.IGNORECASE)
#: when a rateLimited refusal names no time
RATE_LIMIT_DEFAULT = timedelta(hours=1)


def retry_time(detail: str) -> datetime:
    """When the CA's rateLimited refusal lifts: Boulder writes "retry after 2026-12-02 15:04:05
    UTC" into its detail (and a Retry-After header, which the acme library does not keep)."""
    match = _RETRY_AT.search(detail)
    if match:
        try:
            return datetime.fromisoformat(match.group(1).replace(" ", "T")).replace(tzinfo=UTC)
        except ValueError:
            pass
    return utcnow() + RATE_LIMIT_DEFAULT


def poll_delay(resp: requests.Response, row: UpstreamOrder) -> float:
    """The CA's Retry-After, capped at POLL_MAX; without one, as long as the stage has lasted
    so far (the gaps double), from POLL_FIRST up to POLL_MAX."""
    raw = resp.headers.get("Retry-After", "")
    if raw.isdigit():
        return min(float(raw), POLL_MAX)
    waited = (utcnow() - row.stage_since).total_seconds()
    return min(max(POLL_FIRST, waited), POLL_MAX)
