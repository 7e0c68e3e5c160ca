"""The deployment's one upstream account, in the database, against a real Pebble: instances
(separate engines and data directories) racing at first use register one account and share its
key; an older DATA_DIR key is imported once and keeps the same account; the key at rest is
encrypted when UPSTREAM_KEY_PASSPHRASE is set."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.envparse import ConfigError
from jackdaw.models import UpstreamAccount as AccountRow
from jackdaw.settings import Settings
from jackdaw.upstream.account import LEGACY_ACCOUNTS_FILE, LEGACY_KEY_FILE, UpstreamAccount, new_key_pem
from tests.integration.conftest import relay_settings
from tests.testbed import Bind, Pebble


@pytest.fixture(scope="module")
def pebble(bind: Bind, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble"), bind.port, nonce_reject=5) as server:
        yield server


def instance(database_url: str, data_dir: Path, pebble: Pebble, **extra: str) -> UpstreamAccount:
    """One relay instance's view: its own engine and DATA_DIR, the shared database."""
    settings: Settings = relay_settings(database_url, data_dir, LE_DIRECTORY=pebble.directory_url,
                                        UPSTREAM_CA_BUNDLE=str(pebble.ca_pem), **extra)
    return UpstreamAccount(settings, make_sessionmaker(make_engine(database_url)))


def rows(account: UpstreamAccount) -> list[AccountRow]:
    with account.sessions() as s:
        return list(s.scalars(select(AccountRow)))


def test_instances_racing_at_first_use_register_one_account(
        database_url: str, tmp_path: Path, pebble: Pebble, caplog: pytest.LogCaptureFixture) -> None:
    accounts = [instance(database_url, tmp_path / f"host-{i}", pebble) for i in range(6)]
    urls: list[str] = []
    barrier = threading.Barrier(len(accounts))

    def first_use(account: UpstreamAccount) -> None:
        barrier.wait()
        client = account.client()
        urls.append(str(client.net.account.uri))

    with caplog.at_level(logging.INFO, logger="jackdaw.upstream.account"):
        threads = [threading.Thread(target=first_use, args=(a,)) for a in accounts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(urls) == len(accounts) and len(set(urls)) == 1
    assert [r.message for r in caplog.records].count(f"registered upstream account {urls[0]} at "
                                                     f"{pebble.directory_url}") == 1
    [row] = rows(accounts[0])
    assert row.account_url == urls[0] and not row.key_encrypted
    thumbprints = {a.key().thumbprint() for a in accounts}
    assert len(thumbprints) == 1
    assert not any((tmp_path / f"host-{i}" / LEGACY_KEY_FILE).exists() for i in range(6))  # nothing on disk


def test_a_key_from_data_dir_is_imported_once_and_keeps_its_account(
        database_url: str, tmp_path: Path, pebble: Pebble) -> None:
    """Upgrading from a version that kept the account in DATA_DIR: the same key, the same URL."""
    old = tmp_path / "old-host"
    old.mkdir()
    pem = new_key_pem()
    (old / LEGACY_KEY_FILE).write_bytes(pem)
    (old / LEGACY_ACCOUNTS_FILE).write_text(json.dumps({pebble.directory_url: "https://recorded/acct/7"}))
    first = instance(database_url, old, pebble)
    key = first.key()
    [row] = rows(first)
    assert row.account_url == "https://recorded/acct/7"
    assert not (old / LEGACY_KEY_FILE).exists()  # the plain-text copy goes once the database holds the key

    other = tmp_path / "other-host"  # a second instance with another key on disk: ignored
    other.mkdir()
    (other / LEGACY_KEY_FILE).write_bytes(new_key_pem())
    second = instance(database_url, other, pebble)
    assert second.key().thumbprint() == key.thumbprint()
    assert len(rows(second)) == 1
    assert (other / LEGACY_KEY_FILE).exists()  # not the account's key: not ours to delete

    # a registration with the imported key at the CA finds the account the key is registered for
    first.forget()
    url = str(first.client().net.account.uri)
    assert url.startswith(pebble.directory_url.rsplit("/", 1)[0])
    assert second.recorded_account_url() == url


def test_the_key_at_rest_is_encrypted_with_the_passphrase(database_url: str, tmp_path: Path, pebble: Pebble) -> None:
    plain = instance(database_url, tmp_path / "a", pebble)
    thumbprint = plain.key().thumbprint()
    assert not rows(plain)[0].key_encrypted
    assert "PRIVATE KEY-----" in rows(plain)[0].key_pem

    secret_file = tmp_path / "passphrase"
    secret_file.write_text("correct horse battery staple\n")
    sealed = instance(database_url, tmp_path / "b", pebble, UPSTREAM_KEY_PASSPHRASE_FILE=str(secret_file))
    assert sealed.key().thumbprint() == thumbprint  # the stored key, now encrypted in place
    [row] = rows(sealed)
    assert row.key_encrypted and "ENCRYPTED PRIVATE KEY" in row.key_pem
    assert "correct horse" not in repr(row) and "PRIVATE" not in repr(row)

    with pytest.raises(ConfigError, match="UPSTREAM_KEY_PASSPHRASE: the upstream account key in the database is "
                                          "encrypted"):
        instance(database_url, tmp_path / "c", pebble).key()
    with pytest.raises(ConfigError, match="cannot decrypt"):
        instance(database_url, tmp_path / "d", pebble, UPSTREAM_KEY_PASSPHRASE="wrong").key()
    assert instance(database_url, tmp_path / "e", pebble,
                    UPSTREAM_KEY_PASSPHRASE="correct horse battery staple").key().thumbprint() == thumbprint


def test_passphrase_settings_are_checked(tmp_path: Path) -> None:
    base = {"RELAY_DOMAIN": "r.example.test", "ACME_EMAIL": "a@example.test", "DNS_PROVIDER": "rfc2136"}
    with pytest.raises(ConfigError, match="UPSTREAM_KEY_PASSPHRASE_FILE: cannot read"):
        Settings.parse({**base, "UPSTREAM_KEY_PASSPHRASE_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="not both"):
        Settings.parse({**base, "UPSTREAM_KEY_PASSPHRASE": "x", "UPSTREAM_KEY_PASSPHRASE_FILE": "/etc/hostname"})
    assert "pass" not in repr(Settings.parse({**base, "UPSTREAM_KEY_PASSPHRASE": "pass"}))


def test_an_imported_key_file_that_cannot_be_removed_is_renamed_0600(
        database_url: str, tmp_path: Path, pebble: Pebble, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Removal refused (a read-only file system, an immutable file): renamed, 0600, and said."""
    old = tmp_path / "old-host"
    old.mkdir()
    key_file = old / LEGACY_KEY_FILE
    key_file.write_bytes(new_key_pem())
    key_file.chmod(0o644)
    real_unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path == key_file:
            raise PermissionError(1, "Operation not permitted")
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    with caplog.at_level(logging.WARNING, logger="jackdaw.upstream.account"):
        account = instance(database_url, old, pebble, UPSTREAM_KEY_PASSPHRASE="a passphrase")
        key = account.key()
    retired = old / (LEGACY_KEY_FILE + ".imported")
    assert not key_file.exists() and retired.exists()
    assert oct(retired.stat().st_mode & 0o777) == oct(0o600)
    assert [r.getMessage() for r in caplog.records] == [
        f"could not remove {key_file} (Operation not permitted), the upstream account key now held in the "
        f"database: it is {retired}, mode 0600; delete it by hand"]
    assert rows(account)[0].key_encrypted and key.thumbprint() == instance(
        database_url, tmp_path / "x", pebble, UPSTREAM_KEY_PASSPHRASE="a passphrase").key().thumbprint()


def test_a_key_file_left_by_an_earlier_import_is_removed(database_url: str, tmp_path: Path, pebble: Pebble) -> None:
    """Imported by a version that kept the file: the next start finds the same key and removes it."""
    first = instance(database_url, tmp_path / "a", pebble)
    stored = first.key()
    (tmp_path / "b").mkdir()
    with first.sessions() as s:
        pem = s.scalars(select(AccountRow.key_pem)).one()
    (tmp_path / "b" / LEGACY_KEY_FILE).write_text(pem)
    assert instance(database_url, tmp_path / "b", pebble).key().thumbprint() == stored.thumbprint()
    assert not (tmp_path / "b" / LEGACY_KEY_FILE).exists()
