"""Propagation with a lagging secondary: a real BIND primary (127.0.0.1) and a real BIND
secondary (::1, same port) that serves a change only when the test sends it a NOTIFY.

The zone's NS set lists both (ns1 A 127.0.0.1, ns2 AAAA ::1), so wait_for_txt must ask both;
how long the secondary lags is decided here, to the millisecond.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.resolver
import pytest

from jackdaw import cli
from jackdaw.dns.propagation import PropagationTimeout
from jackdaw.dns.providers.rfc2136 import RFC2136Provider
from jackdaw.dns.resolver import make_resolver
from jackdaw.ops.dnscheck import PROPAGATION, PROVIDER_WRITE, ZONE_LOOKUP, run_check, wait_for_txt
from jackdaw.settings import Settings
from tests.testbed import Bind

ZONE = "example.test"
ZONES = {
    ZONE: ["_acme-challenge.delegated 60 IN CNAME delegated.challenges.test."],
    "challenges.test": [],
}
SECONDARY = "::1"
NS1 = "ns1.example.test"
NS2 = "ns2.example.test"
LAG = 3.0
#: how much earlier than the NOTIFY wait_for_txt may start (it starts right after the timer)
MARGIN = 0.2


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    with Bind(tmp_path_factory.mktemp("primary"), ZONES, secondaries=[SECONDARY]) as server:
        yield server


@pytest.fixture(scope="module")
def secondary(primary: Bind, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    with Bind.secondary_of(primary, tmp_path_factory.mktemp("secondary"), SECONDARY) as server:
        yield server


@pytest.fixture
def resolver(primary: Bind) -> dns.resolver.Resolver:
    return make_resolver(primary.nameserver)


@pytest.fixture
def provider(primary: Bind) -> RFC2136Provider:
    return RFC2136Provider.from_env(primary.env())


def unique_name(zone: str = ZONE) -> str:
    return f"_acme-challenge.h{uuid.uuid4().hex[:8]}.{zone}"


@contextmanager
def written(provider: RFC2136Provider, fqdn: str, value: str, zone: str = ZONE) -> Iterator[None]:
    provider.present(zone, fqdn, value)
    try:
        yield
    finally:
        provider.cleanup(zone, fqdn, value)


@contextmanager
def notify_every(secondary: Bind, seconds: float, zones: tuple[str, ...] = (ZONE,)) -> Iterator[None]:
    """Keep the secondary nearly in step: NOTIFY it every ``seconds`` until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            for zone in zones:
                secondary.notify(zone)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_testbed_lists_both_servers(primary: Bind, secondary: Bind, resolver: dns.resolver.Resolver) -> None:
    ns = sorted(r.target.to_text() for r in resolver.resolve(ZONE, "NS"))
    assert ns == ["ns1.example.test.", "ns2.example.test."]
    assert secondary.serial(ZONE) == primary.serial(ZONE)
    assert secondary.port == primary.port


def test_waits_for_the_lagging_secondary_and_returns_promptly(
    primary: Bind, secondary: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    fqdn, value = unique_name(), "lagging-secondary"
    with written(provider, fqdn, value):
        assert primary.txt(fqdn) == [value]
        assert secondary.txt(fqdn) == []  # no NOTIFY yet: the secondary really lags
        notified_at: list[float] = []

        def notify() -> None:
            notified_at.append(time.monotonic())
            secondary.notify(ZONE)

        timer = threading.Timer(LAG, notify)
        timer.start()
        try:
            start = time.monotonic()
            timings = wait_for_txt([(fqdn, value)], resolver, timeout=30, interval=0.5, ns_port=primary.port)
            returned_at = time.monotonic()
            served_by_secondary = secondary.txt(fqdn)
        finally:
            timer.cancel()
            timer.join()

    elapsed = returned_at - start
    # (a) not before the secondary serves the value
    assert notified_at and returned_at > notified_at[0]
    assert elapsed >= LAG - MARGIN
    assert served_by_secondary == [value]
    # (b) promptly once it does (one poll interval plus the transfer)
    assert elapsed <= LAG + 2.0
    assert set(timings) == {NS1, NS2}
    assert timings[NS1] < 1.0  # the primary served it on the first round
    assert LAG - MARGIN <= timings[NS2] <= elapsed


def test_secondary_that_never_gets_the_record_times_out_naming_it(
    primary: Bind, secondary: Bind, provider: RFC2136Provider, resolver: dns.resolver.Resolver
) -> None:
    fqdn, value = unique_name(), "never-transferred"
    with written(provider, fqdn, value):
        start = time.monotonic()
        with pytest.raises(PropagationTimeout) as caught:
            wait_for_txt([(fqdn, value)], resolver, timeout=2.0, interval=0.2, ns_port=primary.port)
        elapsed = time.monotonic() - start
        assert primary.txt(fqdn) == [value]
        assert secondary.txt(fqdn) == []
    assert caught.value.fqdn == fqdn
    assert caught.value.lagging == [NS2]
    assert NS2 in str(caught.value)
    assert "ns1." not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    assert 2.0 <= elapsed < 4.0


# --- jackdaw.dns.check / `jackdaw dns-check` against both servers ---------------------------


def check_env(primary: Bind, **extra: str) -> dict[str, str]:
    return {
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        **primary.env(),
        "DNS_RESOLVER": primary.nameserver,
        "DNS_AUTHORITATIVE_PORT": str(primary.port),
        "DNS_PROPAGATION_INTERVAL": "0.1",
        "DNS_PROPAGATION_TIMEOUT": "10",
        **extra,
    }


def test_check_success_times_both_servers_and_removes_the_value(
    primary: Bind, secondary: Bind, provider: RFC2136Provider
) -> None:
    settings = Settings.parse(check_env(primary))
    host = f"h{uuid.uuid4().hex[:8]}.{ZONE}"
    with notify_every(secondary, 0.3):
        result = run_check(host, settings, provider)
        secondary.notify(ZONE)
        secondary.wait_for_serial(ZONE, primary.serial(ZONE))

    assert result.ok, result.report()
    assert (result.zone, result.fqdn) == (ZONE, f"_acme-challenge.{host}")
    assert set(result.timings) == {NS1, NS2}
    assert result.propagation_seconds is not None
    assert result.propagation_seconds >= max(result.timings.values())
    assert result.cleaned
    fqdn = f"_acme-challenge.{host}"
    assert primary.txt(fqdn) == [] and secondary.txt(fqdn) == []
    text = "\n".join(result.report())
    assert NS1 in text and NS2 in text and "total" in text
    assert f"removed the test value from {fqdn}" in text and "OK:" in text


def test_check_follows_the_cname_into_another_zone(
    primary: Bind, secondary: Bind, provider: RFC2136Provider
) -> None:
    settings = Settings.parse(check_env(primary))
    with notify_every(secondary, 0.2, zones=(ZONE, "challenges.test")):
        result = run_check(f"delegated.{ZONE}", settings, provider)
    assert result.ok, result.report()
    assert (result.zone, result.fqdn) == ("challenges.test", "delegated.challenges.test")
    assert set(result.timings) == {"ns1.challenges.test", "ns2.challenges.test"}
    assert primary.txt("delegated.challenges.test") == []


def test_check_reports_the_lagging_secondary_and_still_cleans_up(
    primary: Bind, secondary: Bind, provider: RFC2136Provider
) -> None:
    settings = Settings.parse(check_env(primary))
    host = f"h{uuid.uuid4().hex[:8]}.{ZONE}"
    result = run_check(host, settings, provider, timeout=1.0)
    assert not result.ok
    assert result.failed_step == PROPAGATION
    assert result.lagging == [NS2]
    assert result.cleaned
    assert primary.txt(f"_acme-challenge.{host}") == []
    assert f"not yet served by: {NS2}" in "\n".join(result.report())


def test_check_zone_lookup_failure_writes_nothing(primary: Bind, provider: RFC2136Provider) -> None:
    result = run_check("host.nothing.invalid", Settings.parse(check_env(primary)), provider)
    assert result.failed_step == ZONE_LOOKUP
    assert "nothing.invalid" in (result.error or "")
    assert result.write_seconds is None and result.zone is None


def test_check_provider_write_failure(primary: Bind) -> None:
    env = check_env(primary, RFC2136_TSIG_SECRET="d3Jvbmcgc2VjcmV0")
    settings = Settings.parse(env)
    result = run_check(f"h{uuid.uuid4().hex[:8]}.{ZONE}", settings, RFC2136Provider.from_env(env))
    assert result.failed_step == PROVIDER_WRITE
    assert "BADSIG" in (result.error or "")
    assert not result.timings


def test_cli_dns_check(
    primary: Bind, secondary: Bind, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for key, val in check_env(primary, DNS_PROPAGATION_TIMEOUT="1").items():
        monkeypatch.setenv(key, val)
    host = f"h{uuid.uuid4().hex[:8]}.{ZONE}"

    with notify_every(secondary, 0.2):
        assert cli.main(["dns-check", host]) == 0
    out = capsys.readouterr().out
    assert f"TXT _acme-challenge.{host} in zone {ZONE} (by SOA lookup)" in out
    assert NS1 in out and NS2 in out and "served everywhere after" in out and "removed the test value" in out

    assert cli.main(["dns-check", host]) == 1  # nobody pokes the secondary now
    captured = capsys.readouterr()
    assert "FAILED at propagation" in captured.err and NS2 in captured.err
    assert "removed the test value" in captured.out
