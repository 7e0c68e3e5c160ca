"""Cloudflare provider against recorded responses.

Shapes follow Cloudflare's API reference, https://developers.cloudflare.com/api/resources/dns/
subresources/records/ and .../resources/zones/: every answer is the envelope {"success",
"errors": [{"code", "message"}], "messages", "result"} (lists add "result_info"); a DNS record
is {"id", "name", "type", "content", "proxiable", "proxied", "ttl", "settings", "meta", "comment",
"tags", "created_on", "modified_on"}; "Delete DNS Record" answers just {"result": {"id"}}. The TXT
"content must consist of quoted character strings (RFC 1035)" (TXTRecord model). Rate limits:
https://developers.cloudflare.com/fundamentals/api/reference/limits/ (HTTP 429, retry-after;
message as reported in lablabs/cloudflare-exporter#74). Authentication error 10000 with HTTP 403
as in Cloudflare's troubleshooting page "403 Authentication error when creating DNS records".
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import responses
from responses import matchers

from jackdaw.dns.base import ConfigError, DNSProviderError
from jackdaw.dns.providers.cloudflare import CloudflareProvider
from jackdaw.dns.registry import build_provider

API = "https://api.cloudflare.com/client/v4"
TOKEN = "Sn3lZJTBX6kkg7OdcBUAxOO963GEIyGQqnFTOFYY"
ENV = {"CLOUDFLARE_API_TOKEN": TOKEN}
ZONE, FQDN = "example.com", "_acme-challenge.www.example.com"
ZONE_ID = "023e105f4ecef8ad9ca31a8372d0c353"
RECORDS = f"{API}/zones/{ZONE_ID}/dns_records"
MINE, WILDCARD, FOREIGN = "A" * 43, "B" * 43, "v=spf1 -all"


def envelope(result: Any, success: bool = True, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"success": success, "errors": errors or [], "messages": [], "result": result}


def deleted(record_id: str) -> dict[str, Any]:
    return {"result": {"id": record_id}}  # exactly the documented "Delete DNS Record" answer


def record(record_id: str, content: str) -> dict[str, Any]:
    return {"id": record_id, "name": FQDN, "type": "TXT", "content": content, "proxiable": False, "proxied": False,
            "ttl": 60, "settings": {}, "meta": {}, "comment": None, "tags": [],
            "created_on": "2014-01-01T05:20:00.12345Z", "modified_on": "2014-01-01T05:20:00.12345Z"}


ZONES = {**envelope([{"id": ZONE_ID, "name": ZONE, "status": "active", "paused": False, "type": "full"}]),
         "result_info": {"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1}}
AUTH_ERROR = envelope(None, False, [{"code": 10000, "message": "Authentication error"}])
THROTTLED = envelope(None, False, [{"code": 971, "message": "Please wait and consider throttling your request speed"}])


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


def provider(**extra: str) -> CloudflareProvider:
    made = build_provider("cloudflare", {**ENV, **extra})
    assert isinstance(made, CloudflareProvider)
    return made


def listing(*records: dict[str, Any]) -> dict[str, Any]:
    info = {"page": 1, "per_page": 100, "count": len(records), "total_count": len(records), "total_pages": 1}
    return {**envelope(list(records)), "result_info": info}


def quoted(value: str) -> str:
    return f'"{value}"'


def test_present_then_cleanup_deletes_exactly_its_own_record(rsps: Any) -> None:
    bearer = matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})
    rsps.get(f"{API}/zones", json=ZONES, match=[matchers.query_param_matcher({"name": ZONE}), bearer])
    rsps.post(RECORDS, json=envelope(record("372e67954025e0ba6aaa6d586b9e0b59", quoted(MINE))), match=[bearer])
    rsps.post(RECORDS, json=envelope(record("372e67954025e0ba6aaa6d586b9e0b60", quoted(WILDCARD))), match=[bearer])
    rsps.delete(f"{RECORDS}/372e67954025e0ba6aaa6d586b9e0b59",
                json=deleted("372e67954025e0ba6aaa6d586b9e0b59"), match=[bearer])
    p = provider()
    p.present(ZONE, FQDN, MINE)
    p.present(ZONE, FQDN, WILDCARD)  # a wildcard and its base name share the record name
    p.cleanup(ZONE, FQDN, MINE)

    posts = [json.loads(c.request.body) for c in rsps.calls if c.request.method == "POST"]
    assert posts == [{"type": "TXT", "name": FQDN, "content": quoted(v), "ttl": 60} for v in (MINE, WILDCARD)]
    assert [c.request.method for c in rsps.calls] == ["GET", "POST", "POST", "DELETE"]  # zone id looked up once


def test_cleanup_after_restart_finds_the_record_by_name_and_content(rsps: Any) -> None:
    rsps.get(RECORDS, json=listing(record("1", FOREIGN), record("2", quoted(MINE)), record("3", quoted(WILDCARD))),
             match=[matchers.query_param_matcher({"type": "TXT", "name": FQDN, "per_page": "100"})])
    rsps.delete(f"{RECORDS}/2", json=deleted("2"))
    provider(CLOUDFLARE_ZONE_ID=ZONE_ID).cleanup(ZONE, FQDN, MINE)  # fresh instance; zone id given: no zone call
    assert [c.request.method for c in rsps.calls] == ["GET", "DELETE"]


def test_an_unquoted_value_left_by_another_client_is_found_too(rsps: Any) -> None:
    rsps.get(RECORDS, json=listing(record("2", MINE), record("3", quoted(WILDCARD))))
    rsps.delete(f"{RECORDS}/2", json=deleted("2"))
    provider(CLOUDFLARE_ZONE_ID=ZONE_ID).cleanup(ZONE, FQDN, MINE)


def test_a_retried_present_adopts_the_identical_record(rsps: Any) -> None:
    rsps.post(RECORDS, status=400,
              json=envelope(None, False, [{"code": 81058, "message": "An identical record already exists."}]))
    rsps.get(RECORDS, json=listing(record("9", quoted(MINE))))
    rsps.delete(f"{RECORDS}/9", json=deleted("9"))
    p = provider(CLOUDFLARE_ZONE_ID=ZONE_ID)
    p.present(ZONE, FQDN, MINE)
    p.cleanup(ZONE, FQDN, MINE)  # uses the adopted id: no second look-up
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "DELETE"]


def test_authentication_failure(rsps: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.get(f"{API}/zones", status=403, json=AUTH_ERROR)
    with pytest.raises(DNSProviderError, match="authentication failed") as e:
        provider().present(ZONE, FQDN, MINE)
    assert "10000: Authentication error" in str(e.value) and "CLOUDFLARE_API_TOKEN" in str(e.value)
    assert TOKEN not in str(e.value) + caplog.text


def test_missing_zone(rsps: Any) -> None:
    empty = {**envelope([]), "result_info": {"page": 1, "per_page": 20, "count": 0, "total_count": 0}}
    rsps.get(f"{API}/zones", json=empty)
    with pytest.raises(DNSProviderError, match=r"no zone named example\.com"):
        provider().present(ZONE, FQDN, MINE)


def test_rate_limiting(rsps: Any) -> None:
    rsps.post(RECORDS, status=429, json=THROTTLED, headers={"Retry-After": "300"})
    with pytest.raises(DNSProviderError, match=r"rate limited \(HTTP 429, retry after 300 s\)") as e:
        provider(CLOUDFLARE_ZONE_ID=ZONE_ID).present(ZONE, FQDN, MINE)
    assert "971" in str(e.value) and TOKEN not in str(e.value)


def test_a_failed_delete_keeps_the_id_for_a_retry_and_spares_the_other_value(rsps: Any) -> None:
    rsps.post(RECORDS, json=envelope(record("11", quoted(MINE))))
    rsps.post(RECORDS, json=envelope(record("12", quoted(WILDCARD))))
    p = provider(CLOUDFLARE_ZONE_ID=ZONE_ID)
    p.present(ZONE, FQDN, MINE)
    p.present(ZONE, FQDN, WILDCARD)

    rsps.delete(f"{RECORDS}/11", status=429, json=THROTTLED)
    rsps.delete(f"{RECORDS}/12", json=deleted("12"))
    with pytest.raises(DNSProviderError, match="rate limited"):
        p.cleanup(ZONE, FQDN, MINE)
    p.cleanup(ZONE, FQDN, WILDCARD)  # the other value is still removed

    # meanwhile someone removed record 11 by hand: "does not exist" counts as done
    rsps.replace(responses.DELETE, f"{RECORDS}/11", status=404,
                 json=envelope(None, False, [{"code": 81044, "message": "Record does not exist."}]))
    p.cleanup(ZONE, FQDN, MINE)
    assert [c.request.url.rsplit("/", 1)[-1] for c in rsps.calls[2:]] == ["11", "12", "11"]


def test_other_api_errors_are_reported_with_their_codes(rsps: Any) -> None:
    invalid = [{"code": 9005, "message": "Content for TXT record is invalid."}]
    rsps.post(RECORDS, status=400, json=envelope(None, False, invalid))
    with pytest.raises(DNSProviderError, match=r"HTTP 400: 9005: Content for TXT record is invalid\."):
        provider(CLOUDFLARE_ZONE_ID=ZONE_ID).present(ZONE, FQDN, MINE)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({}, "CLOUDFLARE_API_TOKEN", id="missing-token"),
        pytest.param({"CLOUDFLARE_API_TOKEN": " "}, "CLOUDFLARE_API_TOKEN", id="blank-token"),
        pytest.param({**ENV, "CLOUDFLARE_TTL": "30"}, "CLOUDFLARE_TTL", id="ttl-below-60"),
        pytest.param({**ENV, "CLOUDFLARE_TTL": "soon"}, "CLOUDFLARE_TTL", id="ttl-not-a-number"),
        pytest.param({**ENV, "CLOUDFLARE_API_URL": "api.cloudflare.com"}, "CLOUDFLARE_API_URL", id="bad-api-url"),
        pytest.param({**ENV, "CLOUDFLARE_HTTP_TIMEOUT": "-1"}, "CLOUDFLARE_HTTP_TIMEOUT", id="bad-timeout"),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:") as e:
        build_provider("cloudflare", env)
    assert TOKEN not in str(e.value)


def test_config_defaults_and_repr_hide_the_token() -> None:
    p = provider(CLOUDFLARE_TTL="1")
    assert (p.config.api_url, p.config.ttl, p.config.zone_id) == (API, 1, None)
    assert TOKEN not in repr(p.config)
