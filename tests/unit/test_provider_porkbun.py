"""Porkbun provider against recorded responses.

Shapes follow Porkbun's API v3 documentation, https://porkbun.com/api/json/v3/documentation:
"DNS Create Record" POST /dns/create/DOMAIN -> {"status": "SUCCESS", "id": ...}; "DNS Retrieve
Records by Domain, Subdomain and Type" POST /dns/retrieveByNameType/DOMAIN/TYPE/[SUBDOMAIN] ->
{"status": "SUCCESS", "records": [{"id", "name", "type", "content", "ttl", "prio", "notes"}]}
(ids and ttl are strings there); "DNS Delete Record by Domain and ID" POST
/dns/delete/DOMAIN/ID -> {"status": "SUCCESS"}; "Errors": any HTTP code other than 200, and
{"status": "ERROR", "message": "..."}. Error messages as Porkbun sends them ("Invalid API key.
(002)", "Domain is not opted in to API access.") and throttling (HTTP 503 with an openresty
HTML page) as reported in nrdcg/porkbun#3 and DNSControl/dnscontrol#3225.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import responses

from jackdaw.dns.base import ConfigError, DNSProviderError
from jackdaw.dns.providers.porkbun import PorkbunProvider
from jackdaw.dns.registry import build_provider

API = "https://api.porkbun.com/api/json/v3"
KEY, SECRET = "pk1_0123456789abcdef", "sk1_fedcba9876543210"
ENV = {"PORKBUN_API_KEY": KEY, "PORKBUN_SECRET_API_KEY": SECRET}
ZONE, FQDN = "borseth.ink", "_acme-challenge.www.borseth.ink"
MINE, WILDCARD, FOREIGN = "A" * 43, "B" * 43, "v=spf1 -all"
THROTTLE_PAGE = "<html><head><title>503 Service Temporarily Unavailable</title></head></html>"


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


def provider() -> PorkbunProvider:
    made = build_provider("porkbun", ENV)
    assert isinstance(made, PorkbunProvider)
    return made


def body(call: Any) -> dict[str, Any]:
    return dict(json.loads(call.request.body))


def record(record_id: str, content: str) -> dict[str, str]:
    return {"id": record_id, "name": FQDN, "type": "TXT", "content": content, "ttl": "600", "prio": "0",
            "notes": ""}


def assert_no_secret(text: str) -> None:
    assert KEY not in text and SECRET not in text


def test_present_then_cleanup_deletes_exactly_its_own_record(rsps: Any) -> None:
    rsps.post(f"{API}/dns/create/{ZONE}", json={"status": "SUCCESS", "id": 106926652})
    rsps.post(f"{API}/dns/create/{ZONE}", json={"status": "SUCCESS", "id": 106926659})
    rsps.post(f"{API}/dns/delete/{ZONE}/106926652", json={"status": "SUCCESS"})
    p = provider()
    p.present(ZONE, FQDN, MINE)
    p.present(ZONE, FQDN, WILDCARD)  # a wildcard and its base name share the record name
    p.cleanup(ZONE, FQDN, MINE)

    assert [body(c) for c in rsps.calls[:2]] == [
        {"secretapikey": SECRET, "apikey": KEY, "name": "_acme-challenge.www", "type": "TXT",
         "content": value, "ttl": "600"}
        for value in (MINE, WILDCARD)
    ]
    assert len(rsps.calls) == 3  # one delete, for 106926652 only; 106926659 untouched
    assert body(rsps.calls[2]) == {"secretapikey": SECRET, "apikey": KEY}


def test_cleanup_after_restart_finds_the_record_by_name_and_content(rsps: Any) -> None:
    rsps.post(f"{API}/dns/retrieveByNameType/{ZONE}/TXT/_acme-challenge.www", json={
        "status": "SUCCESS", "records": [record("1001", FOREIGN), record("1002", MINE), record("1003", WILDCARD)],
    })
    rsps.post(f"{API}/dns/delete/{ZONE}/1002", json={"status": "SUCCESS"})
    provider().cleanup(ZONE, FQDN, MINE)  # a fresh instance: no remembered id
    assert [c.request.url for c in rsps.calls] == [
        f"{API}/dns/retrieveByNameType/{ZONE}/TXT/_acme-challenge.www",
        f"{API}/dns/delete/{ZONE}/1002",
    ]


def test_cleanup_of_a_value_that_is_gone_deletes_nothing(rsps: Any) -> None:
    rsps.post(f"{API}/dns/retrieveByNameType/{ZONE}/TXT/_acme-challenge.www",
              json={"status": "SUCCESS", "records": [record("1003", WILDCARD)]})
    provider().cleanup(ZONE, FQDN, MINE)
    assert len(rsps.calls) == 1


def test_the_apex_is_the_empty_name(rsps: Any) -> None:
    rsps.post(f"{API}/dns/create/{ZONE}", json={"status": "SUCCESS", "id": "7"})
    provider().present(ZONE, ZONE + ".", MINE)
    assert body(rsps.calls[0])["name"] == ""


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        pytest.param(400, {"status": "ERROR", "message": "Invalid API key. (002)"},
                     "PORKBUN_SECRET_API_KEY", id="authentication-failure"),
        pytest.param(400, {"status": "ERROR", "message": "Domain is not opted in to API access."},
                     "API ACCESS", id="zone-not-enabled"),
        pytest.param(200, {"status": "ERROR", "message": "Invalid domain."}, "Invalid domain.", id="missing-zone"),
    ],
)
def test_api_errors_are_clear_and_carry_no_secret(
    rsps: Any, caplog: pytest.LogCaptureFixture, status: int, answer: dict[str, str], expected: str
) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.post(f"{API}/dns/create/{ZONE}", status=status, json=answer)
    with pytest.raises(DNSProviderError) as e:
        provider().present(ZONE, FQDN, MINE)
    assert expected in str(e.value) and answer["message"] in str(e.value)
    assert_no_secret(str(e.value) + caplog.text)


@pytest.mark.parametrize(
    ("status", "headers", "text"),
    [
        pytest.param(503, {}, THROTTLE_PAGE, id="http-503"),
        pytest.param(429, {}, "", id="http-429"),
        pytest.param(202, {"x-amzn-waf-action": "challenge"}, "", id="waf-challenge"),
    ],
)
def test_rate_limiting_is_reported_as_such(rsps: Any, status: int, headers: dict[str, str], text: str) -> None:
    rsps.post(f"{API}/dns/create/{ZONE}", status=status, headers=headers, body=text)
    with pytest.raises(DNSProviderError, match="rate limited") as e:
        provider().present(ZONE, FQDN, MINE)
    assert_no_secret(str(e.value))


def test_a_failed_delete_keeps_the_id_for_a_retry_and_spares_the_other_value(rsps: Any) -> None:
    rsps.post(f"{API}/dns/create/{ZONE}", json={"status": "SUCCESS", "id": "11"})
    rsps.post(f"{API}/dns/create/{ZONE}", json={"status": "SUCCESS", "id": "12"})
    p = provider()
    p.present(ZONE, FQDN, MINE)
    p.present(ZONE, FQDN, WILDCARD)

    rsps.post(f"{API}/dns/delete/{ZONE}/11", status=503, body=THROTTLE_PAGE)
    rsps.post(f"{API}/dns/delete/{ZONE}/12", json={"status": "SUCCESS"})
    with pytest.raises(DNSProviderError, match="rate limited"):
        p.cleanup(ZONE, FQDN, MINE)
    p.cleanup(ZONE, FQDN, WILDCARD)  # the other value is still removed

    rsps.replace(responses.POST, f"{API}/dns/delete/{ZONE}/11", json={"status": "SUCCESS"})
    p.cleanup(ZONE, FQDN, MINE)  # the retry reuses the remembered id, no look-up
    assert [c.request.url.rsplit("/", 1)[-1] for c in rsps.calls[2:]] == ["11", "12", "11"]


def test_connection_errors_become_provider_errors(rsps: Any) -> None:
    with pytest.raises(DNSProviderError, match="ConnectionError") as e:
        provider().present(ZONE, FQDN, MINE)  # nothing registered: responses refuses the connection
    assert_no_secret(str(e.value))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({"PORKBUN_SECRET_API_KEY": SECRET}, "PORKBUN_API_KEY", id="missing-api-key"),
        pytest.param({"PORKBUN_API_KEY": KEY}, "PORKBUN_SECRET_API_KEY", id="missing-secret-key"),
        pytest.param({**ENV, "PORKBUN_API_KEY": "  "}, "PORKBUN_API_KEY", id="blank-api-key"),
        pytest.param({**ENV, "PORKBUN_TTL": "300"}, "PORKBUN_TTL", id="ttl-below-600"),
        pytest.param({**ENV, "PORKBUN_TTL": "ten"}, "PORKBUN_TTL", id="ttl-not-a-number"),
        pytest.param({**ENV, "PORKBUN_API_URL": "ftp://x"}, "PORKBUN_API_URL", id="bad-api-url"),
        pytest.param({**ENV, "PORKBUN_HTTP_TIMEOUT": "0"}, "PORKBUN_HTTP_TIMEOUT", id="bad-timeout"),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:") as e:
        build_provider("porkbun", env)
    assert_no_secret(str(e.value))


def test_config_defaults_and_repr_hide_the_keys() -> None:
    p = provider()
    assert (p.config.api_url, p.config.ttl) == (API, 600)
    assert_no_secret(repr(p.config))
