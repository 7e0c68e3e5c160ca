"""The benchmarks' lean ACME load client: raw JWS with `cryptography`, `http.client` keep-alive.

A load generator shares this machine's two cores with the server it measures, so every
millisecond it spends is one the server does not get. josepy's JWS objects and `requests` cost
more per request than the servers under test do (a poll signed and sent through them costs
about 1.5 ms of client CPU); this client builds the same flattened JWS (RFC 8555 §6.2, ES256,
`kid`) by hand and speaks HTTP/1.1 over one persistent connection. Nothing is skipped: every
request carries a fresh nonce from HEAD newNonce, is signed, and its answer is parsed.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

JOSE = "application/jose+json"
_ES256 = ec.ECDSA(hashes.SHA256())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LeanClient:
    """One keep-alive connection to one ACME server, signing as one account (`kid`)."""

    def __init__(self, base_url: str, key_pem: bytes, kid: str, verify: bool | str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.timeout = timeout
        if self.https:
            self.context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.key = key
        self.kid = kid
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = (http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
                         if self.https else http.client.HTTPConnection(self.host, self.port, timeout=self.timeout))
        return self.conn

    def request(self, method: str, url: str, body: bytes | None = None) -> Answer:
        """One request on the kept connection; a connection the server closed is reopened once."""
        path = urlsplit(url)._replace(scheme="", netloc="").geturl()
        headers = {"Content-Type": JOSE} if body is not None else {}
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return Answer(resp.status, resp.headers, data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def signed(self, url: str, nonce: str, payload: dict[str, Any] | None) -> bytes:
        """The flattened JWS of ``payload`` (None: POST-as-GET's empty payload)."""
        protected = b64(json.dumps({"alg": "ES256", "kid": self.kid, "nonce": nonce, "url": url},
                                   separators=(",", ":")).encode())
        body = "" if payload is None else b64(json.dumps(payload, separators=(",", ":")).encode())
        der = self.key.sign(f"{protected}.{body}".encode(), _ES256)
        r, s = decode_dss_signature(der)
        signature = b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return json.dumps({"protected": protected, "payload": body, "signature": signature}).encode()

    def post(self, new_nonce_url: str, url: str, payload: dict[str, Any] | None) -> Answer:
        """HEAD newNonce, then the signed POST with that nonce (what a stateless client does)."""
        head = self.request("HEAD", new_nonce_url)
        nonce = head.headers.get("Replay-Nonce")
        if head.status != 200 or not nonce:
            raise NonceFailed(f"newNonce {head.status}{'' if nonce else ' no nonce'}")
        return self.request("POST", url, self.signed(url, nonce, payload))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class NonceFailed(Exception):
    pass
