"""Poll views on SQLite (wfe.transaction.reads): reads outside the write lock, nonce spent once.

A poll (POST-as-GET of an order, authorization or certificate) used to run in one BEGIN
IMMEDIATE transaction, so every poll of every worker waited for SQLite's one write lock for the
whole of its view. Now it reads in a deferred transaction and holds the lock only for its
nonce's DELETE; a poll that must change something is run again as a writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from jackdaw.models import Order, utcnow
from tests.integration.test_acme_flow import (  # noqa: F401 - fixtures
    Relay,
    alice,
    bob,
    new_order,
    ok,
    problem,
    relay,
    web,
)
from tests.signer import RequestSigner

# SQLite only: PostgreSQL has row locks, and there every view is one transaction
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def transactions(relay: Relay) -> Iterator[list[list[str]]]:
    """Each SQLite transaction the relay runs, as the list of its statements' first words."""
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

    def on_end(conn: Any) -> None:
        stmts = open_.pop(id(conn.connection.dbapi_connection), None)
        if stmts:
            done.append(stmts)

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    yield done
    event.remove(engine, "before_cursor_execute", on_statement)
    event.remove(engine, "commit", on_end)
    event.remove(engine, "rollback", on_end)


def test_a_poll_reads_outside_the_write_lock(relay: Relay, alice: RequestSigner,
                                             transactions: list[list[str]]) -> None:
    order_url, _ = new_order(alice, "poll.ok.example.test")
    transactions.clear()
    assert ok(alice.post_as_get(order_url))["status"] == "pending"
    refills = ["BEGIN IMMEDIATE", "INSERT INTO NONCES"]  # a new batch of nonces, if one was due
    writes = [t for t in transactions if t[0] == "BEGIN IMMEDIATE" and t != refills]
    reads = [t[1:] for t in transactions if t[0] == "BEGIN"]
    # the write lock is taken for the nonce alone; the account and the order are read without it
    assert writes == [["BEGIN IMMEDIATE", "DELETE FROM NONCES"]], transactions
    assert [[s.split(".")[0] for s in t] for t in reads] == [["SELECT ACCOUNTS", "SELECT ORDERS"]], transactions


def test_an_order_found_expired_by_a_poll_is_kept_and_its_nonce_spent_once(
        relay: Relay, alice: RequestSigner) -> None:
    order_url, _ = new_order(alice, "late.ok.example.test")
    with relay.runtime.sessions.begin() as s:
        s.execute(update(Order).where(Order.id == order_url.rsplit("/", 1)[-1])
                  .values(expires=utcnow() - timedelta(seconds=1)))
    body = alice.sign(order_url, b"")
    assert ok(alice.send(order_url, body))["status"] == "invalid"  # the read run found it, the writer kept it
    assert relay.order_row(order_url).status == "invalid"
    problem(alice.send(order_url, body), "badNonce", 400)  # the same JWS again: its nonce is spent


def test_a_failed_poll_spends_its_nonce(relay: Relay, alice: RequestSigner, bob: RequestSigner) -> None:
    order_url, _ = new_order(alice, "mine.ok.example.test")
    body = bob.sign(order_url, b"")
    problem(bob.send(order_url, body), "malformed", 404)  # not bob's: reported as missing
    problem(bob.send(order_url, body), "badNonce", 400)
