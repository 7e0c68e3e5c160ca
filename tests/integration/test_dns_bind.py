"""jackdaw.dns against a real BIND: zone discovery, CNAMEs, RFC 2136 updates, propagation."""

from __future__ import annotations

import re
import threading
import time
import uuid

import dns.message
import dns.query
import dns.rcode
import dns.resolver
import dns.update
import pytest

from jackdaw.dns.base import ConfigError, DNSProviderError
from jackdaw.dns.propagation import PropagationTimeout
from jackdaw.dns.providers.rfc2136 import RFC2136Provider
from jackdaw.dns.registry import build_provider
from jackdaw.dns.resolver import (
    DNSLookupError,
    find_zone,
    follow_cname,
    make_resolver,
    resolve_addresses,
)
from jackdaw.ops.dnscheck import wait_for_txt
from tests.testbed import Bind

ZONE = "example.test"
NS1 = "ns1.example.test"


@pytest.fixture
def resolver(bind: Bind) -> dns.resolver.Resolver:
    return make_resolver(bind.nameserver)


@pytest.fixture
def provider(bind: Bind) -> RFC2136Provider:
    return RFC2136Provider.from_env(bind.env())


def unique_name(zone: str = ZONE) -> str:
    return f"_acme-challenge.h{uuid.uuid4().hex[:8]}.{zone}"


# --- resolver -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        pytest.param("example.test", "example.test", id="apex"),
        pytest.param("a.example.test", "example.test", id="existing"),
        pytest.param("_acme-challenge.x.y.z.example.test", "example.test", id="deep-missing"),
        pytest.param("Deep.Name.EXAMPLE.Test.", "example.test", id="case-and-dot"),
        pytest.param("_acme-challenge.c.example.test", "example.test", id="cname-owner"),
        pytest.param("c.challenges.test", "challenges.test", id="other-zone"),
    ],
)
def test_find_zone(resolver: dns.resolver.Resolver, name: str, zone: str) -> None:
    assert find_zone(name, resolver) == zone


def test_find_zone_outside_served_zones(resolver: dns.resolver.Resolver) -> None:
    with pytest.raises(DNSLookupError, match=re.escape("nothing.invalid")):
        find_zone("nothing.invalid", resolver)


def test_follow_cname_into_other_zone(resolver: dns.resolver.Resolver) -> None:
    assert follow_cname("_acme-challenge.c.example.test", resolver) == "c.challenges.test"


@pytest.mark.parametrize(
    "name",
    ["_acme-challenge.a.example.test", "a.example.test"],
    ids=["missing", "not-cname"],
)
def test_follow_cname_without_cname(resolver: dns.resolver.Resolver, name: str) -> None:
    assert follow_cname(name, resolver) == name


def test_follow_cname_loop(resolver: dns.resolver.Resolver) -> None:
    with pytest.raises(DNSLookupError, match="loop"):
        follow_cname("loop1.example.test", resolver)


def test_follow_cname_hop_limit(resolver: dns.resolver.Resolver) -> None:
    with pytest.raises(DNSLookupError, match="more than 0 CNAME hops"):
        follow_cname("_acme-challenge.c.example.test", resolver, max_hops=0)


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        pytest.param("a.example.test", ["127.0.0.1"], id="v4-only"),
        pytest.param("both.example.test", ["127.0.0.1", "::1"], id="v4-and-v6"),
        pytest.param("192.0.2.7", ["192.0.2.7"], id="literal"),
    ],
)
def test_resolve_addresses(resolver: dns.resolver.Resolver, host: str, addresses: list[str]) -> None:
    assert resolve_addresses(host, resolver) == addresses


@pytest.mark.parametrize("host", ["missing.example.test", "example.test"], ids=["nx", "no-a"])
def test_resolve_addresses_fails(resolver: dns.resolver.Resolver, host: str) -> None:
    with pytest.raises(DNSLookupError, match=re.escape(host)):
        resolve_addresses(host, resolver)


# --- RFC 2136 provider ----------------------------------------------------------------


def test_two_values_coexist_and_are_removed_one_by_one(bind: Bind, provider: RFC2136Provider) -> None:
    name = unique_name()
    provider.present(ZONE, name, "first-value")
    provider.present(ZONE, name, "second-value")
    assert bind.txt(name) == ["first-value", "second-value"]

    provider.cleanup(ZONE, name, "first-value")
    assert bind.txt(name) == ["second-value"]
    provider.cleanup(ZONE, name, "second-value")
    assert bind.txt(name) == []


def test_cleanup_of_absent_value_is_harmless(bind: Bind, provider: RFC2136Provider) -> None:
    name = unique_name()
    provider.present(ZONE, name, "kept")
    provider.cleanup(ZONE, name, "never-written")
    assert bind.txt(name) == ["kept"]
    provider.cleanup(ZONE, name, "kept")


def test_value_is_stored_verbatim(bind: Bind, provider: RFC2136Provider) -> None:
    name, value = unique_name(), 'has "quotes"; spaces\\ and ;semicolon'
    provider.present(ZONE, name, value)
    try:
        assert bind.txt(name) == [value]
    finally:
        provider.cleanup(ZONE, name, value)
    assert bind.txt(name) == []


def test_present_in_cname_target_zone(bind: Bind, provider: RFC2136Provider) -> None:
    provider.present("challenges.test", "c.challenges.test", "via-cname")
    try:
        assert bind.txt("c.challenges.test") == ["via-cname"]
    finally:
        provider.cleanup("challenges.test", "c.challenges.test", "via-cname")


def test_unsigned_update_is_refused(bind: Bind) -> None:
    update = dns.update.UpdateMessage(ZONE)
    update.add(unique_name(), 60, "TXT", '"unsigned"')
    response = dns.query.tcp(update, "127.0.0.1", port=bind.port, timeout=5)
    assert response.rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param(
            {"RFC2136_TSIG_SECRET": "c2VjcmV0LXRoYXQtaXMtd3Jvbmc="},
            "BADSIG",
            id="secret",
        ),
        pytest.param({"RFC2136_TSIG_KEY": "other-key"}, "BADKEY", id="key-name"),
        pytest.param({"RFC2136_TSIG_ALGORITHM": "hmac-sha512"}, "BADKEY", id="algorithm"),
    ],
)
def test_wrong_key_is_refused(bind: Bind, override: dict[str, str], expected: str) -> None:
    provider = RFC2136Provider.from_env({**bind.env(), **override})
    name = unique_name()
    with pytest.raises(DNSProviderError, match=f"rfc2136 add TXT {re.escape(name)}.*{expected}"):
        provider.present(ZONE, name, "forged")
    assert bind.txt(name) == []


def test_zone_not_served_is_an_error(provider: RFC2136Provider) -> None:
    with pytest.raises(DNSProviderError, match="NOTAUTH"):
        provider.present("elsewhere.test", "_acme-challenge.elsewhere.test", "v")


def test_unreachable_server_is_an_error(bind: Bind) -> None:
    env = {
        **bind.env(),
        "RFC2136_NAMESERVER": "127.0.0.1:1",
        "RFC2136_DNS_TIMEOUT": "2",
    }
    with pytest.raises(DNSProviderError, match=re.escape("127.0.0.1:1")):
        RFC2136Provider.from_env(env).present(ZONE, unique_name(), "v")


REQUIRED = ["RFC2136_NAMESERVER", "RFC2136_TSIG_KEY", "RFC2136_TSIG_SECRET"]


@pytest.mark.parametrize("key", REQUIRED)
@pytest.mark.parametrize("missing", ["absent", "blank"])
def test_from_env_requires(bind: Bind, key: str, missing: str) -> None:
    env = bind.env()
    if missing == "absent":
        del env[key]
    else:
        env[key] = "  "
    with pytest.raises(ConfigError, match=key):
        RFC2136Provider.from_env(env)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("RFC2136_NAMESERVER", "127.0.0.1:dns", id="nameserver-port"),
        pytest.param("RFC2136_TSIG_SECRET", "not base64!", id="secret"),
        pytest.param("RFC2136_TSIG_ALGORITHM", "hmac-sha3", id="algorithm"),
        pytest.param("RFC2136_TTL", "0", id="ttl-zero"),
        pytest.param("RFC2136_TTL", "1.5", id="ttl-fraction"),
        pytest.param("RFC2136_TTL", "soon", id="ttl-text"),
        pytest.param("RFC2136_DNS_TIMEOUT", "-1", id="timeout"),
    ],
)
def test_from_env_rejects(bind: Bind, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        RFC2136Provider.from_env({**bind.env(), key: value})


@pytest.mark.parametrize("algorithm", ["hmac-sha256.", "HMAC-SHA256", "", None])
def test_algorithm_spellings(bind: Bind, algorithm: str | None) -> None:
    env = bind.env()
    if algorithm is None:
        del env["RFC2136_TSIG_ALGORITHM"]
    else:
        env["RFC2136_TSIG_ALGORITHM"] = algorithm
    provider = RFC2136Provider.from_env({**env, "RFC2136_TTL": "120"})
    assert provider.config.ttl == 120
    name = unique_name()
    provider.present(ZONE, name, "spelled")
    provider.cleanup(ZONE, name, "spelled")
    assert bind.txt(name) == []


def test_registry_builds_rfc2136(bind: Bind) -> None:
    assert isinstance(build_provider("rfc2136", bind.env()), RFC2136Provider)


def test_registry_rejects_unknown_provider() -> None:
    with pytest.raises(ConfigError, match=r"DNS_PROVIDER: unknown provider 'x' \(known: .*rfc2136"):
        build_provider("x", {})


# --- propagation ----------------------------------------------------------------------


def test_wait_for_txt_returns_once_served(
    bind: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    a, b = unique_name(), unique_name()
    records = [(a, "va"), (b, "vb"), (b, "vb2")]
    for fqdn, value in records:
        provider.present(ZONE, fqdn, value)
    try:
        started = time.monotonic()
        served = wait_for_txt(records, resolver, timeout=10, interval=0.2, ns_port=bind.port)
        assert time.monotonic() - started < 1
    finally:
        for fqdn, value in records:
            provider.cleanup(ZONE, fqdn, value)
    assert set(served) == {NS1}
    assert served[NS1] < 1


def test_wait_for_txt_follows_cname(bind: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver) -> None:
    provider.present("challenges.test", "c.challenges.test", "cname-value")
    try:
        served = wait_for_txt(
            [("_acme-challenge.c.example.test", "cname-value")],
            resolver,
            timeout=5,
            interval=0.2,
            ns_port=bind.port,
        )
    finally:
        provider.cleanup("challenges.test", "c.challenges.test", "cname-value")
    assert set(served) == {"ns1.challenges.test"}


def test_wait_for_txt_polls_until_value_appears(
    bind: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    name = unique_name()
    writer = threading.Timer(0.6, provider.present, (ZONE, name, "late"))
    writer.start()
    try:
        served = wait_for_txt([(name, "late")], resolver, timeout=10, interval=0.1, ns_port=bind.port)
    finally:
        writer.join()
        provider.cleanup(ZONE, name, "late")
    assert 0.5 < served[NS1] < 3


def test_wait_for_txt_times_out_naming_record_and_servers(
    bind: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    served_name, missing_name = unique_name(), unique_name()
    provider.present(ZONE, served_name, "here")
    try:
        started = time.monotonic()
        with pytest.raises(PropagationTimeout) as caught:
            wait_for_txt(
                [(served_name, "here"), (missing_name, "never-written")],
                resolver,
                timeout=0.5,
                interval=0.1,
                ns_port=bind.port,
            )
        assert time.monotonic() - started < 2.5
    finally:
        provider.cleanup(ZONE, served_name, "here")
    assert caught.value.fqdn == missing_name
    assert caught.value.lagging == [NS1]
    assert missing_name in str(caught.value) and NS1 in str(caught.value)


def test_wait_for_txt_wrong_value_is_not_enough(
    bind: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    name = unique_name()
    provider.present(ZONE, name, "old-value")
    try:
        with pytest.raises(PropagationTimeout):
            wait_for_txt(
                [(name, "new-value")],
                resolver,
                timeout=0.3,
                interval=0.1,
                ns_port=bind.port,
            )
    finally:
        provider.cleanup(ZONE, name, "old-value")


def test_a_name_server_serves_when_any_of_its_addresses_does(
    bind: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    """ns1.v6gap.test: 127.0.0.1 serves, 2001:db8::53 never answers (no route, or silence)."""
    name = unique_name("v6gap.test")
    assert sorted(resolve_addresses("ns1.v6gap.test", resolver)) == ["127.0.0.1", "2001:db8::53"]
    provider.present("v6gap.test", name, "v")
    try:
        started = time.monotonic()
        served = wait_for_txt([(name, "v")], resolver, timeout=10, interval=0.2, ns_port=bind.port)
        assert time.monotonic() - started < 2.5  # at most one query timeout for the silent address
    finally:
        provider.cleanup("v6gap.test", name, "v")
    assert set(served) == {"ns1.v6gap.test"}


def test_a_name_server_that_never_answers_is_named_as_unreachable(
    bind: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    name = unique_name("deadns.test")
    provider.present("deadns.test", name, "v")
    try:
        with pytest.raises(PropagationTimeout) as caught:
            wait_for_txt([(name, "v")], resolver, timeout=1.5, interval=0.2, ns_port=bind.port)
    finally:
        provider.cleanup("deadns.test", name, "v")
    assert caught.value.unreachable == ["ns9.deadns.test"]
    assert caught.value.lagging == []  # ns1 serves it; only ns9 is missing
    assert "no answer from any address of: ns9.deadns.test" in str(caught.value)


def test_wait_for_txt_nothing_to_wait_for(resolver: dns.resolver.Resolver) -> None:
    assert wait_for_txt([], resolver, timeout=1, interval=0.1) == {}
