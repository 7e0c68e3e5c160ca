"""The ACME server's HTTP surface (RFC 8555 §7): parse, call one RA function, render."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from jackdaw.db import one_by_id
from jackdaw.jobs import JobKind
from jackdaw.models import Account, Authz, Certificate, Challenge, Order
from jackdaw.protocol import problems
from jackdaw.protocol.constants import PEM_CHAIN_CONTENT_TYPE, RETRY_AFTER_SECONDS, Status
from jackdaw.ra import accounts, bindings, orders, renewal, revocation
from jackdaw.runtime import runtime
from jackdaw.wfe import render, settle, transaction
from jackdaw.wfe.verify import (
    verify_key_change,
    verify_post,
    verify_post_as_get,
    verify_post_for_account,
    verify_revocation,
    verify_self_signed,
)

bp = Blueprint("acme", __name__)
ORDERS_PAGE_SIZE = 100
_PAGE = re.compile(r"[0-9]{1,6}")
#: the polled objects' queries, built once (jackdaw.db.one_by_id); an order comes with its
#: authorizations, which its response lists
_ORDER = select(Order).where(Order.id == bindparam("id")).options(joinedload(Order.authzs))
_AUTHZ = select(Authz).where(Authz.id == bindparam("id"))
_CERTIFICATE = select(Certificate).where(Certificate.id == bindparam("id"))


def _json(doc: dict[str, Any], status: int = 200, location: str | None = None,
          retry_after: bool = False, links: list[str] | None = None) -> Response:
    resp = jsonify(doc)
    resp.status_code = status
    if location:
        resp.headers["Location"] = location
    if retry_after:
        resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    for link in links or []:
        resp.headers.add("Link", link)
    return resp


@bp.get("/directory")
def directory() -> Response:
    rt = runtime()
    meta: dict[str, Any] = {"externalAccountRequired": rt.settings.eab_required}
    upstream = rt.upstream.meta()
    if upstream is not None and upstream.profiles:  # the upstream's, as far as this relay offers them
        allowed = rt.settings.profiles_allowed
        meta["profiles"] = {k: v for k, v in upstream.profiles.items() if not allowed or k in allowed}
    return jsonify({
        "newNonce": render.url("new_nonce"),
        "newAccount": render.url("new_account"),
        "newOrder": render.url("new_order"),
        "revokeCert": render.url("revoke_cert"),
        "keyChange": render.url("key_change"),
        "renewalInfo": render.url("renewal_info_base"),
        "meta": meta,
    })


@bp.get("/acme/renewal-info", endpoint="renewal_info_base")
@bp.get("/acme/renewal-info/<path:cert_id>")
@transaction.committed
def renewal_info(cert_id: str = "") -> Response:
    """RFC 9773 §4.2: the suggested window of a certificate this relay issued (unauthenticated GET)."""
    session = transaction.session()
    cert, window = renewal.window(session, cert_id)
    if window.stale:  # fetched again in the background; this answer is the last known one
        runtime().queue.enqueue(session, JobKind.RENEWAL_INFO, cert.id)
    resp = jsonify(window.to_json())
    resp.headers["Retry-After"] = str(window.retry_after)
    return resp


@bp.route("/acme/new-nonce", methods=["HEAD", "GET"])
def new_nonce() -> Response:
    resp = Response(status=200 if request.method == "HEAD" else 204)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/acme/new-account")
@transaction.committed
def new_account() -> Response:
    session = transaction.session()
    verified, payload = verify_self_signed(session)
    account, created = accounts.new_account(session, verified.key, payload, url=render.url("new_account"),
                                            eab_required=runtime().settings.eab_required,
                                            requester=client_address())
    return _json(render.account_json(account), 201 if created else 200,
                 location=render.url("account", account_id=account.id))


@bp.post("/acme/acct/<account_id>")
@transaction.committed
def account(account_id: str) -> Response:
    session = transaction.session()
    verified = verify_post(session)
    acct = verified.account
    assert acct is not None
    if acct.id != account_id:
        raise problems.Unauthorized("the JWS 'kid' does not match this account URL")
    # POST-as-GET (empty payload) reads the account, as lego's QueryRegistration does
    if verified.parsed.payload != b"":
        accounts.update_account(acct, verified.parsed.payload_json())
    return _json(render.account_json(acct), location=render.url("account", account_id=acct.id))


@bp.post("/acme/acct/<account_id>/orders")
@transaction.reads
def account_orders(account_id: str) -> Response:
    session = transaction.session()
    acct = verify_post_as_get(session).account
    assert acct is not None
    if acct.id != account_id:
        raise problems.Unauthorized("an account may only list its own orders")
    page = _page_number()
    ids, more = orders.order_ids(session, acct, page, ORDERS_PAGE_SIZE)
    links = []
    if more:
        links.append(f'<{render.url("account_orders", account_id=acct.id, page=str(page + 1))}>;rel="next"')
    return _json({"orders": [render.url("order", order_id=i) for i in ids]}, links=links)


def _page_number() -> int:
    raw = request.args.get("page", "0")
    if not _PAGE.fullmatch(raw):  # not str.isdigit(): it takes '²', which int() refuses
        raise problems.Malformed("'page' must be a small non-negative integer")
    return int(raw)


@bp.post("/acme/new-order")
@transaction.committed
def new_order() -> Response:
    session = transaction.session()
    verified, payload = verify_post_for_account(session)
    assert verified.account is not None
    rt = runtime()
    settings = rt.settings
    rt.upstream.refuse_if_unreachable()
    meta = rt.upstream.meta()
    order = orders.new_order(session, verified.account, payload, settings,
                             binding=bindings.binding_of(session, verified.account), requester=client_address(),
                             budget=rt.budget, offered_profiles=meta.profiles if meta is not None else None)
    return _json(render.order_json(order), 201, location=render.url("order", order_id=order.id))


def _order_response(order: Order) -> Response:
    resp = _json(render.order_json(order), location=render.url("order", order_id=order.id),
                 retry_after=order.status in (Status.PENDING, Status.PROCESSING))
    retry = render.retry_after(order.error)
    if retry is not None:  # the upstream CA's rateLimited, carried with its time
        resp.headers["Retry-After"] = str(retry)
    return resp


def client_address() -> str | None:
    """The requesting client: the peer, or, when the peer is a trusted proxy
    (JACKDAW_FORWARDED_ALLOW_IPS), the last address in X-Forwarded-For it did not add itself."""
    peer = request.remote_addr
    trusted = runtime().settings.trusted_proxies
    chain = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    address = peer
    while address is not None and _in(address, trusted) and chain:
        address = chain.pop()
    return address


def _in(address: str, networks: tuple[Any, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _current(session: Session, order: Order | None, account: Account, what: str) -> Order:
    """The account's own order, with expiry applied (and kept) before anyone looks at it."""
    found = orders.owned(order, account, what)
    if orders.enforce_expiry(found):
        transaction.keep()
    return found


@bp.post("/acme/order/<order_id>")
@transaction.reads
def order(order_id: str) -> Response:
    session = transaction.session()
    acct = verify_post_as_get(session).account
    assert acct is not None
    found = _current(session, one_by_id(session, _ORDER, order_id), acct, "order")
    if found.status == Status.PROCESSING:  # leg 2 under way: this look may see its end
        transaction.keep()
        if settle.wait_until(lambda: orders.settled(runtime().sessions, Order, order_id)):
            session.expire(found)
    return _order_response(found)


@bp.post("/acme/order/<order_id>/finalize")
@transaction.committed
def finalize(order_id: str) -> Response:
    session = transaction.session()
    verified, payload = verify_post_for_account(session)
    assert verified.account is not None
    # authorizations loaded with the order: the response renders them without more queries
    found = _current(session, one_by_id(session, _ORDER, order_id), verified.account,
                     "order")
    # answered at once: the wait for leg 2 is the next poll's, so a client that sleeps before it
    # polls (certbot: 1 s) loses nothing, and one that polls at once (acme-tiny) sees the end
    runtime().upstream.refuse_if_unreachable()  # the order stays ready: finalize again once the CA is back
    orders.finalize(session, runtime().queue, found, verified.account, payload, runtime().budget)
    resp = _order_response(found)
    if settle.waits():  # come back at once: that poll waits for leg 2 (clients that honour this: lego, Caddy)
        resp.headers["Retry-After"] = "0"
    return resp


@bp.post("/acme/authz/<authz_id>")
@transaction.reads
def authz(authz_id: str) -> Response:
    session = transaction.session()
    verified = verify_post(session)
    assert verified.account is not None
    found = one_by_id(session, _AUTHZ, authz_id)
    _current(session, found.order if found else None, verified.account, "authorization")
    assert found is not None
    if verified.parsed.payload != b"":  # {"status": "deactivated"} (§7.5.2); empty payload reads
        if verified.parsed.payload_json().get("status") != Status.DEACTIVATED:
            raise problems.Malformed("an authorization may only be updated to status 'deactivated'")
        orders.deactivate_authz(found)
    return _json(render.authz_json(found), retry_after=found.status == Status.PENDING)


@bp.post("/acme/chall/<challenge_id>")
@transaction.committed
def challenge(challenge_id: str) -> Response:
    session = transaction.session()
    verified = verify_post(session)
    assert verified.account is not None
    found = session.get(Challenge, challenge_id)
    _current(session, found.authz.order if found else None, verified.account, "challenge")
    assert found is not None
    if verified.parsed.payload != b"":  # `{}` responds; an empty payload (POST-as-GET) only reads
        verified.parsed.payload_json()
        orders.respond_to_challenge(session, runtime().queue, found)
        transaction.keep()  # the validation job starts now
        if settle.wait_until(lambda: orders.settled(runtime().sessions, Challenge, challenge_id)):
            session.expire(found)  # the first look shows the outcome
    return _json(render.challenge_json(found), retry_after=found.status == Status.PROCESSING,
                 links=[f'<{render.url("authz", authz_id=found.authz_id)}>;rel="up"'])


@bp.post("/acme/key-change")
@transaction.committed
def key_change() -> Response:
    session = transaction.session()
    verified, inner = verify_key_change(session)
    acct = verified.account
    assert acct is not None
    accounts.change_key(session, acct, str(verified.parsed.kid), inner)
    return _json(render.account_json(acct), location=render.url("account", account_id=acct.id))


@bp.post("/acme/revoke-cert")
@transaction.committed
def revoke_cert() -> Response:
    session = transaction.session()
    verified, payload = verify_revocation(session)
    cert, reason = revocation.parse_request(payload)
    stored = revocation.find_certificate(session, cert)
    revocation.authorize(stored, cert, verified.account, verified.key if verified.account is None else None)
    revocation.revoke(session, runtime().queue, stored, reason)
    return Response(status=200)


@bp.post("/acme/cert/<cert_id>")
@transaction.reads
def certificate(cert_id: str) -> Response:
    session = transaction.session()
    acct = verify_post_as_get(session).account
    assert acct is not None
    cert = one_by_id(session, _CERTIFICATE, cert_id)
    orders.owned(cert.order if cert else None, acct, "certificate")
    assert cert is not None
    return Response(cert.chain_pem, mimetype=PEM_CHAIN_CONTENT_TYPE)

