"""The upstream directory's meta is durable (jackdaw.upstream.directory), against a current
Pebble with profiles, on SQLite and PostgreSQL: one fetch serves every instance; a relay
started while the CA is away serves what was stored; a profile the CA stops listing stays
offered for UPSTREAM_PROFILE_GRACE, is shown and told, and is dropped after it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.jobs import JobKind, JobQueue
from jackdaw.models import Job, utcnow
from jackdaw.models import UpstreamDirectory as Row
from jackdaw.notify import Notifier
from jackdaw.notify.channels import Channel
from jackdaw.ops import render
from jackdaw.ops import status as overview
from jackdaw.upstream.account import UpstreamAccount
from jackdaw.upstream.directory import CACHE_SECONDS
from tests.integration.conftest import relay_settings, running_app
from tests.signer import AcmeTestClient, RequestSigner, ec_jwk
from tests.testbed import CURRENT_PEBBLE, Bind, Pebble

pytestmark = pytest.mark.skipif(not os.access(CURRENT_PEBBLE, os.X_OK),
                                reason=f"needs a current Pebble at {CURRENT_PEBBLE} (CI has one)")

PROFILES = {"default": {"description": "90 days", "validityPeriod": 7776000},
            "shortlived": {"description": "6 days", "validityPeriod": 518400}}
LISTED = {"default": "90 days", "shortlived": "6 days"}


@pytest.fixture
def pebble(bind: Bind, tmp_path: Path) -> Iterator[Pebble]:
    """A Pebble of this test's own: the tests stop it and start it with other profiles."""
    with Pebble(tmp_path / "pebble", bind.port, binary=CURRENT_PEBBLE, profiles=PROFILES) as server:
        yield server


def upstream_env(pebble: Pebble) -> dict[str, str]:
    return {"LE_DIRECTORY": pebble.directory_url, "UPSTREAM_CA_BUNDLE": str(pebble.ca_pem)}


def instance(database_url: str, data_dir: Path, pebble: Pebble, **extra: str) -> tuple[UpstreamAccount, JobQueue]:
    """One relay process's view: its own engine and job queue, the shared database."""
    settings = relay_settings(database_url, data_dir, **upstream_env(pebble), **extra)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    queue = JobQueue(engine, sessions)
    account = UpstreamAccount(settings, sessions)
    queue.register(JobKind.UPSTREAM_DIRECTORY, account.directory.run)
    return account, queue


def stored(account: UpstreamAccount) -> Row:
    with account.sessions() as s:
        row = s.get(Row, account.directory_url)
        assert row is not None
        return row


def restart(pebble: Pebble, profiles: dict[str, dict[str, object]]) -> None:
    pebble.stop()
    pebble.profiles = profiles
    pebble.start()


def test_one_fetch_serves_every_instance(database_url: str, tmp_path: Path, pebble: Pebble) -> None:
    (a, queue_a), (b, queue_b) = (instance(database_url, tmp_path / n, pebble) for n in ("a", "b"))
    assert a.meta() is None  # nothing stored, nothing fetched: unknown, not "no profiles"

    a.directory.sync(queue_a)  # due: never fetched
    assert queue_a.run_once() is True
    first = stored(a)
    assert first.profiles == LISTED and first.fetched is not None and first.error is None
    assert first.renewal_info and first.renewal_info.startswith(pebble.directory_url.rsplit("/", 1)[0])

    b.directory.sync(queue_b)  # the other instance: not due, nothing asked, nothing fetched
    with b.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
    meta = b.meta()
    assert meta is not None and meta.profiles == LISTED and meta.renewal_info == first.renewal_info
    assert stored(b).checked == first.checked

    # asked twice at once (two processes): the second run finds it fresh and does not fetch
    queue_a.ask(JobKind.UPSTREAM_DIRECTORY, a.directory_url)
    with a.sessions.begin() as s:
        s.execute(update(Row).values(checked=utcnow() - timedelta(hours=1)))
    queue_a.drain()
    again = stored(a).checked
    assert again is not None and again > first.checked  # type: ignore[operator]
    queue_b.ask(JobKind.UPSTREAM_DIRECTORY, b.directory_url)
    queue_b.drain()
    assert stored(b).checked == again


def test_a_relay_started_while_the_ca_is_away_serves_what_was_stored(
        database_url: str, tmp_path: Path, pebble: Pebble) -> None:
    first, _ = instance(database_url, tmp_path / "before", pebble)
    first.refresh_meta()
    pebble.stop()
    try:
        with running_app(database_url, tmp_path / "after", **upstream_env(pebble)) as app:
            client = app.test_client()
            assert client.get("/directory").get_json()["meta"]["profiles"] == LISTED  # the first request

            rt = app.extensions["jackdaw"]
            rt.upstream.refresh_meta()  # the CA does not answer: what was stored stays
            assert client.get("/directory").get_json()["meta"]["profiles"] == LISTED
            row = stored(rt.upstream)
            assert row.error and row.error.startswith("unreachable") and row.profiles == LISTED
            report = overview.gather(rt.sessions, rt.settings)
            text = render.status_text(report)
            assert "profiles   default, shortlived" in text, text
            assert any("upstream directory: the last fetch failed (unreachable" in a for a in report.attention)
            assert f"fetched {render.when(row.fetched)}" in text, text
    finally:
        pebble.start()


class Collected(Channel):
    name = "collected"

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def send(self, doc: dict[str, object]) -> None:
        self.sent.append(doc)


def test_a_withdrawn_profile_is_offered_for_the_grace_then_dropped(
        database_url: str, tmp_path: Path, pebble: Pebble) -> None:
    with running_app(database_url, tmp_path / "data", **upstream_env(pebble)) as app:
        rt = app.extensions["jackdaw"]
        channel = Collected()
        notifier = Notifier(rt.settings, rt.sessions, rt.queue, channels={"collected": channel})
        rt.queue.register(JobKind.NOTIFY, notifier.deliver)
        rt.upstream.directory.on_withdrawn = notifier.profiles_withdrawn
        app.test_client_class = AcmeTestClient
        client = app.test_client()
        rt.upstream.refresh_meta()

        # the CA's directory stops listing shortlived (a blip, or for good)
        restart(pebble, {"default": PROFILES["default"]})
        meta = rt.upstream.refresh_meta()
        assert meta is not None and meta.profiles == LISTED
        since, until = meta.withdrawn["shortlived"]
        assert until - since == timedelta(days=1)
        assert client.get("/directory").get_json()["meta"]["profiles"] == LISTED
        signer = RequestSigner(client, ec_jwk())
        assert signer.new_account().status_code == 201
        accepted = signer.post("/acme/new-order", {
            "identifiers": [{"type": "dns", "value": "a.example.test"}], "profile": "shortlived"})
        assert accepted.status_code == 201, accepted.get_json()

        rt.queue.drain()  # the notification raised by the fetch, delivered
        [told] = [d for d in channel.sent if d["event"] == "profile_withdrawn"]
        assert told["subject"] == "profile shortlived" and "until" in str(told["title"])
        assert notifier.sweep() == []  # the sweep finds the same withdrawal: told once
        text = render.status_text(overview.gather(rt.sessions, rt.settings))
        assert "shortlived: no longer listed by the CA since" in text, text
        assert "the upstream CA no longer lists profile shortlived" in text, text

        # the grace is over: the directory drops it, and the relay refuses it itself
        with rt.sessions.begin() as s:
            s.execute(update(Row).values(withdrawn={"shortlived": {
                "description": "6 days", "since": (datetime.now(UTC) - timedelta(days=2)).isoformat()}}))
        time.sleep(CACHE_SECONDS)  # what each process read of the row serves this long
        assert client.get("/directory").get_json()["meta"]["profiles"] == {"default": "90 days"}
        refused = signer.post("/acme/new-order", {
            "identifiers": [{"type": "dns", "value": "a.example.test"}], "profile": "shortlived"})
        assert refused.status_code == 400
        assert refused.get_json()["type"] == "urn:ietf:params:acme:error:invalidProfile"

        # listed again: no longer withdrawn
        restart(pebble, PROFILES)
        meta = rt.upstream.refresh_meta()
        assert meta is not None and meta.profiles == LISTED and meta.withdrawn == {}
        assert stored(rt.upstream).withdrawn == {}
