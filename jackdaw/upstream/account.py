"""Leg 2's one upstream account per deployment, kept in the database per directory URL.

Every instance and worker uses the same key and account URL (rows of ``upstream_accounts``),
so an upstream order made by one instance can be finished, revoked or replaced by any other.

- The key row is created first (INSERT, first writer wins) and everyone reads the winner's key
  back; registration then runs under a database lock (PostgreSQL advisory lock; SQLite, a file
  on one host: a lock file beside it), so exactly one instance registers. A second newAccount
  with the same key would only find the same account (RFC 8555 §7.3.1) anyway.
- An existing ``DATA_DIR/upstream-account.key`` (and its recorded URL) from a version that kept
  the account on disk is imported once, when the database has no key for the directory yet:
  upgrading keeps the same upstream account, and its rate limits and certificates.
- At rest the key is a PKCS#8 PEM in the database, protected by the database's own access
  control; with UPSTREAM_KEY_PASSPHRASE set it is encrypted with it (a plain key already stored
  is encrypted at the next start). The key is never logged.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import josepy as jose
import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import __version__, logs
from jackdaw.envparse import ConfigError
from jackdaw.models import UpstreamAccount as AccountRow
from jackdaw.models import utcnow
from jackdaw.settings import Settings
from jackdaw.upstream.directory import UpstreamDirectory, UpstreamMeta
from jackdaw.upstream.directory import fetch_directory as fetch_directory  # jackdaw.health's import
from jackdaw.upstream.errors import unreachable_problem

log = logging.getLogger(__name__)

BAD_NONCE_RETRIES = 10
#: seconds a failure to reach the CA keeps refusing new orders without a newer failure (the
#: periodic directory fetch looks again every 10 s meanwhile, and a success clears it)
DOWN_FOR = 60.0
#: the files a version before the database-held account kept in DATA_DIR
LEGACY_KEY_FILE = "upstream-account.key"
LEGACY_ACCOUNTS_FILE = "upstream-account.json"


class PatientNetwork(acme_client.ClientNetwork):
    """acme retries a badNonce once; CAs may reject a few percent of nonces, so retry more.
    And acme turns every 409 into an account ConflictError: a 409 problem document (RFC 9773's
    alreadyReplaced) stays the CA's problem here."""

    @classmethod
    def _check_response(cls, response: requests.Response, content_type: str | None = None) -> requests.Response:
        if response.status_code == 409 and not response.headers.get("Location"):
            try:
                doc = response.json()
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "type" in doc:
                raise messages.Error.from_json(doc)
        checked: requests.Response = super()._check_response(response, content_type=content_type)
        return checked

    def post(self, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(BAD_NONCE_RETRIES):
            try:
                return self._post_once(*args, **dict(kwargs))
            except messages.Error as error:
                if error.code != "badNonce" or attempt == BAD_NONCE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _seal(pem: bytes, passphrase: bytes | None) -> bytes:
    """The key as stored: PKCS#8, encrypted when a passphrase is configured."""
    if passphrase is None:
        return pem
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(passphrase))


def _open(row: AccountRow, passphrase: bytes | None) -> jose.JWK:
    if row.key_encrypted and passphrase is None:
        raise ConfigError("UPSTREAM_KEY_PASSPHRASE: the upstream account key in the database is encrypted; "
                          "set the passphrase it was stored with")
    try:
        key = serialization.load_pem_private_key(row.key_pem.encode(), password=passphrase if row.key_encrypted
                                                 else None)
    except ValueError:
        raise ConfigError("UPSTREAM_KEY_PASSPHRASE: cannot decrypt the upstream account key in the database "
                          "with this passphrase") from None
    return jose.JWK.load(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


def _legacy(settings: Settings) -> tuple[bytes, str | None] | None:
    """The key (and account URL for LE_DIRECTORY) an older version left in DATA_DIR."""
    key_file = settings.data_dir / LEGACY_KEY_FILE
    try:
        pem = key_file.read_bytes()
    except OSError:
        return None
    try:
        urls = json.loads((settings.data_dir / LEGACY_ACCOUNTS_FILE).read_text())
    except (OSError, ValueError):
        urls = {}
    url = urls.get(settings.le_directory) if isinstance(urls, dict) else None
    return pem, str(url) if url else None


def _retire_legacy_key(path: Path, stored: jose.JWK) -> None:
    """Remove the plain-text key an older version left in DATA_DIR once the database holds the
    same key (read back and decrypted above: the import is verified); if it cannot be removed,
    rename it 0600 beside itself and say so. A different key there (another host's) is left."""
    try:
        pem = path.read_bytes()
    except OSError:
        return
    try:
        on_disk = jose.JWK.load(pem)
    except (ValueError, TypeError):
        return
    if on_disk.thumbprint() != stored.thumbprint():
        return
    try:
        path.unlink()
        log.info("removed %s: the upstream account key is in the database now", path)
        return
    except OSError as e:
        problem = e.strerror
    retired = path.with_name(path.name + ".imported")
    try:
        os.chmod(path, 0o600)
        path.rename(retired)
    except OSError:
        retired = path
    log.warning("could not remove %s (%s), the upstream account key now held in the database: it is %s, mode "
                "0600; delete it by hand", path, problem, retired)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (created if missing), across threads and processes."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class UpstreamAccount:
    """Hands out a ready ClientV2 for the upstream CA; the client is built once per process."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._lock = threading.Lock()
        self._client: acme_client.ClientV2 | None = None
        self._meta: UpstreamMeta | None = None
        self._meta_at = 0.0
        #: (monotonic time, log reference, wall-clock time) of the last failure to reach the CA;
        #: None once reached
        self._down: tuple[float, str, datetime] | None = None
        #: the upstream directory's meta, stored for every instance
        self.directory = UpstreamDirectory(settings, sessions, self)

    @property
    def directory_url(self) -> str:
        return self.settings.le_directory

    def client(self) -> acme_client.ClientV2:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    # -- is the CA reachable? New orders are refused at once while it is not ---------------

    def note_unreachable(self, exc: BaseException) -> str:
        """Record a transport failure; returns the reference of the log line with its text."""
        reference = logs.reference()
        self._down = (time.monotonic(), reference, utcnow())
        log.warning("upstream CA %s unreachable (reference %s): %s", self.directory_url, reference, exc)
        return reference

    def note_reachable(self) -> None:
        self._down = None

    def down_at(self) -> datetime | None:
        """When this process last failed to reach the CA (None: it answered since)."""
        down = self._down
        return down[2] if down is not None else None

    def unreachable(self) -> str | None:
        """The log reference of a recent failure to reach the CA, or None."""
        down = self._down
        if down is None or time.monotonic() - down[0] > DOWN_FOR:
            return None
        return down[1]

    def refuse_if_unreachable(self) -> None:
        """For request threads: a short, stable problem now instead of an order that can only fail
        after the client has given up waiting."""
        reference = self.unreachable()
        if reference is not None:
            raise unreachable_problem(reference)

    def forget(self) -> None:
        """The CA no longer knows our account (e.g. a test CA restarted): register again."""
        with self._lock, self.sessions.begin() as s:
            s.execute(update(AccountRow).where(AccountRow.directory_url == self.directory_url)
                      .values(account_url=None))
            self._client = None

    def recorded_account_url(self) -> str | None:
        """The account URL recorded for LE_DIRECTORY: no network, nothing registered."""
        with self.sessions() as s:
            return s.scalar(select(AccountRow.account_url).where(AccountRow.directory_url == self.directory_url))

    def key(self) -> jose.JWK:
        """The account key: stored first (or imported from DATA_DIR), whoever writes first wins."""
        passphrase = self.settings.upstream_key_passphrase
        with self.sessions.begin() as s:
            row = s.get(AccountRow, self.directory_url)
            if row is None:
                legacy = _legacy(self.settings)
                pem, url = legacy if legacy is not None else (new_key_pem(), None)
                dialect = s.get_bind().dialect.name
                ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(AccountRow)
                s.execute(ins.values(directory_url=self.directory_url, key_pem=_seal(pem, passphrase).decode(),
                                     key_encrypted=passphrase is not None, account_url=url)
                          .on_conflict_do_nothing(index_elements=[AccountRow.directory_url]))
                row = s.get(AccountRow, self.directory_url, populate_existing=True)
                assert row is not None
                if legacy is not None:
                    log.info("upstream account key imported from %s into the database (account %s)",
                             self.settings.data_dir / LEGACY_KEY_FILE, url or "not yet registered")
            key = _open(row, passphrase)
            _retire_legacy_key(self.settings.data_dir / LEGACY_KEY_FILE, key)
            if passphrase is not None and not row.key_encrypted:
                row.key_pem = _seal(key.key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()), passphrase).decode()
                row.key_encrypted = True
                log.info("upstream account key is now stored encrypted with UPSTREAM_KEY_PASSPHRASE")
            return key

    def _connect(self) -> acme_client.ClientV2:
        key = self.key()
        verify: bool | str = self.settings.upstream_ca_bundle or True
        net = PatientNetwork(key, alg=jose.ES256, verify_ssl=verify,  # type: ignore[arg-type]  # requests takes a CA path
                             user_agent=f"jackdaw/{__version__}")
        directory = acme_client.ClientV2.get_directory(self.directory_url, net)
        self.note_reachable()
        client = acme_client.ClientV2(directory, net)
        url = self.recorded_account_url()
        if not url:
            with self._registration_lock():
                url = self.recorded_account_url() or self._register(client)
        net.account = messages.RegistrationResource(uri=url, body=messages.Registration())
        return client

    def _register(self, client: acme_client.ClientV2) -> str:
        settings = self.settings
        binding = None
        if settings.le_eab_kid and settings.le_eab_hmac_key:
            assert client.net.key is not None
            binding = messages.ExternalAccountBinding.from_data(client.net.key.public_key(), settings.le_eab_kid,
                                                                settings.le_eab_hmac_key, client.directory)
        elif client.directory.meta.external_account_required:
            raise ConfigError(f"LE_EAB_KID: the upstream CA ({self.directory_url}) requires an external account "
                              "binding: set LE_EAB_KID and LE_EAB_HMAC_KEY to the key id and HMAC key it gave you")
        registration = messages.NewRegistration.from_data(email=settings.acme_email, terms_of_service_agreed=True,
                                                          external_account_binding=binding)
        try:
            url = str(client.new_account(registration).uri)
        except acme_errors.ConflictError as conflict:  # key already registered there
            url = str(conflict.location)
        with self.sessions.begin() as s:
            s.execute(update(AccountRow).where(AccountRow.directory_url == self.directory_url)
                      .values(account_url=url))
        log.info("registered upstream account %s at %s", url, self.directory_url)
        return url

    # -- what the upstream directory offers (profiles, ARI, CAA identities), for requests ----

    def meta(self) -> UpstreamMeta | None:
        """The upstream directory as stored (jackdaw.upstream.directory): request threads read
        this and never fetch."""
        return self.directory.meta()

    def refresh_meta(self) -> UpstreamMeta | None:
        """Fetch the upstream directory now and store it (operator commands, a first use)."""
        return self.directory.refresh()

    @contextmanager
    def _registration_lock(self) -> Iterator[None]:
        """One registration per deployment: a lock every instance sharing the database sees."""
        engine = self.sessions.kw["bind"]
        if engine.dialect.name == "postgresql":
            lock_id = int.from_bytes(hashlib.sha256(f"jackdaw-upstream:{self.directory_url}".encode())
                                     .digest()[:8], "big", signed=True)
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
                    conn.commit()
            return
        database = engine.url.database
        if database and database != ":memory:":
            with file_lock(Path(database).with_name(Path(database).name + ".upstream-lock")):
                yield
        else:
            yield
