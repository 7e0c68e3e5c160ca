"""Account policy (RFC 8555 §7.3)."""

from __future__ import annotations

from typing import Any

import josepy as jose
from sqlalchemy import select
from sqlalchemy.orm import Session

from jackdaw.models import Account
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.protocol.jws import ParsedJWS, load_jwk, thumbprint, verify_signature
from jackdaw.ra import bindings
from jackdaw.ra.policy import check_source


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


def new_account(session: Session, jwk: jose.JWK, payload: dict[str, Any], *, url: str = "",
                eab_required: bool = False, requester: str | None = None) -> tuple[Account, bool]:
    """Return (account, created). An existing key returns its account (§7.3.1); a new one
    needs a valid external account binding when the relay requires it (§7.3.4), and then
    belongs to that binding's key."""
    existing = find_by_key(session, jwk)
    if existing is not None:
        return existing, False
    if payload.get("onlyReturnExisting") is True:
        raise problems.AccountDoesNotExist("no account exists for this key")
    contact = check_contact(payload.get("contact"))
    key = bindings.bind(session, payload, jwk, url, eab_required)
    check_source(key, requester)
    account = Account(
        thumbprint=thumbprint(jwk),
        jwk=jwk.public_key().to_json(),
        status=Status.VALID,
        contact=contact,
        eab_kid=key.kid if key is not None else None,
    )
    session.add(account)
    session.flush()
    return account, True


def update_account(account: Account, payload: dict[str, Any]) -> None:
    """Contact update and deactivation (§7.3.2, §7.3.6); a deactivated account stays so."""
    if "contact" in payload:
        account.contact = check_contact(payload["contact"])
    if "status" in payload:
        if payload["status"] != Status.DEACTIVATED:
            raise problems.Malformed("an account's status may only be changed to 'deactivated'")
        account.status = Status.DEACTIVATED


def change_key(session: Session, account: Account, account_url: str, inner: ParsedJWS) -> None:
    """keyChange (§7.3.5): the inner JWS, signed by the new key, names the account and old key."""
    assert inner.jwk is not None
    verify_signature(inner, inner.jwk)
    payload = inner.payload_json()
    if payload.get("account") != account_url:
        raise problems.Malformed("keyChange 'account' does not match the account that signed the request")
    old_key = payload.get("oldKey")
    if not isinstance(old_key, dict) or thumbprint(load_jwk(old_key)) != account.thumbprint:
        raise problems.Malformed("keyChange 'oldKey' is not the account's current key")
    new_thumbprint = thumbprint(inner.jwk)
    if new_thumbprint == account.thumbprint:
        raise problems.Malformed("the new key is the account's current key")
    holder = session.scalars(select(Account).where(Account.thumbprint == new_thumbprint)).first()
    if holder is not None:
        raise problems.Conflict("the new key is already in use by another account", location_id=holder.id)
    account.thumbprint = new_thumbprint
    account.jwk = inner.jwk.public_key().to_json()
