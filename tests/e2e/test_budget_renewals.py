"""The budget counts a renewal as Let's Encrypt does, end to end (real Pebble, BIND, gunicorn,
certbot), on SQLite and PostgreSQL: with BUDGET_CERTS_PER_DOMAIN=3/7d and three names issued
under example.test, certbot getting a certificate for one of the same names again, without ARI,
is issued (the CA counts it as a renewal, exempt from certificates per registered domain); a
fourth new name is refused before anything goes upstream, its wait told in words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from acme import messages

from tests.clients import acme_account, certbot, check_certificate, new_csr
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

ZONE = "example.test"


@dataclass
class BudgetBed:
    relay: Relay
    pebble: Pebble
    port: int
    backend: str

    def name(self, label: str) -> str:
        return f"{label}-{self.backend}.renew.{ZONE}"


# PostgreSQL end to end; tests/integration/test_budget_renewals.py runs every rule on both databases
@pytest.fixture(scope="module", params=["postgres"])
def budget_bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bind: Bind,
               pebble: Pebble) -> Iterator[BudgetBed]:
    workdir = tmp_path_factory.mktemp(f"relay-budget-{request.param}")
    port = free_port()
    with ExitStack() as stack:
        extra = {"ALLOWED_DOMAINS": ZONE, "BUDGET_CERTS_PER_DOMAIN": "3/7d", "BUDGET_RELAY_RESERVE": "0"}
        if request.param == "postgres":
            extra["DATABASE_URL"] = stack.enter_context(postgres_database())
        relay = stack.enter_context(Relay(workdir, relay_env(workdir, bind, pebble, port, **extra)))
        yield BudgetBed(relay, pebble, port, request.param)


def test_a_renewal_without_ari_is_issued_when_the_domain_is_spent(budget_bed: BudgetBed, tmp_path: Path) -> None:
    url, roots = budget_bed.relay.directory_url, budget_bed.pebble.roots_pem()
    names = [budget_bed.name(f"host{i}") for i in range(3)]
    for i, name in enumerate(names):
        certbot(tmp_path / f"first-{i}", url, [name], standalone_port=budget_bed.port)
    # another certbot (a host rebuilt: no lineage, so no ARI `replaces`) for the same name
    issued = certbot(tmp_path / "again", url, [names[1]], standalone_port=budget_bed.port)
    check_certificate(issued, [names[1]], roots)

    client = acme_account(url)
    with pytest.raises(messages.Error) as refused:
        client.new_order(new_csr([budget_bed.name("host3")])[1])
    detail = str(refused.value.detail)
    assert refused.value.code == "rateLimited" and "certs-per-domain (3 per 7d) for example.test" in detail
    assert re.search(r"try again in \d+d \d+h$|try again in \d+d$", detail), detail  # 56 h: one per 2d 8h

    budget = budget_bed.relay.cli("budget")
    assert budget.returncode == 0, budget.stderr
    assert re.search(r"certs-per-domain\s+example\.test\s+0/3\s+7d\n", budget.stdout), budget.stdout
