"""Shared fixtures for integration tests: a real BIND, and Jackdaw apps on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jackdaw import create_app, migrate
from jackdaw.db import make_engine
from jackdaw.models import Base
from jackdaw.settings import Settings
from tests.relay import postgres_database
from tests.signer import AcmeTestClient
from tests.testbed import Bind, free_port

ZONES = {
    "example.test": [
        "a 60 IN A 127.0.0.1",
        "both 60 IN A 127.0.0.1",
        "both 60 IN AAAA ::1",
        "_acme-challenge.c 60 IN CNAME c.challenges.test.",
        "loop1 60 IN CNAME loop2",
        "loop2 60 IN CNAME loop1",
        # HTTP-01 targets for the relay's validator (tests/integration/test_acme_flow.py):
        # anything under ok. reaches 127.0.0.1, anything under refused. a loopback address
        # where nothing listens
        "*.ok 60 IN A 127.0.0.1",
        "*.refused 60 IN A 127.0.0.2",
        # address policy targets (tests/integration/test_http01_hardening.py): cloud metadata,
        # its IPv4-mapped IPv6 form, a name with one forbidden and one usable address, and
        # names for a TLS server on another loopback address
        "metadata 60 IN A 169.254.169.254",
        "mapped-metadata 60 IN AAAA ::ffff:169.254.169.254",
        "mixed 60 IN A 169.254.169.254",
        "mixed 60 IN A 127.0.0.1",
        "*.tls 60 IN A 127.0.0.3",
    ],
    "challenges.test": [],
    # propagation per name server (tests/integration/test_dns_bind.py): ns1 also has an AAAA
    # in the documentation range where nothing answers; a second name server none of whose
    # addresses answers
    "v6gap.test": ["ns1 IN AAAA 2001:db8::53"],
    "deadns.test": ["@ IN NS ns9.deadns.test.", "ns9 IN A 192.0.2.53", "ns9 IN AAAA 2001:db8::53"],
}


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    """One named per test module serving example.test and challenges.test."""
    with Bind(tmp_path_factory.mktemp("bind"), ZONES) as server:
        yield server


# --- Jackdaw apps ---------------------------------------------------------------------------

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ALLOWED_DOMAIN = "example.test"


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """An empty database (SQLite file or fresh PostgreSQL database); yields its URL."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'jackdaw.db'}"
    else:
        with postgres_database() as url:
            yield url


def relay_settings(database_url: str, data_dir: Path, **extra: str) -> Settings:
    """Settings for an app whose upstream leg is never exercised (dummy RFC 2136 values)."""
    env = {
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "DNS_PROVIDER": "rfc2136",
        "RFC2136_NAMESERVER": "127.0.0.1:53",
        "RFC2136_TSIG_KEY": "jackdaw-test",
        "RFC2136_TSIG_SECRET": "c2VjcmV0",
        "LE_DIRECTORY": "https://upstream.invalid/directory",  # never contacted by these tests
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "ALLOWED_DOMAINS": ALLOWED_DOMAIN,
        "CHALLENGE_HTTP_PORT": str(free_port()),
        "CHALLENGE_TIMEOUT": "2",
        "CHALLENGE_RETRIES": "1",
        "CHALLENGE_RETRY_DELAY": "0",
        "CHALLENGE_ALLOW_LOOPBACK": "true",
        "LOG_LEVEL": "INFO",
        "RELAY_CERT_ENABLED": "false",  # never contacts the upstream for its own certificate
        **extra,
    }
    return Settings.parse(env)


@contextmanager
def running_app(database_url: str, data_dir: Path, **extra: str) -> Iterator[Flask]:
    """A Jackdaw app on a schema built by alembic (never create_all); stopped afterwards."""
    migrate.upgrade(database_url)
    app = create_app(relay_settings(database_url, data_dir, **extra))
    try:
        yield app
    finally:
        app.extensions["jackdaw"].stop()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new database without any schema, on each backend (migration tests)."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def _postgres_at_head() -> Iterator[str]:
    """One fresh PostgreSQL database per test module, upgraded once by alembic.

    CREATE/DROP DATABASE costs about a second per test on a busy server; wiping the rows of a
    migrated database costs milliseconds and leaves nothing behind for the next test.
    """
    with postgres_database() as url:
        migrate.upgrade(url)
        yield url


def wipe(database_url: str) -> None:
    """Delete every row (schema untouched), children first."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")  # a leaked connection fails, not hangs
            names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at alembic head with no rows in it, on each backend: a new SQLite file per
    test, the module's PostgreSQL database wiped clean."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jackdaw.db'}"
        migrate.upgrade(url)
        yield url
    else:
        url = request.getfixturevalue("_postgres_at_head")
        wipe(url)
        yield url


@pytest.fixture
def app_env() -> dict[str, str]:
    """Extra settings for `app`; modules override this fixture (e.g. DNS_RESOLVER=bind)."""
    return {}


@pytest.fixture
def app(database_url: str, tmp_path: Path, app_env: dict[str, str]) -> Iterator[Flask]:
    """A fresh Jackdaw per test, on SQLite and on PostgreSQL."""
    with running_app(database_url, tmp_path / "data", **app_env) as flask_app:
        yield flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client that checks every response for Replay-Nonce, Link rel=index, no 500."""
    app.test_client_class = AcmeTestClient
    return app.test_client()
