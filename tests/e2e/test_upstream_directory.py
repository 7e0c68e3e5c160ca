"""What the relay learned from the upstream directory is durable, under gunicorn with real
certbot and a current Pebble with profiles, on SQLite and PostgreSQL: a relay restarted while
the CA is away lists the stored profiles at its first request and issues one of them as soon as
the CA is back; a profile the CA stops listing stays offered for UPSTREAM_PROFILE_GRACE (the
status, a notification and the CA's own refusal say so) and is dropped after it."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.models import Order
from jackdaw.models import UpstreamDirectory as Row
from tests.clients import certbot, check_certificate
from tests.e2e.test_ca_2026 import PROFILES, Bed, lifetime, start, wait_for
from tests.testbed import CURRENT_PEBBLE, Bind, Pebble

pytestmark = pytest.mark.skipif(not os.access(CURRENT_PEBBLE, os.X_OK),
                                reason=f"needs a current Pebble at {CURRENT_PEBBLE} (CI has one)")

# one database each end to end (the suite's time); tests/integration/test_upstream_directory.py runs
# both on both
RESTART_BACKENDS = ["sqlite"]
GRACE_BACKENDS = ["postgres"]
LISTED = {"default": "90 days", "shortlived": "6 days"}


def offered(bed: Bed) -> dict[str, str]:
    profiles: dict[str, str] = requests.get(bed.relay.directory_url, timeout=5).json()["meta"].get("profiles", {})
    return profiles


def stored(bed: Bed) -> Row:
    engine = make_engine(bed.database_url)
    try:
        with make_sessionmaker(engine)() as s:
            row = s.scalars(select(Row)).one()
            s.expunge(row)
            return row
    finally:
        engine.dispose()


def order_for(bed: Bed, name: str) -> dict[str, Any]:
    engine = make_engine(bed.database_url)
    try:
        with make_sessionmaker(engine)() as s:
            order = next(o for o in s.scalars(select(Order).order_by(Order.created.desc())) if name in o.identifiers)
            return {"status": order.status, "profile": order.profile, "error": order.error}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", RESTART_BACKENDS)
def test_a_relay_restarted_while_the_ca_is_away_offers_the_stored_profiles(
        backend: str, tmp_path: Path, bind: Bind) -> None:
    with ExitStack() as stack:
        pebble = stack.enter_context(Pebble(tmp_path / "pebble", bind.port, nonce_reject=5, binary=CURRENT_PEBBLE,
                                            profiles=PROFILES))
        bed = start(stack, tmp_path / "relay", bind, pebble, backend)
        assert wait_for(lambda: offered(bed) == LISTED)
        first = f"first-{backend}-dir.example.test"  # a relay in use: its upstream account is registered
        certbot(tmp_path / "first", bed.relay.directory_url, [first], standalone_port=bed.port)
        before = stored(bed)

        bed.relay.stop()
        pebble.stop()  # the CA is away while the relay starts again
        bed.relay.start()
        assert offered(bed) == LISTED  # the first request after the start

        pebble.start()  # back, with its memory wiped (the relay's account registers again)
        name = f"back-{backend}-dir.example.test"
        short = certbot(tmp_path / "certbot", bed.relay.directory_url, [name], standalone_port=bed.port,
                        extra=["--required-profile", "shortlived"])
        check_certificate(short, [name], pebble.roots_pem())
        assert lifetime(short.chain_pem) <= timedelta(days=7)
        assert stored(bed).checked == before.checked  # served from the database: not fetched again


@pytest.mark.parametrize("backend", GRACE_BACKENDS)
def test_a_profile_the_ca_stops_listing_stays_offered_for_the_grace(
        backend: str, tmp_path: Path, bind: Bind) -> None:
    told = tmp_path / "notifications"
    with ExitStack() as stack:
        pebble = stack.enter_context(Pebble(tmp_path / "pebble", bind.port, nonce_reject=5, binary=CURRENT_PEBBLE,
                                            profiles=PROFILES))
        bed = start(stack, tmp_path / "relay", bind, pebble, backend, UPSTREAM_DIRECTORY_REFRESH="1",
                    NOTIFY_COMMAND=f"/bin/sh -c 'cat >> {told}; echo >> {told}'")
        assert wait_for(lambda: offered(bed) == LISTED)

        pebble.stop()  # the CA's directory no longer lists shortlived
        pebble.profiles = {"default": PROFILES["default"]}
        pebble.start()
        status = wait_for(lambda: "shortlived: no longer listed by the CA" in (out := bed.jackdaw("status").stdout)
                          and out, timeout=60)
        assert status, bed.jackdaw("status").stdout
        assert "the upstream CA no longer lists profile shortlived" in status  # attention
        assert "directory  fetched" in status and " ago)" in status, status  # the meta's age
        assert offered(bed) == LISTED
        page = requests.get(f"{bed.relay.url}/status", timeout=10).text
        assert "shortlived: no longer listed by the CA since" in page
        assert wait_for(lambda: told.exists() and "profile_withdrawn" in told.read_text())
        [note] = [doc for line in told.read_text().splitlines() if line.strip()
                  if (doc := json.loads(line))["event"] == "profile_withdrawn"]
        assert note["subject"] == "profile shortlived" and note["details"]["until"]

        # a client that names it: the relay takes the order, the CA refuses it in its own words
        name = f"gone-{backend}-dir.example.test"
        with pytest.raises(AssertionError) as failed:
            certbot(tmp_path / "certbot", bed.relay.directory_url, [name], standalone_port=bed.port,
                    extra=["--required-profile", "shortlived"])
        order = order_for(bed, name)
        assert order["status"] == "invalid" and order["profile"] == "shortlived", order
        assert order["error"]["type"] == "urn:ietf:params:acme:error:invalidProfile", order
        assert "the CA said: " in order["error"]["detail"] and "shortlived" in order["error"]["detail"], order
        assert "the upstream CA stopped listing profile shortlived at" in order["error"]["detail"], order
        assert "invalidProfile" in str(failed.value) or "profile" in str(failed.value)

        # the grace is over (as if a day had passed): the directory drops it
        engine = make_engine(bed.database_url)
        with make_sessionmaker(engine).begin() as s:
            s.execute(update(Row).values(withdrawn={"shortlived": {
                "description": "6 days", "since": (datetime.now(UTC) - timedelta(days=2)).isoformat()}}))
        engine.dispose()
        assert wait_for(lambda: offered(bed) == {"default": "90 days"}), offered(bed)
        status = bed.jackdaw("status").stdout
        assert "profiles   default\n" in status and "no longer listed" not in status, status
