"""Notifications on SQLite and PostgreSQL: each event kind raised from real rows, told once per
channel however often the sweep looks, delivered by the job queue to real receivers started
here: an HTTP server on 127.0.0.1 (every signature checked), aiosmtpd (plain, STARTTLS and
implicit TLS with authentication) and a command; a failing webhook retried until it succeeds,
and one given up; `jackdaw notify test` through the command line.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jackdaw import ledger
from jackdaw.budget import Budget
from jackdaw.jobs import JobKind
from jackdaw.ledger import Want
from jackdaw.models import Account, Certificate, Job, Notification, Order, utcnow
from jackdaw.notify import EVERY
from jackdaw.notify.channels import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from jackdaw.notify.outbox import RETRY_BASE
from jackdaw.runtime import Runtime
from tests.integration.conftest import running_app
from tests.relay import ROOT
from tests.testbed import free_port

SECRET = "webhook-secret-for-the-tests"
#: a webhook URL may carry a token (Slack's do): it must not reach a log line either
TOKEN_PATH = "/hooks/t0ken-in-the-webhook-path"
SMTP_USER, SMTP_PASSWORD = "jackdaw", "smtp-password-for-the-tests"
PAUSED = ("Your account is temporarily prevented from requesting certificates for paused.example.test and "
          "possibly others. Please visit: https://portal.example/unpause?jwt=abc")
REQUIRED = {"RELAY_DOMAIN": "relay.example.test", "ACME_EMAIL": "ops@example.test", "DNS_PROVIDER": "rfc2136",
            "RFC2136_NAMESERVER": "127.0.0.1:53", "RFC2136_TSIG_KEY": "k", "RFC2136_TSIG_SECRET": "c2VjcmV0"}


# -- receivers ---------------------------------------------------------------------------------


@dataclass
class Hook:
    """A webhook receiver: records each request, answers the queued statuses, then 204."""

    port: int = 0
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_WEBHOOK_URL": f"http://127.0.0.1:{self.port}{TOKEN_PATH}", "NOTIFY_WEBHOOK_SECRET": SECRET}

    def docs(self) -> list[dict[str, Any]]:
        """The bodies received, each checked against its signature and delivery id."""
        out = []
        for headers, body in self.received:
            assert verify(SECRET.encode(), headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body), headers
            assert not verify(b"another secret", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body)
            doc = json.loads(body)
            assert headers[DELIVERY_HEADER] == str(doc["id"]) and headers["Content-Type"] == "application/json"
            out.append(doc)
        return out


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == TOKEN_PATH:
                state.received.append((dict(self.headers.items()), body))
            self.send_response(state.statuses.pop(0) if state.statuses else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.messages.append((envelope, message_from_bytes(envelope.original_content or b"", policy=policy.default)))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(security: str, workdir: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, dict[str, str]]]:
    """aiosmtpd on 127.0.0.1: ``none`` without TLS or authentication; ``starttls`` and ``ssl``
    with a certificate for 127.0.0.1 from a test CA the client trusts (SSL_CERT_FILE, which
    OpenSSL reads for the default trust) and a required login."""
    mailbox, port = Mailbox(), free_port()
    env = {"NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": str(port), "NOTIFY_SMTP_SECURITY": security,
           "NOTIFY_EMAIL_TO": "ops@example.test,oncall@example.test"}
    kwargs: dict[str, Any] = {}
    if security != "none":
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(workdir / "smtp-ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(workdir / "smtp-ca.pem"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        kwargs = {"authenticator": _authenticate, "auth_required": True, "auth_require_tls": True}
        # implicit TLS: aiosmtpd's auth_require_tls looks for a STARTTLS only, so it would hide AUTH
        kwargs.update({"tls_context": context, "require_starttls": True} if security == "starttls"
                      else {"ssl_context": context, "auth_require_tls": False})
        env.update({"NOTIFY_SMTP_USER": SMTP_USER, "NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD})
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield mailbox, env
    finally:
        controller.stop()


@dataclass
class Script:
    """The command channel: a script that files each notification (stdin) and its environment."""

    out: Path
    env: dict[str, str]

    def received(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.out.glob("*.json"))]


@pytest.fixture
def script(tmp_path: Path) -> Script:
    out = tmp_path / "received"
    out.mkdir()
    path = tmp_path / "notify-script.py"
    path.write_text("import json, os, pathlib, sys\n"
                    "doc = json.load(sys.stdin)\n"
                    "(pathlib.Path(sys.argv[1]) / f\"{doc['id']}.json\").write_text(\n"
                    "    json.dumps({'doc': doc, 'env': dict(os.environ)}))\n")
    return Script(out, {"NOTIFY_COMMAND": shlex.join([sys.executable, str(path), str(out)])})


# -- rows and runs -----------------------------------------------------------------------------


def _account(s: Session) -> Account:
    account = Account(thumbprint=os.urandom(8).hex(), jwk={}, status="valid")
    s.add(account)
    s.flush()
    return account


def _certificate(s: Session, account: Account, names: list[str], days_left: float) -> Certificate:
    order = Order(account_id=account.id, status="valid", expires=utcnow() + timedelta(days=7), identifiers=names)
    s.add(order)
    s.flush()
    cert = Certificate(order_id=order.id, serial=os.urandom(8).hex(), chain_pem="-",
                       not_after=utcnow() + timedelta(days=days_left))
    s.add(cert)
    s.flush()
    return cert


def _failed_order(s: Session, account: Account, names: list[str], problem: str = "connection") -> Order:
    order = Order(account_id=account.id, status="invalid", expires=utcnow() + timedelta(days=7), identifiers=names,
                  error={"type": f"urn:ietf:params:acme:error:{problem}", "detail": "no"})
    s.add(order)
    s.flush()
    return order


def sweep(rt: Runtime) -> None:
    """The app's periodic ask, its delay passed, and the queue run until nothing is due."""
    [ask] = [task for every, task in rt.queue.periodic if every == EVERY]
    ask()
    with rt.sessions.begin() as s:
        s.execute(update(Job).where(Job.kind == JobKind.NOTIFY_SWEEP).values(run_at=utcnow()))
    rt.queue.drain()
    assert _jobs(rt, JobKind.NOTIFY_SWEEP) == []


def _jobs(rt: Runtime, kind: str) -> list[Job]:
    with rt.sessions() as s:
        return list(s.scalars(select(Job).where(Job.kind == kind)))


def _notifications(rt: Runtime) -> list[Notification]:
    with rt.sessions() as s:
        return list(s.scalars(select(Notification).order_by(Notification.id)))


def _make_due(rt: Runtime, kind: str) -> None:
    with rt.sessions.begin() as s:
        s.execute(update(Job).where(Job.kind == kind).values(run_at=utcnow()))


@contextmanager
def app_with(database_url: str, tmp_path: Path, **env: str) -> Iterator[tuple[Flask, Runtime]]:
    with running_app(database_url, tmp_path / "data", **env) as app:
        yield app, app.extensions["jackdaw"]


# -- tests -------------------------------------------------------------------------------------


def test_an_unrenewed_certificate_is_told_once_on_every_channel(database_url: str, tmp_path: Path, hook: Hook,
                                                                script: Script,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_ONLY_SECRET_TOKEN", "not for the command")  # the relay's env is not passed on
    with smtp_server("none", tmp_path, monkeypatch) as (mailbox, smtp_env), \
            app_with(database_url, tmp_path, **hook.env, **smtp_env, **script.env) as (_, rt):
        with rt.sessions.begin() as s:
            alice = _account(s)
            due = _certificate(s, alice, ["www.example.test", "example.test"], days_left=4)
            _certificate(s, alice, ["fresh.example.test"], days_left=60)
            _certificate(s, alice, ["renewed.example.test"], days_left=3)
            _certificate(s, alice, ["renewed.example.test"], days_left=80)  # its successor
        sweep(rt)
        sweep(rt)  # the next sweep finds the same certificate: nothing new is sent

        [doc] = hook.docs()
        assert (doc["event"], doc["subject"], doc["relay"]) == ("certificate_expiring", due.id, "relay.example.test")
        assert doc["details"]["names"] == ["example.test", "www.example.test"]
        assert doc["details"]["serial"] == due.serial and 3.9 < doc["details"]["days_left"] <= 4
        assert "example.test, www.example.test" in doc["title"]

        [(envelope, message)] = mailbox.messages
        assert envelope.rcpt_tos == ["ops@example.test", "oncall@example.test"]
        assert envelope.mail_from == "jackdaw@relay.example.test"
        assert message["Subject"] == f"[jackdaw relay.example.test] {doc['title']}"
        assert message["Auto-Submitted"] == "auto-generated"
        assert doc["text"].split(".")[0] in message.get_payload()

        [received] = script.received()
        assert received["doc"]["event"] == "certificate_expiring" and received["doc"]["subject"] == due.id
        env = received["env"]
        assert (env["JACKDAW_EVENT"], env["JACKDAW_SUBJECT"]) == ("certificate_expiring", due.id)
        assert env["JACKDAW_NOTIFICATION_ID"] == str(received["doc"]["id"])
        assert "RELAY_ONLY_SECRET_TOKEN" not in env

        rows = _notifications(rt)
        assert sorted(r.channel for r in rows) == ["command", "email", "webhook"]
        assert all(r.sent is not None and r.error is None for r in rows)
        assert _jobs(rt, JobKind.NOTIFY) == []


def test_a_failing_webhook_is_retried_with_backoff_until_it_takes_it(database_url: str, tmp_path: Path,
                                                                     hook: Hook) -> None:
    hook.statuses = [503]
    with app_with(database_url, tmp_path, **hook.env) as (_, rt):
        with rt.sessions.begin() as s:
            alice = _account(s)
            for problem in ("connection", "connection", "unauthorized"):
                _failed_order(s, alice, ["flaky.example.test"], problem)
            for _ in range(2):  # below the threshold of 3
                _failed_order(s, alice, ["twice.example.test"])
            old = _failed_order(s, alice, ["stale.example.test"])
            for _ in range(2):
                _failed_order(s, alice, ["stale.example.test"])
            s.flush()
            old.updated = utcnow() - timedelta(hours=25)  # out of the 24 h window: 2 left

        sweep(rt)
        assert len(hook.received) == 1
        [row] = _notifications(rt)
        assert (row.event, row.subject, row.sent, row.error) == ("order_failures", "flaky.example.test", None,
                                                                  "webhook: HTTP 503")
        [job] = _jobs(rt, JobKind.NOTIFY)
        assert job.attempts == 1 and job.last_error == "webhook: HTTP 503"
        assert RETRY_BASE - 5 < (job.run_at - utcnow()).total_seconds() <= RETRY_BASE
        assert rt.queue.run_once() is False, "backing off"

        _make_due(rt, JobKind.NOTIFY)
        rt.queue.drain()
        first, second = hook.docs()
        assert first == second, "the same document, retried"
        assert second["details"]["count"] == 3
        assert second["details"]["problems"] == {"connection": 2, "unauthorized": 1}
        [row] = _notifications(rt)
        assert row.sent is not None and row.error is None
        assert _jobs(rt, JobKind.NOTIFY) == []


def test_a_webhook_that_keeps_failing_is_given_up_and_logged_without_secrets(
        database_url: str, tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    hook.statuses = [500] * 10
    with app_with(database_url, tmp_path, **hook.env, NOTIFY_ATTEMPTS="2") as (_, rt):
        with rt.sessions.begin() as s:  # the CA's per-name failure limit, spent through the ledger
            budget = Budget(rt.settings)
            limit = rt.settings.budget_failed_authz
            assert limit is not None
            assert ledger.take(s, [Want(limit, "spent.example.test", limit.capacity, 0, "spent.example.test")]) is None
            assert ledger.take(s, [Want(limit, "used.example.test", 2, 0, "used.example.test")]) is None
            assert budget.limits()
        with caplog.at_level(logging.INFO):
            sweep(rt)
            _make_due(rt, JobKind.NOTIFY)
            rt.queue.drain()
        assert len(hook.docs()) == 2
        assert hook.docs()[0]["event"] == "budget_low"
        assert hook.docs()[0]["subject"] == "failed-authz spent.example.test"
        [row] = _notifications(rt)
        assert row.sent is None and row.error == "webhook: HTTP 500"
        assert _jobs(rt, JobKind.NOTIFY) == [], "given up"
        assert f"notification {row.id}: giving up after 2 attempts: webhook: HTTP 500" in caplog.text
        assert SECRET not in caplog.text and "t0ken" not in caplog.text

        sweep(rt)  # still spent: told already, given up or not
        assert len(hook.received) == 2


def test_a_pause_and_the_relay_certificates_failure_reach_the_command(database_url: str, tmp_path: Path,
                                                                     script: Script) -> None:
    with app_with(database_url, tmp_path, **script.env, RELAY_CERT_ENABLED="true",
                  LE_DIRECTORY="https://127.0.0.1:1/directory") as (_, rt):  # nothing listens there
        with rt.sessions.begin() as s:
            assert Budget(rt.settings).paused(s, PAUSED) == ["paused.example.test"]
        [check] = [task for every, task in rt.queue.periodic if every == rt.settings.relay_cert_check_interval]
        check()  # the placeholder, and the renewal job
        assert len(_jobs(rt, JobKind.RELAY_CERT)) == 1
        assert rt.queue.run_once() is True  # the renewal fails: the upstream CA is unreachable
        rt.queue.drain()  # its notification
        sweep(rt)  # the pause
        _make_due(rt, JobKind.RELAY_CERT)
        assert rt.queue.run_once() is True  # fails again the same day: told once
        rt.queue.drain()

        docs = {r["doc"]["event"]: r["doc"] for r in script.received()}
        assert sorted(docs) == ["relay_cert_failing", "upstream_paused"]
        failing = docs["relay_cert_failing"]
        assert failing["subject"] == "relay.example.test" and failing["details"]["attempts"] == 1
        assert "ConnectionError" in failing["details"]["reason"]
        paused = docs["upstream_paused"]
        assert paused["details"]["names"] == ["paused.example.test"]
        assert paused["details"]["unpause_urls"] == ["https://portal.example/unpause?jwt=abc"]
        assert "jackdaw budget unpause paused.example.test" in paused["text"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # it is TLS (see smtp_server)
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_tls_with_a_login(database_url: str, tmp_path: Path, security: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server(security, tmp_path, monkeypatch) as (mailbox, smtp_env), \
            app_with(database_url, tmp_path, **smtp_env) as (_, rt):
        with rt.sessions.begin() as s:
            _certificate(s, _account(s), ["soon.example.test"], days_left=1)
        sweep(rt)
        [(_, message)] = mailbox.messages
        assert "soon.example.test" in message["Subject"]
        [row] = _notifications(rt)
        assert row.channel == "email" and row.sent is not None


def test_a_wrong_smtp_password_is_a_failed_delivery(database_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server("starttls", tmp_path, monkeypatch) as (mailbox, smtp_env), \
            app_with(database_url, tmp_path, **{**smtp_env, "NOTIFY_SMTP_PASSWORD": "wrong-password-here"}) as (_, rt):
        with rt.sessions.begin() as s:
            _certificate(s, _account(s), ["soon.example.test"], days_left=1)
        sweep(rt)
        assert mailbox.messages == []
        [row] = _notifications(rt)
        assert row.sent is None and row.error is not None and row.error.startswith("email: SMTP 535")
        assert "wrong-password-here" not in row.error


# -- jackdaw notify test -----------------------------------------------------------------------


def _cli(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jackdaw.cli", "notify", "test"], cwd=cwd, capture_output=True,
                          text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **REQUIRED, **env})


def test_notify_test_sends_on_every_channel_and_reports_each(tmp_path: Path, hook: Hook, script: Script,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server("none", tmp_path, monkeypatch) as (mailbox, smtp_env):
        proc = _cli({**hook.env, **smtp_env, **script.env}, tmp_path)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert [line.split(":")[0] for line in lines] == ["webhook", "email", "command"]
        assert all(": sent (" in line for line in lines)
        assert "t0ken" not in proc.stdout
        [doc] = hook.docs()
        assert doc["event"] == "test" and doc["id"].startswith("test-")
        [(_, message)] = mailbox.messages
        assert message["Subject"] == "[jackdaw relay.example.test] test notification"
        assert script.received()[0]["doc"]["id"] == doc["id"]

        dead = {**smtp_env, "NOTIFY_SMTP_PORT": str(free_port())}
        proc = _cli({**hook.env, **dead}, tmp_path)
        assert proc.returncode == 1
        assert proc.stdout.splitlines()[0].startswith("webhook: sent")
        assert proc.stdout.splitlines()[1].startswith("email: FAILED (SMTP 127.0.0.1:")
        assert "ConnectionRefusedError" in proc.stdout

    proc = _cli({}, tmp_path)
    assert proc.returncode == 1 and "no notification channel is configured" in proc.stderr
