"""Leg 2's single shared upstream account, registered lazily and kept on disk.

The key is a P-256 key in DATA_DIR (mode 0600); the account URL per directory sits beside it.
A file lock makes gunicorn workers that start together register one account, not several.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import josepy as jose
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jackdaw import __version__
from jackdaw.settings import Settings

log = logging.getLogger(__name__)

BAD_NONCE_RETRIES = 10


class PatientNetwork(acme_client.ClientNetwork):
    """acme retries a badNonce once; CAs may reject a few percent of nonces, so retry more."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(BAD_NONCE_RETRIES):
            try:
                return self._post_once(*args, **dict(kwargs))
            except messages.Error as error:
                if error.code != "badNonce" or attempt == BAD_NONCE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created if missing), across threads and processes."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_or_create_key(path: Path) -> jose.JWK:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pem = path.read_bytes()
        return jose.JWK.load(pem)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return jose.JWKEC(key=key)


class UpstreamAccount:
    """Hands out a ready ClientV2 for the upstream CA; one per process, built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: acme_client.ClientV2 | None = None

    @property
    def key_path(self) -> Path:
        return self.settings.upstream_key_path

    @property
    def _accounts_path(self) -> Path:
        return self.key_path.with_name("upstream-account.json")

    def client(self) -> acme_client.ClientV2:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def forget(self) -> None:
        """The CA no longer knows our account (e.g. a test CA restarted): register again."""
        with self._lock, file_lock(self.key_path.with_suffix(".lock")):
            accounts = self._read_accounts()
            accounts.pop(self.settings.le_directory, None)
            self._write_accounts(accounts)
            self._client = None

    def _connect(self) -> acme_client.ClientV2:
        verify: bool | str = self.settings.upstream_ca_bundle or True
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.key_path.with_suffix(".lock")):
            key = load_or_create_key(self.key_path)
            net = PatientNetwork(key, alg=jose.ES256, verify_ssl=verify,  # type: ignore[arg-type]  # requests takes a CA path
                                 user_agent=f"jackdaw/{__version__}")
            directory = acme_client.ClientV2.get_directory(self.settings.le_directory, net)
            client = acme_client.ClientV2(directory, net)
            accounts = self._read_accounts()
            url = accounts.get(self.settings.le_directory)
            if url:
                net.account = messages.RegistrationResource(uri=url, body=messages.Registration())
                return client
            registration = messages.NewRegistration.from_data(
                email=self.settings.acme_email, terms_of_service_agreed=True
            )
            try:
                regr = client.new_account(registration)
                url = regr.uri
            except acme_errors.ConflictError as conflict:  # key already registered there
                url = str(conflict.location)
                net.account = messages.RegistrationResource(uri=url, body=messages.Registration())
            log.info("registered upstream account %s at %s", url, self.settings.le_directory)
            accounts[self.settings.le_directory] = url
            self._write_accounts(accounts)
            return client

    def recorded_account_url(self) -> str | None:
        """The account URL recorded for LE_DIRECTORY if its key is on disk: no network, no lock
        (the accounts file is replaced atomically), nothing registered."""
        if not self.key_path.is_file():
            return None
        return self._read_accounts().get(self.settings.le_directory) or None

    def _read_accounts(self) -> dict[str, str]:
        try:
            data = json.loads(self._accounts_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_accounts(self, accounts: dict[str, str]) -> None:
        tmp = self._accounts_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(accounts, indent=2))
        os.replace(tmp, self._accounts_path)
