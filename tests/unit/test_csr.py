"""jackdaw.ra.csr: the finalize-time checks on the client's CSR (sent upstream unchanged)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from jackdaw.protocol import problems
from jackdaw.ra.csr import check_csr, csr_names, parse_csr
from tests.signer import (
    b64,
    csr_b64,
    csr_der,
    ec_private,
    make_csr,
    rsa_jwk,
    rsa_private,
    with_broken_signature,
)

NAMES = ["a.example.test", "b.example.test"]
ACCOUNT_JWK: dict[str, Any] = rsa_jwk(n=0).public_key().to_partial_json()


def parsed(csr: x509.CertificateSigningRequest | bytes) -> x509.CertificateSigningRequest:
    """Through parse_csr, as finalize does: base64url DER in, CSR out."""
    return parse_csr(csr_b64(csr))


@pytest.mark.parametrize(
    ("make", "identifiers"),
    [
        pytest.param(lambda: make_csr(rsa_private(2048, 1), NAMES), NAMES, id="rsa2048"),
        pytest.param(lambda: make_csr(rsa_private(3072, 1), NAMES), NAMES, id="rsa3072"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), NAMES), NAMES, id="p256"),
        pytest.param(lambda: make_csr(ec_private("P-384", 1), NAMES), NAMES, id="p384"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), NAMES, cn=NAMES[0]), NAMES, id="cn-in-sans"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), None, cn="a.example.test"), ["a.example.test"],
                     id="cn-only"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), ["A.Example.TEST", "b.example.test"]), NAMES,
                     id="case-insensitive"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), [*NAMES, "a.example.test"]), NAMES,
                     id="duplicate-san"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), list(reversed(NAMES))), NAMES, id="any-order"),
    ],
)
def test_accepted(make: Callable[[], x509.CertificateSigningRequest], identifiers: list[str]) -> None:
    check_csr(parsed(make()), identifiers, ACCOUNT_JWK)


def ed25519_csr() -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in NAMES]), critical=False)
    return builder.sign(ed25519.Ed25519PrivateKey.generate(), None)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        pytest.param(lambda: with_broken_signature(make_csr(rsa_private(2048, 1), NAMES)), "signature",
                     id="bad-signature-rsa"),
        pytest.param(lambda: with_broken_signature(make_csr(ec_private("P-256", 1), NAMES)), "signature",
                     id="bad-signature-ec"),
        pytest.param(lambda: make_csr(rsa_private(1024, 1), NAMES), "too small", id="rsa1024"),
        pytest.param(lambda: make_csr(ec_private("P-521", 1), NAMES), "secp521r1", id="p521"),
        pytest.param(ed25519_csr, "RSA", id="ed25519"),
        pytest.param(lambda: make_csr(rsa_private(2048, 0), NAMES), "account key", id="account-key-reused"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), NAMES[:1]), "missing: b.example.test",
                     id="name-missing"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), [*NAMES, "c.example.test"]),
                     "not in the order: c.example.test", id="name-extra"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), NAMES, cn="c.example.test"),
                     "not in the order: c.example.test", id="cn-extra"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), ["a.example.test", "c.example.test"]),
                     "missing: b.example.test; not in the order: c.example.test", id="name-swapped"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), None), "missing", id="no-names"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), NAMES, ip_sans=["192.0.2.1"]), "IP address",
                     id="ip-san"),
        pytest.param(lambda: make_csr(ec_private("P-256", 1), ["*.example.test", "b.example.test"]),
                     "not in the order: *.example.test", id="wildcard-for-name"),
    ],
)
def test_refused(make: Callable[[], x509.CertificateSigningRequest | bytes], why: str) -> None:
    with pytest.raises(problems.AcmeProblem) as info:
        check_csr(parsed(make()), NAMES, ACCOUNT_JWK)
    assert type(info.value) is problems.BadCSR, info.value.detail
    assert why in info.value.detail


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(None, problems.Malformed, id="missing"),
        pytest.param("", problems.Malformed, id="empty"),
        pytest.param(123, problems.Malformed, id="number"),
        pytest.param("%%%%", problems.BadCSR, id="not-base64"),
        pytest.param(b64(b"not a CSR at all"), problems.BadCSR, id="not-der"),
        pytest.param(b64(csr_der(make_csr(ec_private("P-256", 1), NAMES))[:-20]), problems.BadCSR, id="truncated"),
        pytest.param(b64(make_csr(ec_private("P-256", 1), NAMES).public_bytes(serialization.Encoding.PEM)),
                     problems.BadCSR, id="pem-not-der"),
        pytest.param("\u00e9\u00e9\u00e9\u00e9", problems.BadCSR, id="non-ascii"),
    ],
)
def test_parse_refuses(value: object, problem: type[problems.AcmeProblem]) -> None:
    with pytest.raises(problems.AcmeProblem) as info:
        parse_csr(value)
    assert type(info.value) is problem, info.value.detail


def test_names_include_cn_and_sans_lowercased() -> None:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CN.Example.Test")])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("San.Example.Test")]), critical=False)
    csr = builder.sign(ec_private("P-256", 1), hashes.SHA256())
    assert csr_names(csr) == {"cn.example.test", "san.example.test"}
