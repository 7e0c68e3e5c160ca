"""Finalize-time CSR checks (RFC 8555 §7.4): the client's CSR is sent upstream unchanged, so
whatever the upstream CA would refuse (other SAN types, must-staple, CA:true, RSA outside
2048-4096 or e != 65537, curves other than P-256/P-384) is refused here first, before the
upstream budget is spent."""

from __future__ import annotations

from typing import Any

import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from jackdaw.protocol import problems
from jackdaw.protocol.jws import load_jwk

_CURVES = ("secp256r1", "secp384r1")


def parse_csr(b64: object) -> x509.CertificateSigningRequest:
    if not isinstance(b64, str) or not b64:
        raise problems.Malformed("finalize needs a 'csr' string (base64url DER)")
    try:
        der = jose.b64.b64decode(b64)
        return x509.load_der_x509_csr(der)
    except (ValueError, TypeError):
        raise problems.BadCSR("CSR is not valid base64url DER") from None


def csr_names(csr: x509.CertificateSigningRequest) -> set[str]:
    names: set[str] = set()
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        pass
    else:
        if san.value.get_values_for_type(x509.IPAddress):
            raise problems.BadCSR("CSR contains IP address SANs, which this relay does not issue")
        others = sorted({type(n).__name__ for n in san.value if not isinstance(n, x509.DNSName)})
        if others:
            raise problems.BadCSR(f"CSR contains SANs other than DNS names ({', '.join(others)}), which the "
                                  "upstream CA refuses")
        names.update(n.lower() for n in san.value.get_values_for_type(x509.DNSName))
    for attr in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value
        names.add((value.decode() if isinstance(value, bytes) else value).lower())
    return names


def _check_extensions(csr: x509.CertificateSigningRequest) -> None:
    """What the upstream CA (Let's Encrypt) refuses at finalize, refused here before it is asked."""
    try:
        features = csr.extensions.get_extension_for_class(x509.TLSFeature).value
    except x509.ExtensionNotFound:
        pass
    else:
        if x509.TLSFeatureType.status_request in features:
            raise problems.BadCSR("CSR asks for OCSP must-staple, which the upstream CA no longer issues")
    try:
        constraints = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        pass
    else:
        if constraints.ca:
            raise problems.BadCSR("CSR asks for a CA certificate (basicConstraints CA:true)")


def check_csr(csr: x509.CertificateSigningRequest, identifiers: list[str], account_jwk: dict[str, Any]) -> None:
    try:
        signed = csr.is_signature_valid
    except Exception:
        signed = False
    if not signed:
        raise problems.BadCSR("CSR signature is invalid")
    _check_extensions(csr)
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise problems.BadCSR(f"RSA key of {key.key_size} bits is too small (2048 at least)")
        if key.key_size > 4096:
            raise problems.BadCSR(f"RSA key of {key.key_size} bits is larger than the upstream CA accepts (4096)")
        if key.public_numbers().e != 65537:
            raise problems.BadCSR(f"RSA public exponent {key.public_numbers().e} is not accepted (65537 only)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise problems.BadCSR(f"ECDSA curve {key.curve.name} is not accepted (P-256 or P-384)")
    else:
        raise problems.BadCSR("CSR key must be RSA (2048 bits or more) or ECDSA P-256/P-384")
    account_key = load_jwk(account_jwk).public_key().key
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_bytes(*spki) == account_key.public_bytes(*spki):
        raise problems.BadCSR("the certificate key must not be the account key")
    names = csr_names(csr)
    wanted = set(identifiers)
    if names != wanted:
        missing, extra = sorted(wanted - names), sorted(names - wanted)
        detail = "CSR names do not match the order's identifiers"
        if missing:
            detail += f"; missing: {', '.join(missing)}"
        if extra:
            detail += f"; not in the order: {', '.join(extra)}"
        raise problems.BadCSR(detail)
