"""acme-dns provider against recorded responses.

Shapes follow joohoi/acme-dns's README (https://github.com/joohoi/acme-dns#update-endpoint):
``POST /update`` with headers X-Api-User and X-Api-Key and body {"subdomain", "txt"}, answered
``200 OK`` {"txt": ...}; errors are {"error": "..."}: 401 "forbidden" for bad credentials or a
subdomain that is not the account's, 400 "bad_txt" (acme-dns api.go / auth.go). The accounts
file is the one lego (ACME_DNS_STORAGE_PATH) and certbot-dns-acmedns write: domain ->
{"username", "password", "fulldomain", "subdomain", "allowfrom"} as /register returns it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from jackdaw.dns.base import ConfigError, DNSProviderError
from jackdaw.dns.providers.acme_dns import AcmeDNSProvider
from jackdaw.dns.registry import build_provider

API = "https://auth.acme-dns.io"
VALUE = "A" * 43
ACCOUNTS = {
    "example.com": {"allowfrom": [], "fulldomain": "8e5700ea-a4bf-41c7-8a77-e990661dcc6a.auth.acme-dns.io",
                    "password": "htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z",
                    "subdomain": "8e5700ea-a4bf-41c7-8a77-e990661dcc6a",
                    "username": "c36f50e8-4632-44f0-83fe-e070fef28a10"},
    "*.wild.example.org": {"allowfrom": [], "fulldomain": "d420c923-bbd7-4056-ab64-c3ca54c9b3cf.auth.acme-dns.io",
                           "password": "pbAXVjlIOE01xbut7YnAbkhMQIkcwoHO0ek2j4Q0",
                           "subdomain": "d420c923-bbd7-4056-ab64-c3ca54c9b3cf",
                           "username": "eabcdb41-d89f-4580-826f-3e62e9755ef2"},
}
PASSWORDS = [a["password"] for a in ACCOUNTS.values()]


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    path = tmp_path / "acme-dns.json"
    path.write_text(json.dumps(ACCOUNTS))
    return path


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


def provider(credentials: Path, **extra: str) -> AcmeDNSProvider:
    made = build_provider("acme-dns", {"ACME_DNS_API_URL": API + "/", "ACME_DNS_CREDENTIALS": str(credentials),
                                       **extra})
    assert isinstance(made, AcmeDNSProvider)
    return made


def update_for(domain: str) -> list[Any]:
    account = ACCOUNTS[domain]
    return [
        matchers.header_matcher({"X-Api-User": str(account["username"]), "X-Api-Key": str(account["password"])}),
        matchers.json_params_matcher({"subdomain": account["subdomain"], "txt": VALUE}),
    ]


@pytest.mark.parametrize(
    ("zone", "fqdn", "domain"),
    [
        pytest.param("example.com", "_acme-challenge.example.com", "example.com", id="by-name"),
        pytest.param("auth.acme-dns.io", "8e5700ea-a4bf-41c7-8a77-e990661dcc6a.auth.acme-dns.io.", "example.com",
                     id="by-followed-cname"),
        pytest.param("example.org", "_acme-challenge.wild.example.org", "*.wild.example.org", id="wildcard-key"),
    ],
)
def test_present_updates_the_names_own_subdomain(
    rsps: Any, credentials: Path, zone: str, fqdn: str, domain: str
) -> None:
    rsps.post(f"{API}/update", json={"txt": VALUE}, match=update_for(domain))
    provider(credentials).present(zone, fqdn, VALUE)
    assert len(rsps.calls) == 1  # nothing sent with another name's credentials


def test_cleanup_is_a_no_op_even_when_the_api_is_down(rsps: Any, credentials: Path) -> None:
    provider(credentials).cleanup("example.com", "_acme-challenge.example.com", VALUE)
    assert len(rsps.calls) == 0  # acme-dns rolls the two newest values; there is nothing to delete


def test_an_unknown_name_is_an_error_naming_it(rsps: Any, credentials: Path) -> None:
    with pytest.raises(DNSProviderError, match=r"no account for other\.example\.net in ACME_DNS_CREDENTIALS"):
        provider(credentials).present("example.net", "_acme-challenge.other.example.net", VALUE)
    assert len(rsps.calls) == 0


def test_an_account_registered_after_start_up_is_found(rsps: Any, credentials: Path) -> None:
    p = provider(credentials)
    credentials.write_text(json.dumps({**ACCOUNTS, "new.example.com": ACCOUNTS["example.com"]}))
    rsps.post(f"{API}/update", json={"txt": VALUE}, match=update_for("example.com"))
    p.present("example.com", "_acme-challenge.new.example.com", VALUE)


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        pytest.param(401, {"error": "forbidden"}, "authentication failed (HTTP 401: forbidden)", id="auth-failure"),
        pytest.param(400, {"error": "bad_txt"}, "HTTP 400: bad_txt", id="rejected-value"),
        pytest.param(429, {"error": "too many requests"}, "rate limited (HTTP 429)", id="rate-limited"),
        pytest.param(502, None, "HTTP 502: no detail", id="proxy-error"),
    ],
)
def test_api_errors_are_clear_and_carry_no_secret(
    rsps: Any, credentials: Path, caplog: pytest.LogCaptureFixture, status: int, answer: Any, expected: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if answer is None:
        rsps.post(f"{API}/update", status=status, body="<html>Bad Gateway</html>")
    else:
        rsps.post(f"{API}/update", status=status, json=answer)
    with pytest.raises(DNSProviderError) as e:
        provider(credentials).present("example.com", "_acme-challenge.example.com", VALUE)
    assert expected in str(e.value)
    assert not any(secret in str(e.value) + caplog.text for secret in PASSWORDS)


def test_one_names_failure_leaves_the_others_update_alone(rsps: Any, credentials: Path) -> None:
    p = provider(credentials)
    rsps.post(f"{API}/update", status=401, json={"error": "forbidden"}, match=update_for("example.com"))
    rsps.post(f"{API}/update", json={"txt": VALUE}, match=update_for("*.wild.example.org"))
    with pytest.raises(DNSProviderError):
        p.present("example.com", "_acme-challenge.example.com", VALUE)
    p.present("example.org", "_acme-challenge.wild.example.org", VALUE)
    p.cleanup("example.com", "_acme-challenge.example.com", VALUE)  # still nothing to undo
    assert len(rsps.calls) == 2


def test_connection_errors_become_provider_errors(rsps: Any, credentials: Path) -> None:
    with pytest.raises(DNSProviderError, match="ConnectionError") as e:
        provider(credentials).present("example.com", "_acme-challenge.example.com", VALUE)
    assert not any(secret in str(e.value) for secret in PASSWORDS)


def entry_without(field: str) -> str:
    return json.dumps({"example.com": {k: v for k, v in ACCOUNTS["example.com"].items() if k != field}})


@pytest.mark.parametrize(
    ("env", "file_text", "variable", "detail"),
    [
        pytest.param({"ACME_DNS_API_URL": ""}, None, "ACME_DNS_API_URL", "required", id="missing-api-url"),
        pytest.param({"ACME_DNS_API_URL": "auth.acme-dns.io"}, None, "ACME_DNS_API_URL", "http", id="bad-api-url"),
        pytest.param({"ACME_DNS_CREDENTIALS": ""}, None, "ACME_DNS_CREDENTIALS", "required", id="missing-credentials"),
        pytest.param({}, "", "ACME_DNS_CREDENTIALS", "not valid JSON", id="empty-file"),
        pytest.param({}, "[]", "ACME_DNS_CREDENTIALS", "must hold an object", id="not-an-object"),
        pytest.param({}, '{"example.com": "x"}', "ACME_DNS_CREDENTIALS", "must be an object", id="entry-not-object"),
        pytest.param({}, entry_without("password"), "ACME_DNS_CREDENTIALS", "lacks password", id="entry-no-password"),
        pytest.param({}, entry_without("subdomain"), "ACME_DNS_CREDENTIALS", "lacks subdomain",
                     id="entry-no-subdomain"),
        pytest.param({"ACME_DNS_HTTP_TIMEOUT": "never"}, None, "ACME_DNS_HTTP_TIMEOUT", "positive", id="bad-timeout"),
    ],
)
def test_config_errors_name_the_variable(
    credentials: Path, env: dict[str, str], file_text: str | None, variable: str, detail: str
) -> None:
    if file_text is not None:
        credentials.write_text(file_text)
    base = {"ACME_DNS_API_URL": API, "ACME_DNS_CREDENTIALS": str(credentials)}
    with pytest.raises(ConfigError, match=f"^{variable}:.*{detail}") as e:
        build_provider("acme-dns", {**base, **env})
    assert not any(secret in str(e.value) for secret in PASSWORDS)


def test_a_missing_credentials_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ACME_DNS_CREDENTIALS: cannot read"):
        build_provider("acme-dns", {"ACME_DNS_API_URL": API, "ACME_DNS_CREDENTIALS": str(tmp_path / "nope.json")})


def test_accounts_never_show_their_password(credentials: Path) -> None:
    p = provider(credentials)
    assert p.config.api_url == API
    assert not any(secret in repr(p._accounts) for secret in PASSWORDS)
