"""Wildcards are off unless WILDCARD_DOMAINS covers them: names strictly under a listed domain, or
a wildcard listed exactly (a wildcard at a domain's apex is never implied: its HTTP-01 proof
would be whoever serves the apex)."""

from __future__ import annotations

import pytest

from jackdaw.protocol import problems
from jackdaw.ra.policy import check_identifiers, check_name
from jackdaw.settings import Settings

ALLOWED = ("example.test", "example.org")


@pytest.mark.parametrize(
    ("name", "wildcards", "expected"),
    [
        ("*.example.test", ("*.example.test",), "*.example.test"),
        ("*.deep.example.test", ("example.test",), "*.deep.example.test"),
        ("*.Deep.EXAMPLE.test", ("example.test",), "*.deep.example.test"),
    ],
    ids=["apex listed exactly", "under base", "case folded"],
)
def test_allowed_wildcards(name: str, wildcards: tuple[str, ...], expected: str) -> None:
    assert check_name(name, ALLOWED, wildcards) == expected


@pytest.mark.parametrize(
    ("name", "wildcards", "needle"),
    [
        ("*.example.test", (), "which is not set"),
        ("*.example.test", ("example.test",), r"needs '\*\.example\.test' listed"),
        ("*.example.org", ("example.test",), "WILDCARD_DOMAINS"),
        ("*.elsewhere.test", ("elsewhere.test",), "ALLOWED_DOMAINS"),
        ("*.*.example.test", ("example.test",), "WILDCARD_DOMAINS"),
        ("a.*.example.test", ("example.test",), "leftmost"),
        ("*example.test", ("example.test",), "leftmost"),
        ("*.test", ("example.test",), "not a valid DNS name"),
    ],
    ids=["off by default", "apex not implied", "other base", "outside allowed", "double", "inner star",
         "partial label", "above base"],
)
def test_rejected_wildcards(name: str, wildcards: tuple[str, ...], needle: str) -> None:
    with pytest.raises(problems.RejectedIdentifier, match=needle):
        check_name(name, ALLOWED, wildcards)


def test_wildcard_and_base_are_two_identifiers() -> None:
    idents = [{"type": "dns", "value": "example.test"}, {"type": "dns", "value": "*.example.test"}]
    assert check_identifiers(idents, ALLOWED, ("*.example.test",)) == ["example.test", "*.example.test"]


def test_setting_is_parsed() -> None:
    env = {"RELAY_DOMAIN": "r.example.test", "ACME_EMAIL": "a@example.test", "DNS_PROVIDER": "rfc2136",
           "WILDCARD_DOMAINS": "Example.test., example.org"}
    assert Settings.parse(env).wildcard_domains == ("example.test", "example.org")
