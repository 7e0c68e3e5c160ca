"""The upstream budget counts as Let's Encrypt counts (its rate-limits page; Boulder's WFE at
newOrder and RA at issuance), through the app on SQLite and PostgreSQL, with the CA's own
numbers: an order for the exact set of names of a certificate issued before is a renewal
(exempt from new-orders and certs-per-domain, charged to certs-per-set); an ARI renewal is
exempt from every limit; buckets refill continuously."""

# ruff: noqa: F811 - pytest fixtures imported from test_acme_flow are taken as parameters
from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from jackdaw.jobs import JobKind
from jackdaw.models import BudgetBucket, Certificate, Order, UpstreamOrder
from jackdaw.protocol.constants import Status
from jackdaw.upstream.sequence import Leg2, Stage
from tests.integration.test_acme_flow import (  # noqa: F401 - fixtures
    OK,
    ChallengeServer,
    Relay,
    new_order,
    problem,
    relay,
    web,
)
from tests.integration.test_who_gets_what import _dns01
from tests.signer import RequestSigner, ec_jwk
from tests.testbed import Bind

#: durations as jackdaw.durations.human writes them
HUMAN = r"(\d+d( \d+h)?|\d+h( \d+m)?|\d+m( \d+s)?|\d+s)"


@pytest.fixture
def app_env(bind: Bind, web: ChallengeServer) -> dict[str, str]:
    """Let's Encrypt's numbers (the defaults), no reserve for the relay's own certificate."""
    return {"DNS_RESOLVER": bind.nameserver, "CHALLENGE_HTTP_PORT": str(web.port), "BUDGET_RELAY_RESERVE": "0"}


def account(relay: Relay, n: int) -> RequestSigner:
    signer = relay.signer(ec_jwk(n=n))
    assert signer.new_account().status_code == 201
    return signer


def order_for(signer: RequestSigner, *names: str, **extra: Any) -> Any:
    return signer.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": n} for n in names], **extra})


def issue(relay: Relay, order_url: str) -> None:
    """What the client's finalize and leg 2 do to the budget when the CA issues the order's
    certificate: the reservation is spent, and leg 2's finish records the set as issued."""
    rt = relay.runtime
    leg2 = Leg2(rt.sessions, rt.upstream, _dns01(rt), rt.budget)
    with rt.sessions.begin() as s:
        order = s.get(Order, order_url.rsplit("/", 1)[-1])
        assert order is not None
        rt.budget.commit(s, order)
        order.status = Status.VALID
        s.add(UpstreamOrder(owner_kind=JobKind.ORDER, owner_id=order.id, names=order.identifiers,
                            replaces=order.replaces, url="https://ca.invalid/order/1", stage=Stage.ISSUE))
        s.flush()
        leg2.finish(s, JobKind.ORDER, order.id)


def tokens(relay: Relay, limit: str, key: str) -> float:
    with relay.runtime.sessions() as s:
        row = s.get(BudgetBucket, (limit, key))
        return 0.0 if row is None else float(row.tokens)


def test_a_renewal_without_ari_is_not_a_new_certificate_for_its_domain(relay: Relay) -> None:
    """46 names issued under ok.example.test and the relay's own certificate: certbot renewing
    one of the names (no ARI) is issued, as Let's Encrypt would; the names up to 50 new
    certificates for example.test too; the 51st new name is refused, its wait in words."""
    signer = account(relay, 1)
    rt = relay.runtime
    issued = [f"host{i}.{OK}" for i in range(46)]
    for name in issued:
        url, _ = new_order(signer, name)
        issue(relay, url)
    with rt.sessions.begin() as s:  # the relay certificate's renewal job (jackdaw.relaycert.job)
        assert rt.budget.spend_for_relay(s, [rt.settings.relay_domain]) is None
        rt.budget.issued(s, [rt.settings.relay_domain], ari=False)
    assert tokens(relay, "certs-per-domain", "example.test") == pytest.approx(3, abs=0.01)

    resp = order_for(signer, issued[7])  # the renewal
    assert resp.status_code == 201, resp.get_json()
    assert relay.order_row(resp.headers["Location"]).renewal
    issue(relay, resp.headers["Location"])
    assert tokens(relay, "certs-per-domain", "example.test") == pytest.approx(3, abs=0.01)

    for name in (f"new48.{OK}", f"new49.{OK}", f"new50.{OK}"):
        new_order(signer, name)
    resp = order_for(signer, f"new51.{OK}")
    doc = problem(resp, "rateLimited", 429)
    assert "certs-per-domain (50 per 7d) for example.test is spent" in doc["detail"]
    assert re.search(rf"; try again in {HUMAN}$", doc["detail"]), doc["detail"]
    assert " s" not in doc["detail"].rsplit("try again in", 1)[1]
    assert 0 < int(resp.headers["Retry-After"]) <= 202 * 60 + 1  # one certificate every 202 minutes


def test_a_renewal_spends_no_new_order_and_a_set_token(relay: Relay) -> None:
    """Exempt from new-orders too (Boulder's NewOrderLimitTransactions for a renewal)."""
    signer = account(relay, 2)
    url, _ = new_order(signer, f"once.{OK}")
    issue(relay, url)
    account_key = relay.runtime.settings.le_directory
    before = tokens(relay, "new-orders", account_key), tokens(relay, "certs-per-set", _key(f"once.{OK}"))
    new_order(signer, f"once.{OK}")
    after = tokens(relay, "new-orders", account_key), tokens(relay, "certs-per-set", _key(f"once.{OK}"))
    assert after[0] >= before[0] and after[1] == pytest.approx(before[1] - 1, abs=0.01)


def _key(*names: str) -> str:
    from jackdaw.budget import set_key

    return set_key(list(names))


def test_the_sixth_certificate_for_one_set_in_seven_days_is_refused(relay: Relay) -> None:
    """New Certificates per Exact Set of Identifiers: 5 per 7 days, renewals included."""
    signer = account(relay, 3)
    for _ in range(5):
        url, _ = new_order(signer, f"www.dup.{OK}", f"dup.{OK}")
        issue(relay, url)
    resp = order_for(signer, f"dup.{OK}", f"www.dup.{OK}")  # the same set in another order
    doc = problem(resp, "rateLimited", 429)
    assert "certs-per-set (5 per 7d)" in doc["detail"] and re.search(rf"try again in {HUMAN}$", doc["detail"])
    assert 33 * 3600 < int(resp.headers["Retry-After"]) <= 34 * 3600  # one every 33.6 hours
    assert order_for(signer, f"dup.{OK}").status_code == 201  # another set


def _issued_with_ari_id(relay: Relay, signer: RequestSigner, *names: str) -> str:
    """A certificate the relay issued to ``signer``'s account, with its ARI id."""
    url, _ = new_order(signer, *names)
    issue(relay, url)
    ari_id = base64.urlsafe_b64encode(b"\x01" * 20).decode().rstrip("=") + ".ASM"  # serial 0x0123
    with relay.runtime.sessions.begin() as s:
        s.add(Certificate(order_id=url.rsplit("/", 1)[-1], serial="123", chain_pem="-", ari_id=ari_id,
                          not_after=relay.order_row(url).expires))
    return ari_id


def test_an_ari_renewal_is_exempt_from_every_limit_and_spends_what_the_ca_spends(relay: Relay) -> None:
    """With the account's and the domain's buckets empty, an order that replaces a certificate
    (ARI) is admitted, taking nothing; its certificate then takes a certs-per-set token, as the
    CA's issuance does, where there is one."""
    signer = account(relay, 4)
    ari_id = _issued_with_ari_id(relay, signer, f"ari.{OK}")
    rt = relay.runtime
    with rt.sessions.begin() as s:
        s.execute(update(BudgetBucket).where(BudgetBucket.limit != "certs-per-set").values(tokens=0.0))
    problem(order_for(signer, f"ari.{OK}", f"more.{OK}"), "rateLimited", 429)  # not ARI, not a renewal
    before = tokens(relay, "certs-per-set", _key(f"ari.{OK}"))
    resp = order_for(signer, f"ari.{OK}", replaces=ari_id)
    assert resp.status_code == 201, resp.get_json()
    assert tokens(relay, "certs-per-set", _key(f"ari.{OK}")) == pytest.approx(before, abs=0.01)  # not at newOrder
    issue(relay, resp.headers["Location"])
    assert tokens(relay, "certs-per-set", _key(f"ari.{OK}")) == pytest.approx(before - 1, abs=0.01)
    with rt.sessions() as s:
        assert min(s.scalars(select(BudgetBucket.tokens))) >= 0  # best effort: an empty bucket stays empty


def test_tokens_come_back_continuously(relay: Relay) -> None:
    """A token bucket, not a window: half a token's time later the wait is half as long, a
    whole one later an order is admitted."""
    signer = account(relay, 6)
    for _ in range(5):
        new_order(signer, f"refill.{OK}")
    resp = order_for(signer, f"refill.{OK}")
    interval = 7 * 86400 / 5
    assert problem(resp, "rateLimited", 429)["detail"].endswith("try again in 1d 10h")  # 33.6 h, rounded up
    assert int(resp.headers["Retry-After"]) == pytest.approx(interval, abs=60)

    def age(seconds: float) -> None:  # as if that much time had passed since the bucket was written
        with relay.runtime.sessions.begin() as s:
            row = s.get(BudgetBucket, ("certs-per-set", _key(f"refill.{OK}")))
            assert row is not None
            row.updated -= timedelta(seconds=seconds)

    age(interval / 2)
    resp = order_for(signer, f"refill.{OK}")
    assert problem(resp, "rateLimited", 429)["detail"].endswith("try again in 16h 48m")
    assert int(resp.headers["Retry-After"]) == pytest.approx(interval / 2, abs=60)
    age(interval / 2)
    assert order_for(signer, f"refill.{OK}").status_code == 201
    problem(order_for(signer, f"refill.{OK}"), "rateLimited", 429)


def test_the_operator_reads_whole_tokens_and_durations_in_words(relay: Relay, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`jackdaw budget` and `jackdaw status`: 295/300, full in 3m; 0/5, full in 7d."""
    from jackdaw.ops import commands

    monkeypatch.setenv("DATABASE_URL", relay.runtime.settings.database_url)

    signer = account(relay, 7)
    for _ in range(5):
        new_order(signer, f"shown.{OK}")
    assert commands.budget(relay.runtime.settings) == 0
    out = capsys.readouterr().out
    assert re.search(r"new-orders\s+the relay's upstream account\s+295/300\s+3m\n", out), out
    assert re.search(rf"certs-per-set\s+shown\.{re.escape(OK)}\s+0/5\s+7d\n", out), out
    assert "." not in "".join(re.findall(r"\s(\d[\d.]*)/\d+\s", out)), "whole tokens only"
    assert commands.status(relay.runtime.settings) == 0
    out = capsys.readouterr().out
    assert re.search(r"certs-per-set\s+shown\.\S+\s+0/5\s+7d", out), out


def test_a_set_issued_before_the_cas_window_is_no_renewal_and_is_pruned(relay: Relay) -> None:
    """Boulder looks 120 days back: a set last issued 130 days ago is a new certificate again
    (and its row goes with the retention job); one issued 100 days ago is still a renewal."""
    from jackdaw import retention
    from jackdaw.models import IssuedSet, utcnow

    signer = account(relay, 8)
    rt = relay.runtime
    with rt.sessions.begin() as s:
        s.add(IssuedSet(set_key=_key(f"old.{OK}"), issued=utcnow() - timedelta(days=130)))
        s.add(IssuedSet(set_key=_key(f"recent.{OK}"), issued=utcnow() - timedelta(days=100)))
    assert not relay.order_row(new_order(signer, f"old.{OK}")[0]).renewal
    assert relay.order_row(new_order(signer, f"recent.{OK}")[0]).renewal
    job = relay.queue.handlers[JobKind.RETENTION].handler
    assert isinstance(job, retention.RetentionJob)
    assert job.prune(now=None)["issued_sets"] == 1
    with rt.sessions() as s:
        assert list(s.scalars(select(IssuedSet.set_key))) == [_key(f"recent.{OK}")]
