"""Pure pieces of jackdaw.dns: address parsing, resolver construction, answer parsing."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from jackdaw.dns.propagation import PropagationTimeout, txt_query, txt_values
from jackdaw.dns.resolver import DNSLookupError, make_resolver, parse_hostport


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1.2.3.4", ("1.2.3.4", 53), id="v4"),
        pytest.param("1.2.3.4:5353", ("1.2.3.4", 5353), id="v4-port"),
        pytest.param(" 1.2.3.4:53 ", ("1.2.3.4", 53), id="v4-whitespace"),
        pytest.param("[::1]:8053", ("::1", 8053), id="v6-brackets-port"),
        pytest.param("[::1]", ("::1", 53), id="v6-brackets"),
        pytest.param("::1", ("::1", 53), id="v6-bare"),
        pytest.param("2001:db8::53", ("2001:db8::53", 53), id="v6-bare-long"),
        pytest.param("ns1.example.com", ("ns1.example.com", 53), id="host"),
        pytest.param("ns1.example.com:5353", ("ns1.example.com", 5353), id="host-port"),
        pytest.param("127.0.0.1:65535", ("127.0.0.1", 65535), id="max-port"),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, 53) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(":53", id="no-host"),
        pytest.param("1.2.3.4:", id="empty-port"),
        pytest.param("1.2.3.4:dns", id="named-port"),
        pytest.param("1.2.3.4:0", id="port-zero"),
        pytest.param("1.2.3.4:65536", id="port-too-big"),
        pytest.param("1.2.3.4:-1", id="port-negative"),
        pytest.param("[::1", id="unterminated"),
        pytest.param("[::1]53", id="junk-after-bracket"),
        pytest.param("[]:53", id="empty-brackets"),
        pytest.param("[ns1.example.com]:53", id="brackets-not-v6"),
        pytest.param("1:2:3", id="bad-bare-v6"),
    ],
)
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hostport(text, 53)


def test_default_port_is_the_callers() -> None:
    assert parse_hostport("10.0.0.1", 8053) == ("10.0.0.1", 8053)


@pytest.mark.parametrize(
    ("nameserver", "address", "port"),
    [
        pytest.param("127.0.0.1:8053", "127.0.0.1", 8053, id="v4-port"),
        pytest.param("[::1]:8053", "::1", 8053, id="v6-port"),
        pytest.param("192.0.2.53", "192.0.2.53", 53, id="default-port"),
    ],
)
def test_make_resolver_uses_only_the_given_server(nameserver: str, address: str, port: int) -> None:
    resolver = make_resolver(nameserver)
    [server] = resolver.nameservers
    assert not isinstance(server, str)
    assert (server.answer_nameserver(), server.answer_port()) == (address, port)
    assert resolver.cache is None
    assert resolver.lifetime <= 5


def _answer(rcode: dns.rcode.Rcode, *rrsets: dns.rrset.RRset) -> dns.message.Message:
    response = dns.message.make_response(txt_query("_acme-challenge.x.example.test"))
    response.set_rcode(rcode)
    response.answer.extend(rrsets)
    return response


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(_answer(dns.rcode.NXDOMAIN), set(), id="nxdomain"),
        pytest.param(_answer(dns.rcode.NOERROR), set(), id="nodata"),
        pytest.param(
            _answer(
                dns.rcode.NOERROR,
                dns.rrset.from_text("x.", 60, "IN", "TXT", '"one"', '"tw" "o"'),
            ),
            {"one", "two"},
            id="values-and-split-strings",
        ),
        pytest.param(
            _answer(
                dns.rcode.NOERROR,
                dns.rrset.from_text("x.", 60, "IN", "CNAME", "y."),
                dns.rrset.from_text("y.", 60, "IN", "TXT", '"v"'),
            ),
            {"v"},
            id="behind-cname",
        ),
        pytest.param(
            _answer(dns.rcode.SERVFAIL, dns.rrset.from_text("x.", 60, "IN", "TXT", '"v"')),
            set(),
            id="servfail-ignored",
        ),
    ],
)
def test_txt_values(response: dns.message.Message, expected: set[str]) -> None:
    assert txt_values(response) == expected


def test_txt_query_does_not_ask_for_recursion() -> None:
    assert not txt_query("x.example.test").flags & dns.flags.RD


def test_propagation_timeout_names_record_and_servers() -> None:
    error = PropagationTimeout("_acme-challenge.x.test", ["ns1.x.test", "ns2.x.test"])
    assert isinstance(error, DNSLookupError)
    assert error.fqdn == "_acme-challenge.x.test"
    assert str(error) == "TXT _acme-challenge.x.test not yet served by: ns1.x.test, ns2.x.test"


def test_propagation_timeout_tells_unreachable_servers_apart() -> None:
    error = PropagationTimeout("_acme-challenge.x.test", ["ns1.x.test"], ["ns9.x.test"])
    assert error.unreachable == ["ns9.x.test"]
    assert str(error) == ("TXT _acme-challenge.x.test not yet served by: ns1.x.test; "
                          "no answer from any address of: ns9.x.test")
    assert str(PropagationTimeout("n.x.test", [], ["ns9.x.test"])) == (
        "TXT n.x.test no answer from any address of: ns9.x.test")
