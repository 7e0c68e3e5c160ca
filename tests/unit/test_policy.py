"""jackdaw.ra.policy: which names a client may order (RFC 8555 §7.4, ALLOWED_DOMAINS)."""

from __future__ import annotations

from typing import Any

import pytest

from jackdaw.protocol import problems
from jackdaw.protocol.constants import MAX_IDENTIFIERS
from jackdaw.ra.policy import check_identifiers, check_name

ALLOWED = ("example.test", "corp.internal")


@pytest.mark.parametrize(
    ("name", "allowed", "expected"),
    [
        pytest.param("a.example.test", ALLOWED, "a.example.test", id="subdomain"),
        pytest.param("example.test", ALLOWED, "example.test", id="apex"),
        pytest.param("deep.er.name.corp.internal", ALLOWED, "deep.er.name.corp.internal", id="second-allowed"),
        pytest.param("WWW.Example.TEST", ALLOWED, "www.example.test", id="case-folded"),
        pytest.param("x-1.example.test", ALLOWED, "x-1.example.test", id="inner-hyphen"),
        pytest.param("xn--bcher-kva.example.test", ALLOWED, "xn--bcher-kva.example.test", id="a-label"),
        pytest.param("bücher.example.test", ALLOWED, "xn--bcher-kva.example.test", id="u-label-to-a-label"),
        pytest.param("1.example.test", ALLOWED, "1.example.test", id="numeric-label"),
        pytest.param(("a" * 63) + ".example.test", ALLOWED, ("a" * 63) + ".example.test", id="label-63"),
        pytest.param("anything.example.org", (), "anything.example.org", id="no-allow-list"),
    ],
)
def test_check_name_accepts(name: str, allowed: tuple[str, ...], expected: str) -> None:
    assert check_name(name, allowed) == expected


@pytest.mark.parametrize(
    ("name", "allowed", "problem"),
    [
        pytest.param("evil.com", ALLOWED, problems.RejectedIdentifier, id="outside-allowed"),
        pytest.param("notexample.test", ALLOWED, problems.RejectedIdentifier, id="suffix-without-dot"),
        pytest.param("example.test.evil.com", ALLOWED, problems.RejectedIdentifier, id="allowed-as-prefix"),
        pytest.param("test", ALLOWED, problems.RejectedIdentifier, id="parent-of-allowed"),
        pytest.param("a.example.test.", ALLOWED, problems.RejectedIdentifier, id="trailing-dot"),
        pytest.param("*.example.test", ALLOWED, problems.RejectedIdentifier, id="wildcard"),
        pytest.param("*.example.test", (), problems.RejectedIdentifier, id="wildcard-no-allow-list"),
        pytest.param("a.*.example.test", ALLOWED, problems.RejectedIdentifier, id="inner-wildcard"),
        pytest.param("192.0.2.1", ALLOWED, problems.RejectedIdentifier, id="ipv4"),
        pytest.param("2001:db8::1", ALLOWED, problems.RejectedIdentifier, id="ipv6"),
        pytest.param("-a.example.test", ALLOWED, problems.RejectedIdentifier, id="leading-hyphen"),
        pytest.param("a-.example.test", ALLOWED, problems.RejectedIdentifier, id="trailing-hyphen"),
        pytest.param("a..example.test", ALLOWED, problems.RejectedIdentifier, id="empty-label"),
        pytest.param(".example.test", ALLOWED, problems.RejectedIdentifier, id="leading-dot"),
        pytest.param("a_b.example.test", ALLOWED, problems.RejectedIdentifier, id="underscore"),
        pytest.param("a b.example.test", ALLOWED, problems.RejectedIdentifier, id="space"),
        pytest.param("a/b.example.test", ALLOWED, problems.RejectedIdentifier, id="slash"),
        pytest.param(("a" * 64) + ".example.test", ALLOWED, problems.RejectedIdentifier, id="label-64"),
        pytest.param(".".join(["a" * 60] * 4) + ".example.test", ALLOWED, problems.RejectedIdentifier,
                     id="name-over-253"),
        pytest.param("localhost", (), problems.RejectedIdentifier, id="single-label"),
        pytest.param("host.123", (), problems.RejectedIdentifier, id="numeric-tld"),
        pytest.param("", ALLOWED, problems.RejectedIdentifier, id="empty"),
        pytest.param("\u2603\u2603\u2603.example.test\u3002", ALLOWED, problems.RejectedIdentifier,
                     id="idna-with-ideographic-dot"),
    ],
)
def test_check_name_refuses(name: str, allowed: tuple[str, ...], problem: type[problems.AcmeProblem]) -> None:
    with pytest.raises(problems.AcmeProblem) as info:
        check_name(name, allowed)
    assert type(info.value) is problem, info.value.detail
    assert info.value.identifier is not None  # the client learns which name failed


def dns(*names: str) -> list[dict[str, str]]:
    return [{"type": "dns", "value": n} for n in names]


def test_check_identifiers_normalises_and_dedupes_in_order() -> None:
    got = check_identifiers(dns("B.example.test", "a.example.test", "b.example.test", "A.EXAMPLE.TEST"), ALLOWED)
    assert got == ["b.example.test", "a.example.test"]


def test_check_identifiers_at_the_limit() -> None:
    names = [f"h{i}.example.test" for i in range(MAX_IDENTIFIERS)]
    assert check_identifiers(dns(*names), ALLOWED) == names


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(None, problems.Malformed, id="missing"),
        pytest.param([], problems.Malformed, id="empty"),
        pytest.param({"type": "dns", "value": "a.example.test"}, problems.Malformed, id="object-not-array"),
        pytest.param(["a.example.test"], problems.Malformed, id="bare-string"),
        pytest.param([{"type": "dns"}], problems.Malformed, id="no-value"),
        pytest.param([{"type": "dns", "value": 5}], problems.Malformed, id="value-not-string"),
        pytest.param([{"type": "ip", "value": "192.0.2.1"}], problems.RejectedIdentifier, id="ip-type"),
        pytest.param([{"value": "a.example.test"}], problems.UnsupportedIdentifier, id="no-type"),
        pytest.param(dns(*[f"h{i}.example.test" for i in range(MAX_IDENTIFIERS + 1)]), problems.RejectedIdentifier,
                     id="over-100"),
        pytest.param(dns(*(["a.example.test"] * (MAX_IDENTIFIERS + 1))), problems.RejectedIdentifier,
                     id="over-100-duplicates"),
        pytest.param(dns("a.example.test", "evil.com"), problems.RejectedIdentifier, id="one-bad-among-good"),
    ],
)
def test_check_identifiers_refuses(raw: Any, problem: type[problems.AcmeProblem]) -> None:
    with pytest.raises(problems.AcmeProblem) as info:
        check_identifiers(raw, ALLOWED)
    assert type(info.value) is problem, info.value.detail


def test_every_bad_name_is_reported() -> None:
    """Several bad names: one rejectedIdentifier with a subproblem per name (RFC 8555 §6.7.1)."""
    with pytest.raises(problems.RejectedIdentifier) as info:
        check_identifiers([*dns("ok.example.test", "evil.com", "*.example.test"),
                           {"type": "ip", "value": "192.0.2.1"}], ALLOWED)
    doc = info.value.to_json()
    subs = [(s["type"].rsplit(":", 1)[1], s["identifier"]["value"]) for s in doc["subproblems"]]
    assert subs == [("rejectedIdentifier", "evil.com"), ("rejectedIdentifier", "*.example.test"),
                    ("rejectedIdentifier", "192.0.2.1")]
    assert all("status" not in s for s in doc["subproblems"])
