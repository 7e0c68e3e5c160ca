"""jackdaw.settings: the original README's names and defaults, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackdaw.dns.base import ConfigError
from jackdaw.envfile import database_url_from_env
from jackdaw.settings import LE_PRODUCTION, Settings

REQUIRED = {"RELAY_DOMAIN": "relay.example.test", "ACME_EMAIL": "ops@example.test", "DNS_PROVIDER": "rfc2136"}


def test_defaults_match_the_original_readme() -> None:
    s = Settings.parse(REQUIRED)
    assert s.challenge_http_port == 80
    assert s.challenge_timeout == 5
    assert s.challenge_retries == 3
    assert s.challenge_retry_delay == 2
    assert s.le_directory == LE_PRODUCTION == "https://acme-v02.api.letsencrypt.org/directory"
    assert s.allowed_domains == ()  # no allow-list: any valid name
    assert s.log_level == "INFO"
    assert s.data_dir == Path("data")
    assert s.database_url == f"sqlite:///{Path('data').resolve()}/jackdaw.db"
    assert s.dns_resolver is None
    assert s.upstream_ca_bundle is None


def test_values_are_read_and_normalised(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings.parse({
        **REQUIRED,
        "RELAY_DOMAIN": "Relay.Example.TEST.",
        "DNS_PROVIDER": "RFC2136",
        "ALLOWED_DOMAINS": " Example.TEST. , corp.internal,, ",
        "CHALLENGE_HTTP_PORT": "8080",
        "CHALLENGE_TIMEOUT": "1.5",
        "CHALLENGE_RETRIES": "1",
        "CHALLENGE_RETRY_DELAY": "0",
        "LE_DIRECTORY": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "LOG_LEVEL": "debug",
        "DATA_DIR": str(tmp_path),
        "UPSTREAM_CA_BUNDLE": str(bundle),
        "DNS_RESOLVER": "127.0.0.1:5353",
        "PORKBUN_API_KEY": "kept for the provider",
    })
    assert s.relay_domain == "relay.example.test"
    assert s.dns_provider == "rfc2136"
    assert s.allowed_domains == ("example.test", "corp.internal")
    assert (s.challenge_http_port, s.challenge_timeout, s.challenge_retries, s.challenge_retry_delay) == (
        8080, 1.5, 1, 0.0)
    assert s.le_directory.startswith("https://acme-staging-v02")
    assert s.log_level == "DEBUG"
    assert s.database_url == f"sqlite:///{tmp_path.resolve()}/jackdaw.db"
    assert s.upstream_ca_bundle == str(bundle)
    assert s.dns_resolver == "127.0.0.1:5353"
    assert s.env["PORKBUN_API_KEY"] == "kept for the provider"


@pytest.mark.parametrize("key", sorted(REQUIRED))
@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_required_setting_missing(key: str, value: str | None) -> None:
    env = dict(REQUIRED)
    if value is None:
        del env[key]
    else:
        env[key] = value
    with pytest.raises(ConfigError, match=key):
        Settings.parse(env)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CHALLENGE_HTTP_PORT", "http"),
        ("CHALLENGE_HTTP_PORT", "80.5"),
        ("CHALLENGE_HTTP_PORT", "0"),
        ("CHALLENGE_HTTP_PORT", "-1"),
        ("CHALLENGE_TIMEOUT", "soon"),
        ("CHALLENGE_TIMEOUT", "0"),
        ("CHALLENGE_RETRIES", "three"),
        ("CHALLENGE_RETRIES", "0"),
        ("CHALLENGE_RETRY_DELAY", "2s"),
        ("CHALLENGE_RETRY_DELAY", "-1"),
        ("DNS_PROPAGATION_WAIT", "a while"),
        ("DNS_PROPAGATION_TIMEOUT", "0"),
        ("DNS_AUTHORITATIVE_PORT", "dns"),
        ("JOB_THREADS", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("LE_DIRECTORY", "ftp://acme.example/directory"),
        ("DATABASE_URL", "mysql://db/jackdaw"),
        ("UPSTREAM_CA_BUNDLE", "/no/such/ca.pem"),
    ],
    ids=lambda v: v,
)
def test_bad_value_is_named(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.parse({**REQUIRED, key: value})


@pytest.mark.parametrize("key", ["CHALLENGE_HTTP_PORT", "DNS_AUTHORITATIVE_PORT"])
def test_port_above_65535_is_refused(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.parse({**REQUIRED, key: "70000"})


def test_from_env_prefers_the_environment_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("RELAY_DOMAIN=from-dotenv.example.test\nACME_EMAIL=dotenv@example.test\n"
                      "DNS_PROVIDER=rfc2136\nCHALLENGE_HTTP_PORT=8081\n")
    monkeypatch.setenv("RELAY_DOMAIN", "from-env.example.test")
    monkeypatch.delenv("ACME_EMAIL", raising=False)
    monkeypatch.delenv("DNS_PROVIDER", raising=False)
    monkeypatch.delenv("CHALLENGE_HTTP_PORT", raising=False)
    s = Settings.from_env(dotenv=str(dotenv))
    assert s.relay_domain == "from-env.example.test"
    assert s.acme_email == "dotenv@example.test"
    assert s.challenge_http_port == 8081


def test_database_url_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert database_url_from_env(dotenv=None) == f"sqlite:///{tmp_path.resolve()}/jackdaw.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/jackdaw")
    assert database_url_from_env(dotenv=None) == "postgresql+psycopg://db/jackdaw"
