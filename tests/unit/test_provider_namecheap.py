"""Namecheap provider against recorded responses.

Shapes follow Namecheap's API documentation: namecheap.domains.dns.getHosts
(https://www.namecheap.com/support/api/methods/domains-dns/get-hosts/: DomainDNSGetHostsResult
with one host element per record, attributes HostId, Name, Type, Address, MXPref, TTL; error
2019166 "Domain not found"), namecheap.domains.dns.setHosts
(https://www.namecheap.com/support/api/methods/domains-dns/set-hosts/: SLD, TLD, HostName[n],
RecordType[n], Address[n], MXPref[n], TTL[n], EmailType; answers DomainDNSSetHostsResult
IsSuccess; "All host records that are not included into the API call will be deleted") and the
global error codes (https://www.namecheap.com/support/api/global-parameters/). The live API
writes ``<host>`` in lower case and adds EmailType and AssociatedAppTitle/FriendlyName/IsActive/
IsDDNSEnabled, as in lego's sandbox recordings (go-acme/lego providers/dns/namecheap/internal/
fixtures/getHosts_success1.xml, setHosts_errorBadAPIKey1.xml). HTTP 405 is Namecheap's rate
limit signal (namecheap/go-namecheap-sdk namecheap/transport.go).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses

from jackdaw.dns.base import ConfigError, DNSProviderError
from jackdaw.dns.providers.namecheap import PRODUCTION_URL, SANDBOX_URL, NamecheapProvider
from jackdaw.dns.registry import build_provider

API_KEY = "56b4c87ef4fd49cb96d915c0db68194"
ENV = {"NAMECHEAP_API_USER": "apiexample", "NAMECHEAP_API_KEY": API_KEY, "NAMECHEAP_CLIENT_IP": "192.168.1.109"}
ZONE, FQDN = "example.com", "_acme-challenge.www.example.com"
MINE, WILDCARD = "A" * 43, "B" * 43

HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<ApiResponse Status="{status}" xmlns="http://api.namecheap.com/xml.response">'
TAIL = "<Server>PHX01SBAPI01</Server><GMTTimeDifference>--5:00</GMTTimeDifference><ExecutionTime>0.1</ExecutionTime>"

# other records of the zone, every kind setHosts must write back untouched
OTHERS = [
    ("217076", "www", "A", "10.0.0.2", "10", "1200"),
    ("217069", "@", "AAAA", "2001:db8::1", "10", "1799"),
    ("217075", "*", "CNAME", "example.com.", "10", "1799"),
    ("217073", "example.com", "MXE", "10.0.0.5", "10", "1800"),
    ("217077", "xyz", "URL", "https://google.com", "10", "1799"),
    ("217078", "@", "TXT", "v=spf1 include:spf.efwd.registrar-servers.com ~all", "10", "1799"),
    ("217079", "_acme-challenge.www", "TXT", "kept by someone else", "10", "60"),
]


def get_hosts(*extra: tuple[str, str, str, str, str, str], tag: str = "host", email: str = "MXE") -> str:
    hosts = "".join(
        f'<{tag} HostId="{i}" Name="{n}" Type="{t}" Address="{a}" MXPref="{m}" TTL="{ttl}" AssociatedAppTitle="" '
        f'FriendlyName="" IsActive="true" IsDDNSEnabled="false" />'
        for i, n, t, a, m, ttl in [*OTHERS, *extra]
    )
    email_attr = f' EmailType="{email}"' if email else ""
    return (HEAD.format(status="OK") + "<Errors /><Warnings /><RequestedCommand>namecheap.domains.dns.getHosts"
            '</RequestedCommand><CommandResponse Type="namecheap.domains.dns.getHosts">'
            f'<DomainDNSGetHostsResult Domain="{ZONE}"{email_attr} IsUsingOurDNS="true">{hosts}'
            "</DomainDNSGetHostsResult></CommandResponse>" + TAIL + "</ApiResponse>")


def set_hosts(success: str = "true") -> str:
    return (HEAD.format(status="OK") + "<Errors /><Warnings /><RequestedCommand>namecheap.domains.dns.setHosts"
            '</RequestedCommand><CommandResponse Type="namecheap.domains.dns.setHosts">'
            f'<DomainDNSSetHostsResult Domain="{ZONE}" IsSuccess="{success}" /></CommandResponse>'
            + TAIL + "</ApiResponse>")


def error(number: str, message: str) -> str:
    return (HEAD.format(status="ERROR") + f'<Errors><Error Number="{number}">{message}</Error></Errors>'
            "<Warnings /><RequestedCommand />" + TAIL + "</ApiResponse>")


def ours(value: str, host_id: str = "300") -> tuple[str, str, str, str, str, str]:
    return (host_id, "_acme-challenge.www", "TXT", value, "10", "120")


def form(call: Any) -> dict[str, str]:
    return dict(parse_qsl(call.request.body, keep_blank_values=True))


def host_params(*hosts: tuple[str, str, str, str, str, str]) -> dict[str, str]:
    params = {}
    for n, (_, name, rtype, address, mxpref, ttl) in enumerate(hosts, start=1):
        params |= {f"HostName{n}": name, f"RecordType{n}": rtype, f"Address{n}": address, f"MXPref{n}": mxpref,
                   f"TTL{n}": ttl}
    return params


def expected_set(*hosts: tuple[str, str, str, str, str, str], email: str = "MXE") -> dict[str, str]:
    auth = {"ApiUser": "apiexample", "ApiKey": API_KEY, "UserName": "apiexample", "ClientIp": "192.168.1.109"}
    extra = {"EmailType": email} if email else {}
    return {**auth, "Command": "namecheap.domains.dns.setHosts", "SLD": "example", "TLD": "com",
            **host_params(*hosts), **extra}


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


def provider(**extra: str) -> NamecheapProvider:
    made = build_provider("namecheap", {**ENV, **extra})
    assert isinstance(made, NamecheapProvider)
    return made


def test_present_writes_back_every_other_host_exactly(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=get_hosts())
    rsps.post(PRODUCTION_URL, body=set_hosts())
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(MINE)))  # the read-back
    provider().present(ZONE, FQDN, MINE)
    assert form(rsps.calls[0]) == {"ApiUser": "apiexample", "ApiKey": API_KEY, "UserName": "apiexample",
                                   "ClientIp": "192.168.1.109", "Command": "namecheap.domains.dns.getHosts",
                                   "SLD": "example", "TLD": "com"}
    assert form(rsps.calls[1]) == expected_set(*OTHERS, ours(MINE))
    assert form(rsps.calls[2])["Command"] == "namecheap.domains.dns.getHosts"
    assert all("?" not in c.request.url for c in rsps.calls)  # the API key travels in the body only


def test_cleanup_removes_only_its_own_value(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(MINE, "300"), ours(WILDCARD, "301")))
    rsps.post(PRODUCTION_URL, body=set_hosts())
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(WILDCARD, "301")))
    provider().cleanup(ZONE, FQDN, MINE)
    assert form(rsps.calls[1]) == expected_set(*OTHERS, ours(WILDCARD, "301"))


def test_cleanup_of_a_value_that_is_gone_writes_nothing(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(WILDCARD)))
    provider().cleanup(ZONE, FQDN, MINE)
    assert len(rsps.calls) == 1


def test_a_retried_present_writes_nothing(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(MINE)))
    provider().present(ZONE, FQDN, MINE)
    assert len(rsps.calls) == 1


def test_documented_host_tag_and_no_email_type(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=get_hosts(tag="Host", email=""))
    rsps.post(PRODUCTION_URL, body=set_hosts())
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(MINE), tag="Host", email=""))
    provider().present(ZONE, FQDN, MINE)
    assert form(rsps.calls[1]) == expected_set(*OTHERS, ours(MINE), email="")


def test_a_multi_label_tld_is_split_after_the_first_label(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=error("2019166", "Domain not found"))
    with pytest.raises(DNSProviderError):
        provider().present("example.co.uk", "_acme-challenge.example.co.uk", MINE)
    assert (form(rsps.calls[0])["SLD"], form(rsps.calls[0])["TLD"]) == ("example", "co.uk")


@pytest.mark.parametrize(
    ("number", "message", "hint"),
    [
        pytest.param("1011102", "API Key is invalid or API access has not been enabled", "NAMECHEAP_API_KEY",
                     id="authentication-failure"),
        pytest.param("1011150", "Invalid request IP: 192.168.1.109", "NAMECHEAP_CLIENT_IP", id="ip-not-whitelisted"),
        pytest.param("2019166", "Domain not found", "registered in this Namecheap account", id="missing-zone"),
    ],
)
def test_api_errors_are_clear_and_carry_no_secret(
    rsps: Any, caplog: pytest.LogCaptureFixture, number: str, message: str, hint: str
) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.post(PRODUCTION_URL, body=error(number, message))
    with pytest.raises(DNSProviderError) as e:
        provider().present(ZONE, FQDN, MINE)
    assert f"{number}: {message}" in str(e.value) and hint in str(e.value)
    assert API_KEY not in str(e.value) + caplog.text


@pytest.mark.parametrize("status", [pytest.param(405, id="http-405"), pytest.param(429, id="http-429")])
def test_rate_limiting(rsps: Any, status: int) -> None:
    rsps.post(PRODUCTION_URL, status=status, body="")
    with pytest.raises(DNSProviderError, match=rf"rate limited \(HTTP {status}") as e:
        provider().present(ZONE, FQDN, MINE)
    assert API_KEY not in str(e.value)


def test_set_hosts_without_success_is_an_error(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=get_hosts())
    rsps.post(PRODUCTION_URL, body=set_hosts("false"))
    with pytest.raises(DNSProviderError, match="IsSuccess"):
        provider().present(ZONE, FQDN, MINE)


def test_a_failed_clean_up_leaves_the_value_for_a_retry_and_spares_the_other(rsps: Any) -> None:
    p = provider()
    both = get_hosts(ours(MINE, "300"), ours(WILDCARD, "301"))
    rsps.post(PRODUCTION_URL, body=both)
    rsps.post(PRODUCTION_URL, status=405, body="")
    with pytest.raises(DNSProviderError, match="rate limited"):
        p.cleanup(ZONE, FQDN, MINE)

    rsps.post(PRODUCTION_URL, body=both)  # the failed write changed nothing
    rsps.post(PRODUCTION_URL, body=set_hosts())
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(MINE, "300")))
    p.cleanup(ZONE, FQDN, WILDCARD)  # the other value is still removed ...
    assert form(rsps.calls[3]) == expected_set(*OTHERS, ours(MINE, "300"))  # ... and ours is kept for the retry

    rsps.post(PRODUCTION_URL, body=get_hosts(ours(MINE, "300")))
    rsps.post(PRODUCTION_URL, body=set_hosts())
    rsps.post(PRODUCTION_URL, body=get_hosts())
    p.cleanup(ZONE, FQDN, MINE)
    assert form(rsps.calls[6]) == expected_set(*OTHERS)


def test_a_batch_is_one_read_modify_write(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body=get_hosts())
    rsps.post(PRODUCTION_URL, body=set_hosts())
    rsps.post(PRODUCTION_URL, body=get_hosts(ours(MINE, "300"), ours(WILDCARD, "301")))
    provider().present_many(ZONE, [(FQDN, MINE), (FQDN, WILDCARD)])
    assert len(rsps.calls) == 3
    assert form(rsps.calls[1]) == expected_set(*OTHERS, ours(MINE), ours(WILDCARD))


def test_a_write_lost_to_another_writer_is_an_error(rsps: Any) -> None:
    """Someone else's setHosts landed between ours and the read-back: ours is gone, and so is a
    host we wrote back. Reported now, not discovered when the CA finds no TXT."""
    rsps.post(PRODUCTION_URL, body=get_hosts())
    rsps.post(PRODUCTION_URL, body=set_hosts())
    rsps.post(PRODUCTION_URL, body=get_hosts().replace('Name="www" Type="A"', 'Name="ww2" Type="A"'))
    with pytest.raises(DNSProviderError, match="read back differs") as e:
        provider().present(ZONE, FQDN, MINE)
    assert f"_acme-challenge.www={MINE}" in str(e.value) and "www A" in str(e.value)


def test_not_xml_is_an_error(rsps: Any) -> None:
    rsps.post(PRODUCTION_URL, body="<html>maintenance")
    with pytest.raises(DNSProviderError, match="not XML"):
        provider().present(ZONE, FQDN, MINE)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({k: v for k, v in ENV.items() if k != "NAMECHEAP_API_USER"}, "NAMECHEAP_API_USER",
                     id="missing-api-user"),
        pytest.param({k: v for k, v in ENV.items() if k != "NAMECHEAP_API_KEY"}, "NAMECHEAP_API_KEY",
                     id="missing-api-key"),
        pytest.param({k: v for k, v in ENV.items() if k != "NAMECHEAP_CLIENT_IP"}, "NAMECHEAP_CLIENT_IP",
                     id="missing-client-ip"),
        pytest.param({**ENV, "NAMECHEAP_CLIENT_IP": "2001:db8::1"}, "NAMECHEAP_CLIENT_IP", id="client-ip-not-ipv4"),
        pytest.param({**ENV, "NAMECHEAP_SANDBOX": "maybe"}, "NAMECHEAP_SANDBOX", id="bad-sandbox"),
        pytest.param({**ENV, "NAMECHEAP_API_URL": "api.namecheap.com"}, "NAMECHEAP_API_URL", id="bad-api-url"),
        pytest.param({**ENV, "NAMECHEAP_TTL": "30"}, "NAMECHEAP_TTL", id="ttl-below-60"),
        pytest.param({**ENV, "NAMECHEAP_HTTP_TIMEOUT": "0"}, "NAMECHEAP_HTTP_TIMEOUT", id="bad-timeout"),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:") as e:
        build_provider("namecheap", env)
    assert API_KEY not in str(e.value)


def test_config_defaults_sandbox_and_repr() -> None:
    p = provider()
    assert (p.config.username, p.config.api_url, p.config.ttl) == ("apiexample", PRODUCTION_URL, 120)
    assert provider(NAMECHEAP_SANDBOX="true", NAMECHEAP_USERNAME="client").config.api_url == SANDBOX_URL
    assert provider(NAMECHEAP_USERNAME="client").config.username == "client"
    assert API_KEY not in repr(p.config)
