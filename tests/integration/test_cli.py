"""Operator CLI (`jackdaw accounts|orders|certificates|order show|retry|cancel|check --show`).

Each test gets a database migrated by alembic on SQLite and on PostgreSQL (the `database_url`
fixture of conftest), rows inserted directly through the models, settings from environment
variables, and calls `jackdaw.cli.main` as the console script would.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jackdaw.cli import main
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.models import Account, Authz, Certificate, Challenge, DnsRecord, Job, Order, UpstreamOrder, new_id, utcnow
from tests.relay import ROOT

TSIG_SECRET = "dGhpcy1pcy1hLXRzaWctc2VjcmV0LWZvci10ZXN0cw=="
PROBLEM = "urn:ietf:params:acme:error:"
#: ids are URL-safe base64: one in 32 starts with "-", and this one looks like the -h option
DASH_ID = "-hx4Mz0bQyW3Kd9vT1aLpN"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings as an operator's shell would have them; no stray .env from the checkout."""
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "DNS_PROVIDER": "rfc2136",
        "RFC2136_NAMESERVER": "192.0.2.53:5353",
        "RFC2136_TSIG_KEY": "jackdaw-key.",
        "RFC2136_TSIG_SECRET": TSIG_SECRET,
        "RFC2136_TSIG_ALGORITHM": "hmac-sha256",
        "LE_DIRECTORY": "https://upstream.invalid/directory",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def cli_env(settings_env: None, monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    """The settings above, on a database at alembic head (SQLite and PostgreSQL)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


@dataclass
class Seed:
    url: str
    alice: str
    bob: str
    carol: str
    valid: str          # alice, www + apex, certificate expires in 60 days
    valid_soon: str     # bob, certificate expires in 10 days
    valid_expired: str  # alice, certificate expired yesterday and revoked
    processing: str     # alice, stuck upstream: job in back-off, a TXT record still recorded
    ready_err: str      # bob, ready with a failed upstream attempt
    pending: str        # alice, challenge being validated (validate job)
    invalid: str        # bob, HTTP-01 failed
    stuck_challenge: str
    pending_challenge: str


def _order(s: Session, account: Account, status: str, names: list[str], age: timedelta, *,
           upstream_status: str | None = None, upstream_order_url: str | None = None,
           upstream_error: dict[str, Any] | None = None, **kw: Any) -> Order:
    now = utcnow()
    order = Order(id=kw.pop("id", None) or new_id(), account=account, account_id=account.id, status=status,
                  identifiers=names, expires=now - age + timedelta(days=7), created=now - age, updated=now - age / 2,
                  **kw)
    s.add(order)
    if upstream_status is not None:  # leg 2's progress, as the sequence stores it
        stage = "done" if upstream_status == "valid" else "failed" if upstream_error else "validate"
        s.add(UpstreamOrder(owner_kind="order", owner_id=order.id, names=names, url=upstream_order_url,
                            stage=stage, status=upstream_status, error=upstream_error, challenges=[]))
    return order


def _authz(s: Session, order: Order, name: str, status: str, chall_status: str, **chall: Any) -> Challenge:
    authz = Authz(order=order, position=len(order.authzs), identifier=name, wildcard=False, status=status,
                  expires=utcnow() + timedelta(days=7))
    c = Challenge(authz=authz, type="http-01", token=f"tok-{name}", status=chall_status,
                  validation_records=chall.pop("validation_records", []), **chall)
    s.add_all([authz, c])
    return c


@pytest.fixture
def seed(cli_env: str) -> Iterator[Seed]:
    engine = make_engine(cli_env)
    sessions = make_sessionmaker(engine)
    now = utcnow()
    with sessions.begin() as s:
        alice = Account(thumbprint="tp-alice", jwk={"kty": "EC"}, status="valid",
                        contact=["mailto:alice@example.test"], created=now - timedelta(days=30))
        bob = Account(thumbprint="tp-bob", jwk={"kty": "EC"}, status="valid", contact=[],
                      created=now - timedelta(days=20))
        carol = Account(thumbprint="tp-carol", jwk={"kty": "EC"}, status="deactivated",
                        contact=["mailto:carol@example.test"], created=now - timedelta(days=10))
        s.add_all([alice, bob, carol])
        s.flush()

        valid = _order(s, alice, "valid", ["www.example.test", "example.test"], timedelta(days=5),
                       upstream_status="valid", upstream_order_url="https://upstream.invalid/order/1")
        valid_soon = _order(s, bob, "valid", ["soon.example.test"], timedelta(days=4), upstream_status="valid")
        valid_expired = _order(s, alice, "valid", ["old.example.test"], timedelta(days=3, hours=12))
        processing = _order(s, alice, "processing", ["stuck.example.test"], timedelta(hours=1), csr=b"\x30\x00",
                            upstream_order_url="https://upstream.invalid/order/7", upstream_status="pending")
        ready_err = _order(s, bob, "ready", ["ready.example.test"], timedelta(hours=2),
                           upstream_order_url="https://upstream.invalid/order/9", upstream_status="invalid",
                           upstream_error={"type": PROBLEM + "dns", "detail": "DNS-01 record did not propagate",
                                           "status": 400})
        pending = _order(s, alice, "pending", ["new.example.test"], timedelta(minutes=10))
        invalid = _order(s, bob, "invalid", ["bad.example.test"], timedelta(days=3), id=DASH_ID,
                         error={"type": PROBLEM + "connection", "detail": "connection refused", "status": 400})

        record = {"url": "http://stuck.example.test/.well-known/acme-challenge/tok", "hostname": "stuck.example.test",
                  "port": "80", "addressesResolved": ["192.0.2.10"], "addressUsed": "192.0.2.10"}
        stuck_chall = _authz(s, processing, "stuck.example.test", "valid", "valid",
                             validated=now - timedelta(minutes=59), validation_records=[record])
        pending_chall = _authz(s, pending, "new.example.test", "pending", "processing")
        _authz(s, invalid, "bad.example.test", "invalid", "invalid",
               error={"type": PROBLEM + "connection", "detail": "connection refused", "status": 400})
        for o, n in ((valid, "www.example.test"), (valid, "example.test"), (valid_soon, "soon.example.test"),
                     (valid_expired, "old.example.test"), (ready_err, "ready.example.test")):
            _authz(s, o, n, "valid", "valid", validated=now - timedelta(days=1))
        s.add_all([
            Certificate(order=valid, serial="aa01", chain_pem="-", not_after=now + timedelta(days=60, hours=1)),
            Certificate(order=valid_soon, serial="bb02", chain_pem="-", not_after=now + timedelta(days=10, hours=1)),
            Certificate(order=valid_expired, serial="cc03", chain_pem="-", not_after=now - timedelta(days=1),
                        revoked=now - timedelta(days=2), revocation_reason=4),
        ])
        s.flush()
        s.add_all([
            Job(kind="order", subject_id=processing.id, run_at=now + timedelta(seconds=60), attempts=3, generation=0,
                last_error="ConnectionError: upstream.invalid unreachable", created=now - timedelta(hours=1)),
            Job(kind="validate", subject_id=pending_chall.id, run_at=now, attempts=1, generation=0,
                created=now - timedelta(minutes=9)),
            DnsRecord(order_id=processing.id, zone="example.test", fqdn="_acme-challenge.stuck.example.test",
                      value="txt-value-stuck", created=now - timedelta(minutes=58)),
        ])
        ids = Seed(cli_env, alice.id, bob.id, carol.id, valid.id, valid_soon.id, valid_expired.id, processing.id,
                   ready_err.id, pending.id, invalid.id, stuck_chall.id, pending_chall.id)
    try:
        yield ids
    finally:
        engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def rows(url: str, model: Any, *where: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            return list(s.scalars(select(model).where(*where)))
    finally:
        engine.dispose()


def table_ids(out: str) -> list[str]:
    """First column of a text table, header skipped."""
    return [line.split()[0] for line in out.splitlines()[1:]]


# -- lists -------------------------------------------------------------------------------------

def test_accounts_list_status_contact_and_order_counts(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    rc, out, _ = run(capsys, "accounts")
    assert rc == 0
    assert out.splitlines()[0].split() == ["ID", "STATUS", "CONTACT", "CREATED", "ORDERS"]
    assert table_ids(out) == [seed.alice, seed.bob, seed.carol]  # oldest first
    alice_line = next(line for line in out.splitlines() if line.startswith(seed.alice))
    assert "mailto:alice@example.test" in alice_line and alice_line.rstrip().endswith("4")

    data = run_json(capsys, "accounts")
    assert [(a["id"], a["status"], a["orders"]) for a in data] == [
        (seed.alice, "valid", 4), (seed.bob, "valid", 3), (seed.carol, "deactivated", 0)]
    assert data[0]["contact"] == ["mailto:alice@example.test"]
    assert data[0]["created"].endswith("Z")


def test_orders_newest_first_with_filters(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    newest_first = [seed.pending, seed.processing, seed.ready_err, seed.invalid, seed.valid_expired,
                    seed.valid_soon, seed.valid]
    rc, out, _ = run(capsys, "orders")
    assert rc == 0
    assert out.splitlines()[0].split() == ["ID", "STATUS", "CREATED", "UPDATED", "UPSTREAM", "IDENTIFIERS"]
    assert table_ids(out) == newest_first
    stuck_line = next(line for line in out.splitlines() if line.startswith(seed.processing))
    assert "processing" in stuck_line and "pending" in stuck_line and "stuck.example.test" in stuck_line

    data = run_json(capsys, "orders")
    assert [o["id"] for o in data] == newest_first
    assert data[0]["identifiers"] == ["new.example.test"] and data[0]["upstream_status"] is None

    assert [o["id"] for o in run_json(capsys, "orders", "--status", "valid")] == [
        seed.valid_expired, seed.valid_soon, seed.valid]
    assert [o["id"] for o in run_json(capsys, "orders", "--name", "STUCK")] == [seed.processing]
    assert [o["id"] for o in run_json(capsys, "orders", "--name", "www.")] == [seed.valid]
    assert [o["id"] for o in run_json(capsys, "orders", "--name", "example.test", "--limit", "2")] == newest_first[:2]
    assert run_json(capsys, "orders", "--status", "valid", "--name", "stuck") == []
    # LIKE wildcards in the substring are taken literally
    assert run_json(capsys, "orders", "--name", "%") == []
    rc, out, _ = run(capsys, "orders", "--name", "nothing-like-this")
    assert (rc, out.strip()) == (0, "no orders")


def test_orders_rejects_bad_arguments(capsys: pytest.CaptureFixture[str], settings_env: None) -> None:
    for argv in (["orders", "--status", "bogus"], ["orders", "--limit", "0"], ["order", "frobnicate", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        capsys.readouterr()


def test_certificates_soonest_expiry_first(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    rc, out, _ = run(capsys, "certificates")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SERIAL", "NOT", "AFTER"]
    assert table_ids(out) == ["cc03", "bb02", "aa01"]
    assert "EXPIRED 1d ago" in lines[1] and seed.valid_expired in lines[1] and " no " not in lines[1]
    assert "10d" in lines[2] and " no " in lines[2] and "soon.example.test" in lines[2]
    assert "60d" in lines[3] and "www.example.test, example.test" in lines[3]

    data = run_json(capsys, "certificates")
    assert [(c["serial"], c["days_left"], c["order_id"]) for c in data] == [
        ("cc03", -1, seed.valid_expired), ("bb02", 10, seed.valid_soon), ("aa01", 60, seed.valid)]
    assert data[0]["revoked"] is not None and data[0]["revocation_reason"] == 4
    assert data[1]["revoked"] is None
    assert data[2]["names"] == ["www.example.test", "example.test"]


# -- one order ---------------------------------------------------------------------------------

def test_order_show_gives_the_whole_history(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    rc, out, _ = run(capsys, "order", "show", seed.processing)
    assert rc == 0
    for expected in (
        f"order {seed.processing}", "processing", "stuck.example.test", "present (finalized)",
        "https://upstream.invalid/order/7",
        f"challenge http-01 {seed.stuck_challenge}: valid", "validationRecord", '"addressUsed": "192.0.2.10"',
        f"order {seed.processing}: scheduled",
        "ConnectionError: upstream.invalid unreachable",
        "_acme-challenge.stuck.example.test", "txt-value-stuck",
    ):
        assert expected in out, expected
    assert re.search(r"^ +attempts +3$", out, re.MULTILINE)

    detail = run_json(capsys, "order", "show", seed.processing)
    assert detail["status"] == "processing" and detail["csr_present"] is True
    assert detail["upstream_status"] == "pending" and detail["upstream_error"] is None
    assert detail["certificate"] is None
    [authz] = detail["authorizations"]
    [chall] = authz["challenges"]
    assert chall["status"] == "valid" and chall["validated"].endswith("Z")
    assert chall["validation_records"][0]["hostname"] == "stuck.example.test"
    [job] = detail["jobs"]
    assert (job["kind"], job["attempts"], job["generation"], job["lease_until"]) == ("order", 3, 0, None)
    assert [r["fqdn"] for r in detail["dns_records"]] == ["_acme-challenge.stuck.example.test"]

    rc, out, _ = run(capsys, "order", "show", seed.invalid)
    assert rc == 0
    assert f"order {DASH_ID}" in out
    assert "connection: connection refused" in out and "absent (not finalized)" in out
    assert run_json(capsys, "order", "show", DASH_ID)["id"] == DASH_ID  # an id that looks like an option
    rc, out, _ = run(capsys, "order", "show", "--json", "--", DASH_ID)
    assert rc == 0 and json.loads(out)["id"] == DASH_ID

    detail = run_json(capsys, "order", "show", seed.valid_expired)
    assert detail["certificate"]["serial"] == "cc03" and detail["certificate"]["days_left"] == -1
    detail = run_json(capsys, "order", "show", seed.ready_err)
    assert detail["upstream_error"]["detail"] == "DNS-01 record did not propagate"
    detail = run_json(capsys, "order", "show", seed.pending)
    assert [(j["kind"], j["subject_id"]) for j in detail["jobs"]] == [("validate", seed.pending_challenge)]

    rc, out, err = run(capsys, "order", "show", "no-such-order")
    assert (rc, out) == (1, "") and "no order 'no-such-order'" in err


def test_retry_rearms_the_upstream_job_of_a_stuck_order(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    [before] = rows(seed.url, Job, Job.kind == "order", Job.subject_id == seed.processing)
    assert before.run_at > utcnow() + timedelta(seconds=30)

    rc, out, err = run(capsys, "order", "retry", seed.processing)
    assert rc == 0, err
    assert f"order {seed.processing} (processing): upstream job re-queued" in out
    [after] = rows(seed.url, Job, Job.kind == "order", Job.subject_id == seed.processing)
    assert after.id == before.id
    assert after.generation == before.generation + 1
    assert after.run_at <= utcnow()
    assert after.attempts == 0 and after.lease_until is None
    assert after.last_error == before.last_error  # history kept for `order show`
    [order] = rows(seed.url, Order, Order.id == seed.processing)
    [leg2] = rows(seed.url, UpstreamOrder, UpstreamOrder.owner_id == seed.processing)
    assert order.status == "processing" and leg2.url == "https://upstream.invalid/order/7"

    # a worker holds the job right now: re-armed for once more, its lease left alone
    lease = utcnow() + timedelta(seconds=30)
    engine = make_engine(seed.url)
    with make_sessionmaker(engine).begin() as s:
        s.execute(update(Job).where(Job.id == after.id).values(lease_until=lease, attempts=1))
    engine.dispose()
    rc, out, err = run(capsys, "order", "retry", seed.processing)
    assert rc == 0, err
    assert "a worker holds the job until" in out
    [again] = rows(seed.url, Job, Job.id == after.id)
    assert again.generation == after.generation + 1 and again.lease_until == lease


def test_retry_of_a_ready_order_with_an_upstream_error_starts_a_new_upstream_order(
        capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    assert rows(seed.url, Job, Job.subject_id == seed.ready_err) == []
    rc, out, err = run(capsys, "order", "retry", seed.ready_err)
    assert rc == 0, err
    assert "a new upstream order will be created" in out
    [job] = rows(seed.url, Job, Job.kind == "order", Job.subject_id == seed.ready_err)
    assert job.generation == 0 and job.run_at <= utcnow()
    [order] = rows(seed.url, Order, Order.id == seed.ready_err)
    assert order.status == "ready"
    assert rows(seed.url, UpstreamOrder, UpstreamOrder.owner_id == seed.ready_err) == []  # a new one is made


def test_retry_is_refused_unless_stuck(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    for order_id, why in ((seed.valid, "is valid"), (seed.invalid, "is invalid"), (seed.pending, "is pending"),
                          ("no-such-order", "no order")):
        rc, out, err = run(capsys, "order", "retry", order_id)
        assert (rc, out) == (1, ""), order_id
        assert why in err
    assert rows(seed.url, Job, Job.subject_id.in_([seed.valid, seed.invalid, seed.pending])) == []


def test_cancel_invalidates_and_drops_jobs_leaving_txt_to_the_sweep(
        capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    rc, out, err = run(capsys, "order", "cancel", seed.processing)
    assert rc == 0, err
    assert "processing -> invalid" in out and "cancelled by the operator" in out
    assert "job rows deleted: 1" in out
    assert "orphan sweep" in out and "_acme-challenge.stuck.example.test" in out
    [order] = rows(seed.url, Order, Order.id == seed.processing)
    assert order.status == "invalid"
    assert order.error == {"type": PROBLEM + "unauthorized", "detail": "cancelled by the operator", "status": 403}
    assert rows(seed.url, Job, Job.subject_id == seed.processing) == []
    assert len(rows(seed.url, DnsRecord, DnsRecord.order_id == seed.processing)) == 1  # for the sweep

    # a pending order: its validation job goes too, and the challenge no longer waits for it
    rc, out, err = run(capsys, "order", "cancel", seed.pending)
    assert rc == 0, err
    assert "no TXT records" in out
    assert rows(seed.url, Job, Job.subject_id == seed.pending_challenge) == []
    [chall] = rows(seed.url, Challenge, Challenge.id == seed.pending_challenge)
    assert chall.status == "invalid" and chall.error is not None
    assert rows(seed.url, Order, Order.id == seed.pending)[0].status == "invalid"

    for order_id in (seed.valid, seed.processing, "no-such-order"):  # final (or gone): refused
        rc, out, err = run(capsys, "order", "cancel", order_id)
        assert (rc, out) == (1, "") and err
    [order] = rows(seed.url, Order, Order.id == seed.valid)
    assert order.status == "valid" and order.error is None

    rc, out, _ = run(capsys, "order", "retry", seed.processing)
    assert rc == 1


# -- settings ----------------------------------------------------------------------------------

def test_check_show_masks_secrets(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  settings_env: None) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://jackdaw:hunter2-db-pass@db.internal:5432/jackdaw")
    monkeypatch.setenv("RFC2136_UNUSED_EXTRA", "visible-value")
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", "https://hooks.slack.example/services/T0/B0/slack-path-token")
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", "webhook-signing-secret")
    rc, out, err = run(capsys, "check", "--show")
    assert rc == 0, err
    assert out.startswith("settings OK: relay relay.example.test")
    assert TSIG_SECRET not in out and TSIG_SECRET[:6] not in out
    assert "hunter2-db-pass" not in out
    assert "slack-path-token" not in out and "webhook-signing-secret" not in out
    assert "https://hooks.slack.example/****" in out
    assert "postgresql+psycopg://jackdaw:****@db.internal:5432/jackdaw" in out
    lines = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:] if line.startswith("  ")}
    assert lines["relay_domain"] == "relay.example.test"
    assert lines["acme_email"] == "ops@example.test"
    assert lines["dns_provider"] == "rfc2136"
    assert lines["le_directory"] == "https://upstream.invalid/directory"
    assert lines["job_threads"] == "8"
    assert lines["upstream_ca_bundle"] == "(unset)"
    assert lines["RFC2136_NAMESERVER"] == "192.0.2.53:5353"
    assert lines["RFC2136_TSIG_ALGORITHM"] == "hmac-sha256"
    assert lines["RFC2136_TSIG_SECRET"] == TSIG_SECRET[:2] + "…  (from env)"
    assert lines["RFC2136_TSIG_KEY"] == "ja…"  # a *KEY* name counts as secret
    assert lines["RFC2136_TTL"] == "(unset)"  # read by the provider, left at its default
    assert lines["RFC2136_UNUSED_EXTRA"] == "visible-value"

    rc, out, err = run(capsys, "check", "--show", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert TSIG_SECRET not in out and "hunter2-db-pass" not in out
    env = {e["key"]: e for e in data["provider_env"]}
    assert env["RFC2136_TSIG_SECRET"]["masked"] is True and env["RFC2136_TSIG_SECRET"]["source"] == "env"
    assert env["RFC2136_NAMESERVER"] == {"key": "RFC2136_NAMESERVER", "value": "192.0.2.53:5353", "masked": False,
                                         "source": None}

    rc, out, _ = run(capsys, "check")
    assert rc == 0 and "RFC2136" not in out  # without --show: the one-line verdict only


def test_configuration_errors_exit_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                     settings_env: None) -> None:
    monkeypatch.delenv("RFC2136_TSIG_SECRET")
    rc, _, err = run(capsys, "check", "--show")
    assert rc == 2 and "RFC2136_TSIG_SECRET" in err
    monkeypatch.setenv("DATABASE_URL", "mysql://root:pw@localhost/jackdaw")
    rc, _, err = run(capsys, "orders")
    assert rc == 2 and "DATABASE_URL" in err and "pw@" not in err


def test_database_missing_or_behind_exits_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                            settings_env: None, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    rc, _, err = run(capsys, "accounts")
    assert rc == 1 and "jackdaw db upgrade" in err
    assert not (tmp_path / "absent.db").exists()  # looking does not create it
    sqlite3.connect(tmp_path / "empty.db").close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    rc, _, err = run(capsys, "certificates")
    assert rc == 1 and "not at head" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's single-writer lock
def test_listing_does_not_wait_for_the_relays_sqlite_writer(
        capsys: pytest.CaptureFixture[str], seed: Seed, cli_env: str) -> None:
    writer = sqlite3.connect(cli_env.split("///", 1)[1], isolation_level=None, timeout=1)
    try:
        writer.execute("BEGIN IMMEDIATE")  # as a relay worker mid-transaction
        writer.execute("UPDATE jobs SET attempts = attempts")
        rc, out, err = run(capsys, "orders", "--status", "processing")
        assert rc == 0, err
        assert seed.processing in out
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# -- the entry point ---------------------------------------------------------------------------

def test_entry_point_runs_as_a_module(seed: Seed, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "jackdaw.cli", "orders", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data[0]["id"] == seed.pending and len(data) == 7
    proc = subprocess.run([sys.executable, "-m", "jackdaw.cli", "order", "show", "nope"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "no order" in proc.stderr
