"""dns-persist-01 (draft-ietf-acme-dns-persist): one TXT record, published once, authorizes an
ACME account for a name, so leg 2 needs no DNS write at all.

The record, at ``_validation-persist.<name>``, names the CA (one of its CAA issuer domain names)
and the account, as RFC 8659 issue-values: ``letsencrypt.org; accounturi=<account URL>``, plus
``; policy=wildcard`` for wildcard certificates. Parsing follows Pebble's validator (the CA's
view): tags case-insensitive, a record for another issuer ignored, a malformed one skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.resolver

from jackdaw.dns.propagation import QUERY_TIMEOUT, authoritative_servers, served_values
from jackdaw.dns.resolver import find_zone, follow_cname

CHALLENGE = "dns-persist-01"
LABEL = "_validation-persist"


def record_name(name: str) -> str:
    """Where the record lives for ``name`` (a wildcard's at its base name)."""
    return f"{LABEL}.{name.removeprefix('*.').rstrip('.').lower()}"


def record_value(issuer: str, account_uri: str, wildcard: bool = False) -> str:
    return f"{issuer}; accounturi={account_uri}" + ("; policy=wildcard" if wildcard else "")


@dataclass(frozen=True)
class Issue:
    issuer: str
    account_uri: str | None
    policy: str | None


def parse(text: str) -> Issue | None:
    """An RFC 8659 issue-value with dns-persist-01's parameters; None if malformed."""
    issuer, *params = text.split(";")
    issuer = issuer.strip()
    if not issuer:
        return None
    values: dict[str, str] = {}
    for param in params:
        tag, sep, value = param.strip().partition("=")
        if not sep or not tag.strip() or tag.strip().lower() in values:
            return None
        values[tag.strip().lower()] = value.strip()
    return Issue(issuer, values.get("accounturi") or None, (values.get("policy") or "").lower() or None)


def authorizes(records: Iterable[str], issuers: Sequence[str], account_uri: str, wildcard: bool) -> bool:
    """Whether one of ``records`` authorizes ``account_uri`` at one of the CA's ``issuers``."""
    for text in records:
        issue = parse(text)
        if issue is None or issue.issuer not in issuers or issue.account_uri != account_uri:
            continue
        if wildcard and issue.policy != "wildcard":
            continue
        return True
    return False


def served(name: str, resolver: dns.resolver.Resolver, *, port: int = 53, issuers: Sequence[str],
           account_uri: str, wildcard: bool = False) -> dict[str, bool | None]:
    """Per authoritative name server of the record's zone: True if it serves a record that
    authorizes the account, False if not, None if none of its addresses answered. One round
    of queries, bounded (the relay's jobs and `jackdaw dns-persist check` both use it)."""
    fqdn = follow_cname(record_name(name), resolver)
    servers = authoritative_servers(find_zone(fqdn, resolver), resolver)
    result: dict[str, bool | None] = {}
    for ns in servers:
        answers = [served_values(fqdn, address, port, QUERY_TIMEOUT) for address in ns.addresses]
        texts = [t for a in answers if a is not None for t in a]
        result[ns.label] = None if all(a is None for a in answers) else authorizes(texts, issuers, account_uri,
                                                                                 wildcard)
    return result
