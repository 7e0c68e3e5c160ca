"""JWS checks for POST requests, named by intent (Boulder wfe2/verify.go).

Order: content type and size, structure and algorithm (protocol.jws.parse), `url` equals the
request URL, key lookup (`jwk` only where allowed, `kid` naming a valid account), signature with
that explicit key, and the nonce redeemed last.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import josepy as jose
from flask import request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jackdaw.db import one_by_id
from jackdaw.models import Account
from jackdaw.protocol import jws, problems
from jackdaw.protocol.constants import JOSE_CONTENT_TYPE, Status
from jackdaw.wfe import transaction

_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: built once (jackdaw.db.one_by_id): every signed request looks its account up
_ACCOUNT = select(Account).where(Account.id == bindparam("id"))


@dataclass
class Verified:
    parsed: jws.ParsedJWS
    key: jose.JWK
    account: Account | None


def _parse_request() -> jws.ParsedJWS:
    if "\x00" in request.path:
        # No resource id contains NUL, and PostgreSQL refuses one in a query parameter (a 500).
        raise problems.NotFound("no such resource")
    ctype = (request.content_type or "").split(";")[0].strip().lower()
    if ctype != JOSE_CONTENT_TYPE:
        raise problems.Malformed(f"Content-Type must be {JOSE_CONTENT_TYPE}")
    # cached: a read view run again as a writer (wfe.transaction.reads) parses it twice
    parsed = jws.parse(request.get_data(cache=True)[: jws.MAX_BODY_BYTES + 1])
    if parsed.url != request.url:
        raise problems.Unauthorized(f"JWS 'url' {parsed.url!r} does not match the request URL {request.url!r}")
    return parsed


def _account_for_kid(session: Session, kid: str) -> Account:
    prefix = request.host_url.rstrip("/") + "/acme/acct/"
    account_id = kid.removeprefix(prefix) if kid.startswith(prefix) else ""
    # Account ids are token_urlsafe: anything else names no account (and a NUL would make
    # PostgreSQL raise instead of finding nothing).
    account = one_by_id(session, _ACCOUNT, account_id) if _ACCOUNT_ID.fullmatch(account_id) else None
    if account is None:
        raise problems.AccountDoesNotExist(f"no account at {kid}")
    if account.status != Status.VALID:
        raise problems.Unauthorized(f"account is {account.status}")
    if account.blocked is not None:
        raise problems.Unauthorized("account is blocked by the relay's operator")
    return account


def _account_key(account: Account) -> jose.JWK:
    # The thumbprint identifies the key exactly, so a parsed key can be reused across requests
    # (a key change stores a new thumbprint).
    return _key_by_thumbprint(account.thumbprint, json.dumps(account.jwk, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _key_by_thumbprint(thumbprint: str, jwk_json: str) -> jose.JWK:
    return jws.load_jwk(json.loads(jwk_json))


def _finish(session: Session, parsed: jws.ParsedJWS, key: jose.JWK) -> None:
    jws.verify_signature(parsed, key)
    # spent with the request's own commit, or again after its rollback (wfe.transaction)
    if not transaction.spend_nonce(jose.b64.b64encode(parsed.nonce).decode()):
        raise problems.BadNonce("JWS has an invalid anti-replay nonce")


def verify_self_signed(session: Session) -> tuple[Verified, dict[str, Any]]:
    """newAccount: the request carries its own `jwk`."""
    parsed = _parse_request()
    if parsed.jwk is None:
        raise problems.Malformed("newAccount must be signed with a 'jwk', not a 'kid'")
    _finish(session, parsed, parsed.jwk)
    return Verified(parsed, parsed.jwk, None), parsed.payload_json()


def verify_post_for_account(session: Session) -> tuple[Verified, dict[str, Any]]:
    verified = verify_post(session)
    return verified, verified.parsed.payload_json()


def verify_post_as_get(session: Session) -> Verified:
    verified = verify_post(session)
    if verified.parsed.payload != b"":
        raise problems.Malformed("POST-as-GET requests must have an empty payload")
    return verified


def verify_post(session: Session) -> Verified:
    """A POST signed by an existing, valid account (`kid`); the payload is left to the caller."""
    parsed = _parse_request()
    if parsed.kid is None:
        raise problems.Malformed("this request must be signed with the account's 'kid', not a 'jwk'")
    account = _account_for_kid(session, parsed.kid)
    key = _account_key(account)
    _finish(session, parsed, key)
    return Verified(parsed, key, account)


def verify_key_change(session: Session) -> tuple[Verified, jws.ParsedJWS]:
    """keyChange: outer JWS by the account's current key, inner JWS (the payload) by the new key."""
    verified = verify_post(session)
    inner = jws.parse_inner(verified.parsed.payload)
    if inner.url != verified.parsed.url:
        raise problems.Malformed("the inner keyChange JWS must carry the same 'url' as the outer one")
    return verified, inner


def verify_revocation(session: Session) -> tuple[Verified, dict[str, Any]]:
    """revokeCert: signed by an account (`kid`) or by the certificate's own key (`jwk`)."""
    parsed = _parse_request()
    if parsed.kid is not None:
        account = _account_for_kid(session, parsed.kid)
        key = _account_key(account)
        _finish(session, parsed, key)
        return Verified(parsed, key, account), parsed.payload_json()
    assert parsed.jwk is not None
    _finish(session, parsed, parsed.jwk)
    return Verified(parsed, parsed.jwk, None), parsed.payload_json()
