"""A relay killed mid-issuance resumes the order after restart; no TXT record is left behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from acme import messages

from tests.clients import Webroot, acme_account, certbot, check_certificate, http01, new_csr
from tests.relay import Relay, relay_env
from tests.testbed import Bind, Pebble, free_port


def _order(client, url: str) -> messages.Order:  # type: ignore[no-untyped-def]
    return messages.Order.from_json(client._post_as_get(url).json())


def test_killed_relay_resumes_issuance(bind: Bind, pebble: Pebble, tmp_path: Path) -> None:
    port = free_port()
    # A 3 s minimum DNS wait holds the job mid-flight (TXT written, upstream not answered) for the
    # kill; the finalize response must not wait that out itself (RESPONSE_WAIT=0).
    env = relay_env(tmp_path, bind, pebble, port, JOB_LEASE_SECONDS="2", DNS_PROPAGATION_WAIT="3",
                    RESPONSE_WAIT="0")
    name = "recover.example.test"
    _, csr_pem = new_csr([name])
    relay = Relay(tmp_path, env).start()
    try:
        client = acme_account(relay.directory_url)
        order = client.new_order(csr_pem)
        challb = http01(order.authorizations[0])
        with Webroot(tmp_path / "www", port) as www:
            target = www.root / ".well-known" / "acme-challenge" / challb.chall.encode("token")
            target.parent.mkdir(parents=True)
            target.write_text(challb.chall.key_authorization(client.net.key))
            client.answer_challenge(challb, challb.response(client.net.key))
            deadline = time.monotonic() + 20
            while _order(client, order.uri).status != messages.STATUS_READY:
                assert time.monotonic() < deadline, "order never became ready"
                time.sleep(0.1)
        client.begin_finalization(order)
        deadline = time.monotonic() + 10
        while not bind.txt(f"_acme-challenge.{name}"):
            assert time.monotonic() < deadline, "leg 2 never wrote its TXT record"
            time.sleep(0.05)
        assert relay.proc is not None
        os.killpg(relay.proc.pid, signal.SIGKILL)  # no clean-up code runs: a power cut
        relay.proc.wait()
        assert bind.txt(f"_acme-challenge.{name}"), "the record should still be there after the crash"

        relay = Relay(tmp_path, env, port=relay.port).start()
        deadline = time.monotonic() + 60
        body = _order(client, order.uri)
        while body.status == messages.STATUS_PROCESSING:
            assert time.monotonic() < deadline, "order stuck in processing after restart"
            time.sleep(0.25)
            body = _order(client, order.uri)
        assert body.status == messages.STATUS_VALID, body.error
        chain = client._post_as_get(body.certificate).text
        assert "BEGIN CERTIFICATE" in chain
        assert bind.txt(f"_acme-challenge.{name}") == []
    finally:
        relay.stop()


def test_a_wait_longer_than_the_lease_runs_leg_2_once(bind: Bind, pebble: Pebble, tmp_path: Path) -> None:
    """A 2 s lease, an 8 s minimum DNS wait: the wait is a reschedule, not a sleep under the
    lease, so no second run starts: each TXT value is written once, one upstream order."""
    port = free_port()
    env = relay_env(tmp_path, bind, pebble, port, JOB_LEASE_SECONDS="2", DNS_PROPAGATION_WAIT="8")
    name = "lease-race.example.test"
    with Relay(tmp_path, env) as relay:
        issued = certbot(tmp_path / "certbot", relay.directory_url, [name], standalone_port=port, timeout=120)
        log = relay.log_path.read_text()
    check_certificate(issued, [name], pebble.roots_pem())
    writes = [line for line in bind.log_path.read_text().splitlines()
              if f"adding an RR at '_acme-challenge.{name}' TXT" in line]
    assert len(writes) == 1, writes
    assert log.count(": upstream order ") == 1
    assert "taken over" not in log and "Cannot update challenge" not in log
    assert bind.txt(f"_acme-challenge.{name}") == []
