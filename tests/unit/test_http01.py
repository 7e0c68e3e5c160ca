"""Pure pieces of the relay's HTTP-01 check: address policy, redirect rules, body cap, settings."""

from __future__ import annotations

import hashlib
import io
import ipaddress

import pytest

from jackdaw.dns.base import ConfigError
from jackdaw.protocol import problems
from jackdaw.settings import Settings
from jackdaw.va.http01 import (
    MAX_BODY,
    AddressPolicy,
    BadRedirect,
    HTTP01Validator,
    Target,
    _judge_body,
    address_category,
    read_capped,
    redirect_target,
)

# --- address policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "category"),
    [
        pytest.param("127.0.0.1", "loopback", id="v4-loopback"),
        pytest.param("127.255.0.9", "loopback", id="v4-loopback-range"),
        pytest.param("::1", "loopback", id="v6-loopback"),
        pytest.param("::ffff:127.0.0.1", "loopback", id="v4-mapped-loopback"),
        pytest.param("64:ff9b::7f00:1", "loopback", id="nat64-loopback"),
        pytest.param("169.254.169.254", "link-local", id="cloud-metadata"),
        pytest.param("169.254.0.1", "link-local", id="v4-link-local"),
        pytest.param("::ffff:169.254.169.254", "link-local", id="v4-mapped-metadata"),
        pytest.param("::ffff:a9fe:a9fe", "link-local", id="v4-mapped-metadata-hex"),
        pytest.param("64:ff9b::a9fe:a9fe", "link-local", id="nat64-metadata"),
        pytest.param("fe80::1", "link-local", id="v6-link-local"),
        pytest.param("febf::1", "link-local", id="v6-link-local-top"),
        pytest.param("224.0.0.1", "multicast", id="v4-multicast"),
        pytest.param("239.255.255.250", "multicast", id="v4-multicast-ssdp"),
        pytest.param("ff02::1", "multicast", id="v6-multicast"),
        pytest.param("::ffff:224.0.0.251", "multicast", id="v4-mapped-multicast"),
        pytest.param("0.0.0.0", "unspecified", id="v4-unspecified"),
        pytest.param("0.1.2.3", "unspecified", id="v4-this-network"),
        pytest.param("::", "unspecified", id="v6-unspecified"),
        pytest.param("::ffff:0.0.0.0", "unspecified", id="v4-mapped-unspecified"),
        pytest.param("255.255.255.255", "reserved", id="broadcast"),
        pytest.param("240.0.0.1", "reserved", id="class-e"),
        pytest.param("10.1.2.3", None, id="rfc1918-10"),
        pytest.param("172.16.0.1", None, id="rfc1918-172"),
        pytest.param("192.168.1.10", None, id="rfc1918-192"),
        pytest.param("100.64.0.1", None, id="cgnat"),
        pytest.param("fd00::1", None, id="v6-ula"),
        pytest.param("::ffff:10.0.0.1", None, id="v4-mapped-private"),
        pytest.param("93.184.216.34", None, id="public-v4"),
        pytest.param("2001:db8::1", None, id="public-v6"),
        pytest.param("fec0::1", None, id="v6-site-local-deprecated"),
        pytest.param("fd00:ec2::254", "metadata service", id="aws-imds-v6"),
        pytest.param("fd00:ec2::253", None, id="aws-imds-v6-neighbour"),
        pytest.param("100.100.100.200", "metadata service", id="alibaba-metadata"),
        pytest.param("::ffff:100.100.100.200", "metadata service", id="v4-mapped-alibaba-metadata"),
        pytest.param("::127.0.0.1", "loopback", id="v4-compatible-loopback"),
        pytest.param("::169.254.169.254", "link-local", id="v4-compatible-metadata"),
        pytest.param("::ffff:0:127.0.0.1", "loopback", id="v4-translated-loopback"),
        pytest.param("::ffff:0:a9fe:a9fe", "link-local", id="v4-translated-metadata"),
        pytest.param("2002:7f00:1::", "loopback", id="6to4-loopback"),
        pytest.param("2002:a9fe:a9fe::1", "link-local", id="6to4-metadata"),
        pytest.param("2002:0a00:0001::1", None, id="6to4-private"),
        pytest.param("64:ff9b:1::7f00:1", "loopback", id="nat64-local-use-loopback"),
        pytest.param("64:ff9b:1::a9fe:a9fe", "link-local", id="nat64-local-use-metadata"),
    ],
)
def test_address_category(address: str, category: str | None) -> None:
    assert address_category(ipaddress.ip_address(address)) == category
    assert AddressPolicy().refusal(address) == category


@pytest.mark.parametrize(
    ("policy", "address", "refusal"),
    [
        pytest.param(AddressPolicy(allow_loopback=True), "127.0.0.1", None, id="loopback-allowed"),
        pytest.param(AddressPolicy(allow_loopback=True), "::1", None, id="v6-loopback-allowed"),
        pytest.param(AddressPolicy(allow_loopback=True), "::ffff:127.0.0.1", None, id="mapped-loopback-allowed"),
        pytest.param(AddressPolicy(allow_loopback=True), "169.254.169.254", "link-local",
                     id="loopback-switch-not-link-local"),
        pytest.param(AddressPolicy(allow_loopback=True), "0.0.0.0", "unspecified",
                     id="loopback-switch-not-unspecified"),
        pytest.param(AddressPolicy(allowed_networks=(ipaddress.ip_network("169.254.10.0/24"),)), "169.254.10.5",
                     None, id="allowed-network"),
        pytest.param(AddressPolicy(allowed_networks=(ipaddress.ip_network("169.254.10.0/24"),)),
                     "::ffff:169.254.10.5", None, id="allowed-network-mapped-form"),
        pytest.param(AddressPolicy(allowed_networks=(ipaddress.ip_network("169.254.10.0/24"),)),
                     "169.254.169.254", "link-local", id="outside-allowed-network"),
        pytest.param(AddressPolicy(allowed_networks=(ipaddress.ip_network("fe80::/64"),)), "fe80::5", None,
                     id="allowed-v6-network"),
        pytest.param(AddressPolicy(allowed_networks=(ipaddress.ip_network("fe80::/64"),)), "169.254.0.1",
                     "link-local", id="v6-network-does-not-cover-v4"),
        pytest.param(AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),)), "127.0.0.2", None,
                     id="loopback-via-network"),
        pytest.param(AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),)), "::1", "loopback",
                     id="v4-loopback-network-not-v6"),
    ],
)
def test_policy_exceptions(policy: AddressPolicy, address: str, refusal: str | None) -> None:
    assert policy.refusal(address) == refusal


def test_validator_policy_from_fields() -> None:
    nets = (ipaddress.ip_network("169.254.0.0/16"),)
    v = HTTP01Validator(port=8080, allow_loopback=True, allowed_networks=nets)
    assert v.policy == AddressPolicy(True, nets)
    assert v.redirect_ports == {80, 443, 8080}
    assert HTTP01Validator().policy == AddressPolicy()  # default: nothing special allowed


# --- redirect rules ------------------------------------------------------------------------------

PORTS = frozenset({80, 443, 8080})
FROM = "http://www.example.test:8080/.well-known/acme-challenge/tok"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        pytest.param("http://a.example.test/x", Target("http", "a.example.test", 80, "/x"), id="http-default-port"),
        pytest.param("https://a.example.test/x", Target("https", "a.example.test", 443, "/x"),
                     id="https-default-port"),
        pytest.param("https://a.example.test:80/x", Target("https", "a.example.test", 80, "/x"),
                     id="https-on-80"),
        pytest.param("http://a.example.test:443/x", Target("http", "a.example.test", 443, "/x"),
                     id="http-on-443"),
        pytest.param("http://a.example.test:8080/x", Target("http", "a.example.test", 8080, "/x"),
                     id="challenge-port"),
        pytest.param("/other", Target("http", "www.example.test", 8080, "/other"), id="relative-path"),
        pytest.param("other", Target("http", "www.example.test", 8080, "/.well-known/acme-challenge/other"),
                     id="relative-name"),
        pytest.param("//b.example.test/y", Target("http", "b.example.test", 80, "/y"), id="scheme-relative"),
        pytest.param("HTTPS://A.Example.TEST/Y", Target("https", "a.example.test", 443, "/Y"), id="case"),
        pytest.param("http://a.example.test/p?q=1#frag", Target("http", "a.example.test", 80, "/p?q=1"),
                     id="query-kept-fragment-dropped"),
        pytest.param("http://a.example.test", Target("http", "a.example.test", 80, "/"), id="empty-path"),
        pytest.param("http://a.example.test./x", Target("http", "a.example.test", 80, "/x"), id="trailing-dot"),
        pytest.param("http://a.example.test/a b", Target("http", "a.example.test", 80, "/a%20b"),
                     id="space-encoded"),
        pytest.param("http://a.example.test/ü", Target("http", "a.example.test", 80, "/%C3%BC"),
                     id="non-ascii-path-encoded"),
        pytest.param("http://bücher.example.test/", Target("http", "xn--bcher-kva.example.test", 80, "/"),
                     id="idn-host"),
        pytest.param("  http://a.example.test/x\t", Target("http", "a.example.test", 80, "/x"), id="whitespace"),
        pytest.param("http://user:pw@a.example.test/x", Target("http", "a.example.test", 80, "/x"),
                     id="userinfo-ignored"),
    ],
)
def test_redirect_target(location: str, expected: Target) -> None:
    assert redirect_target(FROM, location, PORTS) == expected


@pytest.mark.parametrize(
    ("location", "why"),
    [
        pytest.param("ftp://a.example.test/x", "scheme 'ftp'", id="ftp"),
        pytest.param("file:///etc/passwd", "scheme 'file'", id="file"),
        pytest.param("gopher://a.example.test:70/x", "scheme 'gopher'", id="gopher"),
        pytest.param("javascript:alert(1)", "scheme 'javascript'", id="javascript"),
        pytest.param("http://a.example.test:22/x", "port 22 is not one of 80, 443, 8080", id="ssh-port"),
        pytest.param("https://a.example.test:8443/x", "port 8443", id="https-odd-port"),
        pytest.param("http://a.example.test:0/x", "port 0", id="port-zero"),
        pytest.param("http://a.example.test:99999/x", "invalid port", id="port-too-big"),
        pytest.param("http://a.example.test:http/x", "invalid port", id="port-named"),
        pytest.param("http://127.0.0.1/x", "IP address", id="v4-literal"),
        pytest.param("http://169.254.169.254/latest/meta-data/", "IP address", id="metadata-literal"),
        pytest.param("http://[::1]/x", "IP address", id="v6-literal"),
        pytest.param("http://[::ffff:127.0.0.1]:8080/x", "IP address", id="v4-mapped-literal"),
        pytest.param("http://2130706433/x", "IP address", id="decimal-ip"),
        pytest.param("http://127.1/x", "IP address", id="short-ip"),
        pytest.param("http://:8080/x", "no host", id="no-host"),
        pytest.param("http://a_b c.example.test/x", "not a valid name", id="space-in-host"),
        pytest.param("http://-a.example.test/x", "not a valid name", id="leading-hyphen"),
        pytest.param("http://a..example.test/x", "not a valid name", id="empty-label"),
        pytest.param("http://" + "a" * 64 + ".example.test/x", "not a valid name", id="long-label"),
    ],
)
def test_redirect_target_refused(location: str, why: str) -> None:
    with pytest.raises(BadRedirect, match=why.replace("(", r"\(")):
        redirect_target(FROM, location, PORTS)


@pytest.mark.parametrize(
    ("target", "url"),
    [
        pytest.param(Target("http", "a.test", 80, "/p"), "http://a.test/p", id="http-80"),
        pytest.param(Target("http", "a.test", 8080, "/p"), "http://a.test:8080/p", id="http-8080"),
        pytest.param(Target("https", "a.test", 443, "/p"), "https://a.test/p", id="https-443"),
        pytest.param(Target("https", "a.test", 80, "/p"), "https://a.test:80/p", id="https-80"),
    ],
)
def test_target_url(target: Target, url: str) -> None:
    assert target.url == url


# --- body cap ------------------------------------------------------------------------------------


class Endless(io.RawIOBase):
    """An infinite body that counts what was asked of it."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        buffer[:n] = b"x" * n
        self.served += n
        return n


def test_read_capped_stops_an_endless_body() -> None:
    stream = Endless()
    body = read_capped(stream, MAX_BODY)
    assert len(body) == MAX_BODY + 1
    assert stream.served == MAX_BODY + 1  # nothing read beyond the cap


@pytest.mark.parametrize("size", [0, 1, MAX_BODY - 1, MAX_BODY, MAX_BODY + 1])
def test_read_capped_short_bodies(size: int) -> None:
    assert read_capped(io.BytesIO(b"k" * size), MAX_BODY) == b"k" * size


class Trickle(io.RawIOBase):
    """A stream that hands out one byte per read, like a server writing byte by byte."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self.data or not len(buffer):
            return 0
        buffer[0] = self.data[0]
        self.data = self.data[1:]
        return 1


def test_read_capped_collects_short_reads() -> None:
    assert read_capped(Trickle(b"abc" * 10), MAX_BODY) == b"abc" * 10
    assert len(read_capped(Trickle(b"z" * 3000), MAX_BODY)) == MAX_BODY + 1


KEYAUTH = "tok." + "t" * 43
URL = "http://a.test/.well-known/acme-challenge/tok"


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        pytest.param(KEYAUTH.encode(), None, id="exact"),
        pytest.param(KEYAUTH.encode() + b"\n", None, id="trailing-newline"),
        pytest.param(KEYAUTH.encode() + b" \t\r\n", None, id="trailing-whitespace"),
        pytest.param(KEYAUTH.encode() + b" " * (MAX_BODY - len(KEYAUTH)), None, id="whitespace-to-cap"),
        pytest.param(KEYAUTH.encode() + b" " * (MAX_BODY + 1 - len(KEYAUTH)), problems.Unauthorized,
                     id="one-byte-over-cap"),
        pytest.param(b" " + KEYAUTH.encode(), problems.IncorrectResponse, id="leading-whitespace"),
        pytest.param(KEYAUTH.encode() + b".x", problems.IncorrectResponse, id="suffix"),
        pytest.param(b"", problems.IncorrectResponse, id="empty"),
        pytest.param(b"\xff\xfe", problems.IncorrectResponse, id="not-utf8"),
    ],
)
def test_judge_body(body: bytes, outcome: type[problems.AcmeProblem] | None) -> None:
    problem = _judge_body(URL, body, KEYAUTH, "a.test")
    if outcome is None:
        assert problem is None
    else:
        assert type(problem) is outcome
        assert problem.identifier == "a.test"


def test_a_wrong_body_is_never_echoed() -> None:
    """Only its length and a hash reach the client: the relay fetches from inside the network."""
    secret = b"DB_PASSWORD=hunter2-internal\nAPI_KEY=abc123"
    problem = _judge_body(URL, secret, KEYAUTH, "a.test")
    assert problem is not None
    assert "hunter2" not in problem.detail and "DB_PASSWORD" not in problem.detail
    assert f"got {len(secret)} bytes (sha256 {hashlib.sha256(secret).hexdigest()[:16]}" in problem.detail


# --- settings ------------------------------------------------------------------------------------

BASE = {"RELAY_DOMAIN": "relay.example.test", "ACME_EMAIL": "ops@example.test", "DNS_PROVIDER": "rfc2136"}


def test_settings_defaults() -> None:
    s = Settings.parse(BASE)
    assert s.challenge_allow_loopback is False
    assert s.challenge_allowed_networks == ()


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False), ("no", False),
     ("", False)],
)
def test_settings_allow_loopback(raw: str, value: bool) -> None:
    assert Settings.parse({**BASE, "CHALLENGE_ALLOW_LOOPBACK": raw}).challenge_allow_loopback is value


def test_settings_allowed_networks() -> None:
    s = Settings.parse({**BASE, "CHALLENGE_ALLOWED_NETWORKS": " 169.254.10.0/24, fe80::/64 ,127.0.0.1"})
    assert s.challenge_allowed_networks == (
        ipaddress.ip_network("169.254.10.0/24"), ipaddress.ip_network("fe80::/64"), ipaddress.ip_network("127.0.0.1"),
    )


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        pytest.param("CHALLENGE_ALLOW_LOOPBACK", "maybe", id="bool-word"),
        pytest.param("CHALLENGE_ALLOWED_NETWORKS", "10.0.0.0/33", id="prefix-too-long"),
        pytest.param("CHALLENGE_ALLOWED_NETWORKS", "10.0.0.1/8", id="host-bits-set"),
        pytest.param("CHALLENGE_ALLOWED_NETWORKS", "intranet", id="not-a-network"),
    ],
)
def test_settings_errors_name_the_variable(key: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.parse({**BASE, key: raw})
