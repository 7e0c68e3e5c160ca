"""Retention: the tables stay bounded over a long run, and nothing still referred to is pruned.

A "long run" here is days of traffic through the ACME API, each day followed by moving every
stored timestamp one day back (the relay's clock cannot be wound forward from outside) and by
the relay's own periodic work: the budget sweep and the retention job, run by the job queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select, update

from jackdaw import retention
from jackdaw.budget import settle_budget
from jackdaw.jobs import JobKind
from jackdaw.models import (
    Authz,
    BudgetBucket,
    Certificate,
    Challenge,
    DnsRecord,
    Job,
    Nonce,
    Notification,
    Order,
    UpstreamOrder,
    utcnow,
)
from tests.integration.test_acme_flow import (  # noqa: F401 - fixtures
    Relay,
    alice,
    new_order,
    ok,
    relay,
    web,
)
from tests.signer import RequestSigner
from tests.testbed import Bind

DOMAIN = "www.example.test"
RETENTION_DAYS, MARGIN_DAYS = 10, 5
#: a short-lived certificate (Let's Encrypt's shortlived profile is 160 h), so its whole life fits the run
CERT_DAYS = 6
DAYS, PER_DAY = 36, 3
TABLES: tuple[Any, ...] = (Order, Authz, Challenge, Certificate, UpstreamOrder, Nonce, BudgetBucket)
#: what moves back a day when a day passes (not nonces: the relay hands out those it holds in
#: memory by their real age; expired ones are checked in the second test)
CLOCKS = {Order: ("expires", "updated", "created"), Authz: ("expires",), Certificate: ("not_after", "created"),
          BudgetBucket: ("updated",), UpstreamOrder: ("created", "updated", "stage_since"),
          DnsRecord: ("created",)}


@pytest.fixture
def app_env(bind: Bind, web: Any) -> dict[str, str]:
    return {"DNS_RESOLVER": bind.nameserver, "CHALLENGE_HTTP_PORT": str(web.port),
            "RETENTION_DAYS": str(RETENTION_DAYS), "RETENTION_CERT_MARGIN_DAYS": str(MARGIN_DAYS)}


def _a_day_passes(relay: Relay) -> None:
    with relay.runtime.sessions.begin() as s:
        for model, columns in CLOCKS.items():
            for row in s.scalars(select(model)):
                for column in columns:
                    if getattr(row, column) is not None:
                        setattr(row, column, getattr(row, column) - timedelta(days=1))


def _periodic_work(relay: Relay) -> None:
    rt = relay.runtime
    settle_budget(rt.sessions, rt.budget)
    [ask] = [task for every, task in rt.queue.periodic if every == retention.EVERY]
    ask()  # the app's periodic task: due in EVERY seconds
    with rt.sessions.begin() as s:  # ...which have passed
        s.execute(update(Job).where(Job.kind == JobKind.RETENTION).values(run_at=utcnow()))
    relay.run_jobs()
    assert relay.jobs(JobKind.RETENTION) == [], "the retention job did not finish"


def _sizes(relay: Relay) -> dict[str, int]:
    with relay.runtime.sessions() as s:
        return {m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0) for m in TABLES}


def _store_certificate(relay: Relay, order_url: str, name: str, days: int = CERT_DAYS) -> str:
    """The order made valid with a certificate, as leg 2 stores them (no CA in these tests)."""
    key, ca_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(x509.Name([]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    with relay.runtime.sessions.begin() as s:
        order = s.get(Order, order_url.rsplit("/", 1)[-1])
        assert order is not None
        order.status = "valid"
        for authz in order.authzs:
            authz.status = "valid"
        s.add(UpstreamOrder(owner_kind=JobKind.ORDER, owner_id=order.id, names=[name], stage="done", status="valid",
                            challenges=[]))
        row = Certificate(order_id=order.id, serial=format(cert.serial_number, "x"),
                          chain_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                          not_after=cert.not_valid_after_utc)
        s.add(row)
        s.flush()
        return row.id


def _a_days_traffic(relay: Relay, signer: RequestSigner, day: int) -> None:
    # one left pending (a client that gave up), one issued, one deactivated by its client
    new_order(signer, f"pending-{day}.{DOMAIN}")
    issued_url, _ = new_order(signer, f"issued-{day}.{DOMAIN}")
    _store_certificate(relay, issued_url, f"issued-{day}.{DOMAIN}")
    dropped_url, dropped = new_order(signer, f"dropped-{day}.{DOMAIN}")
    ok(signer.post(dropped["authorizations"][0], {"status": "deactivated"}))
    assert ok(signer.post_as_get(dropped_url))["status"] == "invalid"


def test_the_tables_stay_bounded_over_a_long_run(relay: Relay, alice: RequestSigner) -> None:
    sizes = []
    for day in range(DAYS):
        _a_days_traffic(relay, alice, day)
        _a_day_passes(relay)
        _periodic_work(relay)
        sizes.append(_sizes(relay))
    # an order lives 7 days, then RETENTION_DAYS; an issued one until its certificate is gone
    # (CERT_DAYS + MARGIN_DAYS), then RETENTION_DAYS past its own expiry: about 17 days of traffic
    steady = 7 + RETENTION_DAYS + 1
    assert sizes[-1]["orders"] <= steady * PER_DAY, sizes[-1]
    assert sizes[-1]["orders"] == sizes[-2]["orders"] == sizes[-8]["orders"], "still growing"
    assert sizes[-1]["orders"] < DAYS * PER_DAY
    assert sizes[-1]["authzs"] == sizes[-1]["challenges"] == sizes[-1]["orders"]  # one name each
    assert sizes[-1]["certificates"] <= CERT_DAYS + MARGIN_DAYS + 1
    assert sizes[-1]["upstream_orders"] <= sizes[-1]["orders"]
    # a bucket per set of names lives two of its 7-day periods; the account's and the domain's stay
    buckets = [s["budget_buckets"] for s in sizes]
    assert max(buckets[-8:]) <= (2 * 7 + 1) * PER_DAY + 2, buckets
    # what is kept is the newest: the oldest day left is recent
    with relay.runtime.sessions() as s:
        names = {n for o in s.scalars(select(Order)) for n in o.identifiers}
    assert f"issued-{DAYS - 1}.{DOMAIN}" in names and f"issued-0.{DOMAIN}" not in names


def test_nothing_still_referred_to_is_pruned(relay: Relay, alice: RequestSigner) -> None:
    """An order whose TXT value is still to be removed, one whose budget is still held, and a
    certificate whose revocation is being forwarded all outlive the retention age."""
    txt_url, _ = new_order(alice, f"txt.{DOMAIN}")
    held_url, _ = new_order(alice, f"held.{DOMAIN}")
    revoked_url, _ = new_order(alice, f"revoked.{DOMAIN}")
    new_order(alice, f"gone.{DOMAIN}")
    revoked_cert = _store_certificate(relay, revoked_url, f"revoked.{DOMAIN}", days=1)
    txt_id = txt_url.rsplit("/", 1)[-1]
    with relay.runtime.sessions.begin() as s:
        s.add(Nonce(value="expired-nonce", expires=utcnow() - timedelta(seconds=1)))
        s.add(DnsRecord(order_id=txt_id, zone="example.test", fqdn=f"_acme-challenge.txt.{DOMAIN}", value="v",
                        state="removing"))
        relay.queue.enqueue(s, JobKind.REVOKE, revoked_cert, delay=10**6)
    _a_day_passes(relay)
    settle_budget(relay.runtime.sessions, relay.runtime.budget)  # what the pending orders held is given back
    for _ in range(RETENTION_DAYS + 8 + MARGIN_DAYS):
        _a_day_passes(relay)
    with relay.runtime.sessions.begin() as s:  # as if finalized, never settled
        held = s.get(Order, held_url.rsplit("/", 1)[-1])
        assert held is not None
        held.budget = "held"
    with relay.runtime.sessions.begin() as s:  # notifications: one told long ago, one still being delivered
        long_ago = utcnow() - retention.NOTIFICATIONS_KEPT - timedelta(days=1)
        told = Notification(event="e", subject="told", period="once", channel="webhook", payload={},
                            created=long_ago)
        sending = Notification(event="e", subject="sending", period="once", channel="webhook", payload={},
                               created=long_ago)
        recent = Notification(event="e", subject="recent", period="once", channel="webhook", payload={})
        s.add_all([told, sending, recent])
        s.flush()
        relay.queue.enqueue(s, JobKind.NOTIFY, str(sending.id), delay=10**6)
    job = relay.queue.handlers[JobKind.RETENTION].handler
    assert isinstance(job, retention.RetentionJob)
    counts = job.prune(now=None)
    assert counts["orders"] == 1 and counts["certificates"] == 0 and counts["nonces"] == 1, counts
    assert counts["notifications"] == 1, counts
    with relay.runtime.sessions() as s:
        assert set(s.scalars(select(Notification.subject))) == {"sending", "recent"}
    with relay.runtime.sessions() as s:
        left = {o.identifiers[0] for o in s.scalars(select(Order))}
        assert left == {f"txt.{DOMAIN}", f"held.{DOMAIN}", f"revoked.{DOMAIN}"}  # not gone.{DOMAIN}
        assert s.get(Certificate, revoked_cert) is not None
        assert s.scalar(select(func.count()).select_from(DnsRecord)) == 1
        assert s.get(Nonce, "expired-nonce") is None and s.scalar(select(func.count()).select_from(Nonce))
