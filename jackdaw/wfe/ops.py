"""Operational endpoints, not ACME: liveness, readiness and Prometheus metrics.

    GET /healthz   200 {"status": "ok"} while the process answers; touches nothing else
    GET /readyz    200 when database, schema and upstream account are usable, else 503;
                   the body lists every check with its reason to a caller on gunicorn's own
                   port from loopback or a private network (a probe, the scraper), and only
                   ready / not ready to anyone else (the public side through nginx)
    GET /metrics   Prometheus exposition (text, or OpenMetrics when the scraper asks for it)

No Replay-Nonce and no Link rel="index" on these (jackdaw.wfe.errors skips blueprint "ops"):
a probe must not take a nonce from the database. Keep /metrics away from the public side of
the reverse proxy; it carries counts, not secrets, but is nobody else's business.
"""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, jsonify, request

from jackdaw import metrics
from jackdaw.relaycert.files import CertStore
from jackdaw.runtime import runtime
from jackdaw.wfe.transaction import OPS_BLUEPRINT

bp = Blueprint(OPS_BLUEPRINT, __name__)


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/healthz")
def healthz() -> Response:
    return _no_store(jsonify({"status": "ok"}))


def insider() -> bool:
    """A caller that may read the checks' details (the upstream account URL, error texts) and the
    status page (jackdaw.wfe.status): not relayed by the reverse proxy, from loopback or a private
    address."""
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return peer.is_loopback or peer.is_private


@bp.get("/readyz")
def readyz() -> Response:
    report = runtime().readiness.report()
    doc = report.to_json()
    resp = jsonify(doc if insider() else {"status": doc["status"]})
    resp.status_code = 200 if report.ready else 503
    return _no_store(resp)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    rt = runtime()
    settings = rt.settings
    relay = CertStore(settings.relay_cert_path, settings.relay_domain).status if settings.relay_cert_enabled else None
    body, content_type = metrics.render(rt.engine, sorted(rt.queue.handlers), request.headers.get("Accept"),
                                        rt.budget.limits() if rt.budget.enabled else (), relay)
    return _no_store(Response(body, content_type=content_type))
