"""Every malformed ACME request, through the Flask test client, on SQLite and PostgreSQL.

Each case must give the right problem type and HTTP status as `application/problem+json`, with
a Replay-Nonce the client can use for its retry, and must change nothing (no account, order,
authorization, challenge or job appears or changes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import insert, select
from werkzeug.test import TestResponse

from jackdaw.models import Account, Authz, Challenge, Job, Nonce, Order, utcnow
from tests.integration.conftest import BACKENDS, database, running_app
from tests.signer import (
    DROP,
    JOSE,
    PROBLEM,
    AcmeTestClient,
    RequestSigner,
    as_general_serialization,
    b64,
    b64json,
    check_acme_response,
    ec_jwk,
    flip_last_byte,
    problem_type,
    rsa_jwk,
    with_members,
    with_unprotected_header,
)

NEW_ACCT = "/acme/new-account"
NEW_ORDER = "/acme/new-order"
REG = {"termsOfServiceAgreed": True}
ORDER = {"identifiers": [{"type": "dns", "value": "a.example.test"}]}


@dataclass
class Ctx:
    app: Flask
    acct: RequestSigner  # a valid RSA account
    other: RequestSigner  # a second valid account
    gone: RequestSigner  # a deactivated account
    new: RequestSigner  # an RSA key with no account
    new_ec: RequestSigner  # a P-256 key with no account
    new_small: RequestSigner  # an RSA 1024 key with no account
    order_url: str  # an order of `acct`

    @property
    def acct_url(self) -> str:
        assert self.acct.kid is not None
        return self.acct.kid


@pytest.fixture(scope="module", params=BACKENDS)
def ctx(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    """One app per backend for the whole table; each case checks it changed nothing."""
    workdir: Path = tmp_path_factory.mktemp(f"jws-{request.param}")
    with database(request.param, workdir) as url, running_app(url, workdir / "data") as app:
        app.test_client_class = AcmeTestClient
        client = app.test_client()
        signers = [RequestSigner(client, key) for key in (rsa_jwk(n=0), rsa_jwk(n=1), ec_jwk(n=2))]
        for signer in signers:
            assert signer.new_account().status_code == 201
        acct, other, gone = signers
        assert gone.post(gone.kid or "", {"status": "deactivated"}).status_code == 200
        resp = acct.post(NEW_ORDER, ORDER)
        assert resp.status_code == 201
        yield Ctx(app, acct, other, gone, RequestSigner(client, rsa_jwk(n=9)), RequestSigner(client, ec_jwk(n=9)),
                  RequestSigner(client, rsa_jwk(1024)), resp.headers["Location"])


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a rejected request must leave alone."""
    with app.extensions["jackdaw"].sessions() as s:
        def rows(*cols: Any) -> list[tuple[Any, ...]]:
            return sorted(tuple(r) for r in s.execute(select(*cols)).all())

        return {
            "accounts": rows(Account.id, Account.status, Account.contact, Account.thumbprint),
            "orders": rows(Order.id, Order.status, Order.csr),
            "authzs": rows(Authz.id, Authz.status),
            "challenges": rows(Challenge.id, Challenge.status),
            "jobs": rows(Job.kind, Job.subject_id, Job.generation),
        }


# --- request builders -------------------------------------------------------------------------

Build = Callable[[Ctx], TestResponse]


def reg(signer: Callable[[Ctx], RequestSigner], payload: Any = None, **kw: Any) -> Build:
    """newAccount from `signer(ctx)`, self-signed with its jwk unless `kw` says otherwise."""
    kw.setdefault("use_jwk", True)
    return lambda c: signer(c).post(NEW_ACCT, REG if payload is None else payload, **kw)


def order(signer: Callable[[Ctx], RequestSigner] = lambda c: c.acct, payload: Any = None, **kw: Any) -> Build:
    return lambda c: signer(c).post(NEW_ORDER, ORDER if payload is None else payload, **kw)


def reg_body(forge: Callable[[dict[str, str]], Any], content_type: str | None = JOSE) -> Build:
    """newAccount with a validly signed body bent by `forge` after signing."""
    def build(c: Ctx) -> TestResponse:
        return c.new.send(NEW_ACCT, forge(c.new.sign(NEW_ACCT, REG, use_jwk=True)), content_type)
    return build


def raw(body: bytes | str, content_type: str | None = JOSE) -> Build:
    return lambda c: c.new.send(NEW_ACCT, body, content_type)


def replayed_nonce(c: Ctx) -> TestResponse:
    nonce = c.acct.nonce()
    first = c.acct.post(c.acct_url, {}, header={"nonce": nonce})
    assert first.status_code == 200, first.get_json()
    return c.acct.post(c.acct_url, {}, header={"nonce": nonce})


def expired_nonce(c: Ctx) -> TestResponse:
    value = b64(os.urandom(16))
    with c.app.extensions["jackdaw"].sessions.begin() as s:
        s.execute(insert(Nonce).values(value=value, expires=utcnow() - timedelta(seconds=1)))
    return c.acct.post(NEW_ORDER, ORDER, header={"nonce": value})


def ec_der_signature(c: Ctx) -> TestResponse:
    """ES256 signed in DER (what OpenSSL emits) instead of JWS's fixed-size r||s."""
    jws = c.new_ec.sign(NEW_ACCT, REG, use_jwk=True)
    der = c.new_ec.key.key.sign(f"{jws['protected']}.{jws['payload']}".encode(), ec.ECDSA(hashes.SHA256()))
    return c.new_ec.send(NEW_ACCT, with_members(jws, signature=b64(der)))


def impersonation(c: Ctx) -> TestResponse:
    """`kid` names another account; the signature is by the sender's own key."""
    return c.acct.post(NEW_ORDER, ORDER, header={"kid": c.other.kid})


def other_account_url(c: Ctx) -> TestResponse:
    """A valid account signs a deactivation of another account's URL."""
    assert c.other.kid is not None
    return c.acct.post(c.other.kid, {"status": "deactivated"})


def jwk_oct(c: Ctx) -> TestResponse:
    return c.new.post(NEW_ACCT, REG, use_jwk=True, header={"jwk": {"kty": "oct", "k": b64(b"secret" * 6)}})


STATUS = {"malformed": 400, "badNonce": 400, "badSignatureAlgorithm": 400, "badPublicKey": 400,
          "accountDoesNotExist": 400, "unauthorized": 403}


def case(case_id: str, build: Build, code: str, why: str, status: int | None = None) -> Any:
    """One row: the request, the problem code and HTTP status it must get, and a piece of the
    detail proving it was refused for the reason the row is about (not an earlier accident)."""
    return pytest.param(build, code, status or STATUS[code], why, id=case_id)


NEW = lambda c: c.new  # noqa: E731  (an RSA key without an account)
NEW_EC = lambda c: c.new_ec  # noqa: E731
BAD_SIG = "signature is invalid"
NO_MATCH_URL = "does not match the request URL"

CASES: list[Any] = [
    # -- transport: content type and size
    case("content-type-json", reg(NEW, content_type="application/json"), "malformed", "Content-Type"),
    case("content-type-missing", reg(NEW, content_type=None), "malformed", "Content-Type"),
    case("content-type-form", reg(NEW, content_type="application/x-www-form-urlencoded"), "malformed",
         "Content-Type"),
    case("body-over-64KiB", reg(NEW, {**REG, "contact": ["mailto:" + "x" * 70_000 + "@example.test"]}),
         "malformed", "larger than", 413),
    case("body-over-max-content-length", raw(b"{" + b" " * (2 * 1024 * 1024) + b"}"), "malformed", "larger than",
         413),
    # -- JSON structure
    case("body-empty", raw(b""), "malformed", "not valid JSON"),
    case("body-not-json", raw(b"this is not json"), "malformed", "not valid JSON"),
    case("body-json-array", raw(b"[]"), "malformed", "flattened JWS"),
    case("body-not-utf8", raw(b"\xff\xfe{}"), "malformed", "not valid JSON"),
    case("compact-serialization", reg_body(lambda j: f"{j['protected']}.{j['payload']}.{j['signature']}"),
         "malformed", "not valid JSON"),
    case("unprotected-header", reg_body(with_unprotected_header), "malformed", "unprotected"),
    case("unprotected-header-empty", reg_body(lambda j: with_unprotected_header(j, {})), "malformed", "unprotected"),
    case("signatures-array", reg_body(as_general_serialization), "malformed", "multiple signatures"),
    case("signatures-and-signature",
         reg_body(lambda j: {**as_general_serialization(j), "signature": j["signature"]}),
         "malformed", "multiple signatures"),
    case("protected-missing", reg_body(lambda j: with_members(j, protected=DROP)), "malformed", "'protected'"),
    case("payload-missing", reg_body(lambda j: with_members(j, payload=DROP)), "malformed", "'payload'"),
    case("signature-missing", reg_body(lambda j: with_members(j, signature=DROP)), "malformed", "'signature'"),
    case("signature-not-string", reg_body(lambda j: with_members(j, signature=123)), "malformed", "'signature'"),
    # -- base64url and JSON inside the members
    case("protected-bad-base64", reg_body(lambda j: with_members(j, protected="!!not base64!!")),
         "malformed", "base64url"),
    case("protected-padded", reg_body(lambda j: with_members(j, protected=j["protected"] + "==")),
         "malformed", "base64url"),
    case("payload-stray-character", reg_body(lambda j: with_members(j, payload="%" + j["payload"])),
         "malformed", "base64url"),
    case("signature-padded", reg_body(lambda j: with_members(j, signature=j["signature"] + "=")),
         "malformed", "base64url"),
    case("protected-not-json", reg_body(lambda j: with_members(j, protected=b64("not json"))),
         "malformed", "protected header"),
    case("protected-not-object", reg_body(lambda j: with_members(j, protected=b64json(["RS256"]))),
         "malformed", "protected header"),
    case("payload-bad-base64", reg(NEW, raw_payload="!!not base64!!"), "malformed", "base64url"),
    case("signature-bad-base64", reg_body(lambda j: with_members(j, signature="!!not base64!!")),
         "malformed", "base64url"),
    case("payload-not-json", reg(NEW, b"this is not json"), "malformed", "payload is not valid JSON"),
    case("payload-json-array", reg(NEW, b"[]"), "malformed", "JSON object"),
    case("payload-json-array-kid", order(payload=b"[1, 2]"), "malformed", "JSON object"),
    case("post-as-get-with-payload", lambda c: c.acct.post(c.order_url, {}), "malformed", "empty payload"),
    # -- algorithm: allow-list first, then consistency with the key
    case("alg-none", reg(NEW, header={"alg": "none"}), "badSignatureAlgorithm", "not supported"),
    case("alg-HS256", reg(NEW, header={"alg": "HS256"}), "badSignatureAlgorithm", "not supported"),
    case("alg-HS256-kid", order(header={"alg": "HS256"}), "badSignatureAlgorithm", "not supported"),
    case("alg-missing", reg(NEW, header={"alg": DROP}), "badSignatureAlgorithm", "not supported"),
    case("alg-lowercase", reg(NEW, header={"alg": "rs256"}), "badSignatureAlgorithm", "not supported"),
    case("alg-PS256", reg(NEW, header={"alg": "PS256"}), "badSignatureAlgorithm", "not supported"),
    case("alg-array", reg(NEW, header={"alg": ["RS256"]}), "badSignatureAlgorithm", "not supported"),
    case("alg-ES256-rsa-key", reg(NEW, header={"alg": "ES256"}), "badSignatureAlgorithm", "does not match the key"),
    case("alg-RS256-ec-key", reg(NEW_EC, header={"alg": "RS256"}), "badSignatureAlgorithm",
         "does not match the key"),
    case("alg-ES384-p256-key", reg(NEW_EC, header={"alg": "ES384"}), "badSignatureAlgorithm",
         "does not match the key"),
    case("alg-ES256-rsa-account", order(header={"alg": "ES256"}), "badSignatureAlgorithm", "does not match the key"),
    # -- key: exactly one of jwk / kid, jwk only where allowed, key acceptable
    case("jwk-and-kid", reg(NEW, header={"kid": "http://localhost/acme/acct/x"}), "malformed", "exactly one"),
    case("neither-jwk-nor-kid", reg(NEW, header={"jwk": DROP}), "malformed", "exactly one"),
    case("kid-on-new-account", lambda c: c.acct.post(NEW_ACCT, REG, use_jwk=False), "malformed",
         "'jwk', not a 'kid'"),
    case("jwk-on-new-order", order(use_jwk=True), "malformed", "'kid', not a 'jwk'"),
    case("jwk-on-post-as-get", lambda c: c.acct.post(c.order_url, b"", use_jwk=True), "malformed",
         "'kid', not a 'jwk'"),
    case("jwk-incomplete", reg(NEW, header={"jwk": {"kty": "RSA"}}), "malformed", "could not be parsed"),
    case("jwk-not-object", reg(NEW, header={"jwk": "a key"}), "malformed", "'jwk'"),
    case("jwk-array", reg(NEW, header={"jwk": [1]}), "malformed", "'jwk'"),
    case("jwk-symmetric", jwk_oct, "badPublicKey", "not supported"),
    case("jwk-rsa-1024", reg(lambda c: c.new_small), "badPublicKey", "2048"),
    case("crit-header", reg(NEW, header={"crit": ["exp"], "exp": 1}), "malformed", "crit"),
    # -- url
    case("url-other-endpoint", order(header={"url": "http://localhost/acme/new-account"}), "unauthorized",
         NO_MATCH_URL),
    case("url-other-host", order(header={"url": "https://evil.example/acme/new-order"}), "unauthorized",
         NO_MATCH_URL),
    case("url-mismatch-new-account", reg(NEW, header={"url": "http://localhost/acme/new-order"}), "unauthorized",
         NO_MATCH_URL),
    case("url-missing", order(header={"url": DROP}), "malformed", "'url'"),
    case("url-not-string", order(header={"url": 12345}), "malformed", "'url'"),
    # -- account
    case("kid-unknown", order(header={"kid": "http://localhost/acme/acct/no-such-account"}),
         "accountDoesNotExist", "no account"),
    case("kid-other-host", lambda c: c.acct.post(NEW_ORDER, ORDER, header={
        "kid": c.acct_url.replace("http://localhost", "https://elsewhere.example")}),
         "accountDoesNotExist", "no account"),
    case("kid-not-string", order(header={"kid": 12345}), "malformed", "'kid'"),
    case("kid-deactivated", order(lambda c: c.gone), "unauthorized", "deactivated"),
    case("kid-of-other-account", impersonation, "malformed", BAD_SIG),
    case("account-url-of-other-account", other_account_url, "unauthorized", "does not match this account"),
    # -- nonce (redeemed last, so a bad one never burns anything else)
    case("nonce-missing", order(header={"nonce": DROP}), "badNonce", "no 'nonce'"),
    case("nonce-missing-new-account", reg(NEW, header={"nonce": DROP}), "badNonce", "no 'nonce'"),
    case("nonce-replayed", replayed_nonce, "badNonce", "invalid anti-replay"),
    case("nonce-never-issued", lambda c: c.acct.post(NEW_ORDER, ORDER, header={"nonce": b64(os.urandom(16))}),
         "badNonce", "invalid anti-replay"),
    case("nonce-expired", expired_nonce, "badNonce", "invalid anti-replay"),
    case("nonce-empty", order(header={"nonce": ""}), "badNonce", "nonce"),
    case("nonce-bad-base64", order(header={"nonce": "!!not base64!!"}), "badNonce", "base64url"),
    case("nonce-not-string", order(header={"nonce": 12345}), "badNonce", "base64url"),
    # -- signature (always checked with the stored or embedded key, never a fallback)
    case("signature-other-key", reg(NEW, sign_with=rsa_jwk(n=8)), "malformed", BAD_SIG),
    case("signature-other-key-kid", order(sign_with=rsa_jwk(n=8)), "malformed", BAD_SIG),
    case("signature-flipped-bit", reg_body(lambda j: with_members(j, signature=flip_last_byte(j["signature"]))),
         "malformed", BAD_SIG),
    case("signature-truncated", reg_body(lambda j: with_members(j, signature=j["signature"][:-10])),
         "malformed", BAD_SIG),
    case("signature-empty", reg_body(lambda j: with_members(j, signature="")), "malformed", BAD_SIG),
    case("payload-tampered", reg(NEW, raw_payload=b64json({"termsOfServiceAgreed": False})), "malformed", BAD_SIG),
    case("signature-ecdsa-der", ec_der_signature, "malformed", BAD_SIG),
    # -- HTTP surface
    case("get-on-post-endpoint", lambda c: c.new.client.get(NEW_ORDER), "malformed", "method", 405),
    case("unknown-endpoint", lambda c: c.acct.post("/acme/no-such-endpoint", {}), "malformed", "not found", 404),
]


@pytest.mark.parametrize(("build", "code", "status", "why"), CASES)
def test_rejected(ctx: Ctx, build: Build, code: str, status: int, why: str) -> None:
    before = snapshot(ctx.app)

    resp = build(ctx)

    check_acme_response(resp)  # Replay-Nonce, Link rel=index, problem document, never 500
    doc = resp.get_json(force=True)
    assert (resp.status_code, problem_type(resp)) == (status, code), doc
    assert why.lower() in doc["detail"].lower(), doc  # rejected for the reason the case is about
    assert resp.mimetype == PROBLEM
    if code == "badSignatureAlgorithm":
        assert doc["algorithms"] == ["RS256", "ES256", "ES384", "ES512"]
    assert snapshot(ctx.app) == before
    # The nonce handed back with the error is good for the client's retry (RFC 8555 §6.5).
    retry = ctx.acct.post(ctx.acct_url, {}, header={"nonce": resp.headers["Replay-Nonce"]})
    assert retry.status_code == 200, retry.get_json()


def test_case_table_is_complete() -> None:
    """Guards against silently losing cases when the table is edited."""
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)) >= 70


@pytest.mark.parametrize("content_type", [JOSE, "application/jose+json; charset=utf-8", "Application/JOSE+JSON"])
def test_accepted_content_types(ctx: Ctx, content_type: str) -> None:
    """The control group: the same path accepts a well-formed request."""
    resp = ctx.acct.post(ctx.acct_url, {}, content_type=content_type)
    assert resp.status_code == 200, resp.get_json()
    assert resp.mimetype == "application/json"
