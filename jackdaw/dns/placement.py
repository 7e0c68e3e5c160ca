"""Where a TXT value for a validation name goes: the end of its CNAME chain, in the zone
DNS_ZONE_OVERRIDES names for it, else the zone SOA discovery finds."""

from __future__ import annotations

from collections.abc import Sequence

import dns.resolver

from jackdaw.dns.resolver import find_zone, follow_cname


def override_zone(fqdn: str, overrides: Sequence[tuple[str, str]]) -> str | None:
    """The zone ``overrides`` ((name, zone) pairs, most specific first) assign to ``fqdn``."""
    name = fqdn.lower().rstrip(".")
    for prefix, zone in overrides:
        if name == prefix or name.endswith("." + prefix):
            return zone
    return None


def locate(validation_name: str, resolver: dns.resolver.Resolver,
           overrides: Sequence[tuple[str, str]] = ()) -> tuple[str, str]:
    """(zone, fqdn) where the TXT for ``validation_name`` is written."""
    fqdn = follow_cname(validation_name, resolver)
    zone = override_zone(fqdn, overrides)
    return (zone if zone is not None else find_zone(fqdn, resolver)), fqdn
