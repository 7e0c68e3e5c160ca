"""Fenced writes (issue 20 item 5), on SQLite and PostgreSQL: a run whose claim was taken over
by a second run writes nothing, whatever write it attempts after its last guard(): the order
stays as the second run leaves it, no certificate is added or overwritten, leg 2's progress,
the DNS values and the budget are untouched, and each attempt stops the stale run (LostClaim).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from flask import Flask
from sqlalchemy import select, update

from jackdaw.jobs import JobContext, JobKind, JobQueue, LostClaim, fenced
from jackdaw.models import (
    Account,
    Authz,
    Base,
    Certificate,
    Challenge,
    DnsRecord,
    Job,
    Notification,
    Order,
    UpstreamOrder,
    utcnow,
)
from jackdaw.notify import Notifier
from jackdaw.protocol import problems
from jackdaw.ra.validation import ValidationJob
from jackdaw.upstream.dns01 import DNS01, RecordState
from jackdaw.upstream.issuer import OrderJob
from jackdaw.upstream.renewal import RenewalInfoJob
from jackdaw.upstream.sequence import Leg2, Stage
from tests.integration.conftest import ALLOWED_DOMAIN
from tests.testbed import Bind

NAME = f"fence.{ALLOWED_DOMAIN}"
ZONE = ALLOWED_DOMAIN


@pytest.fixture
def app_env(bind: Bind) -> dict[str, str]:
    """Leg 2's DNS-01 requests place their values through this BIND."""
    return {"DNS_RESOLVER": bind.nameserver, "DNS_AUTHORITATIVE_PORT": str(bind.port), **bind.env()}


def self_signed_chain(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM).decode()


def taken_over(queue: JobQueue, kind: str, subject: str) -> tuple[JobContext, JobContext]:
    """(stale, fresh): a run claims the job, its lease lapses (it froze), a second run takes over."""
    stale = queue.try_claim(kind, subject)
    assert stale is not None
    with queue.sessions.begin() as s:
        s.execute(update(Job).where(Job.id == stale.id).values(lease_until=utcnow() - timedelta(seconds=5)))
    fresh = queue.try_claim(kind, subject)
    assert fresh is not None and fresh.token != stale.token
    return stale, fresh


def snapshot(app: Flask) -> dict[str, list[str]]:
    """Every row of every table (jobs and their leases included)."""
    with app.extensions["jackdaw"].sessions() as s:
        return {t.name: sorted(repr(tuple(r)) for r in s.execute(select(t))) for t in Base.metadata.sorted_tables}


def stops(run: JobContext, write: Callable[[], object]) -> None:
    """``write``, by a run that has not noticed yet that it lost its claim, stops it."""
    run.lost = False
    with pytest.raises(LostClaim):
        write()
    assert run.lost


@pytest.mark.parametrize("second_run", ["in-flight", "finished"])
def test_a_run_taken_over_writes_nothing(app: Flask, second_run: str) -> None:
    rt = app.extensions["jackdaw"]
    queue, sessions = rt.queue, rt.sessions
    order_job = cast(OrderJob, queue.handlers[JobKind.ORDER].handler)
    leg2 = order_job.leg2
    with sessions.begin() as s:
        account = Account(thumbprint="tp-fence", jwk={}, status="valid")
        s.add(account)
        s.flush()
        order = Order(account_id=account.id, status="processing", identifiers=[NAME], csr=b"csr",
                      expires=utcnow() + timedelta(days=7))
        s.add(order)
        s.flush()
        order_id = order.id

    # the first run creates an upstream order and stores it (it holds its claim: that works)
    stale, fresh = taken_over(queue, JobKind.ORDER, order_id)
    stale_row = leg2._row(JobKind.ORDER, order_id, [NAME], None, None)
    with sessions.begin() as s:  # as if the stale run had stored its upstream order before it froze
        s.execute(update(UpstreamOrder).where(UpstreamOrder.id == stale_row.id).values(
            stage=Stage.AUTHORIZE, url="https://ca.test/order/stale"))
    # the second run goes on with that upstream order and asks for its DNS-01 value
    fresh_row = leg2.state(JobKind.ORDER, order_id)
    assert fresh_row is not None
    leg2._save(fresh, fresh_row, stage=Stage.PROPAGATE, challenges=[{"authz": "a", "url": "c"}])
    with sessions.begin() as s:
        s.add(DnsRecord(order_id=order_id, owner_kind=JobKind.ORDER, run=str(fresh_row.id), zone=ZONE,
                        fqdn=f"_acme-challenge.{NAME}", value="fresh", state=RecordState.SERVED))
    if second_run == "finished":
        leg2._save(fresh, fresh_row, release=True, stage=Stage.ISSUE, challenges=[])
        order_job._store_certificate(fresh, self_signed_chain(NAME))
    before = snapshot(app)

    refusal = messages.Error(typ="urn:ietf:params:acme:error:rateLimited",
                             detail="too many certificates, retry after 2099-01-01 00:00:00 UTC")
    stops(stale, lambda: leg2._save(stale, stale_row, stage=Stage.VALIDATE))
    stops(stale, lambda: leg2.dns01.request(JobKind.ORDER, order_id, str(stale_row.id),
                                            [(f"_acme-challenge.{NAME}", "stale")], ctx=stale))
    stops(stale, lambda: leg2._fail(stale, stale_row, problems.ServerInternal("stale run failed")))
    stops(stale, lambda: leg2._refused(stale, stale_row, refusal))
    stops(stale, lambda: order_job._record_failure(stale, problems.ServerInternal("stale run failed").to_json()))
    stops(stale, lambda: order_job._store_certificate(stale, self_signed_chain(NAME)))
    stops(stale, lambda: order_job.give_up(stale, "stale run gave up"))
    stops(stale, lambda: _finish(leg2, stale))

    assert snapshot(app) == before
    with sessions() as s:
        assert s.scalar(select(Order.status).where(Order.id == order_id)) == (
            "valid" if second_run == "finished" else "processing")
        assert s.scalar(select(UpstreamOrder.stage).where(UpstreamOrder.owner_id == order_id)) == (
            Stage.DONE if second_run == "finished" else Stage.PROPAGATE)
        assert len(list(s.scalars(select(Certificate)))) == (1 if second_run == "finished" else 0)
    queue.renew(fresh)  # the second run still holds the job


def _finish(leg2: Leg2, ctx: JobContext) -> None:
    """The relay certificate's last write (leg 2's finish, the budget's record of an issued set)."""
    with fenced(leg2.sessions, ctx) as s:
        leg2.finish(s, ctx.kind, ctx.subject_id)


def test_other_jobs_taken_over_write_nothing(app: Flask) -> None:
    """The zone job's give-up, removal and failure records, the ARI job's store, a notification's delivery
    record, a validation's give-up."""
    rt = app.extensions["jackdaw"]
    queue, sessions = rt.queue, rt.sessions
    dns01 = cast(Any, queue.handlers[JobKind.DNS_ZONE].handler).__self__
    assert isinstance(dns01, DNS01)
    ari = cast(RenewalInfoJob, queue.handlers[JobKind.RENEWAL_INFO].handler)
    with sessions.begin() as s:
        account = Account(thumbprint="tp-other", jwk={}, status="valid")
        s.add(account)
        s.flush()
        order = Order(account_id=account.id, status="valid", identifiers=[NAME], expires=utcnow() + timedelta(days=7))
        s.add(order)
        s.flush()
        cert = Certificate(order_id=order.id, serial="1", chain_pem=self_signed_chain(NAME), ari_id="x.y",
                           not_after=utcnow() + timedelta(days=90))
        s.add(cert)
        s.add(DnsRecord(order_id="owner", owner_kind=JobKind.ORDER, run="1", zone=ZONE,
                        fqdn=f"_acme-challenge.{NAME}", value="v", state=RecordState.WANTED))
        note = Notification(event="expiring", subject=NAME, period="p", channel="log", payload={},
                            created=utcnow())
        s.add(note)
        s.flush()
        pending = Order(account_id=account.id, status="pending", identifiers=[NAME],
                        expires=utcnow() + timedelta(days=7))
        s.add(pending)
        s.flush()
        authz = Authz(order_id=pending.id, position=0, identifier=NAME, status="pending",
                      expires=utcnow() + timedelta(days=7))
        s.add(authz)
        s.flush()
        chall = Challenge(authz_id=authz.id, type="http-01", token="t" * 43, status="processing")
        s.add(chall)
        s.flush()
        cert_id, note_id, chall_id = cert.id, note.id, chall.id
    notifier = Notifier(rt.settings, sessions, queue, ())
    zone_stale, _ = taken_over(queue, JobKind.DNS_ZONE, ZONE)
    ari_stale, _ = taken_over(queue, JobKind.RENEWAL_INFO, cert_id)
    note_stale, _ = taken_over(queue, JobKind.NOTIFY, str(note_id))
    validation_stale, _ = taken_over(queue, JobKind.VALIDATE, chall_id)
    validation = cast(ValidationJob, queue.handlers[JobKind.VALIDATE].handler)
    before = snapshot(app)

    stops(zone_stale, lambda: dns01.give_up(zone_stale, "stale zone run"))
    stops(zone_stale, lambda: dns01._delete(zone_stale, [1]))
    with sessions() as s:
        wanted = list(s.scalars(select(DnsRecord)))
    stops(zone_stale, lambda: dns01._note_failure(zone_stale, wanted, "ref", fail=True))
    stops(ari_stale, lambda: ari._store(ari_stale, (utcnow(), utcnow(), None), timedelta(hours=1)))
    stops(note_stale, lambda: notifier._record(note_stale, note_id, sent=True, error=None))
    stops(validation_stale, lambda: validation.give_up(validation_stale, "stale validation run"))

    assert snapshot(app) == before


def test_sweep_of_orphans_spares_a_run_that_started_since_it_looked(app: Flask) -> None:
    """sweep_orphans finds owners without a job, then releases: a run that claimed its job and
    asked for fresh TXT values in between keeps them; an owner still orphaned is released."""
    rt = app.extensions["jackdaw"]
    queue, sessions = rt.queue, rt.sessions
    dns01 = cast(Any, queue.handlers[JobKind.DNS_ZONE].handler).__self__
    long_ago = utcnow() - timedelta(hours=1)

    def value(owner: str, run: str, created: datetime) -> None:
        with sessions.begin() as s:
            s.add(DnsRecord(order_id=owner, owner_kind=JobKind.RELAY_CERT, run=run, zone=ZONE, created=created,
                            fqdn=f"_acme-challenge.{owner}.{ZONE}", value=f"{owner}-{run}",
                            state=RecordState.SERVED))

    value("back", "old", long_ago)  # a worker died holding these; its owner's job is gone
    value("gone", "old", long_ago)
    cutoff = utcnow() - timedelta(minutes=10)
    assert dns01.orphans(cutoff) == {"back", "gone"}

    # meanwhile the owner's job runs again and asks for fresh values
    assert queue.try_claim(JobKind.RELAY_CERT, "back") is not None
    value("back", "new", utcnow())

    assert dns01.release_orphans({"back", "gone"}, cutoff) == 1
    with sessions() as s:
        states = {(r.order_id, r.run): r.state for r in s.scalars(select(DnsRecord))}
    assert states[("back", "new")] == RecordState.SERVED
    assert states[("back", "old")] == RecordState.SERVED  # a later sweep, once "back" has no job again
    assert states[("gone", "old")] == RecordState.REMOVING
