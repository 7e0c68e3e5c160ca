"""`jackdaw backup` / `jackdaw restore`, the real CLI against a real Pebble, on SQLite and PostgreSQL.

A relay with its upstream account (registered at Pebble, key encrypted with a passphrase), an
EAB key and certificates is backed up while something keeps writing to its database; the file
is 0600 and never replaced without --force; restored into a fresh DATA_DIR / database, the
relay has the same upstream account (URL and key: Pebble knows it, nothing registers again),
the same EAB key and the same certificates; a database holding data is not restored over.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from jackdaw import migrate
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.models import Account, Certificate, EabKey, Nonce, Order, new_id, utcnow
from jackdaw.upstream.account import UpstreamAccount
from tests.integration.conftest import relay_settings
from tests.relay import ROOT, postgres_database
from tests.testbed import Bind, Pebble

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def pebble(bind: Bind, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble"), bind.port) as server:
        yield server


@contextmanager
def fresh_database(backend: str, data_dir: Path) -> Iterator[str]:
    data_dir.mkdir(mode=0o700)
    if backend == "sqlite":
        yield f"sqlite:///{data_dir / 'jackdaw.db'}"
    else:
        with postgres_database() as url:
            yield url


def jackdaw(url: str, data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR", "JACKDAW_ENV_FILE")}
    return subprocess.run([sys.executable, "-m", "jackdaw.cli", *argv], cwd=data_dir.parent, capture_output=True,
                          text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "DATA_DIR": str(data_dir)})


def upstream(url: str, data_dir: Path, pebble: Pebble) -> UpstreamAccount:
    settings = relay_settings(url, data_dir, LE_DIRECTORY=pebble.directory_url, UPSTREAM_CA_BUNDLE=str(pebble.ca_pem),
                              UPSTREAM_KEY_PASSPHRASE=PASSPHRASE)
    return UpstreamAccount(settings, make_sessionmaker(make_engine(url)))


def contents(url: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            keys = [(k.name, k.kid, k.hmac_key) for k in s.scalars(select(EabKey).order_by(EabKey.name))]
            certs = [(c.serial, c.chain_pem, c.order_id)
                     for c in s.scalars(select(Certificate).order_by(Certificate.serial))]
    finally:
        engine.dispose()
    return keys, certs


def seed_certificates(url: str) -> None:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as s:
            account = Account(thumbprint="tp-backup", jwk={"kty": "EC"}, status="valid", contact=[])
            s.add(account)
            s.flush()
            for n, serial in enumerate(("0a1b", "0c2d")):
                order = Order(id=new_id(), account_id=account.id, status="valid", identifiers=[f"h{n}.example.test"],
                              expires=utcnow() + timedelta(days=7))
                s.add(order)
                s.flush()
                s.add(Certificate(order_id=order.id, serial=serial, chain_pem=f"-----BEGIN CERTIFICATE-----\n{n}\n",
                                  not_after=utcnow() + timedelta(days=80)))
    finally:
        engine.dispose()


@contextmanager
def busy(url: str) -> Iterator[list[int]]:
    """A writer committing nonces meanwhile, as a running relay does."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    stop, written = threading.Event(), [0]

    def write() -> None:
        while not stop.is_set():
            with sessions.begin() as s:
                s.add(Nonce(value=new_id(), expires=utcnow() + timedelta(minutes=5)))
            written[0] += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        yield written
    finally:
        stop.set()
        thread.join()
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_restored_relay_has_its_account_keys_and_certificates(
        backend: str, tmp_path: Path, pebble: Pebble, caplog: pytest.LogCaptureFixture) -> None:
    with fresh_database(backend, tmp_path / "old") as old_url, fresh_database(backend, tmp_path / "new") as new_url:
        old_dir, new_dir = tmp_path / "old", tmp_path / "new"
        migrate.upgrade(old_url)
        account = upstream(old_url, old_dir, pebble)
        account_url = str(account.client().net.account.uri)
        thumbprint = account.key().thumbprint()
        made = jackdaw(old_url, old_dir, "eab", "add", "team-a", "--allow", "example.test", "--json")
        assert made.returncode == 0, made.stderr
        seed_certificates(old_url)
        before = contents(old_url)
        assert before[0][0][2] == json.loads(made.stdout)["hmac_key"] and len(before[1]) == 2

        backup = tmp_path / "jackdaw.backup"
        old_umask = os.umask(0)  # the file is 0600 whatever the umask
        try:
            with busy(old_url) as written:
                done = jackdaw(old_url, old_dir, "backup", str(backup))
        finally:
            os.umask(old_umask)
        assert done.returncode == 0, done.stderr
        assert written[0] > 0
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        assert str(backup) in done.stdout and ("sqlite" if backend == "sqlite" else "postgresql") in done.stdout
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left
        if backend == "sqlite":
            with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as copy:
                assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file

        again = jackdaw(old_url, old_dir, "backup", str(backup))
        assert again.returncode == 1 and "exists" in again.stderr and "--force" in again.stderr
        assert jackdaw(old_url, old_dir, "backup", "--force", str(backup)).returncode == 0
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600

        if backend == "postgres":  # as the unit's ExecStartPre leaves a new database: empty, at head
            migrate.upgrade(new_url)
        restored = jackdaw(new_url, new_dir, "restore", str(backup))
        assert restored.returncode == 0, restored.stderr
        assert "schema at head" in restored.stdout
        if backend == "sqlite":
            assert stat.S_IMODE((new_dir / "jackdaw.db").stat().st_mode) == 0o600
        assert jackdaw(new_url, new_dir, "db", "current").returncode == 0

        assert contents(new_url) == before  # the EAB key (its HMAC key too) and the certificates
        back = upstream(new_url, new_dir, pebble)
        assert back.recorded_account_url() == account_url
        assert back.key().thumbprint() == thumbprint  # decrypted with the same passphrase
        with caplog.at_level(logging.INFO, logger="jackdaw.upstream.account"):
            assert str(back.client().net.account.uri) == account_url
        assert not [r for r in caplog.records if "registered upstream account" in r.message]
        listed = jackdaw(new_url, new_dir, "certificates", "--json")
        assert sorted(c["serial"] for c in json.loads(listed.stdout)) == ["0a1b", "0c2d"]

        refused = jackdaw(new_url, new_dir, "restore", str(backup))
        assert refused.returncode == 1 and "holds data" in refused.stderr and "--force" in refused.stderr
        forced = jackdaw(new_url, new_dir, "restore", "--force", str(backup))
        assert forced.returncode == 0, forced.stderr
        assert contents(new_url) == before


def test_restore_refuses_what_is_not_a_backup_of_its_kind(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'jackdaw.db'}"
    (tmp_path / "notes.txt").write_text("hello\n")
    proc = jackdaw(url, data_dir, "restore", str(tmp_path / "notes.txt"))
    assert proc.returncode == 1 and "is not a `jackdaw backup`" in proc.stderr
    (tmp_path / "pg.dump").write_bytes(b"PGDMP\x01\x0e\x00")
    proc = jackdaw(url, data_dir, "restore", str(tmp_path / "pg.dump"))
    assert proc.returncode == 1 and "is a postgresql backup, but DATABASE_URL is sqlite" in proc.stderr
    assert not (data_dir / "jackdaw.db").exists()
    (tmp_path / "bad.db").write_bytes(b"SQLite format 3\x00 and then no database")
    proc = jackdaw(url, data_dir, "restore", str(tmp_path / "bad.db"))
    assert (proc.returncode, proc.stderr) == (1, "error: SQLite: file is not a database\n")
    proc = jackdaw(url, data_dir, "backup", str(tmp_path / "b.db"))  # nothing to back up: no database made
    assert proc.returncode == 1 and "no database" in proc.stderr
    assert not (data_dir / "jackdaw.db").exists() and not (tmp_path / "b.db").exists()
    migrate.upgrade(url)
    proc = jackdaw(url, data_dir, "backup", "--force", str(tmp_path))
    assert (proc.returncode, proc.stderr) == (1, f"error: {tmp_path} is a directory: name the backup file\n")
    proc = jackdaw(url, data_dir, "backup", str(tmp_path / "no-such-dir" / "b.db"))
    assert proc.returncode == 1 and "no directory" in proc.stderr and "Traceback" not in proc.stderr
