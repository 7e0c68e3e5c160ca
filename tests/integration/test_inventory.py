"""The current certificate per name set (jackdaw.inventory), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from jackdaw import inventory
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.models import Account, Certificate, Order, utcnow

NOW = utcnow()


def _issue(s: Session, account: Account, names: list[str], days_left: float, revoked: bool = False,
           age_days: float = 1) -> Certificate:
    order = Order(account_id=account.id, status="valid", expires=NOW + timedelta(days=7), identifiers=names)
    s.add(order)
    s.flush()
    cert = Certificate(order_id=order.id, serial=f"{len(names)}{days_left}", chain_pem="-",
                       not_after=NOW + timedelta(days=days_left), created=NOW - timedelta(days=age_days),
                       revoked=NOW if revoked else None)
    s.add(cert)
    s.flush()
    return cert


def test_newest_unrevoked_certificate_per_name_set_and_what_is_due(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as s:
            alice = Account(thumbprint="a", jwk={}, status="valid")
            bob = Account(thumbprint="b", jwk={}, status="valid")
            s.add_all([alice, bob])
            s.flush()
            _issue(s, alice, ["www.example.test", "example.test"], 5, age_days=85)
            renewed = _issue(s, bob, ["example.test", "WWW.example.test"], 80)  # same set, other client
            _issue(s, alice, ["www.example.test", "example.test"], 89, revoked=True)  # never current
            due = _issue(s, alice, ["old.example.test"], 3)
            expired = _issue(s, alice, ["gone.example.test"], -2)
            _issue(s, alice, ["long-gone.example.test"], -40)  # out of sight
            current = inventory.current_certificates(s, NOW)
            assert [(c.names, c.certificate_id) for c in current] == [
                (("gone.example.test",), expired.id),
                (("old.example.test",), due.id),
                (("example.test", "www.example.test"), renewed.id),
            ]
            assert [c.certificate_id for c in inventory.due_for_renewal(s, timedelta(days=10), NOW)] == [
                expired.id, due.id]
            assert round(current[1].days_left(NOW)) == 3
    finally:
        engine.dispose()
