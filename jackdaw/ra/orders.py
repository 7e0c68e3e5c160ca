"""Order, authorization and challenge state (RFC 8555 §7.1.6) for leg 1."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeVar, cast

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from jackdaw import states
from jackdaw.budget import Budget
from jackdaw.jobs import JobKind, JobQueue
from jackdaw.models import Account, Authz, Challenge, EabKey, Order, new_id, utcnow
from jackdaw.protocol import problems
from jackdaw.protocol.constants import CHALLENGE_HTTP01, Status
from jackdaw.ra import csr as csr_checks
from jackdaw.ra import renewal
from jackdaw.ra.policy import check_identifiers, check_profile, check_source
from jackdaw.settings import Settings

ORDER_LIFETIME = timedelta(days=7)
AUTHZ_LIFETIME = timedelta(days=7)
_T = TypeVar("_T", Order, Authz, Challenge)


def new_order(session: Session, account: Account, payload: dict[str, Any], settings: Settings, *,
              binding: EabKey | None = None, requester: str | None = None, budget: Budget | None = None,
              offered_profiles: Mapping[str, str] | None = None) -> Order:
    """Policy first (the relay's fence, the account's binding, the profile, an ARI
    replacement), then the upstream budget: nothing is stored, and nothing goes upstream, for an
    order either refuses. ``offered_profiles``: the upstream CA's, None while unknown."""
    if payload.get("notBefore") is not None or payload.get("notAfter") is not None:
        raise problems.Malformed("notBefore and notAfter are not supported")
    if settings.eab_required and binding is None:
        raise problems.Unauthorized("this account has no external account binding, which this relay now requires; "
                                    "register a new account with an EAB key")
    check_source(binding, requester)
    names = check_identifiers(payload.get("identifiers"), settings.allowed_domains, settings.wildcard_domains,
                              binding)
    profile = check_profile(payload.get("profile"), names, offered_profiles, default=settings.upstream_profile,
                            allowed=settings.profiles_allowed, binding=binding,
                            max_names=dict(settings.profile_max_names))
    replaced = renewal.check_replaces(session, account, names, payload["replaces"]) if "replaces" in payload else None
    now = utcnow()
    # Core INSERTs of rows built here, then the same rows as persistent objects (already
    # stored: nothing left to flush): the unit of work's flush of three new objects was a third
    # of a newOrder's CPU. Their collections are set as loaded, so the response renders them
    # without a query.
    order_row = {"id": new_id(), "account_id": account.id, "status": Status.PENDING,
                 "expires": now + ORDER_LIFETIME, "identifiers": names, "not_before": None, "not_after": None,
                 "csr": None, "created": now, "updated": now, "requester": requester,
                 "budget": budget.held() if budget else None, "profile": profile,
                 "replaces": replaced.ari_id if replaced else None,
                 "renewal": bool(budget and not replaced and budget.renews(session, names))}
    authz_rows = [{"id": new_id(), "order_id": order_row["id"], "position": position,
                   "identifier": name.removeprefix("*."), "wildcard": name.startswith("*."),
                   "status": Status.PENDING, "expires": now + AUTHZ_LIFETIME} for position, name in enumerate(names)]
    challenge_rows = [{"id": new_id(), "authz_id": a["id"], "type": CHALLENGE_HTTP01,
                       "token": secrets.token_urlsafe(32), "status": Status.PENDING, "validated": None,
                       "validation_records": [], "tries": 0} for a in authz_rows]
    for model, rows in ((Order, [order_row]), (Authz, authz_rows), (Challenge, challenge_rows)):
        session.execute(insert(cast(Table, model.__table__)), rows)
    # `error` stays out of the INSERTs: a JSON column stores None as JSON null, not SQL NULL
    order = _stored(session, Order(**order_row, error=None))
    authzs = [_stored(session, Authz(**row)) for row in authz_rows]
    set_committed_value(order, "authzs", authzs)
    for authz, row in zip(authzs, challenge_rows, strict=True):
        challenge = _stored(session, Challenge(**row, error=None))
        set_committed_value(authz, "order", order)
        set_committed_value(authz, "challenges", [challenge])
        set_committed_value(challenge, "authz", authz)
    if replaced is not None:
        replaced.replaced_by = order.id
    if budget is not None:
        budget.admit(session, order, binding)
    return order


def _stored(session: Session, obj: _T) -> _T:
    """An object built from a row just INSERTed, made persistent in ``session`` as if loaded."""
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def order_ids(session: Session, account: Account, page: int, size: int) -> tuple[list[str], bool]:
    """One page of the account's order ids, oldest first (§7.1.2.1), and whether more follow."""
    ids = session.scalars(
        select(Order.id).where(Order.account_id == account.id).order_by(Order.created, Order.id)
        .offset(page * size).limit(size + 1)
    ).all()
    return list(ids[:size]), len(ids) > size


def owned(obj: Order | None, account: Account, what: str) -> Order:
    """An object of another account is reported exactly like a missing one."""
    if obj is None or obj.account_id != account.id:
        raise problems.NotFound(f"no such {what}")
    return obj


def respond_to_challenge(session: Session, queue: JobQueue, challenge: Challenge) -> None:
    """Start validation once, however many times the client POSTs (guarded UPDATE)."""
    authz = challenge.authz
    if authz.status != Status.PENDING or challenge.status != Status.PENDING:
        return  # already processing or decided: the POST is answered with the current state
    if authz.expires <= utcnow():
        raise problems.Malformed("authorization has expired")
    if states.start_validation(session, challenge):
        queue.enqueue(session, JobKind.VALIDATE, challenge.id)
    session.refresh(challenge)


def finalize(session: Session, queue: JobQueue, order: Order, account: Account, payload: dict[str, Any],
             budget: Budget | None = None) -> None:
    """The CSR as the upstream CA would judge it, the budget, then leg 2 starts: an order never
    finalized spends nothing upstream."""
    if order.status != Status.READY:
        raise problems.OrderNotReady(f"order is {order.status}, not ready")
    csr = csr_checks.parse_csr(payload.get("csr"))
    csr_checks.check_csr(csr, order.identifiers, account.jwk)
    if budget is not None:
        budget.commit(session, order)

    if not states.start_processing(session, order, csr.public_bytes(Encoding.DER)):
        raise problems.OrderNotReady("order is already being finalized")
    queue.enqueue(session, JobKind.ORDER, order.id)
    session.refresh(order)


def deactivate_authz(authz: Authz) -> None:
    """§7.5.2: the client gives up an authorization; its order can no longer be issued."""
    states.deactivate(authz)


def enforce_expiry(order: Order) -> bool:
    """Expired pending authorizations and unfinished orders are shown (and kept) as such."""
    return states.expire(order)


def settled(sessions: sessionmaker[Session], model: type[Challenge] | type[Order], row_id: str) -> bool:
    """The challenge or order has an outcome (read in a transaction of its own, so it sees what
    job threads have committed since)."""
    with sessions() as s:
        status = s.scalar(select(model.status).where(model.id == row_id))
    return status not in (Status.PENDING, Status.PROCESSING)
