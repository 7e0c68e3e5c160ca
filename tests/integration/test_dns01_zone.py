"""DNS-01 values through their zone's job, against a real BIND (RFC 2136 + TSIG), on SQLite and
PostgreSQL: owners ask, the zone's job writes a whole batch in one UPDATE, probes the name
servers once per round, and removes exactly what is released; a slow provider under a short
lease still writes each value once; failures reach the owners."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.dns.base import DNSProviderError
from jackdaw.dns.providers.rfc2136 import RFC2136Provider
from jackdaw.jobs import JobContext, JobKind, JobQueue, Wait
from jackdaw.models import DnsRecord, Job
from jackdaw.ops.dnscheck import CheckResult, run_check
from jackdaw.settings import Settings
from jackdaw.upstream.dns01 import DNS01, WRITE_ATTEMPTS, RecordState
from tests.integration.conftest import relay_settings
from tests.testbed import Bind

ZONE = "example.test"


class CountingProvider(RFC2136Provider):
    """The real RFC 2136 provider, counting batches and values, optionally slow or broken."""

    def __init__(self, bind: Bind, delay: float = 0.0, fail_writes: bool = False, write_nothing: bool = False):
        super().__init__(RFC2136Provider.from_env(bind.env()).config)
        self.delay, self.fail_writes, self.write_nothing = delay, fail_writes, write_nothing
        self.presented: list[tuple[str, str]] = []
        self.batches: list[int] = []
        self.removed: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def present_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        time.sleep(self.delay)  # a provider API that takes its time (Route 53, Namecheap)
        if self.fail_writes:
            raise DNSProviderError("rfc2136: server answered SERVFAIL")
        with self.lock:
            self.presented += records
            self.batches.append(len(records))
        if not self.write_nothing:
            super().present_many(zone, records)

    def cleanup_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        with self.lock:
            self.removed += records
        super().cleanup_many(zone, records)


def settings_for(database_url: str, tmp_path: Path, bind: Bind, **extra: str) -> Settings:
    return relay_settings(database_url, tmp_path / "data", DNS_RESOLVER=bind.nameserver,
                          DNS_AUTHORITATIVE_PORT=str(bind.port), DNS_PROPAGATION_INTERVAL="0.1",
                          **bind.env(), **extra)


@pytest.fixture
def make_dns01(database_url: str, tmp_path: Path, bind: Bind) -> Iterator[Callable[..., tuple[DNS01, JobQueue]]]:
    made: list[JobQueue] = []

    def make(provider: CountingProvider, threads: int = 0, lease: float = 30.0, **extra: str) -> tuple[DNS01, JobQueue]:
        engine = make_engine(database_url)
        sessions = make_sessionmaker(engine)
        queue = JobQueue(engine, sessions, threads=threads, lease_seconds=lease)
        event.listen(sessions, "after_commit", queue.after_commit)
        dns01 = DNS01(settings_for(database_url, tmp_path, bind, **extra), provider, sessions, queue)
        queue.register(JobKind.DNS_ZONE, dns01.run_zone, dns01.give_up, max_attempts=30)
        queue.register(JobKind.ORDER, lambda ctx: None)  # owners woken by the zone's job
        made.append(queue)
        return dns01, queue

    yield make
    for queue in made:
        queue.stop()
        queue.engine.dispose()


def run_zone_until_settled(dns01: DNS01, zone: str = ZONE, timeout: float = 15) -> int:
    """Run the zone's job step after step, as the queue would; returns the number of runs."""
    ctx = JobContext(1, JobKind.DNS_ZONE, zone, 1, None)
    deadline = time.monotonic() + timeout
    for runs in range(1, 1000):
        try:
            dns01.run_zone(ctx)
            return runs
        except Wait as wait:
            assert time.monotonic() < deadline, "the zone's job never settled"
            time.sleep(wait.delay)
    raise AssertionError("unreachable")


def rows(sessions: sessionmaker[Session]) -> list[DnsRecord]:
    with sessions() as s:
        return list(s.scalars(select(DnsRecord).order_by(DnsRecord.id)))


def unique(label: str = "h") -> str:
    return f"_acme-challenge.{label}{uuid.uuid4().hex[:8]}.{ZONE}"


def test_a_stampede_in_one_zone_costs_one_write_and_shared_probes(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind) -> None:
    provider = CountingProvider(bind)
    dns01, _ = make_dns01(provider)
    wanted = {f"order-{i}": (unique(), f"value-{i}") for i in range(20)}
    for owner, (name, value) in wanted.items():
        dns01.request(JobKind.ORDER, owner, "run-1", [(name, value)])

    run_zone_until_settled(dns01)

    assert provider.batches == [20]  # one RFC 2136 UPDATE for all twenty
    assert {r.state for r in rows(dns01.sessions)} == {RecordState.SERVED}
    for owner, (name, value) in wanted.items():
        assert dns01.progress(owner, "run-1").done
        assert bind.txt(name) == [value]
    with dns01.sessions() as s:  # each owner was woken
        woken = set(s.scalars(select(Job.subject_id).where(Job.kind == JobKind.ORDER)))
    assert woken == set(wanted)

    for owner in wanted:
        dns01.release(owner, "run-1")
    run_zone_until_settled(dns01)
    assert sorted(provider.removed) == sorted(wanted.values())
    assert rows(dns01.sessions) == []
    assert all(bind.txt(name) == [] for name, _ in wanted.values())


def test_a_value_two_owners_want_stays_until_the_last_lets_go(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind) -> None:
    provider = CountingProvider(bind)
    dns01, _ = make_dns01(provider)
    name = unique()
    dns01.request(JobKind.ORDER, "a", "1", [(name, "shared")])
    dns01.request(JobKind.ORDER, "b", "1", [(name, "shared")])
    run_zone_until_settled(dns01)
    assert provider.presented == [(name, "shared")]  # written once for both

    dns01.release("a", "1")
    run_zone_until_settled(dns01)
    assert bind.txt(name) == ["shared"] and provider.removed == []
    dns01.release("b", "1")
    run_zone_until_settled(dns01)
    assert bind.txt(name) == [] and provider.removed == [(name, "shared")]


def test_an_owner_releases_only_its_own_runs_values(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind) -> None:
    dns01, _ = make_dns01(CountingProvider(bind))
    old, new = unique(), unique()
    dns01.request(JobKind.ORDER, "o", "run-1", [(old, "v1")])
    dns01.request(JobKind.ORDER, "o", "run-2", [(new, "v2")])
    run_zone_until_settled(dns01)
    dns01.release("o", "run-1")
    run_zone_until_settled(dns01)
    assert bind.txt(old) == [] and bind.txt(new) == ["v2"]
    assert dns01.progress("o", "run-2").done
    dns01.release("o")
    run_zone_until_settled(dns01)


def test_slow_provider_and_short_lease_write_each_value_once(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind) -> None:
    """Each write takes 2.5 leases; two processes with two job threads each: the heartbeat
    keeps the zone's claim, so no second run writes the same values again."""
    provider = CountingProvider(bind, delay=2.5)
    dns01, queue_a = make_dns01(provider, threads=2, lease=1.0)
    _, queue_b = make_dns01(provider, threads=2, lease=1.0)
    names = {f"order-{i}": unique() for i in range(5)}
    for owner, name in names.items():
        dns01.request(JobKind.ORDER, owner, "1", [(name, owner)])
    queue_a.start()
    queue_b.start()
    deadline = time.monotonic() + 30
    while any(r.state != RecordState.SERVED for r in rows(dns01.sessions)):
        assert time.monotonic() < deadline, rows(dns01.sessions)
        time.sleep(0.1)
    assert sorted(provider.presented) == sorted((name, owner) for owner, name in names.items())
    for owner, name in names.items():
        assert bind.txt(name) == [owner]
        dns01.release(owner)
    while rows(dns01.sessions):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert all(bind.txt(name) == [] for name in names.values())


def test_a_write_that_keeps_failing_fails_its_owner(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind, caplog: pytest.LogCaptureFixture) -> None:
    """...with a short text and a reference to the log line that has the provider's answer."""
    dns01, _ = make_dns01(CountingProvider(bind, fail_writes=True))
    dns01.request(JobKind.ORDER, "o", "1", [(unique(), "v")])
    ctx = JobContext(1, JobKind.DNS_ZONE, ZONE, 1, None)
    for _ in range(WRITE_ATTEMPTS):
        assert not dns01.progress("o", "1").error
        try:
            dns01.run_zone(ctx)
        except Wait:
            pass
    progress = dns01.progress("o", "1")
    assert not progress.done and progress.error is not None
    assert "SERVFAIL" not in progress.error
    reference = re.search(r"DNS provider call failed \(reference ([0-9a-f]{8});", progress.error)
    assert reference, progress.error
    assert any(reference[1] in r.getMessage() and "SERVFAIL" in r.getMessage() for r in caplog.records)


def test_a_value_no_server_serves_times_out_naming_the_server(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind) -> None:
    dns01, _ = make_dns01(CountingProvider(bind, write_nothing=True), DNS_PROPAGATION_TIMEOUT="1")
    dns01.request(JobKind.ORDER, "o", "1", [(unique(), "v")])
    run_zone_until_settled(dns01)
    progress = dns01.progress("o", "1")
    assert progress.error is not None
    assert "did not propagate" in progress.error and "not yet served by: ns1.example.test" in progress.error


def test_settle_time_and_minimum_wait_hold_the_owner(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind) -> None:
    dns01, _ = make_dns01(CountingProvider(bind), DNS_PROPAGATION_WAIT="2")
    dns01.request(JobKind.ORDER, "o", "1", [(unique(), "v")])
    run_zone_until_settled(dns01)
    progress = dns01.progress("o", "1")
    assert not progress.done and 0.5 < progress.wait <= 2.0  # a reschedule, not a sleep
    time.sleep(progress.wait)
    assert dns01.progress("o", "1").done
    dns01.release("o")
    run_zone_until_settled(dns01)


def test_dns_check_waits_while_the_relay_holds_the_zone(
        make_dns01: Callable[..., tuple[DNS01, JobQueue]], bind: Bind) -> None:
    """`jackdaw dns-check` and the relay's zone job never write to one zone at once (a
    read-modify-write API such as Namecheap's would lose a value)."""
    provider = CountingProvider(bind)
    dns01, queue = make_dns01(provider)
    relay_run = queue.try_claim(JobKind.DNS_ZONE, ZONE)  # the relay is writing to the zone
    assert relay_run is not None and queue.try_claim(JobKind.DNS_ZONE, ZONE) is None
    results: list[CheckResult] = []
    check = threading.Thread(target=lambda: results.append(
        run_check(f"check-{uuid.uuid4().hex[:6]}.{ZONE}", dns01.settings, provider, timeout=5, queue=queue)))
    check.start()
    time.sleep(1.0)
    assert provider.presented == [] and not results
    queue.release(relay_run)
    check.join(20)
    assert results and results[0].ok, results[0].report() if results else "still running"
    assert len(provider.presented) == 1 and len(provider.removed) == 1
    with dns01.sessions() as s:  # handed back: the zone's job is due (and finds nothing to do)
        [job] = s.scalars(select(Job).where(Job.kind == JobKind.DNS_ZONE)).all()
        assert job.owner is None and job.lease_until is None
    run_zone_until_settled(dns01)
