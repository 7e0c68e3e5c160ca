"""ACME problem documents (RFC 8555 §6.7, RFC 7807) as exceptions.

Code below the web layer raises these; one Flask error handler renders them.
"""

from __future__ import annotations

from typing import Any, ClassVar

ACME_ERROR_PREFIX = "urn:ietf:params:acme:error:"


class AcmeProblem(Exception):
    code: ClassVar[str] = "serverInternal"
    status: ClassVar[int] = 500

    def __init__(
        self,
        detail: str,
        *,
        subproblems: list[AcmeProblem] | None = None,
        identifier: str | None = None,
        retry_after: int | None = None,
        algorithms: list[str] | None = None,
        location_id: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.subproblems = subproblems or []
        self.identifier = identifier
        self.retry_after = retry_after
        self.algorithms = algorithms
        #: id of an existing account, rendered as a Location header (409 on keyChange)
        self.location_id = location_id

    @property
    def type(self) -> str:
        return ACME_ERROR_PREFIX + self.code

    def to_json(self, with_status: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type, "detail": self.detail}
        if with_status:
            doc["status"] = self.status
        if self.identifier:
            doc["identifier"] = {"type": "dns", "value": self.identifier}
        if self.algorithms:
            doc["algorithms"] = self.algorithms
        if self.subproblems:
            doc["subproblems"] = [p.to_json(with_status=False) for p in self.subproblems]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AcmeProblem:
        """Rebuild a stored problem (order/challenge `error` columns)."""
        code = str(doc.get("type", "")).removeprefix(ACME_ERROR_PREFIX)
        problem_cls = PROBLEM_TYPES.get(code, ServerInternal)
        ident = doc.get("identifier") or {}
        return problem_cls(
            str(doc.get("detail", "")),
            identifier=ident.get("value") if isinstance(ident, dict) else None,
            subproblems=[cls.from_json(s) for s in doc.get("subproblems", []) if isinstance(s, dict)],
        )


def _problem(code: str, status: int) -> type[AcmeProblem]:
    return type(code[0].upper() + code[1:], (AcmeProblem,), {"code": code, "status": status})


ServerInternal = _problem("serverInternal", 500)
Malformed = _problem("malformed", 400)
BadNonce = _problem("badNonce", 400)
BadSignatureAlgorithm = _problem("badSignatureAlgorithm", 400)
BadPublicKey = _problem("badPublicKey", 400)
BadCSR = _problem("badCSR", 400)
AccountDoesNotExist = _problem("accountDoesNotExist", 400)
Unauthorized = _problem("unauthorized", 403)
OrderNotReady = _problem("orderNotReady", 403)
RejectedIdentifier = _problem("rejectedIdentifier", 400)
UnsupportedIdentifier = _problem("unsupportedIdentifier", 400)
UnsupportedContact = _problem("unsupportedContact", 400)
InvalidContact = _problem("invalidContact", 400)
UserActionRequired = _problem("userActionRequired", 403)
RateLimited = _problem("rateLimited", 429)
Connection = _problem("connection", 400)
DNS = _problem("dns", 400)
IncorrectResponse = _problem("incorrectResponse", 403)
Caa = _problem("caa", 403)
Compound = _problem("compound", 403)
AlreadyRevoked = _problem("alreadyRevoked", 400)
BadRevocationReason = _problem("badRevocationReason", 400)
ExternalAccountRequired = _problem("externalAccountRequired", 400)
InvalidProfile = _problem("invalidProfile", 400)  # draft-ietf-acme-profiles
AlreadyReplaced = _problem("alreadyReplaced", 409)  # RFC 9773 §7.4
NotFound = _problem("malformed", 404)  # RFC 8555 has no notFound type; Boulder uses malformed + 404
MethodNotAllowed = _problem("malformed", 405)
Conflict = _problem("malformed", 409)
BodyTooLarge = _problem("malformed", 413)
#: not ready (the database away): a 503 with Retry-After, never a half answer
Unavailable = _problem("serverInternal", 503)

PROBLEM_TYPES: dict[str, type[AcmeProblem]] = {
    cls.code: cls
    for cls in (
        ServerInternal, Malformed, BadNonce, BadSignatureAlgorithm, BadPublicKey, BadCSR,
        AccountDoesNotExist, Unauthorized, OrderNotReady, RejectedIdentifier,
        UnsupportedIdentifier, UnsupportedContact, InvalidContact, UserActionRequired,
        RateLimited, Connection, DNS, IncorrectResponse, Caa, Compound, AlreadyRevoked,
        BadRevocationReason, ExternalAccountRequired, InvalidProfile, AlreadyReplaced,
    )
}
