"""Operational endpoints, not ACME: liveness, readiness and Prometheus metrics.

    GET /healthz   200 {"status": "ok"} while the process answers; touches nothing else
    GET /readyz    200 when database, schema and upstream account are usable, else 503;
                   the body lists every check with its reason either way
    GET /metrics   Prometheus exposition (text, or OpenMetrics when the scraper asks for it)

No Replay-Nonce and no Link rel="index" on these (jackdaw.wfe.errors skips blueprint "ops"):
a probe must not take a nonce from the database. Keep /metrics away from the public side of
the reverse proxy; it carries counts, not secrets, but is nobody else's business.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from jackdaw import metrics
from jackdaw.runtime import runtime
from jackdaw.wfe.errors import OPS_BLUEPRINT

bp = Blueprint(OPS_BLUEPRINT, __name__)


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/healthz")
def healthz() -> Response:
    return _no_store(jsonify({"status": "ok"}))


@bp.get("/readyz")
def readyz() -> Response:
    report = runtime().readiness.report()
    resp = jsonify(report.to_json())
    resp.status_code = 200 if report.ready else 503
    return _no_store(resp)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    rt = runtime()
    body, content_type = metrics.render(rt.engine, sorted(rt.queue.handlers), request.headers.get("Accept"),
                                        rt.budget.limits() if rt.budget.enabled else ())
    return _no_store(Response(body, content_type=content_type))
