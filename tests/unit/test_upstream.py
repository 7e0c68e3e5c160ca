"""Leg 2 pieces that need no CA: the account key on disk and upstream errors as problems."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from acme import messages

from jackdaw.protocol import problems
from jackdaw.upstream.account import load_or_create_key
from jackdaw.upstream.issuer import problem_from_upstream


def test_account_key_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "data" / "upstream-account.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path).thumbprint() == first.thumbprint()


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
def test_upstream_errors_keep_their_type(code: str, expected: type[problems.AcmeProblem], status: int) -> None:
    error = messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail="too many certificates")
    problem = problem_from_upstream(error, "refused the order")
    assert type(problem) is expected
    assert problem.status == status
    assert "too many certificates" in problem.detail
    assert problem.to_json()["type"].endswith(expected.code)
