"""External account binding end to end, on SQLite and PostgreSQL: an operator makes keys with
`jackdaw eab add` (the real CLI, against the relay's database), certbot and lego register with
them and get certificates; without a key, outside the key's names, a wildcard the key does not
allow, from a network the key does not allow, or after `jackdaw eab revoke`, they are refused;
and the budget refuses the certificate a set of names has no more of, before it goes upstream."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from acme import messages
from sqlalchemy import select

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.jobs import JobKind
from jackdaw.models import UpstreamOrder
from tests.clients import acme_account, certbot, check_certificate, http01, lego, new_csr
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

ZONE = "example.test"


@dataclass
class EabBed:
    relay: Relay
    pebble: Pebble
    bind: Bind
    port: int
    backend: str
    database_url: str

    def name(self, label: str) -> str:
        return f"{label}-{self.backend}.eab.{ZONE}"

    def jackdaw(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.relay.cli(*argv)

    def add_key(self, name: str, *options: str) -> tuple[str, str]:
        proc = self.jackdaw("eab", "add", name, *options, "--json")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        return doc["kid"], doc["hmac_key"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def eab_bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bind: Bind,
            pebble: Pebble) -> Iterator[EabBed]:
    workdir = tmp_path_factory.mktemp(f"relay-eab-{request.param}")
    port = free_port()
    with ExitStack() as stack:
        extra = {"ALLOWED_DOMAINS": ZONE, "EAB_REQUIRED": "true", "BUDGET_CERTS_PER_SET": "2/7d"}
        url = f"sqlite:///{workdir / 'data' / 'jackdaw.db'}"
        if request.param == "postgres":
            url = extra["DATABASE_URL"] = stack.enter_context(postgres_database())
        relay = stack.enter_context(Relay(workdir, relay_env(workdir, bind, pebble, port, **extra)))
        yield EabBed(relay, pebble, bind, port, request.param, url)


def eab_args(kid: str, hmac_key: str) -> list[str]:
    return ["--eab-kid", kid, "--eab-hmac-key", hmac_key]


def test_certbot_and_lego_with_a_key_get_certificates(eab_bed: EabBed, tmp_path: Path) -> None:
    kid, hmac_key = eab_bed.add_key(f"team-{eab_bed.backend}", "--allow", f"*.eab.{ZONE}")
    names = [eab_bed.name("certbot")]
    issued = certbot(tmp_path / "certbot", eab_bed.relay.directory_url, names, standalone_port=eab_bed.port,
                     extra=eab_args(kid, hmac_key))
    check_certificate(issued, names, eab_bed.pebble.roots_pem())
    names = [eab_bed.name("lego")]
    issued = lego(tmp_path / "lego", eab_bed.relay.directory_url, names, http_port=eab_bed.port,
                  extra=["--eab", "--kid", kid, "--hmac", hmac_key])
    check_certificate(issued, names, eab_bed.pebble.roots_pem())
    listing = eab_bed.jackdaw("eab", "list", "--json")
    [key] = [k for k in json.loads(listing.stdout) if k["kid"] == kid]
    assert key["accounts"] == 2 and "hmac" not in listing.stdout.lower()


def test_refusals(eab_bed: EabBed, tmp_path: Path) -> None:
    kid, hmac_key = eab_bed.add_key(f"narrow-{eab_bed.backend}", "--allow", eab_bed.name("only"))
    with pytest.raises(AssertionError, match=r"externalAccountRequired|external account"):
        certbot(tmp_path / "none", eab_bed.relay.directory_url, [eab_bed.name("only")], standalone_port=eab_bed.port)
    with pytest.raises(AssertionError, match=r"is not allowed for EAB key narrow"):
        certbot(tmp_path / "outside", eab_bed.relay.directory_url, [eab_bed.name("other")],
                standalone_port=eab_bed.port, extra=eab_args(kid, hmac_key))
    with pytest.raises(AssertionError, match="does not allow wildcard"):
        certbot(tmp_path / "wild", eab_bed.relay.directory_url, [eab_bed.name("only"), f"*.{eab_bed.name('only')}"],
                standalone_port=eab_bed.port, extra=eab_args(kid, hmac_key))
    # the same key, revoked: the account certbot registered with it can do nothing more
    issued = certbot(tmp_path / "later", eab_bed.relay.directory_url, [eab_bed.name("only")],
                     standalone_port=eab_bed.port, extra=eab_args(kid, hmac_key))
    check_certificate(issued, [eab_bed.name("only")], eab_bed.pebble.roots_pem())
    proc = eab_bed.jackdaw("eab", "revoke", f"narrow-{eab_bed.backend}")
    # three certbot config dirs registered three accounts with the key (refused orders included)
    assert proc.returncode == 0 and "3 account(s)" in proc.stdout, proc.stdout + proc.stderr
    with pytest.raises(AssertionError, match="revoked"):
        certbot(tmp_path / "later", eab_bed.relay.directory_url, [eab_bed.name("only")],
                standalone_port=eab_bed.port, extra=[*eab_args(kid, hmac_key), "--force-renewal"])


def test_a_source_network_rule_uses_the_forwarded_address(eab_bed: EabBed, tmp_path: Path) -> None:
    """The relay's peer is 127.0.0.1, a trusted proxy: X-Forwarded-For names the client."""
    kid, hmac_key = eab_bed.add_key(f"office-{eab_bed.backend}", "--allow", f"*.eab.{ZONE}",
                                    "--source", "10.20.0.0/16")
    url = eab_bed.relay.directory_url
    with pytest.raises(messages.Error, match=r"10\.20\.0\.0/16"):
        acme_account(url, eab=(kid, hmac_key), headers={"X-Forwarded-For": "192.0.2.44"})
    client = acme_account(url, eab=(kid, hmac_key), headers={"X-Forwarded-For": "10.20.9.9"})
    order = client.new_order(new_csr([eab_bed.name("office")])[1])
    assert order.body.status == messages.STATUS_PENDING
    client.net.session.headers["X-Forwarded-For"] = "192.0.2.44"  # the same account from elsewhere
    with pytest.raises(messages.Error, match=r"came from 192\.0\.2\.44"):
        client.new_order(new_csr([eab_bed.name("office2")])[1])


def test_the_budget_refuses_a_set_spent_before_anything_goes_upstream(eab_bed: EabBed, tmp_path: Path) -> None:
    """BUDGET_CERTS_PER_SET=2/7d on this relay: two certificates for one set, then the third
    order for it is refused at newOrder (429, Retry-After) and no third upstream order exists."""
    kid, hmac_key = eab_bed.add_key(f"budget-{eab_bed.backend}", "--allow", f"*.eab.{ZONE}")
    name = eab_bed.name("budget")
    for i in range(2):
        certbot(tmp_path / f"certbot-{i}", eab_bed.relay.directory_url, [name], standalone_port=eab_bed.port,
                extra=eab_args(kid, hmac_key))
    client = acme_account(eab_bed.relay.directory_url, eab=(kid, hmac_key))
    _, csr_pem = new_csr([name])
    with pytest.raises(messages.Error) as refused:
        client.new_order(csr_pem)
    assert refused.value.code == "rateLimited" and "certs-per-set" in str(refused.value.detail)
    engine = make_engine(eab_bed.database_url)
    with make_sessionmaker(engine)() as s:
        upstream = [u for u in s.scalars(select(UpstreamOrder).where(UpstreamOrder.owner_kind == JobKind.ORDER))
                    if u.names == [name]]
    engine.dispose()
    assert len(upstream) == 2
    budget = eab_bed.jackdaw("budget")
    assert budget.returncode == 0 and name in budget.stdout and "0/2" in budget.stdout, budget.stdout
    # a different set still goes through: the refusal is for that set only
    order = client.new_order(new_csr([eab_bed.name("budget-other")])[1])
    assert http01(order.authorizations[0]) is not None
