"""End-to-end bed: real BIND, real Pebble, Jackdaw under gunicorn (SQLite and PostgreSQL).

Names under example.test resolve to 127.0.0.1 through BIND, so Jackdaw's HTTP-01 check reaches
the client's own server on CHALLENGE_HTTP_PORT, and Pebble checks DNS-01 against the same BIND.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

ZONE = "example.test"
CHALLENGE_ZONE = "challenges.test"
#: opens the relay's /status to requests relayed by a proxy (tests/e2e/test_status_page.py)
STATUS_TOKEN = "e2e-status-token-0123456789abcdef"


@pytest.fixture(scope="session")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    # _acme-challenge.cname-<backend> is delegated by CNAME into a zone kept for challenges
    # (the CNAME's parent needs its own A record: an empty non-terminal blocks the `*` record)
    delegated = [line for b in ("sqlite", "postgres") for line in (
        f"_acme-challenge.cname-{b} 60 IN CNAME cname-{b}.{CHALLENGE_ZONE}.", f"cname-{b} 60 IN A 127.0.0.1")]
    zones = {ZONE: ["* 60 IN A 127.0.0.1", *delegated], CHALLENGE_ZONE: []}
    with Bind(tmp_path_factory.mktemp("bind"), zones, recursive=True) as server:
        yield server


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory, bind: Bind) -> Iterator[Pebble]:
    # Pebble's default chaos: 5 % of nonces rejected. The relay's upstream leg must survive it.
    with Pebble(tmp_path_factory.mktemp("pebble"), bind.port, nonce_reject=5) as server:
        yield server


@dataclass
class Bed:
    bind: Bind
    pebble: Pebble
    relay: Relay
    challenge_port: int
    backend: str

    def name(self, label: str) -> str:
        return f"{label}-{self.backend}.{ZONE}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bind: Bind,
        pebble: Pebble) -> Iterator[Bed]:
    workdir: Path = tmp_path_factory.mktemp(f"relay-{request.param}")
    challenge_port = free_port()
    with ExitStack() as stack:
        extra = {"ALLOWED_DOMAINS": ZONE, "WILDCARD_DOMAINS": ZONE, "STATUS_TOKEN": STATUS_TOKEN}
        if request.param == "postgres":
            extra["DATABASE_URL"] = stack.enter_context(postgres_database())
        env = relay_env(workdir, bind, pebble, challenge_port, **extra)
        relay = stack.enter_context(Relay(workdir, env))
        yield Bed(bind, pebble, relay, challenge_port, request.param)
