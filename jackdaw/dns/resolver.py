"""Name lookups for the DNS-01 leg: where a record lives, who serves it, where a CNAME points.

Every function takes an explicit resolver so tests (and operators with split-horizon DNS) can
point lookups at one server; ``make_resolver`` builds it.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

#: total seconds one lookup may take (all retries); DNS answers in milliseconds or not at all
LOOKUP_LIFETIME = 5.0


class DNSLookupError(RuntimeError):
    """A lookup needed to place or check a TXT record failed (not a provider API error)."""


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; ValueError if bad."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host:
            raise ValueError(f"{text!r}: unterminated '['")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r}: junk after ']'")
        port_text = rest[1:] if rest else None
        _require_ipv6(host, text)
    elif text.count(":") > 1:  # bare IPv6 literal: no port possible without brackets
        host, port_text = text, None
        _require_ipv6(host, text)
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
        if not host:
            raise ValueError(f"{text!r}: missing host")
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: port must be 1-65535")
    return host, int(port_text)


def _require_ipv6(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{text!r}: not an IPv6 address") from None


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_to_ip(host: str, port: int) -> str:
    """An IP literal for ``host`` (dnspython sends only to addresses), via the system resolver."""
    if is_ip(host):
        return host
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise DNSLookupError(f"{host}: cannot resolve name server address: {e}") from e
    return str(infos[0][4][0])


def make_resolver(nameserver: str | None) -> dns.resolver.Resolver:
    """A fresh resolver: only ``nameserver`` ("host[:port]") if given, else the system's.

    Fresh (not dnspython's shared default) and uncached, so a TXT written a moment ago is
    never hidden behind an answer from before it existed.
    """
    if nameserver:
        host, port = parse_hostport(nameserver, 53)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host_to_ip(host, port), port)]
    else:
        resolver = dns.resolver.Resolver()
    resolver.cache = None
    resolver.lifetime = LOOKUP_LIFETIME
    resolver.timeout = min(2.0, LOOKUP_LIFETIME)
    return resolver


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


def find_zone(name: str, resolver: dns.resolver.Resolver) -> str:
    """The apex of the zone holding ``name`` (SOA discovery), lowercase, no trailing dot."""
    try:
        zone = dns.resolver.zone_for_name(dns.name.from_text(name), resolver=resolver, lifetime=resolver.lifetime)
    except dns.resolver.NoRootSOA as e:  # dnspython's text: "... This should never happen!"
        raise DNSLookupError(f"{name}: cannot find its zone: no SOA record up to the root (does the resolver "
                             "answer for this name?)") from e
    except dns.exception.DNSException as e:
        raise DNSLookupError(f"{name}: cannot find its zone: {e}") from e
    return _text(zone).lower()


def resolve_addresses(host: str, resolver: dns.resolver.Resolver) -> list[str]:
    """IPv4 and IPv6 addresses of ``host``; one family may be missing, the name may not."""
    if is_ip(host):
        return [host]
    addresses: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            answer = resolver.resolve(host, rdtype)
        except dns.resolver.NoAnswer:
            continue
        except dns.exception.DNSException as e:  # NXDOMAIN, timeouts, SERVFAIL
            raise DNSLookupError(f"{host}: address lookup failed: {e}") from e
        addresses.extend(rdata.to_text() for rdata in answer)
    if not addresses:
        raise DNSLookupError(f"{host}: has neither A nor AAAA records")
    return addresses


def follow_cname(fqdn: str, resolver: dns.resolver.Resolver, max_hops: int = 10) -> str:
    """Where a TXT record for ``fqdn`` must be written: the end of its CNAME chain, or itself.

    A missing name (the usual case for ``_acme-challenge``) is not an error.
    """
    name = dns.name.from_text(fqdn)
    seen = {name}
    for hops in range(max_hops + 1):
        try:
            answer = resolver.resolve(name, dns.rdatatype.CNAME)
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            return _text(name)
        except dns.exception.DNSException as e:
            raise DNSLookupError(f"{_text(name)}: CNAME lookup failed: {e}") from e
        if hops == max_hops:
            break
        name = answer[0].target
        if name in seen:
            raise DNSLookupError(f"{fqdn}: CNAME loop at {_text(name)}")
        seen.add(name)
    raise DNSLookupError(f"{fqdn}: more than {max_hops} CNAME hops")
