"""DNS-01 for leg 2: write every TXT value of an order, wait once for the authoritative
servers to serve them all, and remove exactly what was written, whatever happens.

Each value is recorded in `dns_records` before the provider is called and the row is removed
only after the provider removed the value, so a crash in between is cleaned up later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import metrics
from jackdaw.dns.base import DNSProvider
from jackdaw.dns.propagation import PropagationTimeout, wait_for_txt
from jackdaw.dns.resolver import find_zone, follow_cname, make_resolver
from jackdaw.models import DnsRecord, Job, utcnow
from jackdaw.settings import Settings

log = logging.getLogger(__name__)

#: job kinds whose subjects own TXT values: client orders, and the relay's own certificate
#: (jackdaw.relaycert); a value whose owner has no such job any more is an orphan
TXT_OWNER_JOB_KINDS = ("order", "relay_cert")


@dataclass
class TxtRecord:
    zone: str
    fqdn: str
    value: str


def override_zone(fqdn: str, overrides: Sequence[tuple[str, str]]) -> str | None:
    """The zone DNS_ZONE_OVERRIDES assigns to ``fqdn`` (most specific entry first), if any."""
    name = fqdn.lower().rstrip(".")
    for prefix, zone in overrides:
        if name == prefix or name.endswith("." + prefix):
            return zone
    return None


def locate(validation_name: str, settings: Settings) -> tuple[str, str]:
    """(zone, fqdn) where the TXT for ``validation_name`` goes: the CNAME target when the name
    is delegated, in the zone DNS_ZONE_OVERRIDES names for it, else the one SOA discovery finds."""
    resolver = make_resolver(settings.dns_resolver)
    fqdn = follow_cname(validation_name, resolver)
    zone = override_zone(fqdn, settings.dns_zone_overrides)
    return (zone if zone is not None else find_zone(fqdn, resolver)), fqdn


@dataclass
class DNS01Solver:
    settings: Settings
    provider: DNSProvider
    sessions: sessionmaker[Session]

    def locate(self, validation_name: str) -> tuple[str, str]:
        """(zone, fqdn) where the TXT goes: the CNAME target when the name is delegated."""
        return locate(validation_name, self.settings)

    def present(self, order_id: str, wanted: list[tuple[str, str]]) -> list[TxtRecord]:
        """Write (validation name, value) pairs; returns what was written."""
        written: list[TxtRecord] = []
        for name, value in wanted:
            zone, fqdn = self.locate(name)
            with self.sessions.begin() as s:
                s.add(DnsRecord(order_id=order_id, zone=zone, fqdn=fqdn, value=value))
            with metrics.dns_provider_call(self.provider.name, "present"):
                self.provider.present(zone, fqdn, value)
            written.append(TxtRecord(zone, fqdn, value))
            log.info("order %s: TXT %s written in zone %s", order_id, fqdn, zone, extra={"order_id": order_id})
        return written

    def wait(self, records: list[TxtRecord]) -> None:
        started = time.monotonic()
        outcome = "error"
        try:
            wait_for_txt(
                [(r.fqdn, r.value) for r in records],
                make_resolver(self.settings.dns_resolver),
                timeout=self.settings.dns_propagation_timeout,
                interval=self.settings.dns_propagation_interval,
                ns_port=self.settings.dns_authoritative_port,
                zones_of={r.fqdn: r.zone for r in records},
            )
            outcome = "propagated"
        except PropagationTimeout:
            outcome = "timeout"
            raise
        finally:
            metrics.DNS_PROPAGATION_SECONDS.labels(outcome=outcome).observe(time.monotonic() - started)
        extra = max(self.provider.settle_seconds, self.settings.dns_propagation_wait - (time.monotonic() - started))
        if extra > 0:
            time.sleep(extra)

    def sweep_orphans(self, older_than: timedelta) -> int:
        """Remove values whose owner has no job any more (its clean-up failed or a worker died)."""
        cutoff = utcnow() - older_than
        with self.sessions() as s:
            order_ids = set(s.scalars(
                select(DnsRecord.order_id)
                .where(DnsRecord.created < cutoff)
                .where(DnsRecord.order_id.not_in(
                    select(Job.subject_id).where(Job.kind.in_(TXT_OWNER_JOB_KINDS))))
            ))
        for order_id in order_ids:
            self.cleanup(order_id)
        return len(order_ids)

    def cleanup(self, order_id: str) -> bool:
        """Remove every value recorded for the order; False if some removal must be retried."""
        with self.sessions() as s:
            rows = [(r.id, r.zone, r.fqdn, r.value) for r in s.scalars(
                select(DnsRecord).where(DnsRecord.order_id == order_id))]
        clean = True
        for row_id, zone, fqdn, value in rows:
            try:
                with metrics.dns_provider_call(self.provider.name, "cleanup"):
                    self.provider.cleanup(zone, fqdn, value)
            except Exception:
                log.exception("order %s: removing TXT %s failed; will retry", order_id, fqdn,
                              extra={"order_id": order_id})
                clean = False
                continue
            with self.sessions.begin() as s:
                s.execute(delete(DnsRecord).where(DnsRecord.id == row_id))
        return clean
