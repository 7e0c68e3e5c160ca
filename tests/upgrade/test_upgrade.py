"""Data outlives code: every schema a release shipped is upgraded to head with its rows.

Each data set under tests/upgrade/data/ was written by the release whose head it was
(tests/upgrade/freeze.py). Every one is upgraded on SQLite and on PostgreSQL and checked row by
row; the oldest and the newest are then served by the relay under gunicorn, where the frozen
client account renews its certificate through real Pebble.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import josepy as jose
import pytest
import sqlalchemy as sa
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from alembic import command
from cryptography.hazmat.primitives import serialization

from jackdaw import migrate
from jackdaw.cli import main
from jackdaw.db import make_engine
from jackdaw.protocol.jws import load_jwk, thumbprint
from tests.clients import Issued, Webroot, check_certificate, http01, new_csr
from tests.integration.test_migrations import schema_diff
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port
from tests.upgrade import freeze

SETS = sorted(p.name for p in freeze.DATA.iterdir() if (p / "manifest.json").is_file())
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
#: how to make the data set of a release (the README's Releasing section says when)
FREEZE = "python -m tests.upgrade.freeze"


def manifest(revision: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((freeze.DATA / revision / "manifest.json").read_text())
    return data


def client_account(revision: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((freeze.DATA / revision / "client-account.json").read_text())
    return data


@contextmanager
def loaded(backend: str, revision: str, directory: Path) -> Iterator[str]:
    """The frozen data set in a database of its own; yields its URL."""
    if backend == "sqlite":
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = directory / "jackdaw.db"
        shutil.copyfile(freeze.DATA / revision / "jackdaw.sqlite", db)
        yield f"sqlite:///{db}"
        return
    with postgres_database() as url:
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(freeze.DATA / revision / "postgres.sql"),
                        url.replace("+psycopg", "")], check=True, capture_output=True, timeout=60)
        yield url


def query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = sorted(set(sa.inspect(conn).get_table_names()) - {"alembic_version"})
            return {t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar_one() for t in names}
    finally:
        engine.dispose()


def revision_of(url: str) -> str:
    return str(query(url, "SELECT version_num FROM alembic_version")[0][0])


def check_rows(url: str, revision: str) -> None:
    """Spot values: each account's key, each certificate's PEM, each order's status."""
    spot = manifest(revision)["spot"]
    stored = {i: json.loads(j) if isinstance(j, str) else j for i, j in query(url, "SELECT id, jwk FROM accounts")}
    keys = client_account(revision)["account_keys"]
    assert set(stored) == set(keys)
    for account_id, key_pem in keys.items():
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        assert thumbprint(load_jwk(stored[account_id])) == thumbprint(jose.JWKEC(key=key))
    pems = dict(query(url, "SELECT serial, chain_pem FROM certificates"))
    assert {s: hashlib.sha256(p.encode()).hexdigest() for s, p in pems.items()} == spot["certificates"]
    assert dict(query(url, "SELECT id, status FROM orders")) == spot["orders"]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings as an operator's shell would have them for `jackdaw db upgrade` and `certificates`."""
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "DNS_PROVIDER": "rfc2136",
        "RFC2136_NAMESERVER": "192.0.2.53:5353",
        "RFC2136_TSIG_KEY": "jackdaw-key.",
        "RFC2136_TSIG_SECRET": "dGhpcy1pcy1hLXRzaWctc2VjcmV0LWZvci10ZXN0cw==",
        "LE_DIRECTORY": "https://upstream.invalid/directory",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("JACKDAW_ENV_FILE", raising=False)


def test_every_revision_has_a_data_set() -> None:
    """The release procedure (README, Releasing) freezes the data set of each new migration."""
    missing = freeze.missing()
    assert not missing, (f"no frozen data set for revision(s) {', '.join(missing)}: run `{FREEZE}` "
                         "(writes tests/upgrade/data/<revision>/) and commit what it wrote")


def test_the_data_sets_are_as_frozen() -> None:
    """A data set is never written again: an edit of one of its files is caught here."""
    for revision in SETS:
        assert manifest(revision)["revision"] == revision
        files = manifest(revision)["files"]
        assert set(files) == set(freeze.FILES)
        for name, digest in files.items():
            assert freeze.sha256(freeze.DATA / revision / name) == digest, f"{revision}/{name} was changed"


@pytest.mark.parametrize("revision", SETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_and_back_keeps_every_row(backend: str, revision: str, tmp_path: Path, cli_env: None,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`jackdaw db upgrade` keeps every row, and the schema is then the models'. Down again to
    the data set's revision step by step, each downgrade keeps the rows the older schema can
    hold; up again after. On PostgreSQL the oldest data set's way down takes every step (its
    DDL is plain; SQLite's rebuilds tables, so there every data set goes down)."""
    with loaded(backend, revision, tmp_path / "data") as url:
        assert revision_of(url) == revision
        before = counts(url)
        assert before == manifest(revision)["counts"]

        monkeypatch.setenv("DATABASE_URL", url)
        assert main(["db", "upgrade"]) == 0, capsys.readouterr().err
        engine = make_engine(url)
        try:
            assert migrate.is_at_head(engine)
            assert schema_diff(engine) == []
        finally:
            engine.dispose()
        after = counts(url)
        assert {t: after[t] for t in before} == before
        check_rows(url, revision)
        if revision < "0006":  # leg 2's progress moved from orders to upstream_orders
            moved = dict(query(url, "SELECT owner_id, url FROM upstream_orders WHERE owner_kind = 'order'"))
            assert moved["processingorder00000"] == "https://acme.example.test/order/2"
            assert len(moved) == 4

        capsys.readouterr()
        assert main(["certificates", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert {c["serial"] for c in listed} >= {client_account(revision)["certificate_serial"]}

        if backend == "postgres" and revision != SETS[0]:
            return
        command.downgrade(migrate.alembic_config(url), revision)
        assert revision_of(url) == revision
        assert counts(url) == before
        check_rows(url, revision)
        if revision < "0006":  # leg 2's progress is back on the order
            assert query(url, "SELECT upstream_order_url FROM orders WHERE id = 'processingorder00000'") == [
                ("https://acme.example.test/order/2",)]
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            assert schema_diff(engine) == []
        finally:
            engine.dispose()


#: the tables a revision's downgrade drops with their rows, as the README (Upgrading) promises
DROPS = {"0013": {"upstream_directories"}, "0012": {"issued_sets"}, "0011": {"notifications"},
         "0007": {"eab_keys", "budget_buckets", "upstream_pauses"}, "0006": {"upstream_accounts", "upstream_orders"}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_one_from_head_keeps_what_it_promises(backend: str, tmp_path: Path) -> None:
    """`downgrade -1` from head on the newest data set: only what the last migration promises to
    drop goes; every other table keeps its rows."""
    with loaded(backend, SETS[-1], tmp_path / "data") as url:
        migrate.upgrade(url)
        head = revision_of(url)
        before = counts(url)
        command.downgrade(migrate.alembic_config(url), "-1")
        after = counts(url)
    gone = set(before) - set(after)
    assert {t: before[t] for t in after} == after
    assert gone <= DROPS.get(head, set()), (f"the downgrade of {head} drops {sorted(gone)}: say so in the "
                                            "README (Upgrading) and in DROPS")


def test_an_orphan_left_by_the_migrations_fails_the_upgrade_and_changes_nothing(
        tmp_path: Path, cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite migrations run with foreign keys off; the check at their end names what points
    nowhere, and the whole upgrade rolls back."""
    revision = "0005"
    with loaded("sqlite", revision, tmp_path / "data") as url:
        db = sqlite3.connect(url.removeprefix("sqlite:///"))  # foreign keys off, as in the sqlite3 shell
        with db:
            db.execute("INSERT INTO certificates (id, order_id, serial, chain_pem, not_after, created) "
                       "SELECT 'orphan', 'no-such-order', serial, chain_pem, not_after, created FROM certificates "
                       "LIMIT 1")
        db.close()
        before = counts(url)
        monkeypatch.setenv("DATABASE_URL", url)
        assert main(["db", "upgrade"]) == 1
        err = capsys.readouterr().err
        assert "certificates (1 rows referring to missing orders rows)" in err
        assert revision_of(url) == revision
        assert counts(url) == before
        assert query(url, "SELECT upstream_order_url FROM orders WHERE id = 'processingorder00000'") == [
            ("https://acme.example.test/order/2",)]  # 0006's move of it did not happen either


# --- the frozen client renews through the relay --------------------------------------------


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    with Bind(tmp_path_factory.mktemp("bind"), {"example.test": ["* 60 IN A 127.0.0.1"]}) as server:
        yield server


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, bind: Bind) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble"), bind.port) as server:
        yield server


def frozen_client(directory_url: str, revision: str) -> acme_client.ClientV2:
    """The frozen account, found by its stored key (RFC 8555 §7.3.1 onlyReturnExisting)."""
    frozen = client_account(revision)
    key = jose.JWKEC(key=serialization.load_pem_private_key(frozen["key_pem"].encode(), password=None))
    net = acme_client.ClientNetwork(key, alg=jose.ES256, user_agent="jackdaw-tests")
    client = acme_client.ClientV2(acme_client.ClientV2.get_directory(directory_url, net), net)
    with pytest.raises(acme_errors.ConflictError) as found:
        client.new_account(messages.NewRegistration(only_return_existing=True))
    location = found.value.location
    assert location.rstrip("/").endswith(frozen["account_id"])
    net.account = messages.RegistrationResource(uri=location, body=messages.Registration())
    return client


@pytest.mark.parametrize("revision", sorted({SETS[0], SETS[-1]}))
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_frozen_client_renews_through_the_relay(backend: str, revision: str, tmp_path: Path, bind: Bind,
                                                     pebble: Pebble) -> None:
    frozen = client_account(revision)
    challenge_port = free_port()
    with ExitStack() as stack:
        url = stack.enter_context(loaded(backend, revision, tmp_path / "data"))
        # the frozen jobs fall due a week after the freeze: make them due now, so that this test
        # sees today what it will see every day after (the relay resumes them beside the renewal)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE jobs SET run_at = :past"), {"past": datetime.now(UTC) - timedelta(days=1)})
        engine.dispose()
        env = relay_env(tmp_path, bind, pebble, challenge_port, ALLOWED_DOMAINS="example.test", DATABASE_URL=url)
        relay = stack.enter_context(Relay(tmp_path, env))  # runs `jackdaw db upgrade` first
        listed = relay.cli("certificates", "--json")
        assert listed.returncode == 0, listed.stderr
        assert frozen["certificate_serial"] in {c["serial"] for c in json.loads(listed.stdout)}

        client = frozen_client(relay.directory_url, revision)
        key_pem, csr_pem = new_csr(frozen["names"])
        order = client.new_order(csr_pem)
        www = stack.enter_context(Webroot(tmp_path / "www", challenge_port))
        for authz in order.authorizations:
            challb = http01(authz)
            target = www.root / ".well-known" / "acme-challenge" / challb.chall.encode("token")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(challb.chall.key_authorization(client.net.key))
            client.answer_challenge(challb, challb.response(client.net.key))
        done = client.poll_and_finalize(order, deadline=datetime.now() + timedelta(seconds=90))
        issued = Issued(str(done.fullchain_pem).encode(), key_pem)
        leaf = check_certificate(issued, frozen["names"], pebble.roots_pem())
        renewed = format(leaf.serial_number, "x")
        listed = relay.cli("certificates", "--json")
        assert {frozen["certificate_serial"], renewed} <= {c["serial"] for c in json.loads(listed.stdout)}

