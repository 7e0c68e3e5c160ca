"""Rows to RFC 8555 JSON, one function per object (wire types apart from storage)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, url_for

from jackdaw.models import Account, Authz, Challenge, Order
from jackdaw.protocol import problems
from jackdaw.protocol.constants import PROBLEM_CONTENT_TYPE


def rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after(error: dict[str, Any] | None) -> int | None:
    """Seconds until the time a stored rateLimited problem carries (``retryAfter``), if any."""
    when = (error or {}).get("retryAfter")
    if not isinstance(when, str):
        return None
    try:
        moment = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(1, int((moment - datetime.now(UTC)).total_seconds()) + 1)


def url(endpoint: str, **values: str) -> str:
    return url_for(f"acme.{endpoint}", _external=True, **values)


def account_json(account: Account) -> dict[str, Any]:
    return {
        "status": account.status,
        "contact": account.contact,
        "orders": url("account_orders", account_id=account.id),
    }


def order_json(order: Order) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": order.status,
        "expires": rfc3339(order.expires),
        "identifiers": [{"type": "dns", "value": name} for name in order.identifiers],
        "authorizations": [url("authz", authz_id=a.id) for a in order.authzs],
        "finalize": url("finalize", order_id=order.id),
    }
    if order.profile:
        doc["profile"] = order.profile
    if order.replaces:
        doc["replaces"] = order.replaces
    if order.error:
        doc["error"] = order.error
    if order.status == "valid" and order.certificate is not None:  # status first: no query while pending
        doc["certificate"] = url("certificate", cert_id=order.certificate.id)
    return doc


def challenge_json(chall: Challenge) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": chall.type,
        "url": url("challenge", challenge_id=chall.id),
        "status": chall.status,
        "token": chall.token,
    }
    if chall.validated:
        doc["validated"] = rfc3339(chall.validated)
    if chall.error:
        doc["error"] = chall.error
    if chall.validation_records:
        doc["validationRecord"] = chall.validation_records
    return doc


def authz_json(authz: Authz) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "identifier": {"type": "dns", "value": authz.identifier},
        "status": authz.status,
        "expires": rfc3339(authz.expires),
        "challenges": [challenge_json(c) for c in authz.challenges],
    }
    if authz.wildcard:
        doc["wildcard"] = True
    return doc


def problem_response(problem: problems.AcmeProblem) -> Response:
    """An RFC 7807 problem document (jackdaw.wfe.errors decides which)."""
    resp = jsonify(problem.to_json())
    resp.status_code = problem.status
    resp.mimetype = PROBLEM_CONTENT_TYPE
    if problem.retry_after is not None:
        resp.headers["Retry-After"] = str(problem.retry_after)
    if problem.location_id is not None:
        resp.headers["Location"] = url("account", account_id=problem.location_id)
    return resp
