"""RequestSigner: signs ACME requests the way clients do, and forges every bad variant.

Not a test module. A signer holds one account key (RSA 2048 or ECDSA), talks to a Flask test
client, fetches nonces with HEAD /acme/new-nonce and builds flattened JWS bodies by hand with
josepy's algorithms, so each part (protected header, payload, signature, top-level members)
can be bent on purpose:

    signer = RequestSigner(client, rsa_jwk())
    signer.new_account()                                  # remembers the kid (account URL)
    signer.post("/acme/new-order", {"identifiers": [...]})
    signer.post("/acme/new-order", {...}, header={"alg": "none"})      # forged header
    signer.post("/acme/new-order", {...}, sign_with=other_key)         # bad signature
    signer.post("/acme/new-order", body=forge.with_unprotected_header(signer.sign(...)))
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

BASE_URL = "http://localhost"
JOSE = "application/jose+json"
PROBLEM = "application/problem+json"
ACME_ERROR = "urn:ietf:params:acme:error:"

#: in `header=` overrides: remove this protected-header member
DROP: Any = object()

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1(),
}
_EC_ALG = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


# --- keys (generated once per test session: RSA generation is the slow part) -------------


@functools.cache
def rsa_private(bits: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """The n-th RSA test key of that size; the same object on every call."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_private(curve: str = "P-256", n: int = 0) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[curve])


def rsa_jwk(bits: int = 2048, n: int = 0) -> jose.JWKRSA:
    return jose.JWKRSA(key=rsa_private(bits, n))


def ec_jwk(curve: str = "P-256", n: int = 0) -> jose.JWKEC:
    return jose.JWKEC(key=ec_private(curve, n))


def natural_alg(key: jose.JWK) -> str:
    if isinstance(key, jose.JWKRSA):
        return "RS256"
    if isinstance(key, jose.JWKEC):
        return _EC_ALG[key.key.curve.name]
    raise TypeError(f"no signature algorithm for {type(key).__name__}")


def b64(data: bytes | str) -> str:
    return jose.b64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj).encode())


def raw_signature(key: jose.JWK, alg: str, signing_input: bytes) -> bytes:
    """A signature over `signing_input` as `alg` says, made with `key` where that is possible.

    "none" gives an empty signature; HS* is the classic confusion attack (HMAC keyed with the
    public key's bytes). Anything else must suit the key.
    """
    if alg == "none":
        return b""
    if alg.startswith("HS"):
        secret = key.public_key().key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hmac.new(secret, signing_input, getattr(hashlib, "sha" + alg[2:])).digest()
    signature: bytes = jose.JWASignature.from_json(alg).sign(key.key, signing_input)
    return signature


class RequestSigner:
    """One ACME client identity (account key + kid) in front of a Flask test client."""

    def __init__(self, client: FlaskClient | None, key: jose.JWK, base_url: str = BASE_URL,
                 nonces: Callable[[], str] | None = None) -> None:
        """`client` may be None for pure unit tests, which then pass `nonces` (or a nonce
        override in every `sign`)."""
        self._client = client
        self._nonces = nonces
        self.key = key
        self.base_url = base_url
        self.kid: str | None = None

    @property
    def client(self) -> FlaskClient:
        assert self._client is not None, "this signer has no test client"
        return self._client

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def alg(self) -> str:
        return natural_alg(self.key)

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = self.key.public_key().to_partial_json()
        return jwk

    @property
    def thumbprint(self) -> str:
        return b64(self.key.thumbprint())

    def key_authorization(self, token: str) -> str:
        return f"{token}.{self.thumbprint}"

    def url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.base_url + path_or_url

    def path(self, path_or_url: str) -> str:
        return path_or_url.removeprefix(self.base_url)

    def nonce(self) -> str:
        if self._nonces is not None:
            return self._nonces()
        resp = self.client.head("/acme/new-nonce")
        assert resp.status_code == 200, resp.status_code
        return str(resp.headers["Replay-Nonce"])

    # -- building ----------------------------------------------------------------------------

    def protected(self, url: str, *, use_jwk: bool | None = None, nonce: Any = None) -> dict[str, Any]:
        """The header a well-behaved client sends: jwk before it has an account, kid after."""
        if use_jwk is None:
            use_jwk = self.kid is None
        header: dict[str, Any] = {"alg": self.alg, "nonce": self.nonce() if nonce is None else nonce,
                                  "url": self.url(url)}
        if use_jwk:
            header["jwk"] = self.public_jwk
        else:
            assert self.kid is not None, "no account yet: call new_account() first"
            header["kid"] = self.kid
        return header

    def sign(
        self,
        url: str,
        payload: Mapping[str, Any] | bytes | None = None,
        *,
        header: Mapping[str, Any] | None = None,
        use_jwk: bool | None = None,
        sign_with: jose.JWK | None = None,
        sign_alg: str | None = None,
        raw_payload: str | None = None,
    ) -> dict[str, str]:
        """A flattened JWS. `header` overrides protected members (DROP removes one);
        `sign_with`/`sign_alg` sign with another key or algorithm than the header claims;
        `raw_payload` replaces the payload member after signing (tampering, bad base64)."""
        overrides = dict(header or {})
        # a nonce override (even DROP) means no fresh nonce is fetched for this request
        protected = self.protected(url, use_jwk=use_jwk, nonce=overrides.get("nonce"))
        for name, value in overrides.items():
            if value is DROP:
                protected.pop(name, None)
            else:
                protected[name] = value
        body = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
        protected_b64 = b64json(protected)
        payload_b64 = b64(body)
        key = sign_with or self.key
        if sign_alg is None:
            claimed = protected.get("alg")
            if isinstance(claimed, str) and (claimed == "none" or claimed.startswith("HS")
                                             or claimed == natural_alg(key)):
                sign_alg = claimed
            else:  # the header lies about the algorithm, or has none: sign as the key can
                sign_alg = natural_alg(key)
        signature = raw_signature(key, sign_alg, f"{protected_b64}.{payload_b64}".encode())
        return {
            "protected": protected_b64,
            "payload": payload_b64 if raw_payload is None else raw_payload,
            "signature": b64(signature),
        }

    # -- sending -----------------------------------------------------------------------------

    def send(self, path: str, body: bytes | str | Mapping[str, Any], content_type: str | None = JOSE,
             headers: Mapping[str, str] | None = None) -> TestResponse:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        kwargs: dict[str, Any] = {"data": data, "headers": dict(headers or {})}
        if content_type is not None:
            kwargs["content_type"] = content_type
        return self.client.post(self.path(path), **kwargs)

    def post(self, url: str, payload: Mapping[str, Any] | bytes | None = None, *,
             content_type: str | None = JOSE, **sign_kwargs: Any) -> TestResponse:
        return self.send(url, self.sign(url, payload, **sign_kwargs), content_type)

    def post_as_get(self, url: str) -> TestResponse:
        return self.post(url, b"")

    def new_account(self, **payload: Any) -> TestResponse:
        payload.setdefault("termsOfServiceAgreed", True)
        resp = self.post("/acme/new-account", payload, use_jwk=True)
        if resp.status_code in (200, 201):
            self.kid = resp.headers["Location"]
        return resp


# --- forgeries of a signed flattened JWS (each returns a new body) ---------------------------


def with_unprotected_header(jws: Mapping[str, str], header: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {**jws, "header": dict(header or {"kid": "x"})}


def as_general_serialization(jws: Mapping[str, str]) -> dict[str, Any]:
    """The same signature in the general JSON form (`signatures` array)."""
    return {"payload": jws["payload"],
            "signatures": [{"protected": jws["protected"], "signature": jws["signature"]}]}


def with_members(jws: Mapping[str, str], **members: Any) -> dict[str, Any]:
    """Replace (or, with DROP, remove) top-level members."""
    out: dict[str, Any] = dict(jws)
    for name, value in members.items():
        if value is DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def flip_last_byte(b64_value: str) -> str:
    raw = bytearray(jose.b64.b64decode(b64_value))
    raw[-1] ^= 0x01
    return b64(bytes(raw))


# --- a test client that checks what every ACME response must carry -------------------------

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,}$")


def check_acme_response(resp: TestResponse, base_url: str = BASE_URL) -> None:
    """RFC 8555 §6.5 and §7.1: every response has a fresh Replay-Nonce and Link rel="index";
    errors are problem documents (RFC 7807) with an ACME type, never a 500."""
    where = f"{resp.request.method} {resp.request.path} -> {resp.status_code}"
    assert resp.status_code < 500, f"{where}: {resp.get_data(as_text=True)[:500]}"
    assert _NONCE.match(resp.headers.get("Replay-Nonce", "")), f"{where}: no usable Replay-Nonce"
    assert f'<{base_url}/directory>;rel="index"' in resp.headers.getlist("Link"), f"{where}: no Link rel=index"
    if resp.status_code >= 400:
        assert resp.mimetype == PROBLEM, f"{where}: error with content type {resp.mimetype}"
        doc = resp.get_json(force=True)
        assert str(doc.get("type", "")).startswith(ACME_ERROR), f"{where}: {doc}"
        assert doc.get("status") == resp.status_code, f"{where}: {doc}"
        assert isinstance(doc.get("detail"), str) and doc["detail"], f"{where}: {doc}"


class AcmeTestClient(FlaskClient):
    """FlaskClient that runs `check_acme_response` on every response it returns."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        resp = super().open(*args, **kwargs)
        check_acme_response(resp)
        return resp


def problem_type(resp: TestResponse) -> str:
    """The problem code (`malformed`, `badNonce`, ...) of an error response."""
    doc = resp.get_json(force=True)
    return str(doc["type"]).removeprefix(ACME_ERROR)


# --- CSRs -------------------------------------------------------------------------------


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def make_csr(key: PrivateKey, sans: list[str] | None, cn: str | None = None,
             ip_sans: list[str] | None = None) -> x509.CertificateSigningRequest:
    """A CSR signed by `key` with these DNS SANs (None: no SAN extension) and optional CN."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    general: list[x509.GeneralName] = [x509.DNSName(n) for n in sans or []]
    general += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_sans or []]
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(key, hashes.SHA256())


def csr_der(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.DER)


def csr_b64(csr: x509.CertificateSigningRequest | bytes) -> str:
    return b64(csr if isinstance(csr, bytes) else csr_der(csr))


def with_broken_signature(csr: x509.CertificateSigningRequest) -> bytes:
    """The same CSR DER with the last signature bit flipped (still parses, no longer verifies)."""
    der = bytearray(csr_der(csr))
    der[-1] ^= 0x01
    return bytes(der)
