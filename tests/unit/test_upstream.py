"""Leg 2 pieces that need no CA: upstream errors as problems, and what each one means."""

from __future__ import annotations

import logging
import re

import pytest
import requests
from acme import messages

from jackdaw.dns.base import DNSProviderError
from jackdaw.protocol import problems
from jackdaw.upstream.errors import UpstreamFailed, Verdict, problem_from_upstream, verdict


@pytest.mark.parametrize(
    ("code", "expected", "status"),
    [
        ("rateLimited", problems.RateLimited, 429),
        ("rejectedIdentifier", problems.RejectedIdentifier, 400),
        ("caa", problems.Caa, 403),
        ("unauthorized", problems.Unauthorized, 403),
        ("dns", problems.DNS, 400),
        ("somethingNew", problems.ServerInternal, 500),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_upstream_errors_keep_their_type(code: str, expected: type[problems.AcmeProblem], status: int,
                                         caplog: pytest.LogCaptureFixture) -> None:
    secret = "too many certificates for acct/4711 (arn:aws:iam::123456789012:role/x)"
    error = messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail=secret)
    with caplog.at_level(logging.WARNING, logger="jackdaw.upstream.errors"):
        problem = problem_from_upstream(error, "refused the order")
    assert type(problem) is expected
    assert problem.status == status
    assert problem.to_json()["type"].endswith(expected.code)
    # the client gets a stable message and a reference; the CA's words only in the log
    assert "4711" not in problem.detail and "arn:" not in problem.detail
    reference = re.search(r"reference ([0-9a-f]{8})", problem.detail)
    assert reference is not None, problem.detail
    [line] = [r.getMessage() for r in caplog.records if reference.group(1) in r.getMessage()]
    assert secret in line


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(messages.Error.with_code("accountDoesNotExist"), Verdict.ACCOUNT_GONE, id="account-gone"),
        pytest.param(messages.Error.with_code("serverInternal"), Verdict.TRANSIENT, id="server-internal"),
        pytest.param(messages.Error.with_code("badNonce"), Verdict.TRANSIENT, id="bad-nonce"),
        pytest.param(messages.Error.with_code("rateLimited"), Verdict.REFUSED, id="rate-limited"),
        pytest.param(messages.Error.with_code("unauthorized"), Verdict.REFUSED, id="unauthorized"),
        pytest.param(UpstreamFailed(problems.DNS("x")), Verdict.REFUSED, id="upstream-failed"),
        pytest.param(requests.ConnectionError("refused"), Verdict.TRANSIENT, id="connection"),
        pytest.param(DNSProviderError("503"), Verdict.TRANSIENT, id="provider"),
        pytest.param(KeyError("bug"), None, id="a-bug-is-not-classified"),
    ],
)
def test_verdicts(exc: BaseException, expected: Verdict | None) -> None:
    assert verdict(exc) is expected
