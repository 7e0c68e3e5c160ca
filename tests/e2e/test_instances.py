"""Two Jackdaw instances on one PostgreSQL, behind a real nginx round robin, as two hosts would
run them (each its own DATA_DIR), with Pebble's validation sleeps on (a CA that takes its time):

1. 50 orders at once through the `acme` library: all valid, one upstream order each, one
   upstream account, no TXT record left;
2. one instance killed with SIGKILL in the middle of 50 more: the survivor finishes them all;
3. PostgreSQL restarted in the middle of 50 more: all valid, and no 5xx once it is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.jobs import JobKind
from jackdaw.models import DnsRecord, Order, UpstreamAccount, UpstreamOrder
from tests.clients import Webroot
from tests.herd import Fleet, Result, herd
from tests.nginx import RoundRobin
from tests.relay import PG_ADMIN, Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

ORDERS = 50
DOMAIN = "example.test"


@pytest.fixture(scope="module")
def slow_pebble(tmp_path_factory: pytest.TempPathFactory, bind: Bind) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble-slow"), bind.port, nonce_reject=5, va_sleep=True) as server:
        yield server


def restart_postgres() -> float:
    """Restart the local cluster; returns time.monotonic() once it answers again."""
    versions = os.listdir("/etc/postgresql")
    for version in versions:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                       capture_output=True, timeout=120)
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(PG_ADMIN, connect_timeout=2).close()
            return time.monotonic()
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.2)


def failures(results: list[Result]) -> list[str]:
    return [f"{r.name}: {r.error}" for r in results if r.error or not r.chain_pem]


def test_two_instances_share_one_account_and_survive_a_crash_and_a_database_restart(
        bind: Bind, slow_pebble: Pebble, tmp_path: Path) -> None:
    challenge_port = free_port()
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database())
        envs = []
        relays = []
        for host in ("a", "b"):
            # 150 certificates under one registered domain: far beyond Let's Encrypt's 50 a week, so
            # the budget ledger (tested on its own) would rightly refuse most of them
            env = relay_env(tmp_path / host, bind, slow_pebble, challenge_port, DATABASE_URL=database_url,
                            ALLOWED_DOMAINS=DOMAIN, JOB_LEASE_SECONDS="5", BUDGET_ENABLED="false")
            envs.append(env)
            relays.append(stack.enter_context(Relay(tmp_path / host, env)))
        front = stack.enter_context(RoundRobin(tmp_path / "nginx", [f"127.0.0.1:{r.port}" for r in relays]))
        www = stack.enter_context(Webroot(tmp_path / "www", challenge_port))
        directory = f"{front.url}/directory"
        sessions = make_sessionmaker(make_engine(database_url))

        # 1. fifty at once
        names = [f"h{i}-two.{DOMAIN}" for i in range(ORDERS)]
        results, _ = herd(directory, names, www.root)
        assert failures(results) == []
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(UpstreamAccount)) == 1
            leg2 = list(s.scalars(select(UpstreamOrder).where(UpstreamOrder.owner_kind == JobKind.ORDER)))
            assert len(leg2) == ORDERS and len({u.url for u in leg2}) == ORDERS
            assert {u.stage for u in leg2} == {"done"}
            assert {u.status for u in leg2} == {"valid"}  # RFC 8555's string, not "Status(valid)"
        logs = "".join(r.log_path.read_text() for r in relays)
        assert logs.count("registered upstream account") == 1
        for order_id in {u.owner_id for u in leg2}:  # exactly one upstream order per client order
            assert logs.count(f"order {order_id}: upstream order ") == 1, order_id
        assert all(": upstream order " in r.log_path.read_text() for r in relays), "one instance did all the work"

        # 2. fifty more, one instance killed with SIGKILL in the middle
        names = [f"k{i}-two.{DOMAIN}" for i in range(ORDERS)]
        killed = threading.Event()

        def kill_when_busy() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with sessions() as s:
                    started = s.scalar(select(func.count()).select_from(UpstreamOrder)) or 0
                if started >= ORDERS + ORDERS // 3:
                    break
                time.sleep(0.1)
            assert relays[0].proc is not None
            os.killpg(relays[0].proc.pid, signal.SIGKILL)  # no clean-up runs: a power cut
            relays[0].proc.wait()
            killed.set()

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        results, _ = herd(directory, names, www.root, timeout=120)
        killer.join()
        assert killed.is_set()
        assert failures(results) == []

        # 3. the instance back, then fifty more with PostgreSQL restarted in the middle
        relays[0] = Relay(tmp_path / "a", envs[0], port=relays[0].port).start()
        stack.callback(relays[0].stop)
        names = [f"p{i}-two.{DOMAIN}" for i in range(ORDERS)]
        fleet = Fleet()
        back: list[float] = []

        def restart_when_busy() -> None:
            time.sleep(2.0)
            back.append(restart_postgres())

        restarter = threading.Thread(target=restart_when_busy)
        restarter.start()
        results, _ = herd(directory, names, www.root, fleet=fleet, timeout=150)
        restarter.join()
        assert failures(results) == []
        assert back, "PostgreSQL was not restarted"
        after = [e for e in fleet.server_errors if e[0] > back[0]]
        assert after == [], after

        # nothing left behind anywhere
        time.sleep(1.0)
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(DnsRecord)) == 0
            # none stuck; a client that saw a 5xx during the outage and asked again left a pending order
            assert s.scalar(select(func.count()).select_from(Order).where(Order.status == "processing")) == 0
        all_names = [f"{p}{i}-two.{DOMAIN}" for p in "hkp" for i in range(ORDERS)]
        assert [n for n in all_names if bind.txt(f"_acme-challenge.{n}")] == []
        sessions.kw["bind"].dispose()
