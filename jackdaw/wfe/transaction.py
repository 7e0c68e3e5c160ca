"""The request transaction, in one place (Boulder keeps it in its WFE too).

Each ACME request gets one database session (``session``). A request whose view returns
commits then (``committed``): a failed commit is the request's error, so a client never sees
success for a change that was not kept. A request that fails is rolled back, but the nonce it
presented stays spent (``spend_nonce`` remembers it and ``_finish`` spends it again on its own).
Every ACME response, an error too, carries a fresh ``Replay-Nonce`` and the directory ``Link``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec

from flask import Flask, Response, g, request
from sqlalchemy.orm import Session

from jackdaw import nonces
from jackdaw.runtime import runtime
from jackdaw.wfe import render

log = logging.getLogger(__name__)

#: jackdaw.wfe.ops (health, readiness, metrics): not ACME, so no transaction and no nonce
OPS_BLUEPRINT = "ops"
#: jackdaw.wfe.status (the operator's page): not ACME either
STATUS_BLUEPRINT = "status"
NOT_ACME = frozenset({OPS_BLUEPRINT, STATUS_BLUEPRINT})
P = ParamSpec("P")


def session() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        g.db = runtime().sessions()
    s: Session = g.db
    return s


def keep() -> None:
    """Commit now what stays true whatever the rest of the request does (an order's expiry)."""
    session().commit()


def spend_nonce(value: str) -> bool:
    """Redeem the request's nonce in its transaction; True once per issued, unexpired nonce."""
    if not nonces.redeem(session(), value):
        return False
    g.jackdaw_nonce = value
    return True


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


def _finish(resp: Response) -> Response:
    if request.blueprint in NOT_ACME:
        return resp  # probes, scrapes, the status page: no transaction, no nonce taken from the database
    try:
        s = g.pop("db", None)
        if s is not None:
            if g.get("jackdaw_failed"):
                s.rollback()  # whatever a failed request changed is discarded, never half-kept
                if g.get("jackdaw_nonce"):
                    nonces.redeem(s, g.jackdaw_nonce)  # ...but its nonce stays spent
            s.commit()  # a committed view's is already done: this is the failure's nonce
            s.close()
        # after the session is closed: taking a batch writes (SQLite: one writer at a time)
        resp.headers["Replay-Nonce"] = runtime().nonces.take()
    except Exception:
        log.exception("could not finish the request's transaction or issue a nonce")
    resp.headers.add("Link", f'<{render.url("directory")}>;rel="index"')
    return resp


def _close(_exc: BaseException | None) -> None:
    s = g.pop("db", None)
    if s is not None:
        s.close()


def register(app: Flask) -> None:
    app.after_request(_finish)
    app.teardown_appcontext(_close)
