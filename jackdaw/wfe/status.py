"""The operator's status page, server-rendered HTML (no script), read-only.

    GET /status                 the overview of jackdaw.ops.status (what `jackdaw status` prints)
    GET /status/order/<id>      one order's history (what `jackdaw order show` prints)

Who may see it: an insider as /readyz decides (jackdaw.wfe.ops.insider: on gunicorn's own port,
not relayed by the reverse proxy, from loopback or a private address), or a caller sending
``Authorization: Bearer <STATUS_TOKEN>``. Anyone else gets a bare 404, as for a page that does
not exist: the page names the upstream account, client names and error texts. The shipped nginx
site denies /status as well. Not ACME: no transaction, no nonce (jackdaw.wfe.transaction).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, render_template, request
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.db import make_sessionmaker
from jackdaw.durations import human
from jackdaw.models import utcnow
from jackdaw.ops import queries, render
from jackdaw.ops import status as overview
from jackdaw.runtime import runtime
from jackdaw.wfe import chart
from jackdaw.wfe.ops import insider
from jackdaw.wfe.transaction import STATUS_BLUEPRINT

bp = Blueprint(STATUS_BLUEPRINT, __name__, template_folder="templates")

#: no script may run, nothing is loaded from elsewhere, no frame may hold the page
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; " \
      "frame-ancestors 'none'"
#: seconds between reloads of the overview (a meta refresh: no script)
REFRESH = 60

bp.add_app_template_filter(render.when, "when")
bp.add_app_template_filter(render.problem, "problem")
bp.add_app_template_filter(human, "duration")
bp.add_app_template_filter(render.tokens, "tokens")
bp.add_app_template_filter(render.meta_age, "meta_age")


def bearer_token_matches(header: str, token: str | None) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if token is None:
        return False
    scheme, _, given = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _refused() -> Response:
    resp = Response("Not Found\n", status=404, mimetype="text/plain")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.before_request
def _operators_only() -> Response | None:
    if insider() or bearer_token_matches(request.headers.get("Authorization", ""), runtime().settings.status_token):
        return None
    return _refused()


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _sessions() -> sessionmaker[Session]:
    # read_only: a plain deferred BEGIN on SQLite, never the write lock the ACME requests need
    return make_sessionmaker(runtime().engine.execution_options(read_only=True))


@bp.get("/status")
def page() -> str:
    report = overview.gather(_sessions(), runtime().settings)
    return render_template("status/page.html", r=report, plot=chart.daily(report.history), refresh=REFRESH)


@bp.get("/status/order/<order_id>")
def order(order_id: str) -> str | Response:
    now = utcnow()
    try:
        detail = queries.order_detail(_sessions(), order_id, now=now)
    except queries.NotFound:
        return _refused()
    return render_template("status/order.html", o=detail, now=now, relay_domain=runtime().settings.relay_domain)
