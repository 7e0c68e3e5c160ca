"""Order, authorization and challenge states (RFC 8555 §7.1.6): the one place they change.

The RA (validation, finalize, deactivation, expiry), leg 2 (an issued certificate, an
upstream failure) and the operator's tools (cancel) all move objects through these functions,
so a challenge's failure always fails its authorization and its order, an order becomes ready
exactly when its last authorization turns valid, and the guarded transitions (a challenge
starting validation, an order starting issuance) happen once however many requests race.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from jackdaw.db import rowcount
from jackdaw.models import Account, Authz, Challenge, Order, utcnow
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status

FINAL = (Status.VALID, Status.INVALID)


def fail_order(order: Order, error: dict[str, Any]) -> None:
    """An unfinished order becomes invalid with ``error`` (a problem document); final ones stay."""
    if order.status in FINAL:
        return
    order.status = Status.INVALID
    order.error = error
    order.updated = utcnow()


def start_validation(session: Session, challenge: Challenge) -> bool:
    """pending -> processing, once (a guarded UPDATE): True for the request that moved it."""
    return rowcount(session.execute(
        update(Challenge)
        .where(Challenge.id == challenge.id, Challenge.status == Status.PENDING)
        .values(status=Status.PROCESSING)
        .execution_options(synchronize_session=False)
    )) == 1


def challenge_passed(challenge: Challenge) -> bool:
    """The challenge and its authorization are valid; the order is ready once all its
    authorizations are. True if the order became ready."""
    challenge.status = Status.VALID
    challenge.validated = utcnow()
    authz = challenge.authz
    authz.status = Status.VALID
    order = authz.order
    if order.status == Status.PENDING and all(a.status == Status.VALID for a in order.authzs):
        order.status = Status.READY
        order.updated = utcnow()
        return True
    return False


def challenge_failed(challenge: Challenge, problem: problems.AcmeProblem) -> None:
    """The challenge, its authorization and its order are invalid, the problem on both."""
    challenge.status = Status.INVALID
    challenge.error = problem.to_json()
    challenge.authz.status = Status.INVALID
    fail_order(challenge.authz.order, problem.to_json())


def start_processing(session: Session, order: Order, csr_der: bytes) -> bool:
    """ready -> processing with the client's CSR, once (a guarded UPDATE)."""
    return rowcount(session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == Status.READY)
        .values(status=Status.PROCESSING, csr=csr_der, updated=utcnow())
        .execution_options(synchronize_session=False)
    )) == 1


def issued(order: Order) -> bool:
    """processing -> valid (the certificate row is the caller's); False if it was not processing."""
    if order.status != Status.PROCESSING:
        return False
    order.status = Status.VALID
    order.updated = utcnow()
    return True


def upstream_failed(order: Order, error: dict[str, Any]) -> None:
    """Leg 2 failed (``error``: its problem document): a processing order becomes invalid; a
    ready one keeps going (its finalize will find the failure stored upstream)."""
    if order.status == Status.PROCESSING:
        fail_order(order, error)


def deactivate(authz: Authz) -> None:
    """§7.5.2: the client gives up an authorization; its order can no longer be issued."""
    if authz.status not in (Status.PENDING, Status.VALID):
        raise problems.Malformed(f"an authorization that is {authz.status} cannot be deactivated")
    authz.status = Status.DEACTIVATED
    fail_order(authz.order, problems.Unauthorized(f"authorization for {authz.identifier} was deactivated").to_json())


def expire(order: Order) -> bool:
    """Expired pending authorizations and unfinished orders are shown (and kept) as such."""
    now = utcnow()
    changed = False
    for authz in order.authzs:
        if authz.status == Status.PENDING and authz.expires <= now:
            authz.status = Status.EXPIRED
            changed = True
    if order.status in (Status.PENDING, Status.READY) and order.expires <= now:
        fail_order(order, problems.Malformed("order expired before it was finalized").to_json())
        changed = True
    return changed


def cancel(order: Order, problem: problems.AcmeProblem) -> None:
    """An operator cancels an unfinished order: it, its unfinished challenges and pending
    authorizations become invalid, so no validation waits for a job that no longer exists."""
    for authz in order.authzs:
        for chall in authz.challenges:
            if chall.status in (Status.PENDING, Status.PROCESSING):
                chall.status = Status.INVALID
                chall.error = problem.to_json()
        if authz.status == Status.PENDING:
            authz.status = Status.INVALID
    fail_order(order, problem.to_json())


def block(account: Account) -> None:
    """The operator's hold: every request the account signs is refused (`unauthorized`) until
    it is lifted. Only a valid account: deactivated and revoked are final (RFC 8555 §7.1.6)."""
    if account.status != Status.VALID:
        raise ValueError(f"account {account.id} is {account.status}, which is final")
    if account.blocked is not None:
        raise ValueError(f"account {account.id} is already blocked (since {account.blocked:%Y-%m-%d %H:%M} UTC)")
    account.blocked = utcnow()


def unblock(account: Account) -> None:
    if account.blocked is None:
        raise ValueError(f"account {account.id} is not blocked")
    account.blocked = None
