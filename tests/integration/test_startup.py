"""The relay starts without its upstream CA, and refuses to start on bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackdaw import create_app, migrate
from jackdaw.dns.base import ConfigError
from jackdaw.settings import Settings


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "DNS_PROVIDER": "rfc2136",
        "RFC2136_NAMESERVER": "127.0.0.1:1",
        "RFC2136_TSIG_KEY": "k",
        "RFC2136_TSIG_SECRET": "c2VjcmV0c2VjcmV0",
        "LE_DIRECTORY": "https://127.0.0.1:1/directory",  # nothing listens there
        "DATA_DIR": str(tmp_path),
    }


def test_serves_clients_while_upstream_is_unreachable(tmp_path: Path) -> None:
    settings = Settings.parse(_env(tmp_path))
    migrate.upgrade(settings.database_url)
    client = create_app(settings).test_client()
    directory = client.get("/directory")
    assert directory.status_code == 200
    assert directory.get_json()["newNonce"] == "http://localhost/acme/new-nonce"
    assert client.head("/acme/new-nonce").headers["Replay-Nonce"]
    assert not (tmp_path / "upstream-account.key").exists(), "the upstream account is registered lazily"


@pytest.mark.parametrize("missing", ["RELAY_DOMAIN", "ACME_EMAIL", "DNS_PROVIDER", "RFC2136_NAMESERVER"])
def test_missing_setting_is_named(tmp_path: Path, missing: str) -> None:
    env = _env(tmp_path)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        create_app(Settings.parse(env))
