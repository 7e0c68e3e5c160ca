"""The relay certificate's job on SQLite and PostgreSQL: the start-up check, one job row however
often it is asked for, failures that keep the installed certificate and back off, forced
renewals, and TXT values that the orphan sweep leaves alone while the job exists.

Issuance from a real CA, nginx and certbot are in tests/e2e/test_nginx.py.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete, select

from jackdaw import jobs, metrics
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.dns.base import DNSProvider
from jackdaw.jobs import JobContext, JobKind
from jackdaw.models import DnsRecord, Job, utcnow
from jackdaw.relaycert import RelayCertificate, standalone
from jackdaw.relaycert.job import RETRY_BASE
from jackdaw.runtime import Runtime
from jackdaw.upstream.dns01 import DNS01, RecordState
from tests.integration.conftest import relay_settings, running_app

DOMAIN = "relay.example.test"
ENABLED = {"RELAY_CERT_ENABLED": "true", "LE_DIRECTORY": "https://127.0.0.1:1/directory"}  # nothing listens


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    with running_app(database_url, tmp_path / "data", **ENABLED) as flask_app:
        yield flask_app


def run_periodic(rt: Runtime) -> None:
    """What the periodic thread does at start: every task once."""
    for _, task in rt.queue.periodic:
        task()


def relay_jobs(rt: Runtime) -> list[Job]:
    with rt.sessions() as s:
        return list(s.scalars(select(Job).where(Job.kind == JobKind.RELAY_CERT)))


def test_start_writes_a_placeholder_and_queues_one_job(app: Flask) -> None:
    rt: Runtime = app.extensions["jackdaw"]
    cert_dir = rt.settings.relay_cert_path
    assert not cert_dir.exists()
    assert rt.settings.relay_cert_check_interval in [every for every, _ in rt.queue.periodic]

    run_periodic(rt)
    assert (cert_dir / "fullchain.pem").exists() and (cert_dir / "privkey.pem").exists()
    [job] = relay_jobs(rt)
    assert (job.subject_id, job.generation) == (DOMAIN, 0)

    run_periodic(rt)  # another worker's check, or the next day's: the queued job is left alone
    [again] = relay_jobs(rt)
    assert (again.id, again.generation, again.run_at) == (job.id, 0, job.run_at)


def test_disabled_relay_has_no_check(database_url: str, tmp_path: Path) -> None:
    with running_app(database_url, tmp_path / "data") as app:  # the conftest default: off
        rt: Runtime = app.extensions["jackdaw"]
        run_periodic(rt)
        assert not rt.settings.relay_cert_path.exists()
        assert relay_jobs(rt) == []


def test_failure_keeps_the_certificate_and_backs_off(app: Flask) -> None:
    rt: Runtime = app.extensions["jackdaw"]
    run_periodic(rt)
    relay = RelayCertificate(rt.settings, rt.sessions, rt.queue)
    before = relay.status()
    assert before.placeholder
    def failures_seen() -> float:
        return metrics.REGISTRY.get_sample_value("jackdaw_relay_cert_failures_total") or 0.0

    failures = failures_seen()
    with rt.sessions.begin() as s:  # the start's fetch of the upstream directory is not this test's job
        s.execute(delete(Job).where(Job.kind == JobKind.UPSTREAM_DIRECTORY))

    assert rt.queue.run_once() is True  # the upstream CA is unreachable
    assert failures_seen() == failures + 1, "failures are visible in /metrics"
    [job] = relay_jobs(rt)
    assert job.lease_until is None
    assert job.last_error is not None and "ConnectionError" in job.last_error
    wait = (job.run_at - utcnow()).total_seconds()
    assert RETRY_BASE - 5 < wait <= RETRY_BASE
    assert relay.status() == before, "the installed certificate must stay"
    assert rt.queue.run_once() is False, "nothing due during the back-off"

    state = relay.job()
    assert state is not None and state.attempts == 1 and not state.running and state.last_error

    # an operator's renewal does not wait for the back-off, and a forced one is remembered
    relay.renew(force=True)
    assert relay.store.force_token() is not None
    [job] = relay_jobs(rt)
    assert job.run_at <= utcnow()
    assert rt.queue.run_once() is True
    [job] = relay_jobs(rt)
    assert (job.run_at - utcnow()).total_seconds() > RETRY_BASE, "the second failure waits longer"
    assert relay.store.force_token() is not None, "still to be done"


def test_the_command_line_queues_through_the_same_row(app: Flask) -> None:
    rt: Runtime = app.extensions["jackdaw"]
    cli = standalone(rt.settings)
    cli.renew()
    cli.renew()
    [job] = relay_jobs(rt)
    assert (job.subject_id, job.generation) == (DOMAIN, 1)
    assert cli.status().problem == "no certificate yet (fullchain.pem missing)"
    cli.queue.engine.dispose()


class Recorder(DNSProvider):
    name = "recorder"

    def __init__(self) -> None:
        self.removed: list[str] = []

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DNSProvider:
        return cls()

    def present(self, zone: str, fqdn: str, value: str) -> None:
        pass

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        self.removed.append(value)


def test_relay_txt_values_are_not_orphans_while_the_job_exists(database_url: str, tmp_path: Path) -> None:
    with running_app(database_url, tmp_path / "data", **ENABLED) as app:
        rt: Runtime = app.extensions["jackdaw"]
        provider = Recorder()
        dns01 = DNS01(relay_settings(database_url, tmp_path), provider, rt.sessions, rt.queue)
        relay = RelayCertificate(rt.settings, rt.sessions, rt.queue)
        relay.renew()
        with rt.sessions.begin() as s:  # what DNS01.request records; no order row exists
            s.add(DnsRecord(order_id=relay.subject, owner_kind=JobKind.RELAY_CERT, zone="example.test",
                            fqdn=f"_acme-challenge.{DOMAIN}", value="relay-value", state=RecordState.SERVED))

        assert dns01.sweep_orphans(timedelta(seconds=-1)) == 0
        with rt.sessions() as s:
            assert [r.state for r in s.scalars(select(DnsRecord))] == [RecordState.SERVED]

        with rt.sessions.begin() as s:  # the job is gone (it died after writing the value)
            s.query(Job).filter(Job.kind == JobKind.RELAY_CERT).delete()
        assert dns01.sweep_orphans(timedelta(seconds=-1)) == 1
        dns01.run_zone(JobContext(1, JobKind.DNS_ZONE, "example.test", 1, None))  # the zone's job removes it
        assert provider.removed == ["relay-value"]
        with rt.sessions() as s:
            assert s.scalars(select(DnsRecord)).all() == []


def test_a_daily_check_runs_at_start_on_a_freshly_booted_machine(database_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The monotonic clock counts from boot: a 24 h task must not wait for a day of uptime."""
    started = time.monotonic()
    monkeypatch.setattr(jobs, "time", types.SimpleNamespace(monotonic=lambda: 1.0 + time.monotonic() - started))
    engine = make_engine(database_url)
    queue = jobs.JobQueue(engine, make_sessionmaker(engine), threads=1)
    ran = threading.Event()
    queue.periodic.append((86400.0, ran.set))
    queue.start()
    try:
        assert ran.wait(5)
    finally:
        queue.stop()
        engine.dispose()
