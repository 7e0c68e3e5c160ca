"""External account binding keys (RFC 8555 §7.3.4): who may have an account, and the policy
its orders follow.

An operator makes a key (`jackdaw eab add NAME --allow PATTERN ...`): a key id and an HMAC key,
shown once, and the policy (name patterns, wildcards, source networks, requester-in-DNS, an
hourly order quota). A client's newAccount carries a binding MAC'd with that key over its
account key; the account then belongs to the key. One key may bind several accounts (the hosts
of one team share it); revoking the key revokes every account bound with it, so none of them
can do anything more.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import josepy as jose
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jackdaw.models import Account, EabKey, utcnow
from jackdaw.protocol import jws, problems
from jackdaw.protocol.constants import Status
from jackdaw.ra.policy import check_pattern


class BindingError(ValueError):
    """An operator's `eab add` arguments are wrong; the message says which."""


@dataclass(frozen=True)
class NewKey:
    kid: str
    hmac_key: str  # base64url, as certbot's --eab-hmac-key and lego's --hmac take it
    key: EabKey


def add_key(s: Session, name: str, allow: list[str], *, wildcards: bool = False, sources: list[str] | None = None,
            requester_in_dns: bool = False, orders_per_hour: int | None = None,
            profiles: list[str] | None = None) -> NewKey:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise BindingError(f"{name!r}: a key name is 1-64 characters without spaces")
    if s.scalar(select(EabKey.kid).where(EabKey.name == name)) is not None:
        raise BindingError(f"an EAB key named {name!r} exists already")
    if not allow:
        raise BindingError("give at least one --allow PATTERN (a name, or *.domain for the names under it)")
    patterns = []
    for pattern in allow:
        try:
            patterns.append(check_pattern(pattern))
        except ValueError as e:
            raise BindingError(str(e)) from None
    networks = []
    for cidr in sources or []:
        try:
            networks.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError as e:
            raise BindingError(f"--source {cidr!r}: {e}") from None
    if orders_per_hour is not None and orders_per_hour < 1:
        raise BindingError("--orders-per-hour must be at least 1")
    hmac_key, kid = _token(lambda: jose.b64.b64encode(secrets.token_bytes(32)).decode()), _token(
        lambda: secrets.token_urlsafe(18))
    key = EabKey(kid=kid, name=name, hmac_key=hmac_key, allow=patterns, wildcards=wildcards,
                 sources=networks, requester_in_dns=requester_in_dns, orders_per_hour=orders_per_hour,
                 profiles=sorted({p.strip() for p in profiles or [] if p.strip()}))
    s.add(key)
    s.flush()
    return NewKey(key.kid, hmac_key, key)


def _token(make: Callable[[], str]) -> str:
    """A base64url token that does not start with "-": clients' option parsers (certbot's
    --eab-hmac-key VALUE, lego's --hmac VALUE) would take it for an option."""
    while (token := make()).startswith("-"):
        pass
    return token


def revoke_key(s: Session, name: str) -> int:
    """Revoke the key and every account bound with it; returns the accounts revoked."""
    key = s.scalars(select(EabKey).where(EabKey.name == name)).first()
    if key is None:
        raise LookupError(f"no EAB key named {name!r}")
    if key.revoked is None:
        key.revoked = utcnow()
    result = s.execute(update(Account).where(Account.eab_kid == key.kid, Account.status == Status.VALID)
                       .values(status=Status.REVOKED).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def list_keys(s: Session) -> list[tuple[EabKey, int]]:
    """Every key with the number of accounts bound with it."""
    keys = list(s.scalars(select(EabKey).order_by(EabKey.created, EabKey.name)))
    counts: dict[str, int] = {}
    for kid in s.scalars(select(Account.eab_kid).where(Account.eab_kid.is_not(None))):
        counts[str(kid)] = counts.get(str(kid), 0) + 1
    return [(k, counts.get(k.kid, 0)) for k in keys]


def bind(s: Session, payload: dict[str, Any], account_key: jose.JWK, url: str, required: bool) -> EabKey | None:
    """The key a newAccount's binding names, verified; None when it carries none (and none
    is required)."""
    raw = payload.get("externalAccountBinding")
    if raw is None:
        if required:
            raise problems.ExternalAccountRequired(
                "this relay requires an external account binding: ask its operator for a key id and HMAC key "
                "(certbot --eab-kid/--eab-hmac-key, lego --eab --kid --hmac)")
        return None
    binding = jws.parse_external_binding(raw)
    if binding.url != url:
        raise problems.Malformed(f"'externalAccountBinding' url {binding.url!r} is not the newAccount URL {url!r}")
    key = s.get(EabKey, binding.kid)
    if key is None:
        raise problems.Unauthorized(f"no external account binding key {binding.kid!r}")
    if key.revoked is not None:
        raise problems.Unauthorized(f"the external account binding key {binding.kid!r} was revoked")
    jws.verify_external_binding(binding, jose.b64.b64decode(key.hmac_key), account_key)
    return key


def binding_of(s: Session, account: Account) -> EabKey | None:
    return s.get(EabKey, account.eab_kid) if account.eab_kid else None
