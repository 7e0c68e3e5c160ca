"""`jackdaw dns-check NAME`: prove the DNS-01 set-up end to end without an ACME order.

(Operator tooling may block: it loops over jackdaw.dns.propagation.probe, the relay's jobs do not.)

Finds where ``_acme-challenge.NAME`` is written (CNAME delegation and DNS_ZONE_OVERRIDES,
exactly as leg 2 does), writes a random TXT value through the configured provider, waits
until every authoritative server serves it, and removes it again whatever happened. Each step
and each server's state is reported as it happens (``progress``), so a slow or dead server is
seen while the check waits, not after.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.resolver

from jackdaw.dns.base import DNSProvider
from jackdaw.dns.placement import locate, override_zone
from jackdaw.dns.propagation import (
    LAGGING,
    QUERY_TIMEOUT,
    REFUSING,
    SERVED,
    UNREACHABLE,
    Probe,
    PropagationTimeout,
    plan,
    probe,
)
from jackdaw.dns.resolver import make_resolver
from jackdaw.jobs import JobKind, JobQueue
from jackdaw.settings import Settings

ZONE_LOOKUP = "zone lookup"
PROVIDER_WRITE = "provider write"
PROPAGATION = "propagation"
CLEANUP = "cleanup"


def validation_name(name: str) -> str:
    """``_acme-challenge.NAME`` (a wildcard is proved at its base name, as in RFC 8555)."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]
    if not name.startswith("_acme-challenge."):
        name = f"_acme-challenge.{name}"
    return name


@dataclass
class CheckResult:
    name: str
    validation_name: str
    value: str
    #: where the TXT went (the CNAME target when delegated) and its zone; None if not found
    fqdn: str | None = None
    zone: str | None = None
    zone_from_override: bool = False
    #: per authoritative server ("ns-host@address"): seconds until it served the value
    timings: dict[str, float] = field(default_factory=dict)
    write_seconds: float | None = None
    #: seconds from the provider accepting the write until every server served it
    propagation_seconds: float | None = None
    #: True once the value was removed (or never written)
    cleaned: bool = False
    #: the first step that failed (ZONE_LOOKUP, PROVIDER_WRITE, PROPAGATION, CLEANUP)
    failed_step: str | None = None
    error: str | None = None
    #: servers that never served the value (propagation timeout): answering without it...
    lagging: list[str] = field(default_factory=list)
    #: ...turning the query away (connection refused, REFUSED/NOTAUTH)...
    refusing: list[str] = field(default_factory=list)
    #: ...or not answering at all
    unreachable: list[str] = field(default_factory=list)
    cleanup_error: str | None = None
    #: False when the write failed: nothing is said about removing a value never written
    written: bool = False

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    def fail(self, step: str, exc: BaseException) -> None:
        if self.failed_step is None:
            self.failed_step, self.error = step, f"{type(exc).__name__}: {exc}"

    def report(self) -> list[str]:
        """Human-readable lines, success or failure: ``details()`` then ``verdict()``."""
        return self.details() + self.verdict()

    def details(self) -> list[str]:
        """What was done: zone, write, per-server timings, removal."""
        lines: list[str] = []
        if self.zone is not None:
            how = "DNS_ZONE_OVERRIDES" if self.zone_from_override else "SOA lookup"
            via = f" (CNAME from {self.validation_name})" if self.fqdn != self.validation_name else ""
            lines.append(f"TXT {self.fqdn}{via} in zone {self.zone} (by {how})")
        if self.write_seconds is not None and self.failed_step != PROVIDER_WRITE:
            lines.append(f"wrote test value {self.value} in {self.write_seconds:.3f} s")
        if self.timings:
            width = max(len(label) for label in self.timings)
            lines.append("served by the authoritative servers after:")
            lines += [f"  {label:<{width}}  {seconds:7.3f} s" for label, seconds in sorted(self.timings.items())]
            if self.propagation_seconds is not None:
                lines.append(f"  {'total':<{width}}  {self.propagation_seconds:7.3f} s")
        lines += self.removal()
        return lines

    def removal(self) -> list[str]:
        if not self.written:
            return []
        if self.cleaned:
            return [f"removed the test value from {self.fqdn}"]
        return [f"could NOT remove the test value {self.value} from {self.fqdn}: {self.cleanup_error}"]

    def verdict(self) -> list[str]:
        """One OK line, or what failed (naming the step, and the lagging, refusing and unreachable servers)."""
        lines: list[str] = []
        if self.ok:
            lines.append(f"OK: DNS-01 for {self.name} works")
        else:
            lines.append(f"FAILED at {self.failed_step}: {self.error}")  # a timeout's names each group
        return lines


#: seconds to wait for the relay's zone job to let go of a zone before the check writes to it
ZONE_HOLD_TIMEOUT = 60.0


@contextmanager
def holding_zone(queue: JobQueue | None, zone: str) -> Iterator[None]:
    """Hold the zone's job claim around one provider call, so the check's read-modify-write
    (Namecheap) never interleaves with the relay's own writes to that zone."""
    if queue is None:
        yield
        return
    deadline = time.monotonic() + ZONE_HOLD_TIMEOUT
    while (claim := queue.try_claim(JobKind.DNS_ZONE, zone)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the relay kept writing to zone {zone} for {ZONE_HOLD_TIMEOUT:.0f} s; try again")
        time.sleep(0.2)
    try:
        yield
    finally:
        queue.release(claim)


STATE_WORDS = {
    LAGGING: "answers, but not with the value yet",
    REFUSING: "refusing (connection refused, or REFUSED/NOTAUTH: not serving the zone?)",
    UNREACHABLE: "unreachable (no answer)",
}


class _Progress:
    """Tells each server's state once per change, with the seconds since the write."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.told: dict[str, str] = {}

    def __call__(self, result: Probe, elapsed: float) -> None:
        width = max((len(label) for label in result.state), default=0)
        for label, state in sorted(result.state.items()):
            if self.told.get(label) == state:
                continue
            self.told[label] = state
            if state == SERVED:
                self.say(f"  {label:<{width}}  {elapsed:7.3f} s  serves it")
            else:
                self.say(f"  {label:<{width}}  {elapsed:7.3f} s  {STATE_WORDS[state]}")


def run_check(
    name: str,
    settings: Settings,
    provider: DNSProvider,
    *,
    timeout: float | None = None,
    queue: JobQueue | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckResult:
    """Write, wait for, and remove one random TXT value for ``name``; never raises for DNS or
    provider failures (they are in the result). ``timeout`` overrides DNS_PROPAGATION_TIMEOUT.
    With the relay's ``queue``, each provider call holds the zone against the relay's writes.
    ``progress`` is told each step and each server's change of state as it happens."""
    say = progress or (lambda line: None)
    result = CheckResult(name=name, validation_name=validation_name(name), value=secrets.token_urlsafe(32))
    try:
        zone, fqdn = locate(result.validation_name, make_resolver(settings.dns_resolver), settings.dns_zone_overrides)
    except Exception as exc:  # DNSLookupError, or a resolver that cannot even be built
        result.fail(ZONE_LOOKUP, exc)
        return result
    result.zone, result.fqdn = zone, fqdn
    result.zone_from_override = override_zone(fqdn, settings.dns_zone_overrides) is not None
    say(result.details()[0])
    step = PROVIDER_WRITE
    started = time.monotonic()
    wait = settings.dns_propagation_timeout if timeout is None else timeout
    try:
        try:
            with holding_zone(queue, zone):
                provider.present(zone, fqdn, result.value)
        finally:
            result.write_seconds = time.monotonic() - started
        result.written = True
        say(f"wrote test value {result.value} in {result.write_seconds:.3f} s")
        say(f"waiting up to {wait:g} s for every authoritative server of {zone}:")
        step = PROPAGATION
        written = time.monotonic()
        result.timings = wait_for_txt(
            [(fqdn, result.value)],
            make_resolver(settings.dns_resolver),
            timeout=wait,
            interval=settings.dns_propagation_interval,
            ns_port=settings.dns_authoritative_port,
            zones_of={fqdn: zone},
            on_round=_Progress(say),
        )
        result.propagation_seconds = time.monotonic() - written
        say(f"  served everywhere after {result.propagation_seconds:.3f} s")
    except PropagationTimeout as exc:
        result.fail(PROPAGATION, exc)
        result.lagging, result.refusing, result.unreachable = list(exc.lagging), list(exc.refusing), list(
            exc.unreachable)
    except Exception as exc:  # provider APIs raise all sorts; the operator wants the message
        result.fail(step, exc)
    finally:  # always, also on Ctrl-C; after a failed write too (a write that timed out may have landed)
        try:
            with holding_zone(queue, zone):
                provider.cleanup(zone, fqdn, result.value)
            result.cleaned = True
        except Exception as exc:
            result.cleanup_error = f"{type(exc).__name__}: {exc}"
            if result.written:  # a value never written is nobody's to remove
                result.fail(CLEANUP, exc)
        for line in result.removal():
            say(line)
    return result


def wait_for_txt(records: list[tuple[str, str]], resolver: dns.resolver.Resolver, *, timeout: float,
                 interval: float, ns_port: int = 53, query_timeout: float = QUERY_TIMEOUT,
                 zones_of: Mapping[str, str] | None = None,
                 on_round: Callable[[Probe, float], None] | None = None) -> dict[str, float]:
    """Probe until every name server serves every record: for operator tools and benchmarks
    that may block (the relay's jobs probe once per step instead). ``on_round`` sees each
    round's verdict and the seconds since the start. No query outlives ``timeout``.

    Returns seconds from the start until each name server served everything asked of it.
    Raises PropagationTimeout naming a lagging record and its lagging, refusing and
    unreachable servers.
    """
    start = time.monotonic()
    placed, servers = plan(records, resolver, zones_of)
    first_served: dict[str, float] = {}
    while True:
        left = start + timeout - time.monotonic()
        result = probe(placed, servers, port=ns_port, timeout=max(0.05, min(query_timeout, left)))
        elapsed = time.monotonic() - start
        if on_round is not None:
            on_round(result, elapsed)
        for label, done in result.complete.items():
            if done:
                first_served.setdefault(label, elapsed)
        if len(result.served) == len(set(placed)):
            return first_served
        remaining = start + timeout - time.monotonic()
        if remaining <= 0:
            raise result.timeout()
        time.sleep(min(interval, remaining))
