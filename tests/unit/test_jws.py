"""jackdaw.protocol.jws (parse, verify_signature, thumbprint, load_jwk) and problem rendering.

Pure: no Flask app, no database. The same RequestSigner the integration tests use builds the
bodies, with nonces made up locally (parse does not redeem them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import josepy as jose
import pytest
from flask import Flask

from jackdaw.protocol import jws, problems
from jackdaw.protocol.constants import PROBLEM_CONTENT_TYPE
from jackdaw.wfe.errors import problem_response
from tests.signer import (
    DROP,
    RequestSigner,
    as_general_serialization,
    b64,
    b64json,
    ec_jwk,
    flip_last_byte,
    natural_alg,
    rsa_jwk,
    with_members,
    with_unprotected_header,
)

URL = "http://localhost/acme/new-order"
KID = "http://localhost/acme/acct/abc"


def signer(key: jose.JWK | None = None, kid: str | None = None) -> RequestSigner:
    s = RequestSigner(None, key or rsa_jwk(), nonces=lambda: b64(os.urandom(16)))
    s.kid = kid
    return s


def body(obj: Any) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj).encode()


# --- parse: the good path ---------------------------------------------------------------


@pytest.mark.parametrize("key", [rsa_jwk(), ec_jwk("P-256"), ec_jwk("P-384"), ec_jwk("P-521")],
                         ids=["rsa2048", "p256", "p384", "p521"])
def test_parse_self_signed(key: jose.JWK) -> None:
    nonce = os.urandom(16)
    parsed = jws.parse(body(signer(key).sign(URL, {"a": 1}, header={"nonce": b64(nonce)})))
    assert parsed.alg == natural_alg(key)
    assert (parsed.nonce, parsed.url, parsed.kid) == (nonce, URL, None)
    assert parsed.jwk == key.public_key()
    assert parsed.payload_json() == {"a": 1}
    jws.verify_signature(parsed, key.public_key())


def test_parse_kid() -> None:
    parsed = jws.parse(body(signer(kid=KID).sign(URL, b"")))
    assert (parsed.kid, parsed.jwk, parsed.payload) == (KID, None, b"")


# --- parse: every structural refusal ----------------------------------------------------

S = signer()
SK = signer(kid=KID)

Forge = Callable[[], Any]

PARSE_CASES: list[Any] = [
    pytest.param(lambda: b"x" * (jws.MAX_BODY_BYTES + 1), problems.Malformed, "larger than", id="too-large"),
    pytest.param(lambda: b"", problems.Malformed, "not valid JSON", id="empty"),
    pytest.param(lambda: b"\xff", problems.Malformed, "not valid JSON", id="not-utf8"),
    pytest.param(lambda: b"[]", problems.Malformed, "flattened", id="array"),
    pytest.param(lambda: b'"a.b.c"', problems.Malformed, "flattened", id="json-string"),
    pytest.param(lambda: with_unprotected_header(S.sign(URL, {})), problems.Malformed, "unprotected",
                 id="unprotected-header"),
    pytest.param(lambda: as_general_serialization(S.sign(URL, {})), problems.Malformed, "multiple",
                 id="signatures-array"),
    pytest.param(lambda: with_members(S.sign(URL, {}), protected=DROP), problems.Malformed, "'protected'",
                 id="no-protected"),
    pytest.param(lambda: with_members(S.sign(URL, {}), payload=None), problems.Malformed, "'payload'",
                 id="null-payload"),
    pytest.param(lambda: with_members(S.sign(URL, {}), signature=DROP), problems.Malformed, "'signature'",
                 id="no-signature"),
    pytest.param(lambda: with_members(S.sign(URL, {}), protected="%%%"), problems.Malformed, "base64url",
                 id="protected-bad-base64"),
    pytest.param(lambda: with_members(S.sign(URL, {}), protected=b64("{x")), problems.Malformed, "protected header",
                 id="protected-not-json"),
    pytest.param(lambda: with_members(S.sign(URL, {}), protected=b64json(1)), problems.Malformed,
                 "protected header", id="protected-not-object"),
    pytest.param(lambda: S.sign(URL, {}, raw_payload="%%%"), problems.Malformed, "'payload' is not",
                 id="payload-bad-base64"),
    pytest.param(lambda: S.sign(URL, {}, raw_payload="e30="), problems.Malformed, "'payload' is not",
                 id="payload-padded"),
    pytest.param(lambda: S.sign(URL, {}, raw_payload="e3%0"), problems.Malformed, "'payload' is not",
                 id="payload-stray-character"),
    pytest.param(lambda: S.sign(URL, {}, raw_payload="e30+"), problems.Malformed, "'payload' is not",
                 id="payload-standard-alphabet"),
    pytest.param(lambda: with_members(S.sign(URL, {}), signature="a"), problems.Malformed, "'signature' is not",
                 id="signature-impossible-length"),
    pytest.param(lambda: S.sign(URL, {}, header={"alg": "none"}), problems.BadSignatureAlgorithm, "'none'",
                 id="alg-none"),
    pytest.param(lambda: S.sign(URL, {}, header={"alg": "HS256"}), problems.BadSignatureAlgorithm, "'HS256'",
                 id="alg-hs256"),
    pytest.param(lambda: S.sign(URL, {}, header={"alg": DROP}), problems.BadSignatureAlgorithm, "None",
                 id="alg-missing"),
    pytest.param(lambda: S.sign(URL, {}, header={"kid": KID}), problems.Malformed, "exactly one",
                 id="jwk-and-kid"),
    pytest.param(lambda: S.sign(URL, {}, header={"jwk": DROP}), problems.Malformed, "exactly one",
                 id="neither-jwk-nor-kid"),
    pytest.param(lambda: S.sign(URL, {}, header={"jwk": "x"}), problems.Malformed, "'jwk'", id="jwk-string"),
    pytest.param(lambda: SK.sign(URL, {}, header={"kid": 1}), problems.Malformed, "'kid'", id="kid-number"),
    pytest.param(lambda: S.sign(URL, {}, header={"url": DROP}), problems.Malformed, "'url'", id="no-url"),
    pytest.param(lambda: S.sign(URL, {}, header={"url": ""}), problems.Malformed, "'url'", id="empty-url"),
    pytest.param(lambda: S.sign(URL, {}, header={"url": ["x"]}), problems.Malformed, "'url'", id="url-list"),
    pytest.param(lambda: S.sign(URL, {}, header={"nonce": DROP}), problems.BadNonce, "no 'nonce'", id="no-nonce"),
    pytest.param(lambda: S.sign(URL, {}, header={"nonce": "a+b/c="}), problems.BadNonce, "base64url",
                 id="nonce-standard-base64"),
    pytest.param(lambda: S.sign(URL, {}, header={"nonce": "abcde"}), problems.BadNonce, "base64url",
                 id="nonce-impossible-length"),
    pytest.param(lambda: S.sign(URL, {}, header={"nonce": {"n": 1}}), problems.BadNonce, "base64url",
                 id="nonce-object"),
    pytest.param(lambda: S.sign(URL, {}, header={"crit": ["b64"], "b64": False}), problems.Malformed, "crit",
                 id="crit"),
]


@pytest.mark.parametrize(("forge", "problem", "why"), PARSE_CASES)
def test_parse_refuses(forge: Forge, problem: type[problems.AcmeProblem], why: str) -> None:
    with pytest.raises(problems.AcmeProblem) as info:
        jws.parse(body(forge()))
    assert type(info.value) is problem, info.value.detail
    assert why in info.value.detail


@pytest.mark.parametrize("payload", [b"", b"[]", b"1", b"not json", b"\xff"], ids=["empty", "array", "number",
                                                                                    "garbage", "binary"])
def test_payload_json_refuses(payload: bytes) -> None:
    parsed = jws.parse(body(S.sign(URL, payload)))
    with pytest.raises(problems.Malformed):
        parsed.payload_json()


# --- verify_signature -------------------------------------------------------------------


def parsed_by(key: jose.JWK, **kw: Any) -> jws.ParsedJWS:
    return jws.parse(body(signer(key).sign(URL, {"x": 1}, **kw)))


def resigned(by: RequestSigner, bend: Callable[[str], str]) -> jws.ParsedJWS:
    """A parsed JWS whose signature member was bent by `bend`."""
    signed = by.sign(URL, {})
    return jws.parse(body(with_members(signed, signature=bend(signed["signature"]))))


@pytest.mark.parametrize(
    ("parsed", "key", "problem"),
    [
        pytest.param(lambda: parsed_by(rsa_jwk(n=0)), rsa_jwk(n=1), problems.Malformed, id="other-rsa-key"),
        pytest.param(lambda: parsed_by(ec_jwk(n=0)), ec_jwk(n=1), problems.Malformed, id="other-ec-key"),
        pytest.param(lambda: parsed_by(rsa_jwk(), header={"alg": "ES256"}), rsa_jwk(), problems.BadSignatureAlgorithm,
                     id="es256-claimed-rsa-key"),
        pytest.param(lambda: parsed_by(ec_jwk(), header={"alg": "RS256"}), ec_jwk(), problems.BadSignatureAlgorithm,
                     id="rs256-claimed-ec-key"),
        pytest.param(lambda: parsed_by(ec_jwk("P-384"), header={"alg": "ES256"}), ec_jwk("P-384"),
                     problems.BadSignatureAlgorithm, id="es256-claimed-p384-key"),
        pytest.param(lambda: parsed_by(rsa_jwk(1024)), rsa_jwk(1024), problems.BadPublicKey, id="rsa-1024"),
        pytest.param(lambda: parsed_by(rsa_jwk()), jose.JWKOct(key=b"k" * 32), problems.BadPublicKey,
                     id="symmetric-key"),
        pytest.param(lambda: resigned(S, flip_last_byte), rsa_jwk(), problems.Malformed, id="flipped-bit"),
        pytest.param(lambda: resigned(S, lambda _: b64(b"short")), rsa_jwk(), problems.Malformed,
                     id="short-signature"),
        pytest.param(lambda: resigned(signer(ec_jwk()), lambda _: b64(b"\0" * 64)), ec_jwk(), problems.Malformed,
                     id="zero-ecdsa-signature"),
    ],
)
def test_verify_signature_refuses(parsed: Callable[[], jws.ParsedJWS], key: jose.JWK,
                                  problem: type[problems.AcmeProblem]) -> None:
    with pytest.raises(problems.AcmeProblem) as info:
        jws.verify_signature(parsed(), key.public_key())
    assert type(info.value) is problem, info.value.detail


def test_verify_uses_the_given_key_not_the_embedded_one() -> None:
    """A JWS carrying key A and signed by A must not verify against the stored key B."""
    parsed = parsed_by(rsa_jwk(n=0))
    jws.verify_signature(parsed, rsa_jwk(n=0).public_key())  # control: A verifies
    with pytest.raises(problems.Malformed):
        jws.verify_signature(parsed, rsa_jwk(n=1).public_key())


# --- keys -------------------------------------------------------------------------------

RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
         "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHz"
         "u6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8"
         "awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_thumbprint_matches_rfc7638_example() -> None:
    assert jws.thumbprint(jws.load_jwk(RFC7638_KEY)) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("obj", [{}, {"kty": "RSA"}, {"kty": "EC", "crv": "P-256"}, {"kty": "nope"}, {"kty": 5}],
                         ids=["empty", "rsa-no-n", "ec-no-xy", "unknown-kty", "kty-number"])
def test_load_jwk_refuses(obj: dict[str, Any]) -> None:
    with pytest.raises(problems.Malformed):
        jws.load_jwk(obj)


# --- problem documents ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        (problems.Malformed, "malformed", 400),
        (problems.BadNonce, "badNonce", 400),
        (problems.BadSignatureAlgorithm, "badSignatureAlgorithm", 400),
        (problems.BadPublicKey, "badPublicKey", 400),
        (problems.BadCSR, "badCSR", 400),
        (problems.AccountDoesNotExist, "accountDoesNotExist", 400),
        (problems.Unauthorized, "unauthorized", 403),
        (problems.OrderNotReady, "orderNotReady", 403),
        (problems.RejectedIdentifier, "rejectedIdentifier", 400),
        (problems.UnsupportedIdentifier, "unsupportedIdentifier", 400),
        (problems.RateLimited, "rateLimited", 429),
        (problems.IncorrectResponse, "incorrectResponse", 403),
        (problems.Connection, "connection", 400),
        (problems.DNS, "dns", 400),
        (problems.ServerInternal, "serverInternal", 500),
        (problems.NotFound, "malformed", 404),
        (problems.MethodNotAllowed, "malformed", 405),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_problem_types(cls: type[problems.AcmeProblem], code: str, status: int) -> None:
    doc = cls("why").to_json()
    assert doc == {"type": f"urn:ietf:params:acme:error:{code}", "detail": "why", "status": status}


def test_problem_with_identifier_algorithms_and_subproblems() -> None:
    sub = [problems.RejectedIdentifier("a bad", identifier="a.test"),
           problems.UnsupportedIdentifier("b bad", identifier="1.2.3.4")]
    doc = problems.RejectedIdentifier("two bad", subproblems=sub).to_json()
    assert doc["subproblems"] == [
        {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "a bad",
         "identifier": {"type": "dns", "value": "a.test"}},
        {"type": "urn:ietf:params:acme:error:unsupportedIdentifier", "detail": "b bad",
         "identifier": {"type": "dns", "value": "1.2.3.4"}},
    ]
    assert "identifier" not in doc
    alg = problems.BadSignatureAlgorithm("no", algorithms=["RS256"]).to_json()
    assert alg["algorithms"] == ["RS256"]


def test_problem_round_trip_through_storage() -> None:
    original = problems.Compound("both failed", subproblems=[
        problems.IncorrectResponse("wrong", identifier="a.example.test"),
        problems.Connection("refused", identifier="b.example.test")])
    again = problems.AcmeProblem.from_json(json.loads(json.dumps(original.to_json())))
    assert type(again) is problems.Compound
    assert again.to_json() == original.to_json()


def test_unknown_stored_problem_becomes_server_internal() -> None:
    again = problems.AcmeProblem.from_json({"type": "urn:example:whatever", "detail": "x"})
    assert type(again) is problems.ServerInternal


def test_problem_response() -> None:
    with Flask(__name__).app_context():
        resp = problem_response(problems.RateLimited("slow down", retry_after=30))
    assert resp.status_code == 429
    assert resp.mimetype == PROBLEM_CONTENT_TYPE
    assert resp.headers["Retry-After"] == "30"
    assert resp.get_json() == {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow down",
                               "status": 429}
    with Flask(__name__).app_context():
        plain = problem_response(problems.Malformed("x"))
    assert "Retry-After" not in plain.headers
