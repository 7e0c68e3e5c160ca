"""Which names may be ordered (RFC 8555 §7.4 identifiers; ALLOWED_DOMAINS, WILDCARD_DOMAINS)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from jackdaw.protocol import problems
from jackdaw.protocol.constants import IDENTIFIER_DNS, MAX_IDENTIFIERS

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _under(name: str, domains: Sequence[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


def check_name(name: str, allowed_domains: Sequence[str], wildcard_domains: Sequence[str] = ()) -> str:
    """Return the normalised name or raise the problem a client should see for it.

    A wildcard (`*.base`) is allowed only when `base` is under WILDCARD_DOMAINS: only DNS-01
    can obtain it upstream, which is exactly what the relay centralises, so operators opt in.
    """
    name = name.strip().lower()
    if name.startswith("*."):
        base = check_name(name[2:], allowed_domains)
        if not _under(base, wildcard_domains):
            raise problems.RejectedIdentifier(
                f"{name}: wildcard names are allowed only under WILDCARD_DOMAINS"
                + (f" ({', '.join(wildcard_domains)})" if wildcard_domains else ", which is not set"),
                identifier=name,
            )
        return "*." + base
    if name.endswith("."):
        raise problems.RejectedIdentifier(f"{name!r}: a trailing dot is not allowed", identifier=name)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise problems.UnsupportedIdentifier(f"{name}: IP address identifiers are not supported", identifier=name)
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
    if allowed_domains and not _under(ascii_name, allowed_domains):
        raise problems.RejectedIdentifier(
            f"{ascii_name} is not under a domain this relay issues for (ALLOWED_DOMAINS)", identifier=ascii_name
        )
    return ascii_name


def check_identifiers(raw: Any, allowed_domains: Sequence[str], wildcard_domains: Sequence[str] = ()) -> list[str]:
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
        if ident.get("type") != IDENTIFIER_DNS:
            errors.append(problems.UnsupportedIdentifier(
                f"identifier type {ident.get('type')!r} is not supported", identifier=ident["value"]))
            continue
        try:
            name = check_name(ident["value"], allowed_domains, wildcard_domains)
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
