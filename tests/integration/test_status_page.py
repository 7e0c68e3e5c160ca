"""The operator's status page (`GET /status`, jackdaw.wfe.status) and `jackdaw status`, on
SQLite and PostgreSQL: who may see it, and what it shows for rows put in the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from jackdaw.cli import main
from jackdaw.models import Account, BudgetBucket, Certificate, Job, Order, UpstreamAccount, utcnow
from jackdaw.upstream.account import new_key_pem

TOKEN = "s3cret-status-token-0123456789"
NOW = utcnow()
PROBLEM = "urn:ietf:params:acme:error:"


@pytest.fixture
def app_env() -> dict[str, str]:
    return {"STATUS_TOKEN": TOKEN}


def plain(app: Flask) -> FlaskClient:
    """No AcmeTestClient checks: the page is not ACME (no nonce, no Link)."""
    return FlaskClient(app, app.response_class)


# -- who may see it ----------------------------------------------------------------------------

LOOPBACK, PRIVATE, PUBLIC = "127.0.0.1", "10.1.2.3", "93.184.216.34"
RELAYED = {"X-Forwarded-For": "203.0.113.7"}


@pytest.mark.parametrize(("peer", "headers", "allowed"), [
    (LOOPBACK, {}, True),
    ("::1", {}, True),
    (PRIVATE, {}, True),  # on gunicorn's own port, from the operators' network
    (PUBLIC, {}, False),
    (LOOPBACK, RELAYED, False),  # through nginx: forwarded, whatever the peer
    (LOOPBACK, {"Forwarded": "for=203.0.113.7"}, False),
    (LOOPBACK, {**RELAYED, "Authorization": f"Bearer {TOKEN}"}, True),
    (PUBLIC, {"Authorization": f"Bearer {TOKEN}"}, True),
    (PUBLIC, {"Authorization": f"bearer  {TOKEN} "}, True),
    (PUBLIC, {"Authorization": f"Bearer {TOKEN[:-1]}"}, False),
    (PUBLIC, {"Authorization": f"Bearer {TOKEN}x"}, False),
    (PUBLIC, {"Authorization": TOKEN}, False),
    (PUBLIC, {"Authorization": f"Basic {TOKEN}"}, False),
    (PUBLIC, {"Authorization": "Bearer "}, False),
])
def test_insiders_or_the_token_only(app: Flask, peer: str, headers: dict[str, str], allowed: bool) -> None:
    order_id = _seed(app).failed
    for path in ("/status", f"/status/order/{order_id}"):
        resp = plain(app).get(path, headers=headers, environ_base={"REMOTE_ADDR": peer})
        body = resp.get_data(as_text=True)
        if allowed:
            assert resp.status_code == 200, body
            assert resp.mimetype == "text/html"
        else:
            assert (resp.status_code, body) == (404, "Not Found\n"), "a refusal says nothing"
            assert "relay.example.test" not in body
        assert "Replay-Nonce" not in resp.headers and "Link" not in resp.headers, "not ACME: no nonce taken"
        assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("app_env", [{}])
def test_without_a_token_only_insiders(app: Flask) -> None:
    for headers in ({"Authorization": "Bearer "}, {"Authorization": "Bearer None"}, RELAYED):
        assert plain(app).get("/status", headers=headers, environ_base={"REMOTE_ADDR": PUBLIC}).status_code == 404
    assert plain(app).get("/status", environ_base={"REMOTE_ADDR": LOOPBACK}).status_code == 200


def test_an_unknown_order_is_refused_like_anything_else(app: Flask) -> None:
    resp = plain(app).get("/status/order/nope", environ_base={"REMOTE_ADDR": LOOPBACK})
    assert (resp.status_code, resp.get_data(as_text=True)) == (404, "Not Found\n")


# -- what it shows -----------------------------------------------------------------------------

@dataclass
class Seeded:
    renewed: str       # serial: the current certificate of {www, apex}
    superseded: str    # serial: the same set's older certificate
    overdue: str       # serial: current, 10 of 90 days left, nobody renewed it
    revoked: str
    failed: str        # order id: dns failure an hour ago
    failed_conn: str   # order id: connection failure
    old_failure: str   # order id: failed 3 days ago (history, not the last 24 h)


def _account(s: Session, tag: str) -> Account:
    account = Account(thumbprint=tag, jwk={}, status="valid")
    s.add(account)
    s.flush()
    return account


def _order(s: Session, account: Account, names: list[str], status: str = "valid", *, age: timedelta,
           error: dict[str, object] | None = None) -> Order:
    when = NOW - age
    order = Order(account_id=account.id, status=status, identifiers=names, created=when, updated=when,
                  expires=when + timedelta(days=7), error=error)
    s.add(order)
    s.flush()
    return order


def _cert(s: Session, account: Account, names: list[str], serial: str, *, issued_days_ago: float,
          lifetime: float = 90, revoked: bool = False) -> Certificate:
    order = _order(s, account, names, age=timedelta(days=issued_days_ago))
    created = NOW - timedelta(days=issued_days_ago)
    cert = Certificate(order_id=order.id, serial=serial, chain_pem="-", created=created,
                       not_after=created + timedelta(days=lifetime), revoked=NOW if revoked else None)
    s.add(cert)
    s.flush()
    return cert


def _seed(app: Flask) -> Seeded:
    rt = app.extensions["jackdaw"]
    with rt.sessions.begin() as s:
        alice, bob = _account(s, "alice"), _account(s, "bob")
        superseded = _cert(s, alice, ["www.example.test", "example.test"], "aa01", issued_days_ago=70)
        renewed = _cert(s, bob, ["example.test", "www.example.test"], "aa02", issued_days_ago=2)
        overdue = _cert(s, alice, ["old.example.test"], "bb01", issued_days_ago=80)
        revoked = _cert(s, alice, ["gone.example.test"], "cc01", issued_days_ago=5, revoked=True)
        failed = _order(s, alice, ["broken.example.test"], "invalid", age=timedelta(hours=1), error={
            "type": f"{PROBLEM}dns", "detail": "TXT _acme-challenge.broken.example.test never appeared <b>",
            "status": 400})
        conn = _order(s, bob, ["down.example.test"], "invalid", age=timedelta(hours=2), error={
            "type": f"{PROBLEM}connection", "detail": "nothing answered on port 80", "status": 400})
        old = _order(s, bob, ["older.example.test"], "invalid", age=timedelta(days=3), error={
            "type": f"{PROBLEM}connection", "detail": "timeout", "status": 400})
        s.add(UpstreamAccount(directory_url=rt.settings.le_directory, key_pem=new_key_pem().decode(),
                              key_encrypted=False, account_url="https://upstream.invalid/acme/acct/77"))
        s.add(Job(kind="order", subject_id=conn.id, run_at=NOW, attempts=2, last_error="upstream said no",
                  created=NOW - timedelta(minutes=30)))
        s.add(BudgetBucket(limit="new-orders", key="account", tokens=0.2, updated=NOW, label="the account"))
        return Seeded(renewed.serial, superseded.serial, overdue.serial, revoked.serial, failed.id, conn.id, old.id)


class Rows(HTMLParser):
    """The certificate table's rows (class, data-current) and the text of each."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._serial: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "cert" in a.get("class", "").split():
            self._serial = a["data-serial"]
            self.rows[self._serial] = {"class": a["class"], "current": a["data-current"], "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._serial = None

    def handle_data(self, data: str) -> None:
        if self._serial is not None:
            self.rows[self._serial]["text"] += data


def test_the_page_shows_the_overview(app: Flask) -> None:
    seeded = _seed(app)
    resp = plain(app).get("/status", environ_base={"REMOTE_ADDR": LOOPBACK})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<script" not in html and "script-src" not in resp.headers["Content-Security-Policy"]
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")

    rows = Rows()
    rows.feed(html)
    assert list(rows.rows) == [seeded.overdue, seeded.superseded, seeded.revoked, seeded.renewed], "soonest first"
    renewed, superseded, overdue = rows.rows[seeded.renewed], rows.rows[seeded.superseded], rows.rows[seeded.overdue]
    assert renewed["current"] == "true" and "current" in renewed["text"]
    assert "example.test, www.example.test" in renewed["text"]
    assert superseded["current"] == "false" and "superseded" in superseded["text"]
    assert overdue["current"] == "true" and "overdue" in overdue["class"].split() and "not renewed" in overdue["text"]
    assert "overdue" not in renewed["class"] and "revoked" in rows.rows[seeded.revoked]["class"]
    assert "1 not renewed within the renewal window" in html

    # failures of the last 24 h, by type, each linking to its order; the old one is not among them
    assert "Failures in the last 24 h: 2" in html
    assert f'href="/status/order/{seeded.failed}"' in html and f'href="/status/order/{seeded.failed_conn}"' in html
    assert f"/status/order/{seeded.old_failure}" not in html
    assert 'id="failures-dns"' in html and 'id="failures-connection"' in html
    assert "never appeared &lt;b&gt;" in html, "client-influenced text is escaped"

    # the upstream account, the queue, the budget, the relay certificate (off in these tests)
    assert "https://upstream.invalid/acme/acct/77" in html and "upstream.invalid" in html
    assert re.search(r'id="jobs">.*?1 <small>queued, <span class="warn">1 retrying', html, re.S)
    assert "upstream said no" in html
    assert re.search(r"<td>the account</td>\s*<td[^>]*>[\d.]+/300</td>", html)
    assert "RELAY_CERT_ENABLED=false" in html

    # the plot: 30 days, bars with tooltips for what happened
    svg = html[html.index("<svg"):html.index("</svg>")]
    three_days_ago = (NOW - timedelta(days=3)).strftime("%Y-%m-%d")
    assert f"<title>{three_days_ago}: 1 failed</title>" in svg
    assert svg.count('class="issued"') == len({(NOW - timedelta(days=d)).date() for d in (2, 5)}), \
        "issuances 2 and 5 days ago (70 and 80 are out of the window)"
    failed = [int(n) for n in re.findall(r"<title>[\d-]+: (\d+) failed</title>", svg)]
    assert sum(failed) == 3, "the two of the last 24 h and the one three days ago"


def test_the_order_page(app: Flask) -> None:
    seeded = _seed(app)
    resp = plain(app).get(f"/status/order/{seeded.failed}", environ_base={"REMOTE_ADDR": LOOPBACK})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "broken.example.test" in html and "dns: TXT _acme-challenge.broken.example.test" in html
    assert 'href="/status"' in html


def test_the_command_prints_the_same(app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    seeded = _seed(app)
    settings = app.extensions["jackdaw"].settings
    monkeypatch.chdir(tmp_path)
    for key, value in settings.env.items():
        monkeypatch.setenv(key, value)

    assert main(["status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(r["serial"], r["current"], r["overdue"]) for r in doc["certificates"]["rows"]] == [
        (seeded.overdue, True, True), (seeded.superseded, False, False), (seeded.revoked, False, False),
        (seeded.renewed, True, False)]
    assert doc["failures"]["total"] == 2
    assert {g["type"]: g["count"] for g in doc["failures"]["groups"]} == {"dns": 1, "connection": 1}
    assert len(doc["history"]) == 30 and sum(d["failed"] for d in doc["history"]) == 3
    assert doc["upstream"]["account_url"] == "https://upstream.invalid/acme/acct/77"
    assert doc["jobs"]["depth"] == 1 and doc["jobs"]["oldest"]["last_error"] == "upstream said no"

    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "ATTENTION" in text and "2 order(s) failed in the last 24 h" in text
    assert f"! {seeded.overdue}" in text.replace("!  ", "! ") or re.search(rf"!\s+{seeded.overdue}", text)
    assert re.search(rf"\*\s+{seeded.renewed}", text), "the current one is marked"
    assert seeded.failed in text and "failed     3" in text


def test_an_empty_relay(app: Flask) -> None:
    resp = plain(app).get("/status", environ_base={"REMOTE_ADDR": LOOPBACK})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "All well" in html and "No certificate issued yet" in html and "not registered yet" in html
    assert "<svg" in html and 'class="issued"' not in html
