"""The one module that touches josepy's JWS: parse a flattened JWS and verify it.

Order of checks follows Boulder's wfe2/verify.go; account lookup and nonce redemption happen
in the web layer (they need the database) after `parse` and before/after `verify_signature`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

import josepy as jose
from acme import jws as acme_jws

from jackdaw.protocol import problems

MAX_BODY_BYTES = 64 * 1024
ALGORITHMS = ("RS256", "ES256", "ES384", "ES512")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_CURVE_FOR_ALG = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


@dataclass(frozen=True)
class ParsedJWS:
    jws: acme_jws.JWS
    alg: str
    nonce: bytes
    url: str
    jwk: jose.JWK | None
    kid: str | None

    @property
    def payload(self) -> bytes:
        payload: bytes = self.jws.payload
        return payload

    def payload_json(self) -> dict[str, Any]:
        """The payload as a JSON object; POST-as-GET callers check `payload == b''` instead."""
        try:
            obj = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise problems.Malformed("JWS payload is not valid JSON") from None
        if not isinstance(obj, dict):
            raise problems.Malformed("JWS payload must be a JSON object")
        return obj


def parse(body: bytes) -> ParsedJWS:
    """Structure and protected-header checks that need no key and no database."""
    parsed, alg, header = _parse_flattened(body)
    if header.nonce is None:
        raise problems.BadNonce("JWS has no 'nonce' in its protected header")
    if (header.jwk is None) == (header.kid is None):
        raise problems.Malformed("JWS must carry exactly one of 'jwk' and 'kid'")
    return ParsedJWS(jws=parsed, alg=alg, nonce=header.nonce, url=str(header.url), jwk=header.jwk, kid=header.kid)


def parse_inner(payload: bytes) -> ParsedJWS:
    """The inner JWS of a keyChange (RFC 8555 §7.3.5): `jwk` of the new key, no `kid`, no nonce."""
    parsed, alg, header = _parse_flattened(payload)
    if header.nonce is not None:
        raise problems.Malformed("the inner keyChange JWS must not carry a 'nonce'")
    if header.jwk is None or header.kid is not None:
        raise problems.Malformed("the inner keyChange JWS must carry a 'jwk' and no 'kid'")
    return ParsedJWS(jws=parsed, alg=alg, nonce=b"", url=str(header.url), jwk=header.jwk, kid=None)


def _parse_flattened(body: bytes) -> tuple[acme_jws.JWS, str, acme_jws.Header]:
    if len(body) > MAX_BODY_BYTES:
        raise problems.Malformed(f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise problems.Malformed("request body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise problems.Malformed("request body must be a flattened JWS JSON object")
    if "signatures" in obj:
        raise problems.Malformed("JWS with multiple signatures is not allowed; use the flattened form")
    if "header" in obj:
        raise problems.Malformed("JWS unprotected 'header' is not allowed")
    for member in ("protected", "payload", "signature"):
        if not isinstance(obj.get(member), str):
            raise problems.Malformed(f"JWS is missing its '{member}' member")
        # josepy's decoder skips stray characters and padding, and verifies over its own
        # re-encoding: check the text as received (RFC 7515 §2: base64url, no padding).
        if not _is_b64url(obj[member]):
            raise problems.Malformed(f"JWS '{member}' is not unpadded base64url")
    protected = _protected_header(obj["protected"])
    alg = _protected_alg(protected)
    _check_member_types(protected)
    try:
        parsed = cast(acme_jws.JWS, acme_jws.JWS.from_json(obj))
    except (jose.DeserializationError, ValueError, TypeError, KeyError, AttributeError, AssertionError) as exc:
        raise problems.Malformed(f"JWS could not be parsed: {exc}") from None
    header = cast(acme_jws.Header, parsed.signature.combined)
    if not header.url:
        raise problems.Malformed("JWS has no 'url' in its protected header")
    return parsed, alg, header


def _is_b64url(text: str) -> bool:
    return _B64URL.fullmatch(text) is not None and len(text) % 4 != 1


def _protected_header(protected_b64: str) -> dict[str, Any]:
    try:
        protected = json.loads(jose.b64.b64decode(protected_b64))
    except (ValueError, UnicodeDecodeError, TypeError, RecursionError):
        raise problems.Malformed("JWS protected header is not valid base64url JSON") from None
    if not isinstance(protected, dict):
        raise problems.Malformed("JWS protected header must be a JSON object")
    return protected


def _check_member_types(protected: dict[str, Any]) -> None:
    # josepy decodes these members without checking their JSON types (an integer `kid` would
    # surface later as an AttributeError, i.e. a 500). A nonce that cannot be one of ours is a
    # bad nonce (RFC 8555 §6.5.2), so the client retries with a fresh one.
    nonce = protected.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or not _is_b64url(nonce)):
        raise problems.BadNonce("JWS 'nonce' is not a base64url string")
    for member in ("url", "kid"):
        if member in protected and not isinstance(protected[member], str):
            raise problems.Malformed(f"JWS '{member}' must be a string")
    if "jwk" in protected and not isinstance(protected["jwk"], dict):
        raise problems.Malformed("JWS 'jwk' must be a JSON object")


def _protected_alg(protected: dict[str, Any]) -> str:
    # Checked before josepy sees the header: josepy accepts HS256 and "none" is a parse error.
    alg = protected.get("alg")
    if alg not in ALGORITHMS:
        raise problems.BadSignatureAlgorithm(
            f"JWS algorithm {alg!r} is not supported", algorithms=list(ALGORITHMS)
        )
    return str(alg)


EAB_ALGORITHMS = ("HS256", "HS384", "HS512")
_EAB_ALG = {"HS256": jose.HS256, "HS384": jose.HS384, "HS512": jose.HS512}


@dataclass(frozen=True)
class ExternalBinding:
    """The ``externalAccountBinding`` of a newAccount (RFC 8555 §7.3.4), parsed, not verified."""

    jws: jose.JWS
    alg: str
    kid: str
    url: str

    @property
    def payload(self) -> bytes:
        payload: bytes = self.jws.payload
        return payload


def parse_external_binding(obj: Any) -> ExternalBinding:
    """A flattened JWS, MAC'd (HS256/384/512), with ``kid`` and ``url`` and no nonce."""
    if not isinstance(obj, dict) or "signatures" in obj or "header" in obj:
        raise problems.Malformed("'externalAccountBinding' must be a flattened JWS object")
    for member in ("protected", "payload", "signature"):
        if not isinstance(obj.get(member), str) or not _is_b64url(obj[member]):
            raise problems.Malformed(f"'externalAccountBinding' {member!r} is not unpadded base64url")
    protected = _protected_header(obj["protected"])
    alg, kid, url = protected.get("alg"), protected.get("kid"), protected.get("url")
    if alg not in EAB_ALGORITHMS:
        raise problems.Malformed(f"'externalAccountBinding' algorithm {alg!r} is not one of "
                                 f"{', '.join(EAB_ALGORITHMS)}")
    if not isinstance(kid, str) or not kid or not isinstance(url, str):
        raise problems.Malformed("'externalAccountBinding' needs a 'kid' and a 'url' in its protected header")
    if "nonce" in protected:
        raise problems.Malformed("'externalAccountBinding' must not carry a 'nonce'")
    try:
        parsed = jose.JWS.from_json(obj)
    except (jose.DeserializationError, ValueError, TypeError, KeyError, AttributeError):
        raise problems.Malformed("'externalAccountBinding' could not be parsed") from None
    return ExternalBinding(parsed, str(alg), kid, url)


def verify_external_binding(binding: ExternalBinding, hmac_key: bytes, account_key: jose.JWK) -> None:
    """The MAC with the binding's key, over the account's own public key (its payload)."""
    try:
        valid = binding.jws.verify(jose.JWKOct(key=hmac_key))
    except Exception:
        valid = False
    if not valid or binding.jws.signature.combined.alg != _EAB_ALG[binding.alg]:
        raise problems.Unauthorized("'externalAccountBinding' signature does not verify with that key id")
    try:
        bound = load_jwk(json.loads(binding.payload))
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError):
        raise problems.Malformed("'externalAccountBinding' payload is not a JWK") from None
    if bound.thumbprint() != account_key.public_key().thumbprint():
        raise problems.Malformed("'externalAccountBinding' payload is not the account's key")


def verify_signature(parsed: ParsedJWS, key: jose.JWK) -> None:
    """Check the algorithm matches the key, then the signature, always with an explicit key."""
    if isinstance(key, jose.JWKRSA):
        ok = parsed.alg == "RS256"
        if key.key.key_size < 2048:
            raise problems.BadPublicKey("RSA account keys must be at least 2048 bits")
    elif isinstance(key, jose.JWKEC):
        ok = _CURVE_FOR_ALG.get(parsed.alg) == key.key.curve.name
    else:
        raise problems.BadPublicKey("account key type is not supported (RSA or ECDSA only)")
    if not ok:
        raise problems.BadSignatureAlgorithm(
            f"JWS algorithm {parsed.alg} does not match the key", algorithms=list(ALGORITHMS)
        )
    try:
        valid = parsed.jws.verify(key)
    except Exception:  # a malformed signature makes cryptography raise, not return False
        valid = False
    if not valid:
        raise problems.Malformed("JWS signature is invalid")


def thumbprint(key: jose.JWK) -> str:
    """RFC 7638 thumbprint, base64url, as used in key authorizations and account lookup."""
    return jose.b64.b64encode(key.thumbprint()).decode()


def load_jwk(obj: dict[str, Any]) -> jose.JWK:
    """A stored or received public JWK; raises Malformed for anything josepy cannot load."""
    try:
        key = jose.JWK.from_json(obj)
    except (jose.DeserializationError, ValueError, TypeError, KeyError):
        raise problems.Malformed("JWK could not be parsed") from None
    if not isinstance(key, jose.JWK):
        raise problems.Malformed("JWK could not be parsed")
    return key
