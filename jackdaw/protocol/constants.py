"""Every RFC 8555 string once (as Pebble's acme/common.go)."""

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"
    EXPIRED = "expired"


IDENTIFIER_DNS = "dns"
CHALLENGE_HTTP01 = "http-01"

JOSE_CONTENT_TYPE = "application/jose+json"
PROBLEM_CONTENT_TYPE = "application/problem+json"
PEM_CHAIN_CONTENT_TYPE = "application/pem-certificate-chain"

MAX_IDENTIFIERS = 100
#: Retry-After (seconds) sent on pending/processing polls; short so clients finish quickly
RETRY_AFTER_SECONDS = 1
