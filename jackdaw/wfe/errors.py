"""The one translation point from exceptions to responses (the transaction: wfe.transaction)."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from jackdaw.outage import unavailable
from jackdaw.protocol import jws, problems
from jackdaw.runtime import runtime
from jackdaw.wfe import transaction
from jackdaw.wfe.render import problem_response

log = logging.getLogger(__name__)

#: an oversized body is read (and discarded) up to this much before the 413 goes out, so the
#: answer never races a client, or nginx, still sending: the connection stays usable
DRAIN_LIMIT = 1024 * 1024
TOO_LARGE = f"request body larger than {jws.MAX_BODY_BYTES} bytes"


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
        transaction.failed()
        if isinstance(problem, problems.Unavailable):
            return problem_response(problem)  # the outage has its own line (jackdaw.outage)
        log.info("%s %s -> %s: %s", request.method, request.path, problem.code, problem.detail)
        return problem_response(problem)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        transaction.failed()
        status = exc.code or 500
        if status == 413:  # a chunked body past MAX_CONTENT_LENGTH
            return problem_response(problems.BodyTooLarge(TOO_LARGE))
        cls = {404: problems.NotFound, 405: problems.MethodNotAllowed}.get(status, problems.Malformed)
        return problem_response(cls(exc.description or exc.name))

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> Response:
        transaction.failed()
        outage = runtime().outage
        if outage.failed(exc):  # the database away (or busy): not ready is a 503, logged once
            return problem_response(unavailable())
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(problems.ServerInternal("internal error; see the relay's log"))
