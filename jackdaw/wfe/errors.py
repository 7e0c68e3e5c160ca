"""The one translation point from exceptions to responses, and headers every response gets."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from jackdaw import nonces
from jackdaw.protocol import jws, problems
from jackdaw.protocol.constants import PROBLEM_CONTENT_TYPE
from jackdaw.runtime import runtime
from jackdaw.wfe import render

log = logging.getLogger(__name__)

#: jackdaw.wfe.ops (health, readiness, metrics): not ACME, so no ACME headers
OPS_BLUEPRINT = "ops"
#: an oversized body is read (and discarded) up to this much before the 413 goes out, so the
#: answer never races a client, or nginx, still sending: the connection stays usable
DRAIN_LIMIT = 1024 * 1024
TOO_LARGE = f"request body larger than {jws.MAX_BODY_BYTES} bytes"


def problem_response(problem: problems.AcmeProblem) -> Response:
    resp = jsonify(problem.to_json())
    resp.status_code = problem.status
    resp.mimetype = PROBLEM_CONTENT_TYPE
    if problem.retry_after is not None:
        resp.headers["Retry-After"] = str(problem.retry_after)
    if problem.location_id is not None:
        resp.headers["Location"] = render.url("account", account_id=problem.location_id)
    return resp


def _drain(length: int) -> None:
    stream = request.environ["wsgi.input"]
    left = min(length, DRAIN_LIMIT)
    while left > 0:
        chunk = stream.read(min(left, 64 * 1024))
        if not chunk:
            break
        left -= len(chunk)


def register(app: Flask) -> None:
    @app.before_request
    def _refuse_oversized() -> None:
        length = request.content_length
        if length is not None and length > jws.MAX_BODY_BYTES:
            _drain(length)
            raise problems.BodyTooLarge(TOO_LARGE)

    @app.errorhandler(problems.AcmeProblem)
    def _acme(problem: problems.AcmeProblem) -> Response:
        g.jackdaw_failed = True
        log.info("%s %s -> %s: %s", request.method, request.path, problem.code, problem.detail)
        return problem_response(problem)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        g.jackdaw_failed = True
        status = exc.code or 500
        if status == 413:  # a chunked body past MAX_CONTENT_LENGTH
            return problem_response(problems.BodyTooLarge(TOO_LARGE))
        cls = {404: problems.NotFound, 405: problems.MethodNotAllowed}.get(status, problems.Malformed)
        return problem_response(cls(exc.description or exc.name))

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> Response:
        g.jackdaw_failed = True
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(problems.ServerInternal("internal error; see the relay's log"))

    @app.after_request
    def _acme_headers(resp: Response) -> Response:
        if request.blueprint == OPS_BLUEPRINT:
            return resp  # probes and scrapes: no transaction, and no nonce taken from the database
        try:
            session = g.get("db")
            if session is not None:
                if g.get("jackdaw_failed"):
                    session.rollback()  # whatever a failed request changed is discarded, never half-kept
                    if g.get("jackdaw_nonce"):
                        nonces.redeem(session, g.jackdaw_nonce)  # ...but its nonce stays spent
                session.commit()
                session.close()
            resp.headers["Replay-Nonce"] = runtime().nonces.take()
        except Exception:
            log.exception("could not finish the request's transaction or issue a nonce")
        resp.headers.add("Link", f'<{render.url("directory")}>;rel="index"')
        return resp
