"""The request transaction, in one place (Boulder keeps it in its WFE too).

Each ACME request gets one database session (``session``). A request whose view returns
commits then (``committed``): a failed commit is the request's error, so a client never sees
success for a change that was not kept. A request that fails is rolled back, but the nonce it
presented stays spent (``spend_nonce`` remembers it and ``_finish`` spends it again on its own).
Every ACME response, an error too, carries a fresh ``Replay-Nonce`` and the directory ``Link``;
one that cannot (the database away) is a 503 instead, never a half answer. While the database
is away (jackdaw.outage) an ACME request is that 503 before it touches anything.

Views that only look (``reads``: order, authorization, certificate polls) run, on SQLite, in a
deferred read transaction, with the nonce spent in a short write of its own: SQLite has one
writer, and a poll holding the write lock for its whole view serialized every poll of every
worker behind it. A read view that turns out to change something (an order found expired, an
authorization deactivated) is run again as a writer: the changes of the first run are discarded
and its nonce, spent already, is not asked for twice. PostgreSQL has row locks: there every view
is one transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec

from flask import Flask, Response, g, request
from sqlalchemy.orm import Session

from jackdaw import nonces
from jackdaw.db import is_postgres
from jackdaw.outage import unavailable
from jackdaw.runtime import runtime
from jackdaw.wfe import render

log = logging.getLogger(__name__)

#: jackdaw.wfe.ops (health, readiness, metrics): not ACME, so no transaction and no nonce
OPS_BLUEPRINT = "ops"
#: jackdaw.wfe.status (the operator's page): not ACME either
STATUS_BLUEPRINT = "status"
NOT_ACME = frozenset({OPS_BLUEPRINT, STATUS_BLUEPRINT})
P = ParamSpec("P")


class _NeedsWrite(Exception):
    """A read view is about to change something: run it again as a writer."""


def session() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        rt = runtime()
        # a read view's changes are never flushed: at its end they make it run again as a writer
        g.db = rt.sessions(bind=rt.read_engine, autoflush=False) if g.get("jackdaw_reads") else rt.sessions()
    s: Session = g.db
    return s


def _changed(s: Session) -> bool:
    return bool(s.new or s.dirty or s.deleted)


def keep() -> None:
    """Commit now what stays true whatever the rest of the request does (an order's expiry).

    In a read view this ends the read (the next query sees what others committed since), and a
    change makes it a writer."""
    s = session()
    if g.get("jackdaw_reads") and _changed(s):
        raise _NeedsWrite
    s.commit()


def spend_nonce(value: str) -> bool:
    """Redeem the request's nonce in its transaction; True once per issued, unexpired nonce."""
    if g.get("jackdaw_nonce") == value:
        return True  # a read view run again as a writer: this request spent it already
    if g.get("jackdaw_reads"):
        with runtime().engine.begin() as conn:  # the write lock for one DELETE, not the whole view
            spent = nonces.redeem(conn, value)
        g.jackdaw_nonce_kept = spent
    else:
        spent = nonces.redeem(session(), value)
    if spent:
        g.jackdaw_nonce = value
    return spent


def failed() -> None:
    """The request ends in an error response: what it changed is rolled back."""
    g.jackdaw_failed = True


def committed(view: Callable[P, Response]) -> Callable[P, Response]:
    """An ACME view whose changes are committed when it returns its response."""

    @functools.wraps(view)
    def run(*args: P.args, **kwargs: P.kwargs) -> Response:
        resp = view(*args, **kwargs)
        if "db" in g:
            g.db.commit()
        return resp

    return run


def reads(view: Callable[P, Response]) -> Callable[P, Response]:
    """An ACME view that normally changes nothing but its nonce (see the module's docstring)."""

    @functools.wraps(view)
    def run(*args: P.args, **kwargs: P.kwargs) -> Response:
        if is_postgres(runtime().engine):
            return committed(view)(*args, **kwargs)
        g.jackdaw_reads = True
        try:
            resp = view(*args, **kwargs)
            if "db" in g and _changed(g.db):
                raise _NeedsWrite
        except _NeedsWrite:
            _discard()
            g.jackdaw_reads = False
            return committed(view)(*args, **kwargs)
        if "db" in g:
            g.db.commit()  # ends the read
        return resp

    return run


def _discard() -> None:
    s = g.pop("db", None)
    if s is not None:
        s.rollback()
        s.close()


def _refuse_while_away() -> None:
    if request.blueprint not in NOT_ACME:
        runtime().outage.check()


def _finish(resp: Response) -> Response:
    if request.blueprint in NOT_ACME:
        return resp  # probes, scrapes, the status page: no transaction, no nonce taken from the database
    outage = runtime().outage
    if outage.down and resp.status_code == 503:  # the outage's answer: nothing to finish, no nonce to take
        resp.headers.add("Link", f'<{render.url("directory")}>;rel="index"')
        return resp
    try:
        s = g.pop("db", None)
        if s is not None:
            if g.get("jackdaw_failed"):
                s.rollback()  # whatever a failed request changed is discarded, never half-kept
                if g.get("jackdaw_nonce") and not g.get("jackdaw_nonce_kept"):
                    nonces.redeem(s, g.jackdaw_nonce)  # ...but its nonce stays spent
            s.commit()  # a committed view's is already done: this is the failure's nonce
            s.close()
        # after the session is closed: taking a batch writes (SQLite: one writer at a time)
        resp.headers["Replay-Nonce"] = runtime().nonces.take()
    except Exception as exc:
        if not outage.failed(exc):
            log.exception("could not finish the request's transaction or issue a nonce")
        # an answer without its nonce (newNonce's 200) or with a failed request's nonce unspent
        # would be half of one: the client is told to come back instead
        resp = render.problem_response(unavailable())
    resp.headers.add("Link", f'<{render.url("directory")}>;rel="index"')
    return resp


def _close(_exc: BaseException | None) -> None:
    s = g.pop("db", None)
    if s is not None:
        try:
            s.close()
        except Exception as exc:  # a connection the database dropped under the request
            if not runtime().outage.failed(exc):
                raise


def register(app: Flask) -> None:
    app.before_request(_refuse_while_away)
    app.after_request(_finish)
    app.teardown_appcontext(_close)
