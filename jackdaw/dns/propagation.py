"""Does every authoritative name server serve the TXT values we wrote? (lego's precheck)

The upstream CA may ask any of the zone's name servers, so a value is "propagated" only when
each of them serves it. A name server counts as serving when any one of its addresses that
answers serves the value: an address that cannot be reached (no route for its family, nothing
listening) is skipped, so an IPv4-only relay is not held up by the servers' AAAA records. A
server none of whose addresses answers is *unreachable*, told apart from one that answers
without the value yet (*lagging*) and from one that turns the query away (*refusing*: the
connection refused, or REFUSED / NOTAUTH: it is not serving the zone, and waiting will not
change that). Servers are asked directly (no recursion, no caches).

``probe`` is one bounded round (every query at once, each with a short timeout): the relay's
jobs call it once per step and reschedule; only operator tools loop over it
(jackdaw.ops.dnscheck.wait_for_txt).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from jackdaw.dns.resolver import DNSLookupError, find_zone, follow_cname, resolve_addresses

#: seconds one direct query to one address may take before this round counts it as silent
QUERY_TIMEOUT = 1.0
#: queries in flight at once, shared by every probe of the process
MAX_PARALLEL = 16
_POOL = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="jackdaw-dns-probe")


#: answers that say "not from me": the server does not serve the zone (or will not tell us)
REFUSING_RCODES = frozenset({dns.rcode.REFUSED, dns.rcode.NOTAUTH})

SERVED, LAGGING, REFUSING, UNREACHABLE = "served", "lagging", "refusing", "unreachable"


class PropagationTimeout(DNSLookupError):
    """Some authoritative servers still did not serve a TXT value when time ran out."""

    def __init__(self, fqdn: str, lagging: list[str], unreachable: list[str] | None = None,
                 refusing: list[str] | None = None) -> None:
        self.fqdn = fqdn
        self.lagging = lagging
        self.unreachable = unreachable or []
        self.refusing = refusing or []
        parts = []
        if lagging:
            parts.append(f"not yet served by: {', '.join(lagging)}")
        if self.refusing:
            parts.append(f"refused by (connection refused, or REFUSED/NOTAUTH): {', '.join(self.refusing)}")
        if self.unreachable:
            parts.append(f"no answer from any address of: {', '.join(self.unreachable)}")
        super().__init__(f"TXT {fqdn} {'; '.join(parts)}")


@dataclass(frozen=True, order=True)
class NameServer:
    """One NS host of a zone with all its addresses (v4 and v6); the unit that must serve."""

    host: str
    addresses: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.host


def authoritative_servers(zone: str, resolver: dns.resolver.Resolver) -> list[NameServer]:
    """Every NS host of ``zone`` with its addresses."""
    try:
        answer = resolver.resolve(zone, dns.rdatatype.NS)
    except dns.exception.DNSException as e:
        raise DNSLookupError(f"{zone}: cannot list its name servers: {e}") from e
    hosts = sorted({rdata.target.to_text(omit_final_dot=True).lower() for rdata in answer})
    return [NameServer(host, tuple(resolve_addresses(host, resolver))) for host in hosts]


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


def ask(fqdn: str, address: str, port: int, timeout: float) -> tuple[str, set[str]]:
    """(SERVED, values), (REFUSING, {}) or (UNREACHABLE, {}) from one address now."""
    try:
        # a connected UDP socket hears the ICMP "port unreachable" of a dead port at once,
        # instead of waiting out the timeout as an unconnected one does
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((address, port))
            response, _ = dns.query.udp_with_fallback(txt_query(fqdn), address, timeout=timeout, port=port,
                                                      udp_sock=sock)
    except ConnectionRefusedError:  # ICMP port unreachable, or a TCP reset: nothing listens there
        return REFUSING, set()
    except (dns.exception.DNSException, OSError):
        return UNREACHABLE, set()
    if response.rcode() in REFUSING_RCODES:
        return REFUSING, set()
    return SERVED, txt_values(response)


def served_values(fqdn: str, address: str, port: int, timeout: float) -> set[str] | None:
    """What ``address`` serves at ``fqdn`` now; None when it does not answer (no route for the
    address family, refused, timed out)."""
    kind, values = ask(fqdn, address, port, timeout)
    return values if kind == SERVED else None


@dataclass
class Probe:
    """One round's verdict on a set of (fqdn, value) records."""

    #: records every name server of their zone serves
    served: set[tuple[str, str]] = field(default_factory=set)
    #: fqdn -> name servers that answered without (all of) its values
    lagging: dict[str, list[str]] = field(default_factory=dict)
    #: fqdn -> name servers none of whose addresses answered
    unreachable: dict[str, list[str]] = field(default_factory=dict)
    #: fqdn -> name servers that turned the query away (and none answered it)
    refusing: dict[str, list[str]] = field(default_factory=dict)
    #: name server label -> True once it served everything asked of it this round
    complete: dict[str, bool] = field(default_factory=dict)
    #: name server label -> SERVED, LAGGING, REFUSING or UNREACHABLE (its worst record this round)
    state: dict[str, str] = field(default_factory=dict)

    def timeout(self) -> PropagationTimeout:
        """The error for the first record not served everywhere."""
        return self.timeout_for(min([*self.lagging, *self.unreachable, *self.refusing]))

    def timeout_for(self, fqdn: str) -> PropagationTimeout:
        return PropagationTimeout(fqdn, sorted(self.lagging.get(fqdn, [])), sorted(self.unreachable.get(fqdn, [])),
                                  sorted(self.refusing.get(fqdn, [])))


def probe(records: Iterable[tuple[str, str]], servers: Mapping[str, list[NameServer]], *, port: int = 53,
          timeout: float = QUERY_TIMEOUT) -> Probe:
    """Ask every address of every name server of each record's name once, all at once.

    ``servers`` maps each record name to its zone's name servers. ``port`` exists for test beds
    whose servers do not listen on 53."""
    wanted: dict[str, set[str]] = {}
    for fqdn, value in records:
        wanted.setdefault(fqdn, set()).add(value)
    queries = [(fqdn, ns, address) for fqdn in wanted for ns in servers[fqdn] for address in ns.addresses]
    answers = list(_POOL.map(lambda q: ask(q[0], q[2], port, timeout), queries))
    seen: dict[tuple[str, NameServer], set[str] | None] = {}
    turned_away: set[tuple[str, NameServer]] = set()
    for (fqdn, ns, _), (kind, answer) in zip(queries, answers, strict=True):
        key = (fqdn, ns)
        if kind == SERVED:
            seen[key] = (seen.get(key) or set()) | answer
        else:
            seen.setdefault(key, None)
            if kind == REFUSING:
                turned_away.add(key)
    result = Probe()
    rank = {SERVED: 0, LAGGING: 1, REFUSING: 2, UNREACHABLE: 3}
    for fqdn, values in wanted.items():
        missing: set[str] = set()
        for ns in servers[fqdn]:
            got = seen.get((fqdn, ns))
            ok = got is not None and values <= got
            result.complete[ns.label] = result.complete.get(ns.label, True) and ok
            if got is None:
                state = REFUSING if (fqdn, ns) in turned_away else UNREACHABLE
                (result.refusing if state == REFUSING else result.unreachable).setdefault(fqdn, []).append(ns.label)
                missing |= values
            elif not ok:
                state = LAGGING
                result.lagging.setdefault(fqdn, []).append(ns.label)
                missing |= values - got
            else:
                state = SERVED
            if rank[state] >= rank[result.state.get(ns.label, SERVED)]:
                result.state[ns.label] = state
        result.served |= {(fqdn, v) for v in values - missing}
    return result


def plan(records: Iterable[tuple[str, str]], resolver: dns.resolver.Resolver,
         zones_of: Mapping[str, str] | None = None) -> tuple[list[tuple[str, str]], dict[str, list[NameServer]]]:
    """Records at the end of their CNAME chains, and each one's name servers.

    ``zones_of`` maps a record name to its zone when the caller already knows it (the zone the
    provider wrote to, e.g. from DNS_ZONE_OVERRIDES); other names are found by SOA lookup."""
    zones: dict[str, list[NameServer]] = {}
    placed: list[tuple[str, str]] = []
    servers: dict[str, list[NameServer]] = {}
    for fqdn, value in records:
        name = follow_cname(fqdn, resolver)  # the value lives at the end of the chain
        zone = (zones_of or {}).get(name) or find_zone(name, resolver)
        if zone not in zones:
            zones[zone] = authoritative_servers(zone, resolver)
        servers[name] = zones[zone]
        placed.append((name, value))
    return placed, servers
