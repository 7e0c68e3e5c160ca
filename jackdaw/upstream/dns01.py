"""DNS-01 for leg 2: TXT values asked for by owners, written, checked and removed per zone.

Owners (a client order's job, the relay certificate's) never call the DNS provider. They add
rows to ``dns_records`` ("wanted") and later mark them "removing"; each zone's own job
(JobKind.DNS_ZONE, subject: the zone) is the one writer to the provider for that zone across
every instance (the job's claim is the per-zone lock, which read-modify-write APIs such as
Namecheap's need). One run of a zone's job, bounded:

1. removes the values no longer wanted (unless another owner still wants the same value);
2. writes every wanted value in one provider call where the provider allows (RFC 2136 sends
   one UPDATE);
3. probes the zone's name servers once for every written value, marks what all of them serve
   "served" and wakes its owners, and fails what took longer than DNS_PROPAGATION_TIMEOUT;
4. reschedules itself (the propagation interval) while anything is still unconfirmed.

So a stampede of orders in one zone costs a few provider calls and one shared propagation
wait, not one of each per order, and no thread ever sleeps. Each row records the run of leg 2
(the upstream order) that asked for it, and an owner releases only its own run's values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import logs, metrics
from jackdaw.dns.base import DNSProvider
from jackdaw.dns.placement import locate
from jackdaw.dns.propagation import NameServer, PropagationTimeout, authoritative_servers, probe
from jackdaw.dns.resolver import DNSLookupError, make_resolver
from jackdaw.jobs import JobContext, JobKind, JobQueue, Wait, backoff, fenced
from jackdaw.models import DnsRecord, Job, utcnow
from jackdaw.settings import Settings

log = logging.getLogger(__name__)

#: job kinds whose subjects own TXT values; a value whose owner has no such job is an orphan
TXT_OWNER_JOB_KINDS = (JobKind.ORDER, JobKind.RELAY_CERT)
#: values per provider call
BATCH = 100
#: failed writes of one value before its owner is told
WRITE_ATTEMPTS = 4
#: seconds an owner waits before looking again if no zone job woke it (a missed wake-up)
OWNER_RECHECK = 5.0
#: seconds a zone's name-server list is reused
NS_CACHE_SECONDS = 30.0


class RecordState(StrEnum):
    WANTED = "wanted"
    WRITTEN = "written"
    SERVED = "served"
    FAILED = "failed"
    REMOVING = "removing"


LIVE = (RecordState.WANTED, RecordState.WRITTEN, RecordState.SERVED)


@dataclass(frozen=True)
class Progress:
    """An owner's values, as the owner sees them."""

    #: every value served by every name server, settle time included
    done: bool
    #: why a value failed (provider refused, propagation timed out); the owner gives up
    error: str | None = None
    #: seconds until worth looking again
    wait: float = OWNER_RECHECK


@dataclass
class DNS01:
    settings: Settings
    provider: DNSProvider
    sessions: sessionmaker[Session]
    queue: JobQueue

    def __post_init__(self) -> None:
        self._ns_cache: dict[str, tuple[float, list[NameServer]]] = {}
        #: when this process last probed each zone: a zone's job woken early (new values to
        #: write) probes what it just wrote, and the rest only once per propagation interval
        self._probed: dict[str, float] = {}

    # -- owners ------------------------------------------------------------------------------

    def request(self, owner_kind: str, owner: str, run: str, wanted: Iterable[tuple[str, str]], *,
                ctx: JobContext | None = None) -> None:
        """Ask for (validation name, value) pairs; values this run already asked for are kept.
        ``ctx``: the owner's run, whose claim fences the write."""
        resolver = make_resolver(self.settings.dns_resolver)
        placed = [(*locate(name, resolver, self.settings.dns_zone_overrides), value) for name, value in wanted]
        with fenced(self.sessions, ctx) as s:
            have = {(r.fqdn, r.value) for r in s.scalars(
                select(DnsRecord).where(DnsRecord.order_id == owner, DnsRecord.run == run,
                                        DnsRecord.state.in_(LIVE)))}
            zones = set()
            for zone, fqdn, value in placed:
                if (fqdn, value) in have:
                    continue
                s.add(DnsRecord(order_id=owner, owner_kind=owner_kind, run=run, zone=zone, fqdn=fqdn, value=value,
                                state=RecordState.WANTED))
                zones.add(zone)
                log.info("TXT %s wanted in zone %s for %s", fqdn, zone, owner, extra={"order_id": owner})
            for zone in zones:
                self.queue.enqueue(s, JobKind.DNS_ZONE, zone)

    def progress(self, owner: str, run: str) -> Progress:
        with self.sessions() as s:
            rows = list(s.scalars(select(DnsRecord).where(DnsRecord.order_id == owner, DnsRecord.run == run,
                                                          DnsRecord.state != RecordState.REMOVING)))
        failed = [r for r in rows if r.state == RecordState.FAILED]
        if failed:
            return Progress(False, f"TXT {failed[0].fqdn}: {failed[0].error}")
        if not rows or any(r.state != RecordState.SERVED for r in rows):
            return Progress(False)
        served = max(r.served or r.created for r in rows)
        written = min(r.written or r.created for r in rows)
        ready_at = max(served + timedelta(seconds=self.provider.settle_seconds),
                       written + timedelta(seconds=self.settings.dns_propagation_wait))
        wait = (ready_at - utcnow()).total_seconds()
        return Progress(wait <= 0, wait=max(wait, 0.0))

    def release(self, owner: str, run: str | None = None) -> None:
        """The owner no longer needs its values (of ``run`` only, if given): remove them."""
        with self.sessions.begin() as s:
            release(s, self.queue, owner, run)

    def sweep_orphans(self, older_than: timedelta) -> int:
        """Release values whose owner has no job any more (a worker died between asking and
        releasing, or an operator cancelled the order)."""
        cutoff = utcnow() - older_than
        return self.release_orphans(self.orphans(cutoff), cutoff)

    def orphans(self, cutoff: datetime) -> set[str]:
        """Owners of values older than ``cutoff`` that have no job (a look, without locks)."""
        with self.sessions() as s:
            return set(s.scalars(
                select(DnsRecord.order_id).where(DnsRecord.created < cutoff, DnsRecord.state != RecordState.REMOVING)
                .where(DnsRecord.order_id.not_in(
                    select(Job.subject_id).where(Job.kind.in_(TXT_OWNER_JOB_KINDS))))))

    def release_orphans(self, owners: Iterable[str], cutoff: datetime) -> int:
        """Release the values older than ``cutoff`` of each owner that, looked at again in the
        releasing transaction, still has no job: a run that started since ``orphans`` looked
        keeps its values. Returns the number of owners released."""
        released = 0
        for owner in owners:
            with self.sessions.begin() as s:
                if s.scalar(select(Job.id).where(Job.kind.in_(TXT_OWNER_JOB_KINDS), Job.subject_id == owner)
                            .limit(1)) is None:
                    release(s, self.queue, owner, older_than=cutoff)
                    released += 1
        with self.sessions() as s:
            stranded = set(s.scalars(  # removals whose zone job is gone (e.g. gave up earlier)
                select(DnsRecord.zone).where(DnsRecord.created < cutoff, DnsRecord.state == RecordState.REMOVING)
                .where(DnsRecord.zone.not_in(select(Job.subject_id).where(Job.kind == JobKind.DNS_ZONE)))))
        if stranded:
            with self.sessions.begin() as s:
                for zone in stranded:
                    self.queue.enqueue(s, JobKind.DNS_ZONE, zone)
        return released

    # -- the zone's job ----------------------------------------------------------------------

    def run_zone(self, ctx: JobContext) -> None:
        zone = ctx.subject_id
        with self.sessions() as s:
            rows = list(s.scalars(select(DnsRecord).where(DnsRecord.zone == zone).order_by(DnsRecord.id)))
        removals_left = self._remove(ctx, zone, rows)
        just_written = self._write(ctx, zone, [r for r in rows if r.state == RecordState.WANTED])
        interval = self.settings.dns_propagation_interval
        due = time.monotonic() - self._probed.get(zone, -interval) >= interval
        with self.sessions() as s:
            written = list(s.scalars(select(DnsRecord).where(
                DnsRecord.zone == zone, DnsRecord.state == RecordState.WRITTEN)))
        if not due:
            written = [r for r in written if r.id in just_written]
        if written:
            if due:
                self._probed[zone] = time.monotonic()
            self._check(ctx, zone, written)
        with self.sessions() as s:
            still = s.scalar(select(DnsRecord.id).where(
                DnsRecord.zone == zone, DnsRecord.state.in_((RecordState.WANTED, RecordState.WRITTEN))).limit(1))
        if still is not None:
            next_probe = self._probed.get(zone, time.monotonic()) + interval - time.monotonic()
            raise Wait("TXT values not yet served everywhere", min(max(next_probe, 0.05), interval))
        if removals_left:
            raise Wait("TXT removal to retry", backoff(max(r.attempts for r in removals_left) + 1, 300.0))

    def _remove(self, ctx: JobContext, zone: str, rows: list[DnsRecord]) -> list[DnsRecord]:
        live = {(r.fqdn, r.value) for r in rows if r.state in (*LIVE, RecordState.FAILED)}
        removing = [r for r in rows if r.state == RecordState.REMOVING]
        shared = [r.id for r in removing if (r.fqdn, r.value) in live]  # another owner still wants it
        calls = [r for r in removing if (r.fqdn, r.value) not in live]
        if shared:
            self._delete(ctx, shared)
        left: list[DnsRecord] = []
        for rows_of_batch, ok in self._batches(ctx, zone, "cleanup", calls):
            if not ok:
                left += rows_of_batch
                continue
            self._delete(ctx, [r.id for r in rows_of_batch])
            for r in rows_of_batch:
                log.info("TXT %s removed from zone %s", r.fqdn, zone, extra={"order_id": r.order_id})
        return left

    def _write(self, ctx: JobContext, zone: str, wanted: list[DnsRecord]) -> set[int]:
        """Write what is wanted; returns the ids of the rows written."""
        done: set[int] = set()
        for rows_of_batch, ok in self._batches(ctx, zone, "present", wanted):
            if not ok:
                continue
            ids = [r.id for r in rows_of_batch]
            with fenced(self.sessions, ctx) as s:
                s.execute(update(DnsRecord).where(DnsRecord.id.in_(ids), DnsRecord.state == RecordState.WANTED)
                          .values(state=RecordState.WRITTEN, written=utcnow(), attempts=0, error=None)
                          .execution_options(synchronize_session=False))
            done.update(ids)
            for r in rows_of_batch:
                log.info("TXT %s written in zone %s", r.fqdn, zone, extra={"order_id": r.order_id})
        return done

    def _batches(self, ctx: JobContext, zone: str, op: str,
                 rows: list[DnsRecord]) -> Iterable[tuple[list[DnsRecord], bool]]:
        """One provider call per batch of distinct values (``op``: present or cleanup), each
        after ``ctx.guard()``; yields every row of the batch (values two owners share
        included) and whether the call succeeded. A failure is counted against its rows."""
        for batch in _chunks(_unique(rows)):
            records = [(r.fqdn, r.value) for r in batch]
            covered = [r for r in rows if (r.fqdn, r.value) in set(records)]
            ctx.guard()
            try:
                with metrics.dns_provider_call(self.provider.name, op):
                    (self.provider.present_many if op == "present" else self.provider.cleanup_many)(zone, records)
            except Exception as exc:
                verb = "writing" if op == "present" else "removing"
                reference = logs.reference()
                log.warning("zone %s: %s %d TXT value(s) failed (will retry; reference %s): %s", zone, verb,
                            len(batch), reference, exc, exc_info=True, extra={"order_id": batch[0].order_id})
                self._note_failure(ctx, covered, reference, fail=op == "present")
                yield covered, False
                continue
            yield covered, True

    def _check(self, ctx: JobContext, zone: str, written: list[DnsRecord]) -> None:
        records = [(r.fqdn, r.value) for r in written]
        pending = self.provider.pending(zone, records)
        try:
            servers = self._servers(zone)
        except DNSLookupError as exc:
            log.warning("zone %s: %s", zone, exc)
            servers = None
        result = None
        if servers is not None:
            result = probe([rv for rv in records if rv not in pending], {fqdn: servers for fqdn, _ in records},
                           port=self.settings.dns_authoritative_port)
        now = utcnow()
        timeout = timedelta(seconds=self.settings.dns_propagation_timeout)
        served = [r for r in written if result is not None and (r.fqdn, r.value) in result.served]
        late = [r for r in written if r not in served and r.written is not None and now - r.written > timeout]
        if not served and not late:
            return
        with fenced(self.sessions, ctx) as s:
            for r in served:
                s.execute(update(DnsRecord).where(DnsRecord.id == r.id, DnsRecord.state == RecordState.WRITTEN)
                          .values(state=RecordState.SERVED, served=now).execution_options(synchronize_session=False))
                if r.written is not None:
                    metrics.DNS_PROPAGATION_SECONDS.labels(outcome="propagated").observe(
                        (now - r.written).total_seconds())
            for r in late:
                error = str(result.timeout_for(r.fqdn)) if result is not None else "name servers unknown"
                s.execute(update(DnsRecord).where(DnsRecord.id == r.id, DnsRecord.state == RecordState.WRITTEN)
                          .values(state=RecordState.FAILED, error=f"did not propagate: {error}")
                          .execution_options(synchronize_session=False))
                metrics.DNS_PROPAGATION_SECONDS.labels(outcome="timeout").observe(timeout.total_seconds())
                log.warning("TXT %s did not propagate in time: %s", r.fqdn, error, extra={"order_id": r.order_id})
            self._wake_owners(s, [*served, *late])

    def _servers(self, zone: str) -> list[NameServer]:
        cached = self._ns_cache.get(zone)
        if cached is not None and time.monotonic() - cached[0] < NS_CACHE_SECONDS:
            return cached[1]
        servers = authoritative_servers(zone, make_resolver(self.settings.dns_resolver))
        self._ns_cache[zone] = (time.monotonic(), servers)
        return servers

    def _note_failure(self, ctx: JobContext, rows: Sequence[DnsRecord], reference: str, *, fail: bool) -> None:
        """Count a failed provider call against its rows; writes that keep failing fail the value.

        The row (and so the client's order error) gets a short stable text with the log line's
        reference, not the provider's answer: that can name cloud accounts, ARNs, API users."""
        text = f"the DNS provider call failed (reference {reference}; the full error is in the relay's log)"
        with fenced(self.sessions, ctx) as s:
            given_up = []
            for r in rows:
                attempts = r.attempts + 1
                values: dict[str, object] = {"attempts": attempts, "error": text}
                if fail and attempts >= WRITE_ATTEMPTS:
                    values["state"] = RecordState.FAILED
                    given_up.append(r)
                s.execute(update(DnsRecord).where(DnsRecord.id == r.id).values(**values)
                          .execution_options(synchronize_session=False))
            self._wake_owners(s, given_up)

    def _wake_owners(self, s: Session, rows: Iterable[DnsRecord]) -> None:
        for kind, owner in {(r.owner_kind, r.order_id) for r in rows}:
            self.queue.enqueue(s, kind, owner)

    def _delete(self, ctx: JobContext, ids: list[int]) -> None:
        with fenced(self.sessions, ctx) as s:
            s.execute(delete(DnsRecord).where(DnsRecord.id.in_(ids), DnsRecord.state == RecordState.REMOVING))

    def give_up(self, ctx: JobContext, reason: str) -> None:
        """The zone's job keeps failing (its name servers cannot be listed): fail what waits."""
        zone = ctx.subject_id
        with fenced(self.sessions, ctx) as s:
            rows = list(s.scalars(select(DnsRecord).where(
                DnsRecord.zone == zone, DnsRecord.state.in_((RecordState.WANTED, RecordState.WRITTEN)))))
            for r in rows:
                r.state = RecordState.FAILED
                r.error = reason[:500]
            self._wake_owners(s, rows)


def release(s: Session, queue: JobQueue, owner: str, run: str | None = None, *,
            older_than: datetime | None = None) -> None:
    """Inside the caller's transaction: mark the owner's values (of ``run`` only, if given;
    created before ``older_than`` only, if given) for removal and wake their zones' jobs."""
    q = select(DnsRecord).where(DnsRecord.order_id == owner, DnsRecord.state != RecordState.REMOVING)
    if run is not None:
        q = q.where(DnsRecord.run == run)
    if older_than is not None:
        q = q.where(DnsRecord.created < older_than)
    rows = list(s.scalars(q))
    for row in rows:
        row.state = RecordState.REMOVING
        row.attempts = 0
    for zone in {r.zone for r in rows}:
        queue.enqueue(s, JobKind.DNS_ZONE, zone)


def _unique(rows: Iterable[DnsRecord]) -> list[DnsRecord]:
    """One row per (fqdn, value): two owners wanting the same value share one provider call."""
    seen: dict[tuple[str, str], DnsRecord] = {}
    for r in rows:
        seen.setdefault((r.fqdn, r.value), r)
    return list(seen.values())


def _chunks(rows: list[DnsRecord]) -> Iterable[list[DnsRecord]]:
    for i in range(0, len(rows), BATCH):
        yield rows[i:i + BATCH]


__all__ = ["DNS01", "Progress", "PropagationTimeout", "RecordState", "release"]
