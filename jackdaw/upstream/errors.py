"""What the upstream CA's answers mean for leg 2: refused (final), transient (retry), or
"the CA forgot our account". Shared by the leg-2 sequence and the revocation job."""

from __future__ import annotations

import logging
from enum import Enum

import requests
from acme import messages

from jackdaw import logs, metrics
from jackdaw.dns.base import DNSProviderError
from jackdaw.dns.resolver import DNSLookupError
from jackdaw.protocol import problems

log = logging.getLogger(__name__)

#: CA problem types worth another try: the CA's own trouble, not a verdict on the request
TRANSIENT_CODES = frozenset({"serverInternal", "badNonce"})
#: what a client is told of the CA's refusal, by problem type. The CA's own text can name the
#: relay's account (its URL or id, an unpause link carrying its token): it goes to the log,
#: under the reference the client's message carries.
UPSTREAM_MESSAGES = {
    "rateLimited": "a rate limit of the relay's account was reached",
    "caa": "a CAA record forbids the upstream CA to issue for a name",
    "rejectedIdentifier": "the upstream CA will not issue for a name",
    "unsupportedIdentifier": "the upstream CA does not issue for this kind of identifier",
    "alreadyReplaced": "the certificate named in 'replaces' already has a replacement",
    "invalidProfile": "the upstream CA does not offer the profile asked for",
    "badCSR": "the upstream CA refused the CSR",
    "badPublicKey": "the upstream CA refused the CSR's public key",
    "dns": "the upstream CA could not look up a name's DNS records",
    "unauthorized": "the upstream CA did not accept the relay's authority or proof for a name",
    "incorrectResponse": "the upstream CA found the relay's DNS proof wrong",
    "connection": "the upstream CA could not reach a name's DNS servers",
    "malformed": "the upstream CA found the relay's request malformed",
}

#: refusals whose own text the client is told as well: it is about the request (a profile the CA
#: does not know), never about the relay's account
QUOTED_CODES = frozenset({"invalidProfile"})
QUOTED_CHARS = 300

#: what a client is told while the relay cannot reach the CA at all (the transport error, which
#: names internal hosts and ports, is in the log under the reference)
UNREACHABLE = "the upstream CA cannot be reached; try again later"
UNREACHABLE_RETRY_AFTER = 60


def unreachable_problem(reference: str) -> problems.AcmeProblem:
    return problems.ServerInternal(f"{UNREACHABLE} (reference {reference}; the error is in the relay's log)",
                                   retry_after=UNREACHABLE_RETRY_AFTER)


class UpstreamFailed(Exception):
    """The upstream CA said no; carries the problem the client will see on its order."""

    def __init__(self, problem: problems.AcmeProblem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class Verdict(Enum):
    REFUSED = "refused"  # final: the CA said no
    TRANSIENT = "transient"  # try again after a back-off
    ACCOUNT_GONE = "account gone"  # register again, then start over


def verdict(exc: BaseException) -> Verdict | None:
    """How leg 2 treats ``exc``; None for exceptions that are bugs (left to the job engine)."""
    if isinstance(exc, messages.Error):
        if exc.code == "accountDoesNotExist":
            return Verdict.ACCOUNT_GONE
        return Verdict.TRANSIENT if exc.code in TRANSIENT_CODES else Verdict.REFUSED
    if isinstance(exc, UpstreamFailed):
        return Verdict.REFUSED
    if isinstance(exc, requests.RequestException | DNSProviderError | DNSLookupError):
        return Verdict.TRANSIENT
    return None


def triage(exc: Exception) -> Verdict:
    """Inside an ``except`` around leg 2: the verdict on ``exc``, counted in the metrics; an
    exception that is none of the CA's (a bug) is raised again."""
    kind = verdict(exc)
    if kind is None:
        raise exc
    count_upstream_error(exc)
    return kind


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


def error_code(error: messages.Error) -> str:
    """The problem type's code, also for types the acme library does not list (invalidProfile,
    alreadyReplaced)."""
    return error.code or str(error.typ or "").removeprefix(problems.ACME_ERROR_PREFIX) or "serverInternal"


def problem_from_upstream(error: messages.Error, context: str, note: str = "") -> problems.AcmeProblem:
    """The client's problem for the CA's refusal: its type, a stable message with a reference,
    and ``note`` (what the relay made of it); the CA's own text is logged under the reference."""
    code = error_code(error)
    cls = problems.PROBLEM_TYPES.get(code, problems.ServerInternal)
    reference = logs.reference()
    log.warning("upstream CA %s (reference %s): %s: %s", context, reference, code,
                error.detail or error.description or "")
    message = UPSTREAM_MESSAGES.get(code, f"the upstream CA answered {code}")
    said = str(error.detail or "").strip()
    if code in QUOTED_CODES and said:
        message += f" (the CA said: {said[:QUOTED_CHARS]})"
    return cls(f"upstream CA {context}: {message}{note} (reference {reference}; "
               "the CA's full answer is in the relay's log)")


def order_problem(body: messages.Order, what: str) -> problems.AcmeProblem:
    if body.error is not None:
        return problem_from_upstream(body.error, what)
    return problems.ServerInternal(f"upstream CA {what}")


def authz_problem(authz: messages.Authorization) -> problems.AcmeProblem:
    for challb in authz.challenges:
        if challb.error is not None:
            return problem_from_upstream(challb.error, f"rejected DNS-01 for {authz.identifier.value}")
    return problems.Unauthorized(f"upstream authorization for {authz.identifier.value} is {authz.status.name}")
