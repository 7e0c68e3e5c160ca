"""Who may get which names: the one place the relay decides (RFC 8555 §7.4 identifiers).

Two layers, both applied:

- the relay's own fence: ``ALLOWED_DOMAINS`` (those domains and every name under them) and
  ``WILDCARD_DOMAINS`` (``example.com``: wildcards for names strictly under it, such as
  ``*.app.example.com``; ``*.example.com`` listed as such: that wildcard itself). A wildcard is
  proven by HTTP-01 at its base name, so a wildcard at a zone's apex is never implied: whoever
  serves ``http://example.com/`` (often an outside CMS or CDN) must not get ``*.example.com``
  unless an operator listed exactly that;
- an external account binding's policy (jackdaw.ra.bindings): name patterns (``host.example.com``
  exactly; ``*.team.example.com`` for names under it, not the apex itself), wildcards on or off
  (``*.B`` needs ``B`` itself allowed by a pattern), the networks requests must come from, and
  optionally the requester among the name's addresses (checked when the name is validated).

Refusals are typed problems whose detail names the rule that refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jackdaw.models import EabKey
from jackdaw.protocol import problems
from jackdaw.protocol.constants import IDENTIFIER_DNS, MAX_IDENTIFIERS

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IP_LITERAL_RULE = ("IP address identifiers are not issued: a relay can only prove a DNS name upstream (by "
                    "DNS-01), and an IP address can be proven only at the address itself")


def _under(name: str, domains: Sequence[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


def _strictly_under(name: str, domains: Sequence[str]) -> bool:
    return any(name.endswith("." + d) for d in domains)


def _dns_name(name: str) -> str:
    """The ASCII form of a valid DNS name, or RejectedIdentifier."""
    if name.endswith("."):
        raise problems.RejectedIdentifier(f"{name!r}: a trailing dot is not allowed", identifier=name)
    if "*" in name:
        raise problems.RejectedIdentifier(f"{name!r}: '*' is allowed only as a whole leftmost label", identifier=name)
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        raise problems.RejectedIdentifier(f"{name!r} is not a valid DNS name", identifier=name) from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise problems.RejectedIdentifier(f"{name!r} is not a valid DNS name", identifier=name)
    if labels[-1].isdigit():
        raise problems.RejectedIdentifier(f"{name!r}: the top-level label must not be numeric", identifier=name)
    return ascii_name


def check_pattern(text: str) -> str:
    """An EAB key's name pattern, normalised: ``host.example.com`` or ``*.example.com``."""
    raw = text.strip().lower().rstrip(".")
    base = raw.removeprefix("*.")
    try:
        _dns_name(base)
    except problems.AcmeProblem:
        raise ValueError(f"--allow {text!r}: a DNS name, or *.domain for every name under it") from None
    return raw


def pattern_allows(pattern: str, name: str) -> bool:
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])  # strictly under: the apex needs its own entry
    return name == pattern


def check_name(name: str, allowed_domains: Sequence[str], wildcard_domains: Sequence[str] = (),
               binding: EabKey | None = None) -> str:
    """Return the normalised name or raise the problem a client should see for it."""
    name = name.strip().lower()
    if name.startswith("*."):
        if binding is not None and not binding.wildcards:
            raise problems.RejectedIdentifier(
                f"{name}: EAB key {binding.name} does not allow wildcard names", identifier=name)
        base = check_name(name[2:], allowed_domains, binding=binding)
        wildcard = "*." + base
        if binding is None and wildcard not in wildcard_domains and not _strictly_under(
                base, [d for d in wildcard_domains if not d.startswith("*.")]):
            raise problems.RejectedIdentifier(
                f"{wildcard}: wildcard names are allowed only under WILDCARD_DOMAINS"
                + (f" ({', '.join(wildcard_domains)}; a wildcard at a listed domain itself needs '*.{base}' "
                   "listed)" if wildcard_domains else ", which is not set"),
                identifier=wildcard)
        return wildcard
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise problems.RejectedIdentifier(f"{name}: {_IP_LITERAL_RULE}", identifier=name)
    ascii_name = _dns_name(name)
    if allowed_domains and not _under(ascii_name, allowed_domains):
        raise problems.RejectedIdentifier(
            f"{ascii_name} is not under a domain this relay issues for (ALLOWED_DOMAINS)", identifier=ascii_name
        )
    if binding is not None and not any(pattern_allows(p, ascii_name) for p in binding.allow):
        raise problems.RejectedIdentifier(
            f"{ascii_name} is not allowed for EAB key {binding.name} (allowed: {', '.join(binding.allow)})",
            identifier=ascii_name)
    return ascii_name


def redirect_refusal(allowed_domains: Sequence[str], binding: EabKey | None, host: str) -> str | None:
    """Why HTTP-01 does not follow a redirect to ``host``: only to names the requester could
    order itself (ALLOWED_DOMAINS, its EAB key's patterns), so a redirect cannot turn the
    relay's fetch from inside the network onto an arbitrary internal host."""
    try:
        check_name(host, allowed_domains, binding=binding)
    except problems.AcmeProblem as refused:
        return f"the redirect target is outside this requester's names ({refused.detail})"
    return None


def check_identifiers(raw: Any, allowed_domains: Sequence[str], wildcard_domains: Sequence[str] = (),
                      binding: EabKey | None = None) -> list[str]:
    """Validate a newOrder `identifiers` array; every bad name is reported (compound problem)."""
    if not isinstance(raw, list) or not raw:
        raise problems.Malformed("newOrder needs a non-empty 'identifiers' array")
    if len(raw) > MAX_IDENTIFIERS:
        raise problems.RejectedIdentifier(f"an order may hold at most {MAX_IDENTIFIERS} identifiers")
    names: list[str] = []
    errors: list[problems.AcmeProblem] = []
    for ident in raw:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            raise problems.Malformed("each identifier needs a 'type' and a string 'value'")
        if ident.get("type") == "ip":
            errors.append(problems.RejectedIdentifier(f"{ident['value']}: {_IP_LITERAL_RULE}",
                                                      identifier=ident["value"]))
            continue
        if ident.get("type") != IDENTIFIER_DNS:
            errors.append(problems.UnsupportedIdentifier(
                f"identifier type {ident.get('type')!r} is not supported", identifier=ident["value"]))
            continue
        try:
            name = check_name(ident["value"], allowed_domains, wildcard_domains, binding)
        except problems.AcmeProblem as exc:
            errors.append(exc)
            continue
        if name not in names:
            names.append(name)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise problems.RejectedIdentifier(
            "; ".join(e.detail for e in errors), subproblems=errors
        )
    return names


def check_profile(requested: Any, names: Sequence[str], offered: Mapping[str, str] | None, *,
                  default: str | None = None, allowed: Sequence[str] = (), binding: EabKey | None = None,
                  max_names: Mapping[str, int] | None = None) -> str | None:
    """The certificate profile of a newOrder (draft-ietf-acme-profiles): the client's, else the
    operator's default; it must be one the upstream CA offers (``offered``: its meta.profiles,
    None while not yet known, in which case the CA itself judges it), the relay allows and the
    account's key allows, and the order must fit its limits."""
    if requested is not None and (not isinstance(requested, str) or not requested):
        raise problems.Malformed("'profile' must be a non-empty string")
    profile = requested or default
    if profile is None:
        return None
    if offered is not None and profile not in offered:
        raise problems.InvalidProfile(f"profile {profile!r} is not offered by the upstream CA (offered: "
                                      f"{', '.join(sorted(offered)) or 'none'})")
    if allowed and profile not in allowed:
        raise problems.InvalidProfile(f"profile {profile!r} is not allowed here (PROFILES_ALLOWED: "
                                      f"{', '.join(allowed)})")
    if binding is not None and binding.profiles and profile not in binding.profiles:
        raise problems.InvalidProfile(
            f"EAB key {binding.name} may ask only for profile(s) {', '.join(binding.profiles)}")
    limit = (max_names or {}).get(profile)
    if limit is not None and len(names) > limit:
        raise problems.RejectedIdentifier(f"profile {profile} allows at most {limit} names per order; this one has "
                                          f"{len(names)}")
    return profile


def check_source(binding: EabKey | None, address: str | None) -> None:
    """An EAB key with source networks: the request must come from inside one of them."""
    if binding is None or not binding.sources:
        return
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        ip = None
    if ip is None or not any(ip in ipaddress.ip_network(n) for n in binding.sources):
        raise problems.Unauthorized(
            f"EAB key {binding.name} accepts requests only from {', '.join(binding.sources)}; "
            f"this one came from {address or 'an unknown address'}")


def check_requester(binding: EabKey | None, requester: str | None, addresses: Sequence[str], name: str) -> None:
    """An EAB key requiring it: the requester is among the addresses ``name`` resolved to."""
    if binding is None or not binding.requester_in_dns:
        return
    try:
        wanted = ipaddress.ip_address(requester or "")
        known = {ipaddress.ip_address(a) for a in addresses}
    except ValueError:
        wanted, known = None, set()
    if wanted is None or wanted not in known:
        raise problems.Unauthorized(
            f"EAB key {binding.name} requires the requester to be the host: {requester or 'unknown'} is not "
            f"among the addresses of {name} ({', '.join(addresses) or 'none'})", identifier=name)
