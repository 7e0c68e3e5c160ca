"""Account policy (RFC 8555 §7.3)."""

from __future__ import annotations

from typing import Any

import josepy as jose
from sqlalchemy import select
from sqlalchemy.orm import Session

from jackdaw.models import Account
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.protocol.jws import thumbprint


def check_contact(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise problems.Malformed("'contact' must be an array of strings")
    for contact in raw:
        if not contact.startswith("mailto:"):
            raise problems.UnsupportedContact(f"contact {contact!r}: only mailto: URLs are supported")
        address = contact.removeprefix("mailto:")
        if "@" not in address or "," in address or "?" in address or " " in address:
            raise problems.InvalidContact(f"contact {contact!r} is not a single e-mail address")
    return list(raw)


def find_by_key(session: Session, jwk: jose.JWK) -> Account | None:
    return session.scalars(select(Account).where(Account.thumbprint == thumbprint(jwk))).first()


def new_account(session: Session, jwk: jose.JWK, payload: dict[str, Any]) -> tuple[Account, bool]:
    """Return (account, created). An existing key returns its account (§7.3.1)."""
    existing = find_by_key(session, jwk)
    if existing is not None:
        return existing, False
    if payload.get("onlyReturnExisting") is True:
        raise problems.AccountDoesNotExist("no account exists for this key")
    contact = check_contact(payload.get("contact"))
    account = Account(
        thumbprint=thumbprint(jwk),
        jwk=jwk.public_key().to_json(),
        status=Status.VALID,
        contact=contact,
    )
    session.add(account)
    session.flush()
    return account, True
