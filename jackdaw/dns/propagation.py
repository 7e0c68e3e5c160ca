"""Wait until every authoritative name server serves the TXT values we wrote (lego's precheck).

The upstream CA may ask any of the zone's servers, so a value is "propagated" only when all of
them answer it. Servers are asked directly (no recursion, no caches in between).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from jackdaw.dns.resolver import (
    DNSLookupError,
    find_zone,
    follow_cname,
    resolve_addresses,
)

#: seconds one direct query to one server may take before that round counts it as lagging
QUERY_TIMEOUT = 1.0
#: parallel queries per round; a round costs at most about one QUERY_TIMEOUT
MAX_PARALLEL = 16


class PropagationTimeout(DNSLookupError):
    """Some authoritative servers still did not serve a TXT value when time ran out."""

    def __init__(self, fqdn: str, lagging: list[str]) -> None:
        self.fqdn = fqdn
        self.lagging = lagging
        super().__init__(f"TXT {fqdn} not yet served by: {', '.join(lagging)}")


@dataclass(frozen=True, order=True)
class Server:
    """One address of one NS host; the unit that must serve the value."""

    host: str
    address: str

    @property
    def label(self) -> str:
        return f"{self.host}@{self.address}"


def authoritative_servers(zone: str, resolver: dns.resolver.Resolver) -> list[Server]:
    """Every address (v4 and v6) of every NS of ``zone``, one entry per address."""
    try:
        answer = resolver.resolve(zone, dns.rdatatype.NS)
    except dns.exception.DNSException as e:
        raise DNSLookupError(f"{zone}: cannot list its name servers: {e}") from e
    servers: dict[str, Server] = {}
    for host in sorted(rdata.target.to_text(omit_final_dot=True) for rdata in answer):
        for address in resolve_addresses(host, resolver):
            servers.setdefault(address, Server(host, address))  # shared address: ask once
    return sorted(servers.values())


def txt_query(fqdn: str) -> dns.message.Message:
    query = dns.message.make_query(fqdn, dns.rdatatype.TXT)
    query.flags &= ~dns.flags.RD  # ask the server itself, never its resolver
    return query


def txt_values(response: dns.message.Message) -> set[str]:
    """The TXT strings in an answer (each record's character-strings joined, per RFC 8555)."""
    if response.rcode() != dns.rcode.NOERROR:
        return set()
    return {
        b"".join(rdata.strings).decode("utf-8", "replace")
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.TXT
        for rdata in rrset
    }


def served_values(fqdn: str, address: str, port: int, timeout: float) -> set[str]:
    """What ``address`` serves at ``fqdn`` now; an unreachable server serves nothing."""
    try:
        response, _ = dns.query.udp_with_fallback(txt_query(fqdn), address, timeout=timeout, port=port)
    except (dns.exception.DNSException, OSError):
        return set()
    return txt_values(response)


@dataclass
class Pending:
    """What one server still has to serve at one name."""

    fqdn: str
    server: Server
    values: set[str]


def plan(records: Iterable[tuple[str, str]], resolver: dns.resolver.Resolver,
         zones_of: Mapping[str, str] | None = None) -> list[Pending]:
    """Group records by (effective name, server) so each round asks each pair once.

    ``zones_of`` maps a record name to its zone when the caller already knows it (the zone the
    provider wrote to, e.g. from DNS_ZONE_OVERRIDES); other names are found by SOA lookup."""
    zones: dict[str, list[Server]] = {}
    grouped: dict[tuple[str, Server], set[str]] = {}
    for fqdn, value in records:
        name = follow_cname(fqdn, resolver)  # the value lives at the end of the chain
        zone = (zones_of or {}).get(name) or find_zone(name, resolver)
        if zone not in zones:
            zones[zone] = authoritative_servers(zone, resolver)
        for server in zones[zone]:
            grouped.setdefault((name, server), set()).add(value)
    return [Pending(name, server, values) for (name, server), values in grouped.items()]


def lagging_error(pending: list[Pending]) -> PropagationTimeout:
    first = min(p.fqdn for p in pending)
    return PropagationTimeout(first, sorted(p.server.label for p in pending if p.fqdn == first))


def wait_for_txt(
    records: list[tuple[str, str]],
    resolver: dns.resolver.Resolver,
    *,
    timeout: float,
    interval: float,
    ns_port: int = 53,
    query_timeout: float = QUERY_TIMEOUT,
    zones_of: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Poll all authoritative servers of all records until each serves its values.

    Returns seconds from the start until each server ("ns-host@address") served everything
    asked of it. Raises PropagationTimeout naming a lagging record and its lagging servers.
    ``ns_port`` exists for test beds whose servers do not listen on 53.
    """
    start = time.monotonic()
    deadline = start + timeout
    pending = plan(records, resolver, zones_of)
    first_served: dict[str, float] = {p.server.label: 0.0 for p in pending}
    if not pending:
        return first_served
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(pending))) as pool:
        while True:
            answers = list(
                pool.map(
                    lambda p: served_values(p.fqdn, p.server.address, ns_port, query_timeout),
                    pending,
                )
            )
            elapsed = time.monotonic() - start
            still: list[Pending] = []
            for item, values in zip(pending, answers, strict=True):
                item.values -= values
                if item.values:
                    still.append(item)
                else:
                    label = item.server.label
                    first_served[label] = max(first_served[label], elapsed)
            pending = still
            if not pending:
                return first_served
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise lagging_error(pending)
            time.sleep(min(interval, remaining))
