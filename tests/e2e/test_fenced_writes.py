"""A frozen relay's stale write has no effect (issue 20 item 5): real gunicorn, Pebble, BIND.

Instance A runs an order's leg 2 and freezes (SIGSTOP, as a GC pause or a stopped VM would)
right after its upstream newOrder, between ``guard()`` and the write that stores it: a test-only
hook (JACKDAW_TEST_FREEZE_BEFORE_FENCE) stops the process there, outside any transaction. Its
lease lapses; instance B, on the same database (SQLite or PostgreSQL), takes the job over and issues; the client gets
its certificate from B. Then A is woken: its write is fenced, so leg 2's progress stays as B
left it (done, with B's upstream order) and A stops instead of finalizing a second order.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from acme import messages
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.jobs import JobKind
from jackdaw.models import Certificate, IssuedSet, Order, UpstreamOrder
from tests.clients import Webroot, acme_account, http01, new_csr
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

NAME = "frozen.example.test"


class FailOver(HTTPAdapter):
    """The client's way to the relay after A stopped answering: the same URLs (Host header),
    served by B, as a load balancer that dropped A would do."""

    def __init__(self, old_port: int, new_port: int) -> None:
        super().__init__()
        self.old, self.new = f"127.0.0.1:{old_port}", f"127.0.0.1:{new_port}"

    def send(self, request: requests.PreparedRequest, *args: object, **kwargs: object) -> requests.Response:
        assert request.url is not None
        request.headers["Host"] = self.old
        request.url = request.url.replace(self.old, self.new, 1)
        return super().send(request, *args, **kwargs)  # type: ignore[arg-type]


def worker_of(relay: Relay) -> int:
    assert relay.proc is not None
    children = Path(f"/proc/{relay.proc.pid}/task/{relay.proc.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database both instances share (SQLite: one file on this host, its writer lock too)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared' / 'jackdaw.db'}"
    else:
        with postgres_database() as url:
            yield url


def test_a_frozen_relays_stale_write_has_no_effect(bind: Bind, pebble: Pebble, tmp_path: Path,
                                                    database_url: str) -> None:
    port = free_port()
    # a 2 s lease lapses while A is frozen; the finalize answers at once (A freezes behind it)
    common = {"DATABASE_URL": database_url, "JOB_LEASE_SECONDS": "2", "RESPONSE_WAIT": "0"}
    env_a = relay_env(tmp_path / "a", bind, pebble, port, **common, JACKDAW_TEST_FREEZE_BEFORE_FENCE=JobKind.ORDER)
    env_b = relay_env(tmp_path / "b", bind, pebble, port, **common)
    sessions = make_sessionmaker(make_engine(database_url))
    _, csr_pem = new_csr([NAME])
    with ExitStack() as stack:
        a = stack.enter_context(Relay(tmp_path / "a", env_a))
        client = acme_account(a.directory_url)
        order = client.new_order(csr_pem)
        challb = http01(order.authorizations[0])
        www = stack.enter_context(Webroot(tmp_path / "www", port))
        target = www.root / ".well-known" / "acme-challenge" / challb.chall.encode("token")
        target.parent.mkdir(parents=True)
        target.write_text(challb.chall.key_authorization(client.net.key))
        client.answer_challenge(challb, challb.response(client.net.key))
        order_id = order.uri.rsplit("/", 1)[-1]
        wait_for("order never became ready", lambda: _status(sessions, order_id) == "ready")
        client.begin_finalization(order)

        worker = worker_of(a)
        wait_for("A never froze before its fenced write", lambda: stopped(worker), timeout=30)
        assert a.proc is not None
        stack.callback(lambda: a.proc is not None and a.proc.poll() is None and os.killpg(a.proc.pid, signal.SIGCONT))
        os.kill(a.proc.pid, signal.SIGSTOP)  # the whole host stops: gunicorn's master too

        b = stack.enter_context(Relay(tmp_path / "b", env_b))
        client.net.session.mount(a.url, FailOver(a.port, b.port))
        wait_for("B never finished the order", lambda: _status(sessions, order_id) != "processing")
        body = messages.Order.from_json(client._post_as_get(order.uri).json())
        assert body.status == messages.STATUS_VALID, body.error
        assert "BEGIN CERTIFICATE" in client._post_as_get(body.certificate).text
        delivered = _state(sessions, order_id)
        assert delivered["stage"] == "done" and delivered["certificates"] == 1
        upstream_a = _upstream_orders(a.log_path.read_text(), order_id)
        # A froze before one of its fenced writes: before storing its upstream order (B then made
        # its own) or after (B went on with A's); either way one order of A's went upstream
        assert len(upstream_a) == 1, "A made its upstream order, then froze"

        os.kill(worker, signal.SIGCONT)  # A wakes up and goes on with its write
        wait_for("A neither stopped nor wrote",
                 lambda: "taken over" in a.log_path.read_text() or _state(sessions, order_id) != delivered,
                 timeout=30)
        time.sleep(1.0)  # anything A would go on to write, it would have written by now
        assert _state(sessions, order_id) == delivered
        log_a = a.log_path.read_text()
        assert f"job order {order_id}: its claim was taken over by another run; this run stopped" in log_a
        os.kill(a.proc.pid, signal.SIGCONT)
    sessions.kw["bind"].dispose()


def _status(sessions: sessionmaker[Session], order_id: str) -> str | None:
    with sessions() as s:
        return s.scalar(select(Order.status).where(Order.id == order_id))


def _state(sessions: sessionmaker[Session], order_id: str) -> dict[str, object]:
    """What the client's order, leg 2 and the budget show."""
    with sessions() as s:
        row = s.scalars(select(UpstreamOrder).where(UpstreamOrder.owner_kind == JobKind.ORDER,
                                                    UpstreamOrder.owner_id == order_id)).one()
        return {"order": s.scalar(select(Order.status).where(Order.id == order_id)),
                "stage": row.stage, "status": row.status, "url": row.url,
                "certificates": s.scalar(select(func.count()).select_from(Certificate)
                                         .where(Certificate.order_id == order_id)),
                "issued_sets": [(i.set_key, i.issued) for i in s.scalars(select(IssuedSet))]}


def _upstream_orders(log: str, order_id: str) -> list[str]:
    return [line.split(": upstream order ", 1)[1].split()[0] for line in log.splitlines()
            if f"order {order_id}: upstream order " in line]
