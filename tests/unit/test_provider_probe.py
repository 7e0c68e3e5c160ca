"""Each provider's read-only `probe` (jackdaw check --online) against recorded responses.

Shapes follow each API's documentation as tests/unit/test_provider_*.py record them: the
Cloudflare v4 envelope (List Zones, Zone Details), Porkbun's /ping ({"status": "SUCCESS",
"yourIp"}), Namecheap's namecheap.domains.getList XML, acme-dns's GET /health (200, empty
body), and moto's Route 53 for ListHostedZonesByName / GetHostedZone. Every probe is a read:
the recorded mocks would fail the test on any other request (responses asserts all calls).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import responses
from moto import mock_aws

from jackdaw.dns.base import DNSProviderError
from jackdaw.dns.registry import build_provider

CF = "https://api.cloudflare.com/client/v4"
PB = "https://api.porkbun.com/api/json/v3"
NC = "https://api.namecheap.com/xml.response"
NC_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<ApiResponse Status="{status}" xmlns="http://api.namecheap.com/xml.response">'


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def cf_envelope(result: Any, success: bool = True, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"success": success, "errors": errors or [], "messages": [], "result": result}


def test_cloudflare_lists_the_zones_the_token_sees(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{CF}/zones", json={**cf_envelope([{"id": "023e105f4ecef8ad9ca31a8372d0c353", "name": "example.com"}]),
                                  "result_info": {"page": 1, "per_page": 50, "count": 1, "total_count": 1}})
    provider = build_provider("cloudflare", {"CLOUDFLARE_API_TOKEN": "t0ken-value-0123456789"})
    assert provider.probe() == "token sees 1 zone(s): example.com"
    assert rsps.calls[0].request.method == "GET"
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer t0ken-value-0123456789"


def test_cloudflare_reads_the_configured_zone(rsps: responses.RequestsMock) -> None:
    zone_id = "023e105f4ecef8ad9ca31a8372d0c353"
    rsps.get(f"{CF}/zones/{zone_id}", json=cf_envelope({"id": zone_id, "name": "example.com", "status": "active"}))
    provider = build_provider("cloudflare", {"CLOUDFLARE_API_TOKEN": "t", "CLOUDFLARE_ZONE_ID": zone_id})
    assert provider.probe() == "token reads zone example.com"


def test_cloudflare_bad_token(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{CF}/zones", status=403,
             json=cf_envelope(None, False, [{"code": 10000, "message": "Authentication error"}]))
    with pytest.raises(DNSProviderError, match=r"authentication failed.*CLOUDFLARE_API_TOKEN"):
        build_provider("cloudflare", {"CLOUDFLARE_API_TOKEN": "t"}).probe()


def test_cloudflare_token_without_zones(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{CF}/zones", json=cf_envelope([]))
    with pytest.raises(DNSProviderError, match="sees no zone"):
        build_provider("cloudflare", {"CLOUDFLARE_API_TOKEN": "t"}).probe()


PORKBUN = {"PORKBUN_API_KEY": "pk1_0123456789abcdef", "PORKBUN_SECRET_API_KEY": "sk1_0123456789abcdef"}


def test_porkbun_ping(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{PB}/ping", json={"status": "SUCCESS", "yourIp": "203.0.113.7"})
    assert build_provider("porkbun", PORKBUN).probe() == "API keys accepted (Porkbun sees this relay as 203.0.113.7)"
    assert json.loads(rsps.calls[0].request.body or b"{}") == {"apikey": PORKBUN["PORKBUN_API_KEY"],
                                                               "secretapikey": PORKBUN["PORKBUN_SECRET_API_KEY"]}


def test_porkbun_bad_keys(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{PB}/ping", status=400, json={"status": "ERROR", "message": "Invalid API key. (002)"})
    with pytest.raises(DNSProviderError, match=r"Invalid API key.*check PORKBUN_API_KEY") as e:
        build_provider("porkbun", PORKBUN).probe()
    assert PORKBUN["PORKBUN_SECRET_API_KEY"] not in str(e.value)


NAMECHEAP = {"NAMECHEAP_API_USER": "apiuser", "NAMECHEAP_API_KEY": "0123456789abcdef0123456789abcdef",
             "NAMECHEAP_CLIENT_IP": "203.0.113.7"}


def test_namecheap_lists_domains(rsps: responses.RequestsMock) -> None:
    body = (NC_HEAD.format(status="OK") + "<Errors /><RequestedCommand>namecheap.domains.getList</RequestedCommand>"
            '<CommandResponse Type="namecheap.domains.getList"><DomainGetListResult>'
            '<Domain ID="127" Name="example.com" User="apiuser" Created="02/15/2016" Expires="02/15/2027" '
            'IsExpired="false" IsLocked="false" AutoRenew="false" WhoisGuard="ENABLED" IsPremium="false" '
            'IsOurDNS="true"/></DomainGetListResult><Paging><TotalItems>1</TotalItems><CurrentPage>1</CurrentPage>'
            "<PageSize>20</PageSize></Paging></CommandResponse><Server>WEB1-SANDBOX1</Server>"
            "<GMTTimeDifference>--5:00</GMTTimeDifference><ExecutionTime>0.011</ExecutionTime></ApiResponse>")
    rsps.post(NC, body=body)
    assert build_provider("namecheap", NAMECHEAP).probe() == "API access accepted; 1 domain(s) listed: example.com"
    assert "Command=namecheap.domains.getList" in (rsps.calls[0].request.body or "")


def test_namecheap_ip_not_whitelisted(rsps: responses.RequestsMock) -> None:
    body = (NC_HEAD.format(status="ERROR") + '<Errors><Error Number="1011150">Parameter RequestIP is invalid'
            "</Error></Errors><Warnings /><RequestedCommand>namecheap.domains.getList</RequestedCommand>"
            "</ApiResponse>")
    rsps.post(NC, body=body)
    with pytest.raises(DNSProviderError, match=r"1011150.*NAMECHEAP_CLIENT_IP is whitelisted"):
        build_provider("namecheap", NAMECHEAP).probe()


def test_acme_dns_health(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    credentials = tmp_path / "acme-dns.json"
    credentials.write_text(json.dumps({"www.example.com": {
        "username": "c36f50e8-4632-44f0-83fe-e070fef28a10", "password": "htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z",
        "fulldomain": "1f6f6a08-0e0c-4f42-9c74-e9a1d2dc8a37.auth.example.org",
        "subdomain": "1f6f6a08-0e0c-4f42-9c74-e9a1d2dc8a37"}}))
    env = {"ACME_DNS_API_URL": "https://auth.example.org", "ACME_DNS_CREDENTIALS": str(credentials)}
    rsps.get("https://auth.example.org/health", status=200, body="")
    assert build_provider("acme-dns", env).probe().startswith("the API answers; 1 account(s)")
    rsps.replace(responses.GET, "https://auth.example.org/health", status=502)
    with pytest.raises(DNSProviderError, match="HTTP 502"):
        build_provider("acme-dns", env).probe()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with mock_aws():
        yield


AWS = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def test_route53_lists_hosted_zones(aws: None) -> None:
    provider = build_provider("route53", AWS)
    with pytest.raises(DNSProviderError, match="see no hosted zone"):
        provider.probe()
    client = boto3.client("route53", region_name="us-east-1", aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"])
    zone_id = client.create_hosted_zone(Name="example.com.", CallerReference="probe")["HostedZone"]["Id"]
    assert provider.probe() == "credentials see 1 hosted zone(s): example.com"
    configured = build_provider("route53", {**AWS, "AWS_HOSTED_ZONE_ID": zone_id})
    assert configured.probe() == "credentials read hosted zone example.com"


def test_none_and_third_party_defaults() -> None:
    from jackdaw.dns.base import DNSProvider

    assert "no DNS credentials" in (build_provider("none", {}).probe() or "")

    class Bare(DNSProvider):
        name = "bare"

        @classmethod
        def from_env(cls, env: Any) -> Bare:
            return cls()

        def present(self, zone: str, fqdn: str, value: str) -> None: ...

        def cleanup(self, zone: str, fqdn: str, value: str) -> None: ...

    assert Bare().probe() is None  # check --online then points at `jackdaw dns-check NAME`
