"""RELAY_CERT_DIR: the relay's fullchain.pem and privkey.pem, as nginx reads them.

Every write is atomic (temporary file, fsync, rename, fsync of the directory) and happens under
a file lock, so two gunicorn workers never interleave a key and a certificate; the key is
written first, so fullchain.pem — the file reloads watch — only changes once its key is there.
Two small marker files carry state between runs: `.force-renew` (an operator asked for a
renewal, `jackdaw relay-cert renew --force`) and `.reload-pending` (files changed, the server
has not been reloaded yet).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jackdaw.upstream.account import file_lock

FULLCHAIN = "fullchain.pem"
PRIVKEY = "privkey.pem"
#: the organization of the self-signed certificate nginx starts with; status() recognises it
PLACEHOLDER_ORG = "Jackdaw placeholder"
PLACEHOLDER_DAYS = 90


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` (exact ``mode``) so readers see the old or the new file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_csr(key: ec.EllipticCurvePrivateKey, domain: str) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )


def placeholder(domain: str, now: datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``domain`` and its key, both PEM: enough for nginx to start."""
    now = now or datetime.now(UTC)
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, PLACEHOLDER_ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=PLACEHOLDER_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def matches(leaf: x509.Certificate, key_pem_bytes: bytes) -> bool:
    """Whether the PEM private key belongs to ``leaf``."""
    key = serialization.load_pem_private_key(key_pem_bytes, password=None)
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == leaf.public_key().public_bytes(der, spki)


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in sans.get_values_for_type(x509.DNSName)]


@dataclass(frozen=True)
class CertStatus:
    """What RELAY_CERT_DIR holds now; ``problem`` says why nginx could not use it (or None)."""

    directory: Path
    domain: str
    problem: str | None = None
    subject: str = ""
    issuer: str = ""
    serial: str = ""
    names: tuple[str, ...] = ()
    not_before: datetime | None = None
    not_after: datetime | None = None
    placeholder: bool = False

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def covers_domain(self) -> bool:
        return self.domain in self.names

    def days_left(self, now: datetime | None = None) -> float | None:
        if self.not_after is None:
            return None
        return (self.not_after - (now or datetime.now(UTC))).total_seconds() / 86400

    def renewal_reason(self, renew_days: int, now: datetime | None = None) -> str | None:
        """Why a real certificate must be obtained now, or None while this one is good."""
        if not self.usable:
            return self.problem
        if self.placeholder:
            return "only the self-signed placeholder is installed"
        if not self.covers_domain:
            return f"the certificate does not cover {self.domain} (it has {', '.join(self.names) or 'no names'})"
        days = self.days_left(now)
        assert days is not None
        if days < renew_days:
            return f"the certificate expires in {days:.1f} days (renewal at {renew_days})"
        return None


class CertStore:
    """The relay certificate's directory."""

    def __init__(self, directory: Path, domain: str) -> None:
        self.directory = directory
        self.domain = domain

    @property
    def fullchain(self) -> Path:
        return self.directory / FULLCHAIN

    @property
    def privkey(self) -> Path:
        return self.directory / PRIVKEY

    @property
    def pending_key(self) -> Path:
        """The key of a renewal in flight: its CSR went upstream, its certificate has not come."""
        return self.directory / ".privkey.pending.pem"

    @property
    def force_marker(self) -> Path:
        return self.directory / ".force-renew"

    @property
    def reload_marker(self) -> Path:
        return self.directory / ".reload-pending"

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self.directory / ".lock"):
            yield

    def status(self) -> CertStatus:
        try:
            chain_pem, privkey_pem = self.fullchain.read_bytes(), self.privkey.read_bytes()
        except FileNotFoundError as e:
            return self._unusable(f"no certificate yet ({Path(str(e.filename)).name} missing)")
        except OSError as e:
            return self._unusable(f"cannot read the certificate: {e}")
        try:
            leaf = x509.load_pem_x509_certificates(chain_pem)[0]
        except ValueError as e:
            return self._unusable(f"{FULLCHAIN} holds no PEM certificate: {e}")
        orgs = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        found = CertStatus(
            self.directory, self.domain,
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            serial=format(leaf.serial_number, "x"),
            names=tuple(dns_names(leaf)),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            placeholder=leaf.subject == leaf.issuer and any(a.value == PLACEHOLDER_ORG for a in orgs),
        )
        try:
            if not matches(leaf, privkey_pem):
                return replace(found, problem=f"{PRIVKEY} does not belong to {FULLCHAIN}")
        except (ValueError, TypeError) as e:
            return replace(found, problem=f"{PRIVKEY} holds no usable private key: {e}")
        return found

    def _unusable(self, problem: str) -> CertStatus:
        return CertStatus(self.directory, self.domain, problem=problem)

    def ensure_placeholder(self) -> bool:
        """Write a self-signed certificate unless a usable one is there; True if written."""
        if self.status().usable:
            return False
        with self.locked():
            if self.status().usable:  # another worker was first
                return False
            cert, key = placeholder(self.domain)
            self._write(key, cert)
        return True

    def install(self, privkey_pem: bytes, fullchain_pem: bytes) -> None:
        """Install a new key and chain: the key first, each file atomically, then flag a reload."""
        with self.locked():
            atomic_write(self.reload_marker, b"", 0o600)
            self._write(privkey_pem, fullchain_pem)

    def _write(self, privkey_pem: bytes, fullchain_pem: bytes) -> None:
        atomic_write(self.privkey, privkey_pem, 0o600)
        atomic_write(self.fullchain, fullchain_pem, 0o644)

    def renewal_key(self) -> bytes:
        """The pending renewal's key, made now if there is none (mode 0600 from the start)."""
        with self.locked():
            try:
                return self.pending_key.read_bytes()
            except FileNotFoundError:
                pem = key_pem(new_key())
                atomic_write(self.pending_key, pem, 0o600)
                return pem

    def renewal_csr(self) -> x509.CertificateSigningRequest:
        key = serialization.load_pem_private_key(self.renewal_key(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return make_csr(key, self.domain)

    def install_renewal(self, fullchain_pem: bytes) -> None:
        """Install the chain issued for the pending key, and that key with it."""
        self.install(self.pending_key.read_bytes(), fullchain_pem)
        self.pending_key.unlink(missing_ok=True)

    def drop_renewal(self) -> None:
        self.pending_key.unlink(missing_ok=True)

    # -- markers ---------------------------------------------------------------------------

    def request_force(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(self.force_marker, secrets.token_hex(8).encode(), 0o600)

    def force_token(self) -> str | None:
        try:
            return self.force_marker.read_text()
        except FileNotFoundError:
            return None

    def clear_force(self, token: str) -> None:
        """Remove the force marker unless someone asked again since ``token`` was read."""
        with self.locked():
            if self.force_token() == token:
                self.force_marker.unlink(missing_ok=True)

    def reload_pending(self) -> bool:
        return self.reload_marker.exists()

    def reloaded(self) -> None:
        self.reload_marker.unlink(missing_ok=True)
