"""newOrder in two phases: checks and rows built outside SQLite's write lock, then stored.

`ra.orders.prepare_order` only reads; `store_order` writes and checks again what others may have
changed in between (a certificate two orders both want to replace).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from jackdaw.models import Account, Certificate, Order, utcnow
from jackdaw.protocol import problems
from jackdaw.ra import orders
from tests.integration.conftest import relay_settings
from tests.integration.test_acme_flow import (  # noqa: F401 - fixtures
    Relay,
    alice,
    new_order,
    relay,
    web,
)
from tests.signer import RequestSigner

#: RFC 9773 §4.1: base64url(keyIdentifier) . base64url(serial 0x01)
ARI_ID = "a2V5.AQ"


def _replaceable(s: Session, account: Account, name: str) -> Certificate:
    order = Order(account_id=account.id, status="valid", expires=utcnow() + timedelta(days=7), identifiers=[name])
    s.add(order)
    s.flush()
    cert = Certificate(order_id=order.id, serial="1", chain_pem="-", not_after=utcnow() + timedelta(days=30),
                       ari_id=ARI_ID)
    s.add(cert)
    s.flush()
    return cert


def test_of_two_orders_replacing_one_certificate_only_the_first_is_stored(relay: Relay, tmp_path: Any) -> None:
    settings = relay_settings(relay.runtime.settings.database_url, tmp_path, ALLOWED_DOMAINS="example.test")
    name = "renew.example.test"
    with relay.runtime.sessions.begin() as s:
        account = Account(thumbprint="t", jwk={}, status="valid")
        s.add(account)
        s.flush()
        cert = _replaceable(s, account, name)
        account_id, cert_id = account.id, cert.id
    payload = {"identifiers": [{"type": "dns", "value": name}], "replaces": ARI_ID}
    with relay.runtime.sessions() as first, relay.runtime.sessions() as second:
        for s in (first, second):  # as newOrder looks: outside SQLite's write lock
            s.connection(execution_options={"read_only": True})
        acct_1, acct_2 = first.get(Account, account_id), second.get(Account, account_id)
        assert acct_1 is not None and acct_2 is not None
        # both look before either stores: both pass the checks
        new_1 = orders.prepare_order(first, acct_1, payload, settings)
        new_2 = orders.prepare_order(second, acct_2, payload, settings)
        first.commit()
        second.commit()
        stored = orders.store_order(first, new_1)
        first.commit()
        with pytest.raises(problems.AlreadyReplaced):
            orders.store_order(second, new_2)
        second.rollback()
    with relay.runtime.sessions() as s:
        replaced = s.get(Certificate, cert_id)
        assert replaced is not None and replaced.replaced_by == stored.id


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_new_order_holds_the_write_lock_only_for_its_rows(relay: Relay, alice: RequestSigner) -> None:
    """SQLite: the account is read, the policy checked and the rows built in a deferred
    transaction; the IMMEDIATE one holds the order's INSERTs and the budget's statements."""
    engine = relay.runtime.engine
    done: list[list[str]] = []
    open_: dict[int, list[str]] = {}

    def on_statement(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = " ".join(statement.split()[:3]).upper()
        key = id(conn.connection.dbapi_connection)
        if words.startswith("BEGIN"):
            open_[key] = [words]
        elif key in open_:
            open_[key].append(words)

    def on_commit(conn: Any) -> None:
        stmts = open_.pop(id(conn.connection.dbapi_connection), None)
        if stmts:
            done.append(stmts)

    new_order(alice, "warm.ok.example.test")  # the first order creates the account's budget buckets
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        new_order(alice, "phases.ok.example.test")
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
    refills = ["BEGIN IMMEDIATE", "INSERT INTO NONCES"]
    writes = [t[1:] for t in done if t[0] == "BEGIN IMMEDIATE" and t != refills]
    reads = [t[1:] for t in done if t[0] == "BEGIN"]
    assert writes[0] == ["DELETE FROM NONCES"], done
    assert [s.split(" ")[0] for s in writes[1]][:3] == ["INSERT", "INSERT", "INSERT"], done  # order, authz, challenge
    assert not any(s.startswith("SELECT ACCOUNTS") for s in writes[1]), done
    assert any(s.startswith("SELECT ACCOUNTS") for t in reads for s in t), done
