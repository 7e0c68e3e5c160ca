"""DNS_ZONE_OVERRIDES: parsing (errors name the variable) and its use in jackdaw.dns.placement.locate."""

from __future__ import annotations

import dns.resolver
import pytest

from jackdaw.dns import placement
from jackdaw.dns.base import ConfigError
from jackdaw.dns.placement import override_zone
from jackdaw.settings import Settings

REQUIRED = {"RELAY_DOMAIN": "relay.example.test", "ACME_EMAIL": "ops@example.test", "DNS_PROVIDER": "rfc2136"}


def overrides(raw: str) -> tuple[tuple[str, str], ...]:
    return Settings.parse({**REQUIRED, "DNS_ZONE_OVERRIDES": raw}).dns_zone_overrides


# --- parsing ----------------------------------------------------------------------------


def test_unset_means_no_overrides() -> None:
    assert Settings.parse(REQUIRED).dns_zone_overrides == ()
    assert overrides("") == ()
    assert overrides(" , ,") == ()


def test_pairs_are_normalised_and_most_specific_first() -> None:
    assert overrides(" Int.Example.COM.=example.com. , a.int.example.com=int.example.com,corp=corp") == (
        ("a.int.example.com", "int.example.com"),
        ("int.example.com", "example.com"),
        ("corp", "corp"),
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        pytest.param("int.example.com", "expected name=zone", id="no-equals"),
        pytest.param("int.example.com=", "is not a DNS name", id="empty-zone"),
        pytest.param("=example.com", "is not a DNS name", id="empty-name"),
        pytest.param("a..b=b", "is not a DNS name", id="empty-label"),
        pytest.param("a b.example.com=example.com", "is not a DNS name", id="space"),
        pytest.param("a=b=c", "is not a DNS name", id="two-equals"),
        pytest.param(f"{'x' * 64}.example.com=example.com", "is not a DNS name", id="long-label"),
        pytest.param("int.example.com=other.com", "cannot hold names under", id="zone-not-ancestor"),
        pytest.param("int.example.com=t.example.com", "cannot hold names under", id="sibling-suffix"),
        pytest.param("xample.com=e.xample.com", "cannot hold names under", id="child-zone"),
        pytest.param("a.example.com=example.com,A.example.com.=example.com", "listed twice", id="duplicate"),
    ],
)
def test_bad_syntax_names_the_variable(raw: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"^DNS_ZONE_OVERRIDES: .*{why}"):
        overrides(raw)


@pytest.mark.parametrize(
    ("fqdn", "zone"),
    [
        pytest.param("int.example.com", "example.com", id="equal"),
        pytest.param("_acme-challenge.host.int.example.com.", "example.com", id="under-with-dot"),
        pytest.param("_ACME-CHALLENGE.Int.Example.Com", "example.com", id="case"),
        pytest.param("_acme-challenge.x.lab.int.example.com", "lab.int.example.com", id="most-specific"),
        pytest.param("_acme-challenge.foo-int.example.com", None, id="label-boundary"),
        pytest.param("_acme-challenge.www.example.com", None, id="parent-not-covered"),
    ],
)
def test_override_zone_matches_at_or_under(fqdn: str, zone: str | None) -> None:
    table = overrides("int.example.com=example.com,lab.int.example.com=lab.int.example.com")
    assert override_zone(fqdn, table) == zone


# --- placement.locate -----------------------------------------------------------------


class Lookups:
    """Stands in for the resolver functions dns01 calls; records what was asked."""

    def __init__(self, cnames: dict[str, str], zones: dict[str, str]) -> None:
        self.cnames, self.zones = cnames, zones
        self.zone_lookups: list[str] = []

    def follow_cname(self, fqdn: str, resolver: dns.resolver.Resolver) -> str:
        return self.cnames.get(fqdn, fqdn)

    def find_zone(self, name: str, resolver: dns.resolver.Resolver) -> str:
        self.zone_lookups.append(name)
        return self.zones[name]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Lookups:
    fake = Lookups(
        cnames={"_acme-challenge.svc.example.org": "_acme-challenge.svc.int.example.com"},
        zones={
            "_acme-challenge.www.example.com": "example.com",
            "_acme-challenge.svc.int.example.com": "int.example.com",  # the internal view's answer
        },
    )
    monkeypatch.setattr(placement, "follow_cname", fake.follow_cname)
    monkeypatch.setattr(placement, "find_zone", fake.find_zone)
    return fake


def locate(raw: str, name: str) -> tuple[str, str]:
    """Where leg 2 writes the TXT for ``name`` with DNS_ZONE_OVERRIDES=``raw``."""
    return placement.locate(name, dns.resolver.Resolver(configure=False), overrides(raw))


def test_override_replaces_soa_discovery(lookups: Lookups) -> None:
    located = locate("int.example.com=example.com", "_acme-challenge.host.int.example.com")
    assert located == ("example.com", "_acme-challenge.host.int.example.com")
    assert lookups.zone_lookups == []


def test_override_applies_to_the_cname_target(lookups: Lookups) -> None:
    # CNAME first: the delegated name's target is what the override is matched against
    located = locate("int.example.com=example.com", "_acme-challenge.svc.example.org")
    assert located == ("example.com", "_acme-challenge.svc.int.example.com")
    assert lookups.zone_lookups == []


def test_cname_target_without_override_uses_soa(lookups: Lookups) -> None:
    located = locate("", "_acme-challenge.svc.example.org")
    assert located == ("int.example.com", "_acme-challenge.svc.int.example.com")
    assert lookups.zone_lookups == ["_acme-challenge.svc.int.example.com"]


def test_names_outside_overrides_use_soa(lookups: Lookups) -> None:
    located = locate("int.example.com=example.com", "_acme-challenge.www.example.com")
    assert located == ("example.com", "_acme-challenge.www.example.com")
    assert lookups.zone_lookups == ["_acme-challenge.www.example.com"]
