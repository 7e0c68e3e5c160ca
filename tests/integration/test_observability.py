"""Observability: /healthz, /readyz, /metrics and structured logs, on SQLite and PostgreSQL.

Metrics are scraped through the Flask test client and parsed with prometheus-client's own
parser. Counters live in the test process and are shared by every app it builds, so tests
compare counters before and after; the database gauges belong to the test's own database and
are compared as they are.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import platform
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event, insert
from sqlalchemy.engine import make_url

from jackdaw import __version__, create_app, health, logs, metrics, migrate, schema
from jackdaw.dns.base import ConfigError, DNSProvider
from jackdaw.jobs import JobContext, JobKind, RetryLater, Wait
from jackdaw.models import Account, Certificate, DnsRecord, Order, UpstreamAccount, utcnow
from jackdaw.relaycert.files import CertStore, key_pem
from jackdaw.runtime import Runtime
from jackdaw.settings import Settings
from jackdaw.upstream.account import new_key_pem
from jackdaw.upstream.dns01 import DNS01, RecordState
from jackdaw.upstream.issuer import OrderJob
from jackdaw.upstream.sequence import Leg2
from tests.integration.conftest import relay_settings, running_app
from tests.integration.test_acme_flow import (  # noqa: F401 - fixtures
    REFUSED,
    ChallengeServer,
    Relay,
    alice,
    app_env,
    csr_for,
    new_order,
    ok,
    ready_order,
    relay,
    respond,
    web,
)
from tests.signer import RequestSigner, ec_private
from tests.testbed import free_port

OK = "ok.example.test"
UPSTREAM = "https://upstream.invalid/directory"  # relay_settings' LE_DIRECTORY


def plain_client(app: Flask) -> FlaskClient:
    """A test client without AcmeTestClient's checks: these endpoints are not ACME."""
    return FlaskClient(app, app.response_class)


def runtime_of(app: Flask) -> Runtime:
    rt: Runtime = app.extensions["jackdaw"]
    return rt


def record_upstream_account(app: Flask, url: str | None = "https://upstream.invalid/acme/acct/1") -> None:
    """What a first issuance leaves in the database: the account key and its URL."""
    rt = runtime_of(app)
    with rt.sessions.begin() as s:
        s.add(UpstreamAccount(directory_url=rt.settings.le_directory, key_pem=new_key_pem().decode(),
                              key_encrypted=False, account_url=url))


def upstream_accounts(app: Flask) -> int:
    with runtime_of(app).sessions() as s:
        return len(s.query(UpstreamAccount).all())


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs meanwhile."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# --- prometheus -----------------------------------------------------------------------------


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(app: Flask) -> Samples:
    resp = plain_client(app).get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert "Replay-Nonce" not in resp.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def families(app: Flask) -> dict[str, str]:
    """Family name -> type."""
    text = plain_client(app).get("/metrics").get_data(as_text=True)
    return {f.name: f.type for f in text_string_to_metric_families(text)}


# --- /healthz ------------------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(app: Flask) -> None:
    with statements(runtime_of(app).engine) as seen:
        resp = plain_client(app).get("/healthz")
    assert (resp.status_code, resp.get_json()) == (200, {"status": "ok"})
    assert seen == []
    assert "Replay-Nonce" not in resp.headers and "Link" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"


def test_acme_responses_still_carry_nonce_and_index_link(app: Flask) -> None:
    resp = plain_client(app).get("/directory")
    assert resp.headers["Replay-Nonce"]
    assert 'rel="index"' in resp.headers["Link"]


# --- /readyz -------------------------------------------------------------------------------------


def readyz(app: Flask) -> tuple[int, dict[str, Any]]:
    resp = plain_client(app).get("/readyz")
    doc: dict[str, Any] = resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Replay-Nonce" not in resp.headers
    return resp.status_code, doc


def test_ready_with_a_recorded_upstream_account(app: Flask) -> None:
    record_upstream_account(app)
    status, doc = readyz(app)
    assert status == 200, doc
    assert doc["status"] == "ready"
    assert set(doc["checks"]) == {"database", "migrations", "upstream"}
    assert all(check["ok"] for check in doc["checks"].values())
    assert "acct/1" in doc["checks"]["upstream"]["reason"]


def test_not_ready_without_account_and_unreachable_directory(app: Flask) -> None:
    """upstream.invalid never resolves; no key file is created: a probe never registers."""
    status, doc = readyz(app)
    assert status == 503
    assert doc["status"] == "not ready"
    checks = doc["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert not checks["upstream"]["ok"]
    assert UPSTREAM in checks["upstream"]["reason"]
    assert upstream_accounts(app) == 0


@pytest.mark.parametrize(("peer", "headers", "detailed"), [
    ("127.0.0.1", {}, True),
    ("10.1.2.3", {}, True),  # a scraper on the private network, on gunicorn's own port
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}, False),  # the public side, through nginx
    ("127.0.0.1", {"Forwarded": "for=203.0.113.7"}, False),
    ("93.184.216.34", {}, False),  # (Python counts the documentation ranges as private)
])
def test_readiness_details_only_for_insiders(app: Flask, peer: str, headers: dict[str, str], detailed: bool) -> None:
    record_upstream_account(app)
    resp = plain_client(app).get("/readyz", headers=headers, environ_base={"REMOTE_ADDR": peer})
    assert resp.status_code == 200
    doc = resp.get_json()
    if detailed:
        assert "acct/1" in doc["checks"]["upstream"]["reason"]
    else:
        assert doc == {"status": "ready"}
        assert "acct" not in resp.get_data(as_text=True)


def test_a_key_not_yet_registered_does_not_count(app: Flask) -> None:
    record_upstream_account(app, url=None)
    assert readyz(app)[0] == 503
    with runtime_of(app).sessions.begin() as s:
        s.query(UpstreamAccount).update({"account_url": "https://x/acct/1"})
    assert readyz(app)[0] == 200


class Directory:
    """A local ACME directory document on plain HTTP, counting its requests."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps({"newAccount": "http://127.0.0.1/acme/new-acct", "newNonce": "x"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/directory"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def directory() -> Iterator[Directory]:
    server = Directory()
    yield server
    server.close()


def test_ready_when_the_directory_answers_and_the_answer_is_cached(
        database_url: str, tmp_path: Path, directory: Directory, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_app(database_url, tmp_path / "data", LE_DIRECTORY=directory.url) as app:
        for _ in range(3):
            status, doc = readyz(app)
            assert status == 200, doc
        assert directory.hits == 1  # cached for UPSTREAM_CACHE_SECONDS
        assert "registered on first use" in doc["checks"]["upstream"]["reason"]
        assert upstream_accounts(app) == 0  # nothing registered

        monkeypatch.setattr(health, "UPSTREAM_CACHE_SECONDS", 0.0)
        readyz(app)
        assert directory.hits == 2
        directory.close()  # the CA goes away: not ready at the next look
        status, doc = readyz(app)
        assert status == 503 and not doc["checks"]["upstream"]["ok"]


def test_unreachable_directory_is_cached_too(database_url: str, tmp_path: Path) -> None:
    calls: list[str] = []
    with running_app(database_url, tmp_path / "data", LE_DIRECTORY=f"https://127.0.0.1:{free_port()}/dir") as app:
        readiness = runtime_of(app).readiness
        probe = readiness._probe_directory

        def counting() -> health.Check:
            calls.append("probe")
            return probe()

        readiness._probe_directory = counting  # type: ignore[method-assign]
        assert readyz(app)[0] == 503
        assert readyz(app)[0] == 503
    assert calls == ["probe"]


def test_not_ready_while_the_schema_is_behind(empty_database_url: str, tmp_path: Path, directory: Directory,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at revision 0001: reachable, but `jackdaw db upgrade` has not run (the
    upstream check, finding no account table, asks the directory instead)."""
    migrate.upgrade(empty_database_url, "0001")
    settings = relay_settings(empty_database_url, tmp_path / "data", LE_DIRECTORY=directory.url)
    app = create_app(settings)
    try:
        status, doc = readyz(app)
        assert status == 503, doc
        assert doc["checks"]["database"]["ok"] and doc["checks"]["upstream"]["ok"]
        assert not doc["checks"]["migrations"]["ok"]
        assert "jackdaw db upgrade" in doc["checks"]["migrations"]["reason"]

        migrate.upgrade(empty_database_url)
        looks: list[bool] = []
        at_head = schema.is_at_head

        def counting(engine: Engine) -> bool:
            looks.append(at_head(engine))
            return looks[-1]

        monkeypatch.setattr(schema, "is_at_head", counting)
        for _ in range(3):
            assert readyz(app)[0] == 200
        assert looks == [True]  # a positive answer is kept
    finally:
        runtime_of(app).stop()


def test_not_ready_when_the_database_is_unreachable(tmp_path: Path) -> None:
    """SQLite pointed at a directory: every connection fails. Liveness does not care."""
    (tmp_path / "db-is-a-directory").mkdir()
    settings = relay_settings(f"sqlite:///{tmp_path / 'db-is-a-directory'}", tmp_path / "data")
    app = create_app(settings)
    try:
        assert plain_client(app).get("/healthz").status_code == 200
        status, doc = readyz(app)
        assert status == 503
        assert not doc["checks"]["database"]["ok"] and doc["checks"]["database"]["reason"]
        assert doc["checks"]["migrations"] == {"ok": False, "reason": "not checked: database unreachable"}
        # the account lives in the database: without it, only the directory can answer (it cannot here)
        assert not doc["checks"]["upstream"]["ok"] and UPSTREAM in doc["checks"]["upstream"]["reason"]
        samples = scrape(app)  # still 200: the database part says it failed
        assert value(samples, "jackdaw_database_up") == 0
        assert value(samples, "process_cpu_seconds_total") > 0
    finally:
        runtime_of(app).stop()


# --- /metrics ---------------------------------------------------------------------------------------


def test_metric_families(app: Flask) -> None:
    expected = {
        "jackdaw_database_up": "gauge",
        "jackdaw_orders": "gauge",
        "jackdaw_authorizations": "gauge",
        "jackdaw_job_queue_depth": "gauge",
        "jackdaw_job_oldest_age_seconds": "gauge",
        "jackdaw_validations": "counter",
        "jackdaw_upstream_errors": "counter",
        "jackdaw_time_to_certificate_seconds": "histogram",
        "jackdaw_dns_provider_seconds": "histogram",
        "jackdaw_dns_provider_failures": "counter",
        "jackdaw_dns_propagation_seconds": "histogram",
        "jackdaw_job_runs": "counter",
        "jackdaw_job_run_seconds": "histogram",
    }
    assert expected.items() <= families(app).items()


def test_job_runs_are_counted_by_outcome(app: Flask) -> None:
    rt = runtime_of(app)
    steps = iter([Wait("next step", 0), None])

    def handler(ctx: JobContext) -> None:
        step = next(steps)
        if step is not None:
            raise step

    rt.queue.register("test-kind", handler)
    before = scrape(app)
    with rt.sessions.begin() as s:
        rt.queue.enqueue(s, "test-kind", "s1")
    rt.queue.drain()
    after = scrape(app)
    for outcome in ("wait", "done"):
        labels = {"kind": "test-kind", "outcome": outcome}
        assert value(after, "jackdaw_job_runs_total", **labels) - value(before, "jackdaw_job_runs_total", **labels) == 1
    count = "jackdaw_job_run_seconds_count"
    assert value(after, count, kind="test-kind") - value(before, count, kind="test-kind") == 2


def test_empty_database_gauges(app: Flask) -> None:
    samples = scrape(app)
    assert value(samples, "jackdaw_database_up") == 1
    for status in ("pending", "ready", "processing", "valid", "invalid"):
        assert ("jackdaw_orders", frozenset({("status", status)})) in samples
        assert value(samples, "jackdaw_orders", status=status) == 0
    for kind in ("validate", "order", "revoke"):
        assert value(samples, "jackdaw_job_queue_depth", kind=kind) == 0
        assert ("jackdaw_job_oldest_age_seconds", frozenset({("kind", kind)})) in samples


def test_openmetrics_when_asked(app: Flask) -> None:
    resp = plain_client(app).get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.mimetype == "application/openmetrics-text"
    assert resp.get_data(as_text=True).rstrip().endswith("# EOF")


def test_metrics_after_validations(relay: Relay, alice: RequestSigner) -> None:
    before = scrape(relay.app)
    ready_order(relay, alice, f"www.{OK}")
    _, failing = new_order(alice, f"www.{REFUSED}")
    respond(relay, alice, failing)
    relay.run_jobs()
    after = scrape(relay.app)

    def delta(outcome: str) -> float:
        name = "jackdaw_validations_total"
        return value(after, name, outcome=outcome) - value(before, name, outcome=outcome)

    assert delta("valid") == 1
    assert delta("connection") == 1  # the ACME problem type of "connection refused"
    assert value(after, "jackdaw_orders", status="ready") == 1
    assert value(after, "jackdaw_orders", status="invalid") == 1
    assert value(after, "jackdaw_orders", status="pending") == 0
    assert value(after, "jackdaw_authorizations", status="valid") == 1
    assert value(after, "jackdaw_authorizations", status="invalid") == 1
    # validations are done; the ready order's leg 2 waits for its finalize
    assert value(after, "jackdaw_job_queue_depth", kind=JobKind.ORDER) == 0
    assert value(after, "jackdaw_job_queue_depth", kind="validate") == 0
    assert value(after, "jackdaw_job_oldest_age_seconds", kind=JobKind.ORDER) == 0
    assert value(after, "jackdaw_job_oldest_age_seconds", kind="validate") == 0


def self_signed_chain(*names: str) -> str:
    key = ec_private("P-256", 11)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM).decode()


def test_time_to_certificate(relay: Relay, alice: RequestSigner) -> None:
    domain = f"ttc.{OK}"
    order_url, order = ready_order(relay, alice, domain)
    assert ok(alice.post(order["finalize"], {"csr": csr_for(domain)}))["status"] == "processing"
    before = scrape(relay.app)
    rt = relay.runtime
    OrderJob(rt.sessions, Leg2(rt.sessions, rt.upstream, cast(Any, None)))._store_certificate(
        JobContext(1, JobKind.ORDER, order_url.rsplit("/", 1)[-1], 1, None), self_signed_chain(domain))
    after = scrape(relay.app)
    name = "jackdaw_time_to_certificate_seconds"
    assert value(after, f"{name}_count") - value(before, f"{name}_count") == 1
    took = value(after, f"{name}_sum") - value(before, f"{name}_sum")
    assert 0 <= took < 60
    assert value(after, f"{name}_bucket", le="+Inf") - value(before, f"{name}_bucket", le="+Inf") == 1
    assert value(after, "jackdaw_orders", status="valid") == 1
    assert value(after, "jackdaw_orders", status="processing") == 0


# --- leg 2 failures: upstream errors, DNS provider calls ----------------------------------------


class FlakyProvider(DNSProvider):
    """Removes nothing on its first `cleanup_failures` calls."""

    name = "flaky"

    def __init__(self, cleanup_failures: int) -> None:
        self.cleanup_failures = cleanup_failures
        self.removed: list[str] = []

    @classmethod
    def from_env(cls, env: Any) -> FlakyProvider:
        raise ConfigError("not from the environment")

    def present(self, zone: str, fqdn: str, value: str) -> None:
        raise AssertionError("not in these tests")

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        if self.cleanup_failures:
            self.cleanup_failures -= 1
            raise RuntimeError("provider API down")
        self.removed.append(value)


class BrokenUpstream:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def client(self) -> Any:
        raise self.error

    def forget(self) -> None:
        pass

    def note_unreachable(self, exc: BaseException) -> str:
        return "ref"


def insert_ready_order(rt: Runtime) -> str:
    now = utcnow()
    with rt.sessions.begin() as s:
        account = Account(thumbprint=secrets.token_hex(16), jwk={}, status="valid")
        s.add(account)
        s.flush()
        order = Order(account_id=account.id, status="ready", expires=now + timedelta(days=1),
                      identifiers=[f"up.{OK}"])
        s.add(order)
        s.flush()
        return order.id


def run_order_job(rt: Runtime, job: OrderJob, order_id: str, attempts: int = 1) -> None:
    job(JobContext(1, JobKind.ORDER, order_id, attempts, None))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        pytest.param(requests.ConnectionError("refused"), "connection", id="connection"),
        pytest.param(requests.Timeout("slow"), "timeout", id="timeout"),
        pytest.param(messages.Error.with_code("rateLimited", detail="too many"), "rateLimited", id="rate-limited"),
    ],
)
def test_upstream_errors_by_type(app: Flask, error: BaseException, kind: str) -> None:
    rt = runtime_of(app)
    order_id = insert_ready_order(rt)
    provider = FlakyProvider(cleanup_failures=0)
    job = OrderJob(rt.sessions, Leg2(rt.sessions, cast(Any, BrokenUpstream(error)),
                                     DNS01(rt.settings, provider, rt.sessions, rt.queue)))
    before = scrape(app)
    try:
        run_order_job(rt, job, order_id)
    except RetryLater:
        assert kind != "rateLimited"  # transport errors are retried, a rate limit fails the order
    after = scrape(app)
    name = "jackdaw_upstream_errors_total"
    assert value(after, name, type=kind) - value(before, name, type=kind) == 1


def test_dns_provider_failures_and_latency(app: Flask) -> None:
    rt = runtime_of(app)
    order_id = insert_ready_order(rt)
    with rt.sessions.begin() as s:
        s.execute(insert(DnsRecord).values(order_id=order_id, zone=OK, fqdn=f"_acme-challenge.up.{OK}", value="v1",
                                           state=RecordState.REMOVING))
    provider = FlakyProvider(cleanup_failures=1)
    dns01 = DNS01(rt.settings, provider, rt.sessions, rt.queue)
    zone_run = JobContext(1, JobKind.DNS_ZONE, OK, 1, None)
    before = scrape(app)
    with pytest.raises(Wait):  # the removal failed: the zone's job looks again later
        dns01.run_zone(zone_run)
    dns01.run_zone(zone_run)
    after = scrape(app)
    labels = {"provider": "flaky", "op": "cleanup"}

    def delta(name: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("jackdaw_dns_provider_failures_total") == 1
    assert delta("jackdaw_dns_provider_seconds_count") == 2
    assert provider.removed == ["v1"]


# --- logs ---------------------------------------------------------------------------------------


@contextmanager
def jackdaw_logging_only() -> Iterator[None]:
    """The root logger as gunicorn leaves it (no handlers), so the app installs its own; then
    pytest's handlers and level come back."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    for h in saved:
        root.removeHandler(h)
    try:
        yield
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in saved:
            root.addHandler(h)
        root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_log_format_setting() -> None:
    base = {"RELAY_DOMAIN": "r.example.test", "ACME_EMAIL": "a@example.test", "DNS_PROVIDER": "rfc2136"}
    assert Settings.parse(base).log_format == "text"
    assert Settings.parse({**base, "LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.parse({**base, "LOG_FORMAT": "xml"})


def test_json_logs(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with jackdaw_logging_only(), running_app(database_url, tmp_path / "data", LOG_FORMAT="json"):
        capsys.readouterr()
        log = logging.getLogger("jackdaw.test")
        log.info("plain %s", "message")
        log.info("with extra", extra={"order_id": "o-extra", "account_id": "a-extra"})
        with logs.log_context(order_id="o-context"):
            log.warning("with context")
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed")
        log.info("after the context")
        lines = json_lines(capsys.readouterr().err)
    by_msg = {line["msg"]: line for line in lines}
    plain = by_msg["plain message"]
    assert set(plain) == {"ts", "level", "logger", "msg"}
    assert plain["level"] == "INFO" and plain["logger"] == "jackdaw.test"
    assert datetime.fromisoformat(plain["ts"]).tzinfo is not None
    assert by_msg["with extra"]["order_id"] == "o-extra" and by_msg["with extra"]["account_id"] == "a-extra"
    assert by_msg["with context"]["order_id"] == "o-context" and by_msg["with context"]["level"] == "WARNING"
    assert by_msg["failed"]["order_id"] == "o-context"
    assert "ValueError: boom" in by_msg["failed"]["exc"]
    assert "order_id" not in by_msg["after the context"]


def test_text_logs_stay_the_default(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with jackdaw_logging_only(), running_app(database_url, tmp_path / "data"):
        capsys.readouterr()
        logging.getLogger("jackdaw.test").warning("hello %d", 42)
        err = capsys.readouterr().err
    assert err.rstrip().endswith("WARNING jackdaw.test: hello 42")


def test_a_url_cannot_forge_a_log_line(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ``%0A`` in a request path reaches the text log as ``\\n``: the record stays one line."""
    forged = "x\n2026-12-02 10:00:00,000 INFO jackdaw.upstream: certificate issued for bank.example"
    with jackdaw_logging_only(), running_app(database_url, tmp_path / "data") as app:
        capsys.readouterr()
        resp = app.test_client().post("/acme/order/x%0A2026-12-02%2010:00:00,000%20INFO%20jackdaw.upstream:"
                                      "%20certificate%20issued%20for%20bank.example%1b[2K",
                                      data=b"{}", content_type="application/jose+json")
        logging.getLogger("jackdaw.test").warning("%s", forged)
        err = capsys.readouterr().err
    assert resp.status_code == 400
    lines = err.splitlines()
    assert not any(line.startswith("2026-12-02 10:00:00") for line in lines), err
    assert any("\\n2026-12-02 10:00:00" in line and "\\x1b[2K" in line for line in lines), err
    assert any(line.endswith("x\\n2026-12-02 10:00:00,000 INFO jackdaw.upstream: certificate issued for bank.example")
               for line in lines), err


def test_secrets_never_reach_the_log(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Secret-looking settings, a failing leg 2 (upstream refused, TXT removal failing against
    a closed RFC 2136 port, with its traceback) and even a careless log of the whole settings:
    no secret appears in any line."""
    tsig_secret = base64.b64encode(secrets.token_bytes(24)).decode()
    extra_secrets = {"PORKBUN_SECRET_API_KEY": "sk1_" + secrets.token_hex(12),
                     "CLOUDFLARE_API_TOKEN": "cf-" + secrets.token_hex(12)}
    hidden = [tsig_secret, *extra_secrets.values()]
    if make_url(database_url).get_backend_name() == "postgresql":  # trust auth ignores the password
        db_password = "pw-" + secrets.token_hex(8)
        database_url = make_url(database_url).set(password=db_password).render_as_string(hide_password=False)
        hidden.append(db_password)
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "RFC2136_TSIG_SECRET": tsig_secret,
           "RFC2136_NAMESERVER": f"127.0.0.1:{free_port()}",  # nothing listens: every update fails
           "LE_DIRECTORY": f"https://127.0.0.1:{free_port()}/directory", **extra_secrets}
    with jackdaw_logging_only(), running_app(database_url, tmp_path / "data", **env) as app:
        rt = runtime_of(app)
        log = logging.getLogger("jackdaw.careless")
        order_id = insert_ready_order(rt)
        with rt.sessions.begin() as s:
            s.execute(insert(DnsRecord).values(order_id=order_id, zone=OK, fqdn=f"_acme-challenge.up.{OK}",
                                               value="leftover", state=RecordState.REMOVING))
        job = rt.queue.handlers[JobKind.ORDER].handler
        assert isinstance(job, OrderJob)
        with pytest.raises(RetryLater):
            run_order_job(rt, job, order_id)
        with pytest.raises(Wait):
            job.leg2.dns01.run_zone(JobContext(1, JobKind.DNS_ZONE, OK, 1, None))
        # careless code: the provider and its config must not carry the secrets into a line,
        # nor Settings its env (repr=False)...
        provider = job.leg2.dns01.provider
        for obj in (provider, getattr(provider, "config", None)):
            assert not any(secret in repr(obj) for secret in hidden), type(obj).__name__
        assert not any(secret in repr(rt.settings) for secret in [tsig_secret, *extra_secrets.values()])
        log.debug("settings: %r", rt.settings)  # (DATABASE_URL is in it: redacted below)
        # ...and what a bad log line would show is redacted anyway
        log.error("settings.env = %s", dict(rt.settings.env))
        try:
            raise RuntimeError(f"upstream said: bad key {tsig_secret}")
        except RuntimeError:
            log.exception("chained failure")
        assert readyz(app)[0] == 503
        out = capsys.readouterr().err
    lines = json_lines(out)
    assert any(line.get("order_id") == order_id and "exc" in line for line in lines), out  # the failure was logged
    assert any("TXT" in line["msg"] and "removing" in line["msg"] for line in lines)
    assert any("***" in line["msg"] for line in lines if line["logger"] == "jackdaw.careless")
    for secret in hidden:
        assert secret not in out


# --- several gunicorn workers: prometheus-client's multiprocess mode -----------------------------

ROOT = Path(__file__).resolve().parent.parent.parent
WORKER = """
from jackdaw import metrics
metrics.VALIDATIONS.labels(outcome="valid").inc()
metrics.TIME_TO_CERTIFICATE.observe(3)
"""
SCRAPER = """
import sys
from jackdaw import metrics
from jackdaw.db import make_engine
body, _ = metrics.render(make_engine(sys.argv[1]), ["order"], None)
sys.stdout.write(body.decode())
"""


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, a scrape in one process reports what all of them counted."""
    url = f"sqlite:///{tmp_path / 'jackdaw.db'}"
    migrate.upgrade(url)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    (tmp_path / "prometheus").mkdir()
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], cwd=ROOT, env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", SCRAPER, url], cwd=ROOT, env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in text_string_to_metric_families(out) for s in f.samples}
    assert value(samples, "jackdaw_validations_total", outcome="valid") == 2
    assert value(samples, "jackdaw_time_to_certificate_seconds_count") == 2
    assert value(samples, "jackdaw_database_up") == 1


def test_gunicorn_start_clears_only_prometheus_files(tmp_path: Path) -> None:
    """gunicorn.conf.py calls this at config load (before the app is preloaded), once per process."""
    from jackdaw.serving import prepare_multiproc_dir

    directory = tmp_path / "prometheus"
    directory.mkdir()
    stale = ["counter_123.db", "histogram_9.db", "gauge_livesum_77.db"]
    kept = ["jackdaw.db", "counter.db", "notes.txt"]
    for name in stale + kept:
        (directory / name).write_text("x")
    prepare_multiproc_dir(directory)
    assert sorted(p.name for p in directory.iterdir()) == sorted(kept)
    (directory / "counter_7.db").write_text("x")  # a live worker's, after a SIGHUP reloaded the config
    prepare_multiproc_dir(directory)
    assert (directory / "counter_7.db").exists()


# --- metrics by convention: certificate expiry, build info, zero-initialised counters --------------


def _certificate(s: Any, account: Account, names: list[str], days_left: float, age_days: float = 1) -> str:
    now = utcnow()
    order = Order(account_id=account.id, status="valid", expires=now + timedelta(days=7), identifiers=names)
    s.add(order)
    s.flush()
    serial = secrets.token_hex(8)
    s.add(Certificate(order_id=order.id, serial=serial, chain_pem="-", not_after=now + timedelta(days=days_left),
                      created=now - timedelta(days=age_days)))
    return serial


def _relay_chain(domain: str, days: int) -> tuple[bytes, bytes]:
    """A CA-issued-looking certificate for the relay: issuer differs from subject, not the placeholder."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM), key_pem(key)


def expiry_series(samples: Samples) -> dict[tuple[str, str], float]:
    """(kind, names) -> notAfter of every jackdaw_certificate_expiration_timestamp_seconds series."""
    found = {}
    for (name, labels), v in samples.items():
        if name == "jackdaw_certificate_expiration_timestamp_seconds":
            d = dict(labels)
            found[(d["kind"], d["names"])] = v
    return found


def test_certificate_expiry_build_info_and_zero_counters(database_url: str, tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    with running_app(database_url, tmp_path / "data", RELAY_CERT_ENABLED="true", RELAY_CERT_DIR=str(tls)) as app:
        rt = runtime_of(app)
        store = CertStore(tls, rt.settings.relay_domain)
        store.ensure_placeholder()
        with rt.sessions.begin() as s:
            alice = Account(thumbprint=secrets.token_hex(16), jwk={}, status="valid")
            s.add(alice)
            s.flush()
            _certificate(s, alice, ["b.example.test", "a.example.test", "c.example.test"], 5, age_days=85)
            renewed = _certificate(s, alice, ["a.example.test", "c.example.test", "b.example.test"], 80)
            single = _certificate(s, alice, ["solo.example.test"], 20)
        samples = scrape(app)
        series = expiry_series(samples)
        # one series per name set, the renewed one at its new certificate; the placeholder is not reported
        assert set(series) == {("client", "a.example.test +2"), ("client", "solo.example.test")}
        assert series[("client", "a.example.test +2")] == pytest.approx(
            (utcnow() + timedelta(days=80)).timestamp(), abs=120)
        assert ("jackdaw_certificate_expiration_timestamp_seconds",
                frozenset({"kind": "client", "names": "solo.example.test", "serial": single}.items())) in samples
        assert any(dict(labels).get("serial") == renewed for _, labels in samples)
        assert value(samples, "jackdaw_certificates_current") == 2
        assert value(samples, "jackdaw_relay_certificate_ok") == 0  # only the placeholder

        chain, key = _relay_chain(rt.settings.relay_domain, 60)
        store.install(key, chain)
        samples = scrape(app)
        assert value(samples, "jackdaw_relay_certificate_ok") == 1
        relay = expiry_series(samples)[("relay", rt.settings.relay_domain)]
        assert relay == pytest.approx((utcnow() + timedelta(days=60)).timestamp(), abs=120)

        info = [dict(labels) for name, labels in samples if name == "jackdaw_build_info"]
        assert info == [{"version": __version__, "python": platform.python_version()}]
        assert not [name for name, _ in samples if name.endswith("_created")]
        # counters exist before anything happened
        for name, labels in [("jackdaw_validations_total", {"outcome": "connection"}),
                             ("jackdaw_upstream_errors_total", {"type": "timeout"}),
                             ("jackdaw_job_runs_total", {"kind": "order", "outcome": "gave_up"}),
                             ("jackdaw_relay_cert_failures_total", {}),
                             ("jackdaw_dns_provider_failures_total", {"provider": "rfc2136", "op": "present"}),
                             ("jackdaw_budget_refusals_total", {"reason": "paused"})]:
            assert (name, frozenset(labels.items())) in samples, name


def test_certificate_series_are_capped(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "CERTIFICATE_SERIES_CAP", 3)
    with running_app(database_url, tmp_path / "data") as app:
        with runtime_of(app).sessions.begin() as s:
            alice = Account(thumbprint=secrets.token_hex(16), jwk={}, status="valid")
            s.add(alice)
            s.flush()
            for n in range(5):
                _certificate(s, alice, [f"n{n}.example.test"], 10 + n)
        samples = scrape(app)
    assert sorted(expiry_series(samples)) == [("client", f"n{n}.example.test") for n in range(3)]  # the soonest
    assert value(samples, "jackdaw_certificates_current") == 5
