"""Settings whose form cannot work are refused at start, and the message says what to write."""

from __future__ import annotations

import pytest

from jackdaw.envparse import ConfigError
from jackdaw.settings import Settings

BASE = {"RELAY_DOMAIN": "relay.example.com", "ACME_EMAIL": "ops@example.com", "DNS_PROVIDER": "none",
        "UPSTREAM_CHALLENGE": "dns-persist-01"}

REFUSED = [
    ("RELAY_DOMAIN", "https://x.example.com/", "write RELAY_DOMAIN=x.example.com"),
    ("RELAY_DOMAIN", "x.example.com/directory", "write RELAY_DOMAIN=x.example.com"),
    ("RELAY_DOMAIN", "x.example.com:443", "write RELAY_DOMAIN=x.example.com (no port)"),
    ("RELAY_DOMAIN", "under_score.example.com", "not a host name"),
    ("RELAY_DOMAIN", "-x.example.com", "not a host name"),
    ("ACME_EMAIL", "nonsense", "e-mail address"),
    ("ACME_EMAIL", "ops@localhost", "e-mail address"),
    ("ACME_EMAIL", "ops@@example.com", "e-mail address"),
    ("ALLOWED_DOMAINS", "*.example.com", "ALLOWED_DOMAINS=example.com (it allows example.com and every name"),
    ("ALLOWED_DOMAINS", "example.org,*.example.com", "ALLOWED_DOMAINS=example.com"),
    ("ALLOWED_DOMAINS", "https://example.com", "ALLOWED_DOMAINS=example.com"),
    ("ALLOWED_DOMAINS", "exa mple.com", "not a DNS name"),
    ("WILDCARD_DOMAINS", "*.*.example.com", "WILDCARD_DOMAINS=example.com"),
    ("DNS_RESOLVER", "10.0.0.53:99999", "port must be 1-65535"),
    ("DNS_RESOLVER", "https://dns.example.com/", "DNS_RESOLVER=dns.example.com"),
    ("LE_DIRECTORY", "https:///directory", "https:// URL"),
]


@pytest.mark.parametrize(("key", "value", "says"), REFUSED)
def test_refused_with_what_to_write(key: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.parse({**BASE, key: value})
    assert str(exc.value).startswith(f"{key}: ") and says in str(exc.value)


@pytest.mark.parametrize(("key", "value", "field", "parsed"), [
    ("RELAY_DOMAIN", "Relay.Example.COM.", "relay_domain", "relay.example.com"),
    ("ACME_EMAIL", "mailto:ops@example.com", "acme_email", "ops@example.com"),
    ("ALLOWED_DOMAINS", " Example.com., example.org", "allowed_domains", ("example.com", "example.org")),
    ("WILDCARD_DOMAINS", "*.example.com,example.org", "wildcard_domains", ("*.example.com", "example.org")),
    ("DNS_RESOLVER", "[::1]:5353", "dns_resolver", "[::1]:5353"),
])
def test_accepted(key: str, value: str, field: str, parsed: object) -> None:
    assert getattr(Settings.parse({**BASE, key: value}), field) == parsed
